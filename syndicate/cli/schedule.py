"""``schedule`` and ``run``: the operator's scheduling commands."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

import click

from ..app import LightApp
from ..config_snapshot import ConfigSnapshot
from ..corpus import load, queue
from ..errors import ConfigError, LockedError, SyndicateError
from ..logs import setup_logging
from ..schedule import describe, next_slots, slot_key, zone
from ._group import AppContext, cli, pass_app

# --------------------------------------------------------------------------- schedule


def _queue(settings: ConfigSnapshot) -> list[Any]:
    """Case studies still to publish, in order (the ledger is read only if it exists)."""
    corpus = load(settings.corpus_dir, cache_dir=settings.corpus_cache_dir)
    published: set[str] = set()
    app = LightApp(settings)
    if app.ledger_exists():  # listing the schedule must not create a ledger
        with app.open_ledger() as ledger:
            published = ledger.published_slugs()
    return queue(corpus, published)


@cli.command("schedule")
@click.option("--count", "-n", default=5, show_default=True, type=click.IntRange(1, 1000),
              help="How many slots to list.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of {slot, slug, ...}.")
@click.option("--iso", is_flag=True, help="Show dates as ISO 8601 instead of French.")
@click.option("--after", metavar="DATETIME", default=None,
              help="List slots after this ISO 8601 moment instead of now (e.g. 2026-12-01T00:00"
                   "+01:00; without an offset, in the schedule's time zone).")
@pass_app
def schedule_cmd(app: AppContext, count: int, as_json: bool, iso: bool, after: str | None) -> None:
    """List the next slots and the case study each will publish."""
    config = app.settings  # the validated-config snapshot: no pydantic, no channels
    tz = zone(config.schedule.timezone)
    if after:
        try:
            start = datetime.fromisoformat(after)
        except ValueError:
            raise click.BadParameter(f"{after!r} is not an ISO 8601 date/time",
                                     param_hint="--after") from None
        if start.tzinfo is None:
            start = start.replace(tzinfo=tz)
    else:
        start = datetime.now(UTC)
    slots = next_slots(config, start, count)
    queue = _queue(config)
    rows = []
    for index, slot in enumerate(slots):
        case = queue[index] if index < len(queue) else None
        local = slot.astimezone(UTC).astimezone(tz)
        rows.append({
            "slot": local.isoformat(),
            "key": slot_key(slot, tz),
            "local": describe(slot, tz),
            "slug": case.slug if case else None,
            "title": case.title if case else None,
        })
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    click.echo(f"cron {config.schedule.cron!r} in {config.schedule.timezone}; "
               f"{len(queue)} case stud{'y' if len(queue) == 1 else 'ies'} in the queue")
    for row, slot in zip(rows, slots, strict=True):
        when = describe(slot, tz, "iso" if iso else "fr")
        what = f"{row['slug']}  {row['title']}" if row["slug"] else "(queue empty)"
        click.echo(f"  {when}  {what}")


# --------------------------------------------------------------------------- run


@cli.command("run")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Log lines for people (text) or machines (json).")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@pass_app
def run_cmd(app: AppContext, log_format: str, verbose: bool) -> None:
    """Publish on the schedule until stopped (SIGTERM or Ctrl-C); reload the config on change.

    One daemon per ledger: on SQLite a second one refuses; on PostgreSQL it waits as a
    standby and takes over within [schedule] failover if the leader dies. On start (or
    takeover) it finishes unfinished editions and catches up at most one missed slot
    (within [schedule] misfire_grace).
    """
    from ..daemon import Daemon  # lazy: the whole publishing stack, for this command only

    logger = setup_logging(log_format, level=logging.DEBUG if verbose else logging.INFO)
    try:
        code = Daemon(app.config).run()
    except SyndicateError as exc:
        if log_format == "json":  # on a terminal the error line below says it already
            if isinstance(exc, ConfigError):
                for problem in exc.problems:
                    logger.error(f"config error: {problem}",
                                 extra={"event": "config_error", "problem": problem})
            else:
                event = "locked_out" if isinstance(exc, LockedError) else "run_failed"
                logger.error(f"refusing to start: {exc}", extra={"event": event})
        raise
    sys.exit(code)
