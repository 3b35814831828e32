"""Slots: when the schedule fires, what each slot is called, what to do after downtime.

Pure functions over a :class:`~syndicate.cron.CronSpec`, a time zone and
datetimes handed in by the caller (no clock is read here). The cron matches
are enumerated by cronsim, which follows cron's own rules.

**A slot** is a moment at which cron would run the expression. It is published
at most once, under its *slot key*::

    cron:2026-10-25T02:30 Europe/Paris

the local wall-clock time (to the minute) without its UTC offset, plus the zone
name. The ledger refuses a second edition for a key, so whatever a scheduler
does, a slot gives one edition. On the two DST days (Europe/Paris), as Vixie
cron and cronie do (cronsim implements their rules):

- **Spring forward** (last Sunday of March, 02:00 CET -> 03:00 CEST): 02:30 does
  not exist. A fixed-time match in the skipped hour (``30 2 * * 0``) runs right
  after the jump, at 03:00+02:00, key ``...T03:00 Europe/Paris``; several of them
  (``0,30 2 * * *``) are that one slot. A match whose minute or hour field starts
  with ``*`` (``*/20 2 * * *``) is a "wildcard job" for cron: it runs at the times
  that exist, so not in the skipped hour.
- **Fall back** (last Sunday of October, 03:00 CEST -> 02:00 CET): 02:30 exists
  twice on the clock. It is one slot, at its first instant (02:30+02:00). cron
  runs a wildcard job (``*/30 2,3 * * *``) again in the repeated hour; both
  instants have one key, so :func:`iter_slots` keeps the first and a second
  fire (APScheduler's ``CronTrigger`` does fire twice) is refused by the ledger.

Why cron's rules rather than our own (this module used to enumerate the matches
itself, moving a skipped 02:30 by the gap to 03:30 like APScheduler): a
crontab expression is read with crontab's meaning, DST included, so the operator
gets what cron would do and what cron's documentation says; the walk, the parsing
(day-of-month *or* weekday, ``L``, ``2#1``) and their edge cases are a well-kept
library's. ``tests/test_schedule.py`` checks both DST days and a year of slots
against APScheduler's trigger on every other day.

The daemon fires with :class:`~syndicate.daemon.SlotTrigger` (these slots exactly)
rather than APScheduler 3.11's ``CronTrigger``, which also skips the first slot of the
night after spring-forward (see the class). It lives with the daemon, its only user:
``syndicate schedule`` lists the same slots without importing APScheduler.

Changing ``timezone`` changes the keys (08:00 in Paris is not 08:00 in London).

**Catch-up**: after downtime the daemon publishes at most one edition, for the
latest missed slot, and only if it is at most ``misfire_grace`` old; every
other missed slot is skipped (logged). Never a flood.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo

from cronsim import CronSim

from .config_snapshot import ScheduleSettings
from .cron import CronSpec, parse_cron


class Scheduled(Protocol):
    """What :func:`next_slots` reads: a :class:`~syndicate.config.Config` or the light
    commands' :class:`~syndicate.config_snapshot.ConfigSnapshot` (its ``[schedule]``)."""

    @property
    def schedule(self) -> ScheduleSettings: ...

SLOT_PREFIX = "cron:"
# Enough to reach a 29 February from any date, with room to spare; a cron that
# never fires is refused by the config, this only bounds the loops.
_MAX_DAYS = 366 * 9


def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def zone_name(tz: tzinfo) -> str:
    return getattr(tz, "key", None) or str(tz)


def slot_key(moment: datetime, tz: tzinfo) -> str:
    """The stable key of the slot firing at ``moment``: local wall-clock time, no offset.

    Both instants of an ambiguous fall-back time give the same key.
    """
    if moment.tzinfo is None:
        raise ValueError("slot_key needs an aware datetime")
    # Through UTC: ``astimezone`` to the datetime's own zone would keep a
    # non-existent wall time (APScheduler hands out 02:30+01:00 on spring-forward day).
    local = moment.astimezone(UTC).astimezone(tz)
    return f"{SLOT_PREFIX}{local:%Y-%m-%dT%H:%M} {zone_name(tz)}"


