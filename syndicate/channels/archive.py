"""The ``archive`` channel: static HTML pages in ``[storage] public``.

For each edition it writes the edition's page (``<slug>/index.html``), the pages of the
editions next to it (their previous/next links), the index (the newest editions), the
numbered page and the year's page listing it, the sitemaps, the pages of the companies the
edition cites, and any page that is missing (the shipped ``favicon.svg`` included)
(a new public folder, a deleted file); ``rebuild = true`` rewrites everything (after a
template change). Pages are replaced atomically, edition pages first and the indexes
last, so a reader never follows a link to a page not written yet.

Pages are rendered and written one at a time (the texts of old editions read from the
ledger a batch at a time), so the first publication into an empty public folder, with
thousands of pages missing, runs in bounded memory; it shows a progress bar when stderr
is a terminal, and one summary line on stderr otherwise.

The bookkeeping keeps one delivery row per edition (recipient ''): 'sent' is not redone on
resume, 'failed' waits for ``retry-failed``. A broken template is permanent; a full
disk leaves the row pending so the next resume tries again.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, ClassVar, TextIO

from pydantic import Field

from ..config import ChannelSettings, Config
from ..fs import write_atomic
from ._base import DeliveryJob, DeliveryReport, StoppedWriting, write_once

if TYPE_CHECKING:
    from pathlib import Path

    from ..render.archive import ArchivePlan

#: Below this many pages a publication writes quietly (the usual one writes about a dozen).
PROGRESS_FROM = 100


class ArchiveSettings(ChannelSettings):
    """``type = "archive"``: one page per edition, an index, one page per company."""

    rebuild: bool = Field(
        False,
        description="Rewrite every archive page at each edition (e.g. after editing the "
        "templates); by default only the pages an edition changes, plus any missing page.",
    )


@contextmanager
def _progress(total: int, stream: TextIO, label: str) -> Iterator[_Advance]:
    """A progress bar on a terminal; elsewhere (a log, cron's mail) one line at the end."""
    started = time.monotonic()
    advance = _Advance()
    if total >= PROGRESS_FROM and stream.isatty():
        # Lazy: rich only when a terminal watches a long rebuild.
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        with Progress("[progress.description]{task.description}", BarColumn(),
                      MofNCompleteColumn(), TimeRemainingColumn(),
                      console=Console(file=stream), transient=False) as bar:
            task = bar.add_task(label, total=total)
            advance.step = lambda: bar.advance(task)
            yield advance
        return
    yield advance
    if total >= PROGRESS_FROM:
        print(f"{label}: {advance.done} of {total} pages written in "
              f"{time.monotonic() - started:.1f} s", file=stream, flush=True)


@contextmanager
def _absent(public: Path) -> Iterator[Callable[[str], bool]]:
    """Whether a page (a path relative to ``public``) is absent: one ``stat`` per page of
    the history at every publish (thousands), relative to the open folder (no path to
    resolve from the root each time) where the platform allows it."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        folder = os.open(public, flags) if os.stat in os.supports_dir_fd else None
    except OSError:  # no public folder yet: every page is missing
        yield lambda path: True
        return
    if folder is None:
        yield lambda path: not (public / path).exists()
        return

    def missing(path: str) -> bool:
        try:
            os.stat(path, dir_fd=folder)
        except OSError:
            return True
        return False

    try:
        yield missing
    finally:
        os.close(folder)


class _Advance:
    def __init__(self) -> None:
        self.done = 0
        self.step: Callable[[], object] | None = None

    def __call__(self) -> None:
        self.done += 1
        if self.step is not None:
            self.step()


class ArchiveChannel:
    type_name: ClassVar[str] = "archive"
    Settings: ClassVar[type[ChannelSettings]] = ArchiveSettings

    def __init__(self, settings: ArchiveSettings, config: Config) -> None:
        self.settings = settings
        self.config = config

    def plan(self, job: DeliveryJob) -> ArchivePlan:
        """The pages this channel writes for ``job``, in writing order (indexes last: a
        reader never follows a link to a page not written yet)."""
        # Lazy: jinja2 and the email renderer load when pages are rendered, not when
        # a config naming this channel is validated.
        from ..render.archive import plan_archive

        if self.settings.rebuild:
            return plan_archive(job.history, self.config)
        with _absent(self.config.public_dir) as missing:
            return plan_archive(job.history, self.config, changed=job.view, missing=missing)

    def pages(self, job: DeliveryJob) -> Iterator[tuple[str, str]]:
        """The pages of :meth:`plan`, rendered one at a time (never all held at once)."""
        from ..render.archive import iter_archive

        return iter_archive(self.plan(job), self.config, changed=job.view, expand=job.expand,
                            expand_many=job.expand_many)

    def deliver(self, job: DeliveryJob) -> DeliveryReport:
        public = self.config.public_dir

        def write() -> str:
            from ..render.archive import iter_archive

            plan = self.plan(job)
            with _progress(len(plan), sys.stderr, self.settings.name) as advance:
                for path, page in iter_archive(plan, self.config, changed=job.view,
                                               expand=job.expand, expand_many=job.expand_many):
                    if job.stop.is_set():  # deadline or SIGTERM: a resume writes the rest
                        raise StoppedWriting(
                            f"stopped after {advance.done} of {len(plan)} pages; the pages "
                            "still missing are written on resume")
                    write_atomic(public / path, page)  # in order: indexes last
                    advance()
            return f"{len(plan)} page{'s' if len(plan) != 1 else ''} in {public}"

        return write_once(job, self.settings.name, "archive pages", str(public), write)


__all__ = ["ArchiveChannel", "ArchiveSettings"]
