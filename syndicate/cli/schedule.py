"""``schedule``: the next slots and what each will publish (``run``, the daemon, is in
:mod:`syndicate.cli.run`: this light command imports neither it nor logging).

``json`` is imported only for ``--json``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from ..app import LightApp
from ..config_snapshot import ConfigSnapshot
from ..corpus import load, queue_head
from ..schedule import describe, next_slots, slot_key, zone
from ._group import AppContext, cli, pass_app, short_lived

# --------------------------------------------------------------------------- schedule


def _queue(settings: ConfigSnapshot, count: int) -> tuple[int, list[tuple[Any, ...]]]:
    """How many case studies are still to publish, and (slug, title) of the first
    ``count`` in order, from the corpus index's columns (the ledger is read only if it
    exists)."""
    corpus = load(settings.corpus_dir, cache_dir=settings.corpus_cache_dir)
    published: set[str] = set()
    app = LightApp(settings)
    if app.ledger_exists():  # listing the schedule must not create a ledger
        with app.open_ledger() as ledger:
            published = ledger.published_slugs()
    return queue_head(corpus, published, "slug", "title", limit=count)


@cli.command("schedule")
@click.option("--count", "-n", default=5, show_default=True, type=click.IntRange(1, 1000),
              help="How many slots to list.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of {slot, slug, ...}.")
@click.option("--iso", is_flag=True, help="Show dates as ISO 8601 instead of French.")
@click.option("--after", metavar="DATETIME", default=None,
              help="List slots after this ISO 8601 moment instead of now (e.g. 2026-12-01T00:00"
                   "+01:00; without an offset, in the schedule's time zone).")
@pass_app
@short_lived()
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
    waiting, queue = _queue(config, count)
    rows = []
    for index, slot in enumerate(slots):
        slug, title = queue[index] if index < len(queue) else (None, None)
        local = slot.astimezone(UTC).astimezone(tz)
        rows.append({
            "slot": local.isoformat(),
            "key": slot_key(slot, tz),
            "local": describe(slot, tz),
            "slug": slug,
            "title": title,
        })
    if as_json:
        import json

        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    click.echo(f"cron {config.schedule.cron!r} in {config.schedule.timezone}; "
               f"{waiting} case stud{'y' if waiting == 1 else 'ies'} in the queue")
    for row, slot in zip(rows, slots, strict=True):
        when = describe(slot, tz, "iso" if iso else "fr")
        what = f"{row['slug']}  {row['title']}" if row["slug"] else "(queue empty)"
        click.echo(f"  {when}  {what}")