def _repeated(moment: datetime) -> bool:
    """The second instant of an ambiguous fall-back time (its slot key is the first's)."""
    return moment.fold == 1 and moment.replace(fold=0).utcoffset() != moment.utcoffset()


def iter_slots(spec: CronSpec, tz: tzinfo, after: datetime) -> Iterator[datetime]:
    """Every slot strictly after ``after``, in order, one per slot key (bounded: ~9 years)."""
    if after.tzinfo is None:
        raise ValueError("iter_slots needs an aware datetime")
    start = after.astimezone(UTC)
    limit = start + timedelta(days=_MAX_DAYS)
    for moment in CronSim(spec.expression, start.astimezone(tz)):
        instant = moment.astimezone(UTC)
        # cronsim walks wall-clock times and reads ``after``'s but not its fold: started
        # inside the repeated hour it can hand out the first, earlier, instant of a time.
        if instant <= start or _repeated(moment):
            continue
        if instant > limit:
            return
        yield moment


def slots_between(spec: CronSpec, tz: tzinfo, start: datetime, end: datetime) -> list[datetime]:
    """The slots in ``(start, end]``, in order, as aware datetimes in ``tz``."""
    out = []
    end = end.astimezone(UTC)  # compared as instants (same-zone datetimes ignore ``fold``)
    for moment in iter_slots(spec, tz, start):
        if moment.astimezone(UTC) > end:
            break
        out.append(moment)
    return out


def next_slots(config: Scheduled, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` slots of ``config``'s schedule strictly after ``after``."""
    spec = parse_cron(config.schedule.cron)
    tz = zone(config.schedule.timezone)
    out: list[datetime] = []
    if count <= 0:
        return out
    for moment in iter_slots(spec, tz, after):
        out.append(moment)
        if len(out) >= count:
            break
    return out


def due_slot(spec: CronSpec, tz: tzinfo, now: datetime, window: timedelta) -> datetime | None:
    """The latest slot at or before ``now`` and no older than ``window``.

    What a scheduler job fired at ``now`` stands for: the scheduler fires at (or,
    within its misfire grace, after) a slot, so the slot is found from the clock
    rather than trusted from the scheduler's bookkeeping.
    """
    found = slots_between(spec, tz, now - window - timedelta(microseconds=1), now)
    return found[-1] if found else None


def plan_catch_up(
    missed_slots: Sequence[datetime],
    now: datetime,
    grace: timedelta | int,
    policy: str = "latest",
) -> tuple[datetime | None, list[datetime]]:
    """After downtime: ``(slot to publish or None, slots skipped)``.

    At most one catch-up edition, for the latest missed slot, and only when the
    policy is ``latest`` and that slot is at most ``grace`` old. Every other
    missed slot is skipped: publishing a backlog of stale editions at once
    would flood the readers.
    """
    if isinstance(grace, int):
        grace = timedelta(seconds=grace)
    ordered = sorted(missed_slots)
    if not ordered:
        return None, []
    latest = ordered[-1]
    if policy == "latest" and latest <= now and now - latest <= grace:
        return latest, ordered[:-1]
    return None, ordered


def describe(moment: datetime, tz: tzinfo, style: str = "fr") -> str:
    """A slot for people: ``mardi 24 novembre 2026 à 08:00 (UTC+01:00)`` or ISO 8601."""
    local = moment.astimezone(UTC).astimezone(tz)
    if style == "iso":
        return local.isoformat(timespec="minutes")
    offset = local.strftime("%z")
    offset = f"UTC{offset[:3]}:{offset[3:]}"
    return (
        f"{_DAYS[local.weekday()]} {local.day}{'er' if local.day == 1 else ''} "
        f"{_MONTHS[local.month - 1]} {local.year} à {local:%H:%M} ({offset})"
    )


_DAYS = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]
_MONTHS = [
    "janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
    "septembre", "octobre", "novembre", "décembre",
]

__all__ = [
    "Scheduled",
    "describe",
    "due_slot",
    "iter_slots",
    "next_slots",
    "plan_catch_up",
    "slot_key",
    "slots_between",
    "zone",
    "zone_name",
]
