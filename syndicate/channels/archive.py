"""The ``archive`` channel: static HTML pages in ``[storage] public``.

For each edition it writes the edition's page (``<slug>/index.html``), the index of
editions, the pages of the companies the edition cites, and any page that is missing
(a new public folder, a deleted file); ``rebuild = true`` rewrites everything (after a
template change). Pages are replaced atomically, edition pages first and the indexes
last, so a reader never follows a link to a page not written yet.

The ledger gets one delivery row per edition (recipient ''): 'sent' is not redone on
resume, 'failed' waits for ``retry-failed``. A broken template is permanent; a full
disk leaves the row pending so the next resume tries again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from ..fs import write_atomic
from ..render.archive import COMPANIES_INDEX, INDEX, render_archive
from ._base import ChannelSettings, DeliveryReport, register_channel, write_once

if TYPE_CHECKING:
    from ..config import Config
    from ..pipeline import PublishJob


class ArchiveSettings(ChannelSettings):
    """``type = "archive"``: one page per edition, an index, one page per company."""

    rebuild: bool = Field(
        False,
        description="Rewrite every archive page at each edition (e.g. after editing the "
        "templates); by default only the pages an edition changes, plus any missing page.",
    )


def _indexes_last(path: str) -> tuple[int, str]:
    return (path in (INDEX, COMPANIES_INDEX), path)


@register_channel
class ArchiveChannel:
    type: ClassVar[str] = "archive"
    Settings: ClassVar[type[ChannelSettings]] = ArchiveSettings

    def __init__(self, settings: ArchiveSettings, config: Config) -> None:
        self.settings = settings
        self.config = config

    def pages(self, job: PublishJob) -> dict[str, str]:
        """The pages this channel writes for ``job`` (rendered, not written)."""
        public = job.config.public_dir
        if self.settings.rebuild:
            return render_archive(job.history, job.config, expand=job.expand)
        return render_archive(job.history, job.config, changed=job.view,
                              missing=lambda path: not (public / path).exists(),
                              expand=job.expand)

    def deliver(self, job: PublishJob) -> DeliveryReport:
        public = job.config.public_dir

        def write() -> str:
            pages = self.pages(job)
            for path in sorted(pages, key=_indexes_last):
                write_atomic(public / path, pages[path])
            return f"{len(pages)} page{'s' if len(pages) != 1 else ''} in {public}"

        return write_once(job, self.settings.name, "archive pages", write)


__all__ = ["ArchiveChannel", "ArchiveSettings"]
