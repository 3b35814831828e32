"""The ``feed`` channel: RSS 2.0, Atom 1.0 and JSON Feed files in ``[storage] public``.

Each edition rewrites the feeds from ``job.history`` (every done edition plus this one,
newest first), so the files always hold the newest ``feed_size`` editions whatever happened
before. Files are replaced atomically: a feed reader polling during a publish gets the old
file or the new one, never half of one.

The ledger gets one delivery row per edition with recipient ''. A row already 'sent' is not
redone on resume (the files already hold this edition); a row marked 'failed' waits for
``retry-failed``. A broken template is a permanent failure (retrying cannot help until the
operator fixes it); a full disk or a busy file system leaves the row 'pending' so the next
resume writes the feeds again.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, field_validator

from ..errors import RenderError
from ..render.feeds import render_feeds, write_feeds
from ..render.urls import FEED_FILES
from ._base import ChannelSettings, DeliveryReport, register_channel

if TYPE_CHECKING:
    from ..config import Config
    from ..pipeline import PublishJob

Format = Literal["rss", "atom", "json"]
# Write errors worth retrying on the next resume; anything else (permissions, read-only
# file system, missing mount) needs the operator.
_TRANSIENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EAGAIN, errno.EINTR, errno.EBUSY, errno.EIO}
)


def is_transient(exc: OSError) -> bool:
    """Whether a write error may pass by itself (retry on resume) or needs the operator."""
    return exc.errno in _TRANSIENT_ERRNOS


class FeedSettings(ChannelSettings):
    """``type = "feed"``: the feed files (URLs: ``<base_url>feed.xml``, ``atom.xml``,
    ``feed.json``)."""

    formats: list[Format] = Field(
        default_factory=lambda: ["rss", "atom", "json"],
        min_length=1,
        description="Feed files to write: 'rss' (feed.xml, RSS 2.0), 'atom' (atom.xml, "
        "Atom 1.0), 'json' (feed.json, JSON Feed 1.1). Their size is [publish] feed_size.",
    )

    @field_validator("formats")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each format at most once")
        return value


@register_channel
class FeedChannel:
    type: ClassVar[str] = "feed"
    Settings: ClassVar[type[ChannelSettings]] = FeedSettings

    def __init__(self, settings: FeedSettings, config: Config) -> None:
        self.settings = settings
        self.config = config

    def files(self, job: PublishJob) -> dict[str, bytes]:
        """The feed files this channel writes for ``job`` (rendered, not written)."""
        rendered = render_feeds(job.history[: job.config.publish.feed_size], job.config)
        wanted = {FEED_FILES[kind] for kind in self.settings.formats}
        return {name: data for name, data in rendered.items() if name in wanted}

    def deliver(self, job: PublishJob) -> DeliveryReport:
        name = self.settings.name
        delivery = job.ledger.ensure_delivery(job.edition.id, name, "")
        if delivery.status == "sent":
            return DeliveryReport(name, skipped=1, detail="feeds already written")
        if delivery.status == "failed":
            return DeliveryReport(name, failed=1, detail=f"failed earlier: {delivery.response}")
        entries = min(len(job.history), job.config.publish.feed_size)
        try:
            paths = write_feeds(job.config.public_dir, self.files(job))
        except RenderError as exc:
            job.ledger.mark_failed(delivery.id, None, str(exc), permanent=True)
            job.log.error("channel %s: %s", name, exc)
            return DeliveryReport(name, failed=1, detail=str(exc))
        except OSError as exc:
            message = f"cannot write the feeds in {job.config.public_dir}: {exc}"
            transient = is_transient(exc)
            job.ledger.mark_failed(delivery.id, None, message, permanent=not transient)
            job.log.error("channel %s: %s", name, message)
            if transient:
                return DeliveryReport(name, pending=1, detail=message)
            return DeliveryReport(name, failed=1, detail=message)
        written = ", ".join(path.name for path in paths)
        detail = f"{written} ({entries} entries)"
        job.ledger.mark_sent(delivery.id, detail)
        return DeliveryReport(name, sent=1, detail=detail)


__all__ = ["FeedChannel", "FeedSettings"]
