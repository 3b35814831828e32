"""The overview (``GET /admin/``): the next slots and what each will publish, the last
editions with their deliveries per channel, and two charts (sends per edition,
subscribers over time); with ``[analytics]`` on, the clicks of the last editions.
Read only; the same library calls as ``syndicate schedule``
(:func:`syndicate.schedule.next_slots`, :func:`syndicate.pipeline.queue`) and
``syndicate status`` (the ledger's delivery counts)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask import Blueprint, Response, url_for
from markupsafe import Markup

from ... import pipeline
from ...corpus import load
from ...errors import SyndicateError
from ...ledger import Edition
from ...schedule import describe, next_slots, zone
from .analytics import edition_clicks
from .base import Console, PageSpec
from .charts import lines, stacked_bars

#: How many slots, editions (table) and editions (chart) the page shows.
SLOTS, EDITIONS, CHART_EDITIONS = 8, 10, 30
TIMELINE_DAYS = 180
#: How long a process reuses the subscribers' timeline (a scan of the subscribers) and
#: the delivery rows per channel of finished editions (their rows are all created; their
#: pending and failed counts are always read afresh), in seconds.
TIMELINE_TTL, TOTALS_TTL = 300, 600


class Remembered:
    """What the overview keeps between requests of one process, on the app's clock: the
    timeline, and the delivery rows per channel of finished editions (keyed by edition
    and ``done_at``). Thread safe enough for waitress: a race recomputes, never mixes."""

    def __init__(self) -> None:
        self.timeline: tuple[float, list[tuple[str, int, int, int]]] | None = None
        self.totals: dict[tuple[int, datetime | None], tuple[float, dict[str, int]]] = {}

    def known_totals(self, editions: list[Edition], now: float) -> dict[int, dict[str, int]]:
        known = {}
        for e in editions:
            hit = self.totals.get((e.id, e.done_at))
            if hit is not None and now - hit[0] < TOTALS_TTL:
                known[e.id] = hit[1]
        return known

    def keep_totals(self, editions: list[Edition],
                    counts: dict[int, dict[str, dict[str, int]]], now: float) -> None:
        fresh = {}
        for e in editions:
            if e.status == "done" and e.id in counts:
                key = (e.id, e.done_at)
                old = self.totals.get(key)
                stamp = old[0] if old is not None and now - old[0] < TOTALS_TTL else now
                fresh[key] = (stamp, {ch: sum(c.values()) for ch, c in counts[e.id].items()})
        self.totals = fresh  # only the editions shown: bounded


@dataclass(frozen=True)
class Upcoming:
    when: str
    slug: str | None
    title: str | None


@dataclass(frozen=True)
class EditionRow:
    edition: Edition
    published: str
    channels: dict[str, dict[str, int]]


def upcoming(console: Console, count: int = SLOTS) -> tuple[list[Upcoming], str]:
    """The next ``count`` slots with the case study each will publish (as ``syndicate
    schedule`` lists them), and a problem to show instead of the queue, or ""."""
    config = console.config
    tz = zone(config.schedule.timezone)
    slots = next_slots(config, console.now(), count)
    problem = ""
    try:
        queue = pipeline.queue(load(config.corpus_dir), console.ledger.published_slugs())
    except SyndicateError as exc:
        queue, problem = [], f"Le corpus ne peut pas être lu\u00a0: {exc}"
    rows = []
    for index, slot in enumerate(slots):
        case = queue[index] if index < len(queue) else None
        rows.append(Upcoming(describe(slot, tz), case.slug if case else None,
                             case.title if case else None))
    return rows, problem


def sends_chart(editions: list[Edition], counts: dict[int, dict[str, dict[str, int]]]
                ) -> Markup:
    ordered = list(reversed(editions))  # oldest on the left
    totals = {status: [sum(c[status] for c in counts.get(e.id, {}).values()) for e in ordered]
              for status in ("sent", "failed", "pending")}
    return stacked_bars("Envois par édition", [f"n°\u00a0{e.number}" for e in ordered], [
        ("envoyés", totals["sent"]), ("en échec", totals["failed"]),
        ("en attente", totals["pending"])])


def every_day(timeline: list[tuple[str, int, int, int]]) -> list[tuple[str, int, int, int]]:
    """``timeline`` with the days that had no event added (zeros): the x axis is time."""
    if not timeline:
        return []
    known = {row[0]: row for row in timeline}
    day, last = date.fromisoformat(timeline[0][0]), date.fromisoformat(timeline[-1][0])
    rows = []
    while day <= last:  # bounded: TIMELINE_DAYS (the ledger query's window)
        key = day.isoformat()
        rows.append(known.get(key, (key, 0, 0, 0)))
        day += timedelta(days=1)
    return rows


def subscribers_chart(timeline: list[tuple[str, int, int, int]], current: int) -> Markup:
    """Subscribers (active or pending) at the end of each day, counted back from
    ``current`` (today's figure) through each day's joins and departures, and the
    departures (unsubscribes and bounces) of each day."""
    remaining: list[int] = []
    value = current
    for _day, joins, unsubscribes, bounces in reversed(timeline):
        remaining.append(value)
        value -= joins - unsubscribes - bounces
    remaining.reverse()
    left = [unsubscribes + bounces for _d, _j, unsubscribes, bounces in timeline]
    joined = [joins for _d, joins, _u, _b in timeline]
    return lines("Abonnés au fil du temps", [d for d, *_ in timeline], [
        ("abonnés (actifs et en attente)", remaining), ("inscriptions du jour", joined),
        ("départs du jour (désinscriptions, rebonds)", left)])


def register(bp: Blueprint, console: Console) -> None:
    ledger = console.ledger
    memo = Remembered()

    def timeline() -> list[tuple[str, int, int, int]]:
        now = console.now()
        if memo.timeline is None or now.timestamp() - memo.timeline[0] >= TIMELINE_TTL:
            since = _midnight(now - timedelta(days=TIMELINE_DAYS))
            memo.timeline = (now.timestamp(),
                             every_day(ledger.subscriber_timeline(since=since)))
        return memo.timeline[1]

    @bp.route("/", methods=["GET"])
    def overview() -> Response:
        slots, problem = upcoming(console)
        tz = zone(console.config.schedule.timezone)
        recent = ledger.editions(status=None, limit=CHART_EDITIONS)
        now = console.now().timestamp()
        counts = ledger.delivery_counts_many(
            (e.id for e in recent), known_totals=memo.known_totals(recent, now))
        memo.keep_totals(recent, counts, now)
        rows = [EditionRow(e, describe(e.published_at, tz), counts.get(e.id, {}))
                for e in recent[:EDITIONS]]
        days = timeline()
        totals = ledger.subscriber_counts()
        current = totals["active"] + totals["pending"]
        analytics = console.config.analytics
        clicks = (edition_clicks(ledger, recent[:EDITIONS])
                  if analytics.clicks or analytics.open_pixel else None)
        return console.render(
            "overview.html.j2", title="Vue d’ensemble", slots=slots, queue_problem=problem,
            editions=rows, totals=totals,
            sends_chart=sends_chart(recent, counts) if recent else None,
            subscribers_chart=subscribers_chart(days, current) if days else None,
            schedule=console.config.schedule, clicks=clicks, analytics=analytics,
            analytics_url=url_for("admin.analytics"))


def _midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


PAGE = PageSpec("Vue d’ensemble", "admin.overview", register)
