"""The ``feed`` channel: RSS 2.0, Atom 1.0 and JSON Feed files in ``[storage] public``.

Each edition rewrites the feeds from ``job.history`` (every done edition plus this one,
newest first), so the files always hold the newest ``feed_size`` editions whatever happened
before. Files are replaced atomically: a feed reader polling during a publish gets the old
file or the new one, never half of one.

The bookkeeping keeps one delivery row per edition with recipient ''. A row already 'sent' is not
redone on resume (the files already hold this edition); a row marked 'failed' waits for
``retry-failed``. A broken template is a permanent failure (retrying cannot help until the
operator fixes it); a full disk or a busy file system leaves the row 'pending' so the next
resume writes the feeds again.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from ..config import ChannelSettings, Config
from ..fs import write_atomic_bytes
from ..render.urls import FEED_FILES
from ._base import DeliveryJob, DeliveryReport, write_once

Format = Literal["rss", "atom", "json"]


def _every_format() -> list[Format]:
    return ["rss", "atom", "json"]


class FeedSettings(ChannelSettings):
    """``type = "feed"``: the feed files (URLs: ``<base_url>feed.xml``, ``atom.xml``,
    ``feed.json``)."""

    formats: list[Format] = Field(
        default_factory=_every_format,
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


class FeedChannel:
    type_name: ClassVar[str] = "feed"
    Settings: ClassVar[type[ChannelSettings]] = FeedSettings

    def __init__(self, settings: FeedSettings, config: Config) -> None:
        self.settings = settings
        self.config = config

    def files(self, job: DeliveryJob) -> dict[str, bytes]:
        """The feed files this channel writes for ``job`` (rendered, not written)."""
        # Lazy: feedgen and jinja2 load when feeds are rendered, not when a config
        # naming this channel is validated.
        from ..render.feeds import render_feeds

        rendered = render_feeds(job.history[: self.config.publish.feed_size], self.config)
        wanted = {FEED_FILES[kind] for kind in self.settings.formats}
        return {name: data for name, data in rendered.items() if name in wanted}

    def deliver(self, job: DeliveryJob) -> DeliveryReport:
        entries = min(len(job.history), self.config.publish.feed_size)
        public = self.config.public_dir

        def write() -> str:
            paths = []
            for name, data in self.files(job).items():  # each one atomically
                write_atomic_bytes(public / name, data)
                paths.append(public / name)
            return f"{', '.join(path.name for path in paths)} ({entries} entries)"

        return write_once(job, self.settings.name, "feeds", str(public), write)


__all__ = ["FeedChannel", "FeedSettings"]
