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

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, field_validator

from ..render.feeds import render_feeds, write_feeds
from ..render.urls import FEED_FILES
from ._base import ChannelSettings, DeliveryReport, register_channel, write_once

if TYPE_CHECKING:
    from ..config import Config
    from ..pipeline import PublishJob

Format = Literal["rss", "atom", "json"]


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
        entries = min(len(job.history), job.config.publish.feed_size)

        def write() -> str:
            paths = write_feeds(job.config.public_dir, self.files(job))
            return f"{', '.join(path.name for path in paths)} ({entries} entries)"

        return write_once(job, self.settings.name, "feeds", write)


__all__ = ["FeedChannel", "FeedSettings"]
