"""``publish-next``, ``resume``, ``preview``: the publishing commands (``queue`` and
``status``, which only read, are in :mod:`syndicate.cli.overview`).

``publish-next``, ``resume`` and ``retry-failed`` end with an exit status that
says how the deliveries ended (docs/operations.md), and their first line says the
same in words: ``complete:``, ``failed:`` or ``incomplete:``.

The publishing stack (``syndicate.pipeline``: relatedness with numpy, MJML,
feedgen) is imported inside the commands that use it, so ``syndicate --help`` and the
light commands do not pay for it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..app import App
from ..errors import LedgerWriteError, NothingToPublish
from ..fs import write_atomic_bytes
from ..logs import setup_logging
from ._group import AppContext, cli, pass_app
from ._signals import graceful_stop

if TYPE_CHECKING:
    from ..config import Config
    from ..pipeline import Outcome, PublishResult

#: Exit status per outcome. 75 is EX_TEMPFAIL (sysexits.h): "try again later", which
#: cron wrappers and systemd understand; the edition is unfinished and will be resumed.
EXIT_COMPLETE, EXIT_FAILED, EXIT_INCOMPLETE = 0, 2, 75
EXIT_STATUS: dict[Outcome, int] = {
    "complete": EXIT_COMPLETE, "handed": EXIT_COMPLETE, "failed": EXIT_FAILED,
    "incomplete": EXIT_INCOMPLETE,
}


def _setup_logging(verbose: bool) -> None:
    setup_logging(level=logging.INFO if verbose else logging.WARNING)


def report(results: Sequence[PublishResult], url_of: PublishResult | None = None) -> int:
    """Print one summary line per edition, the worst outcome first (so the first line
    says how the command ended), and return the exit status. ``url_of``: the edition
    whose URL follows its line (``publish-next``)."""
    from ..pipeline import OUTCOMES, worst

    ordered = sorted(results, key=lambda r: -OUTCOMES.index(r.outcome))  # stable
    for result in ordered:
        click.echo(result.summary())
        if result is url_of:
            click.echo(f"  {result.view.url}")
    return EXIT_STATUS[worst(r.outcome for r in results)]


@contextmanager
def ledger_write_errors() -> Iterator[None]:
    """A ledger that cannot be written (disk full...): one line, exit 75, no traceback.
    What was recorded stays; the rest is pending and the edition resumable."""
    try:
        yield
    except LedgerWriteError as exc:
        click.echo(f"incomplete: {exc}; nothing recorded is lost, and `syndicate resume` "
                   "finishes the edition once the ledger can be written", err=True)
        raise click.exceptions.Exit(EXIT_INCOMPLETE) from None


def stopped_early(config: Config, signal: object, results: Sequence[PublishResult]) -> int:
    """After a stop (SIGTERM) that came before some unfinished editions were even
    started: say so first, and return the "incomplete" status (else 0)."""
    if signal is None:
        return 0
    seen = {r.edition.number for r in results if r.edition is not None}
    left = [n for n in _unfinished(config) if n not in seen]
    if not left:
        return 0
    numbers = ", ".join(f"#{n}" for n in left)
    click.echo(f"incomplete: stopped before edition {numbers}, will be resumed: "
               "syndicate resume")
    return EXIT_INCOMPLETE


def _unfinished(config: Config) -> list[int]:
    with App(config).open_ledger() as ledger:
        return [edition.number for edition in ledger.unfinished_editions()]


@cli.command("publish-next")
@click.option("--dry-run", is_flag=True, help="Render and report; record and write nothing.")
@click.option("-v", "--verbose", is_flag=True, help="Log each step.")
@pass_app
def publish_next(app: AppContext, dry_run: bool, verbose: bool) -> None:
    """Publish the next case study through every configured channel.

    Unfinished editions (a crash, a kill) are finished first. Exit status: 0
    complete, 2 some deliveries failed, 75 incomplete (will be resumed).
    """
    from .. import pipeline

    _setup_logging(verbose)
    config = app.config
    if not dry_run:
        for problem in config.missing_secrets():
            raise click.ClickException(problem)
    with ledger_write_errors(), graceful_stop() as stop:  # SIGTERM / Ctrl-C: finish in flight
        try:
            result = pipeline.publish(config, dry_run=dry_run, stop=stop.event,
                                      ledger=App(config).open_ledger)
        except NothingToPublish as exc:
            left = [] if dry_run else _unfinished(config)
            if left:  # an earlier edition could not be finished: not a success
                numbers = ", ".join(f"#{n}" for n in left)
                click.echo(f"incomplete: {exc}; edition {numbers} still has deliveries "
                           "pending, will be resumed: syndicate resume")
                raise click.exceptions.Exit(EXIT_INCOMPLETE) from None
            click.echo(str(exc))
            return
    if dry_run:
        click.echo(result.summary())
        return
    status = report([*result.earlier, result], url_of=result)
    if status:
        raise click.exceptions.Exit(status)


@cli.command("resume")
@click.option("-v", "--verbose", is_flag=True, help="Log each step.")
@pass_app
def resume_cmd(app: AppContext, verbose: bool) -> None:
    """Finish unfinished editions only (nothing new is published).

    Exit status: 0 complete, 2 some deliveries failed, 75 incomplete.
    """
    from .. import pipeline

    _setup_logging(verbose)
    with ledger_write_errors(), graceful_stop() as stop:  # SIGTERM / Ctrl-C: finish in flight
        results = pipeline.resume(app.config, stop=stop.event,
                                  ledger=App(app.config).open_ledger)
    status = stopped_early(app.config, stop.signal, results)
    if not results and not status:
        click.echo("nothing to resume")
        return
    status = max(status, report(results))
    if status:
        raise click.exceptions.Exit(status)


@cli.command("preview")
@click.argument("slug", required=False)
@click.option("--out", "out_dir", default="preview", show_default=True,
              type=click.Path(file_okay=False), help="Folder to write the files into.")
@pass_app
def preview_cmd(app: AppContext, slug: str | None, out_dir: str) -> None:
    """Render a case study (default: the next one) without publishing it.

    Writes email.html, email.txt, email.eml (the full MIME message), the feed item
    (feed-item.xml, feed-item.atom.xml) and the archive page (index.html).
    """
    from .. import pipeline

    result = pipeline.preview(app.config, slug, ledger=App(app.config).open_ledger)
    folder = Path(out_dir)
    click.echo(f"preview of edition #{result.view.number}: {result.view.slug}")
    click.echo(f"  subject: {result.email.subject}")
    for name, data in result.files.items():
        write_atomic_bytes(folder / name, data)
        click.echo(f"  {folder / name}")
