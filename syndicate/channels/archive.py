"""The ``archive`` channel: static HTML pages in ``[storage] public``.

For each edition it writes the edition's page (``<slug>/index.html``), the pages of the
editions next to it (their previous/next links), the index of editions, ``sitemap.xml``,
the pages of the companies the edition cites, and any page that is missing (the shipped
``favicon.svg`` included)
(a new public folder, a deleted file); ``rebuild = true`` rewrites everything (after a
template change). Pages are replaced atomically, edition pages first and the indexes
last, so a reader never follows a link to a page not written yet.

The bookkeeping keeps one delivery row per edition (recipient ''): 'sent' is not redone on
resume, 'failed' waits for ``retry-failed``. A broken template is permanent; a full
disk leaves the row pending so the next resume tries again.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from ..config import ChannelSettings, Config
from ..fs import write_atomic
from ._base import DeliveryJob, DeliveryReport, write_once


class ArchiveSettings(ChannelSettings):
    """``type = "archive"``: one page per edition, an index, one page per company."""

    rebuild: bool = Field(
        False,
        description="Rewrite every archive page at each edition (e.g. after editing the "
        "templates); by default only the pages an edition changes, plus any missing page.",
    )


class ArchiveChannel:
    type_name: ClassVar[str] = "archive"
    Settings: ClassVar[type[ChannelSettings]] = ArchiveSettings

    def __init__(self, settings: ArchiveSettings, config: Config) -> None:
        self.settings = settings
        self.config = config

    def pages(self, job: DeliveryJob) -> dict[str, str]:
        """The pages this channel writes for ``job`` (rendered, not written), the
        indexes last (a reader never follows a link to a page not written yet)."""
        # Lazy: jinja2 and the email renderer load when pages are rendered, not when
        # a config naming this channel is validated.
        from ..render.archive import COMPANIES_INDEX, INDEX, SITEMAP, render_archive

        public = self.config.public_dir
        if self.settings.rebuild:
            pages = render_archive(job.history, self.config, expand=job.expand)
        else:
            pages = render_archive(job.history, self.config, changed=job.view,
                                   missing=lambda path: not (public / path).exists(),
                                   expand=job.expand)
        order = sorted(pages, key=lambda path: (path in (INDEX, COMPANIES_INDEX, SITEMAP), path))
        return {path: pages[path] for path in order}

    def deliver(self, job: DeliveryJob) -> DeliveryReport:
        public = self.config.public_dir

        def write() -> str:
            pages = self.pages(job)
            for path, page in pages.items():  # in order: indexes last
                write_atomic(public / path, page)
            return f"{len(pages)} page{'s' if len(pages) != 1 else ''} in {public}"

        return write_once(job, self.settings.name, "archive pages", str(public), write)


__all__ = ["ArchiveChannel", "ArchiveSettings"]
