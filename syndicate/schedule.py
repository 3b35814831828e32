"""Slots: when the schedule fires, what each slot is called, what to do after downtime.

Pure functions over a :class:`~syndicate.cron.CronSpec`, a time zone and
datetimes handed in by the caller (no clock is read here).

**A slot** is a local wall-clock time matching the cron expression. It is
published at most once, under its *slot key*::

    cron:2026-10-25T02:30 Europe/Paris

the local wall-clock time (to the minute) without its UTC offset, plus the zone
name. The ledger refuses a second edition for a key, so whatever a scheduler
does, a slot gives one edition. On the two DST days (Europe/Paris):

- **Fall back** (last Sunday of October, 03:00 CEST -> 02:00 CET): 02:30 exists
  twice on the clock. It is one slot, at its first instant (02:30+02:00). Both
  instants have the same key, so a second fire (APScheduler's ``CronTrigger``
  does fire twice) is refused by the ledger.
- **Spring forward** (last Sunday of March, 02:00 CET -> 03:00 CEST): 02:30 does
  not exist. The slot moves forward by the gap to 03:30+02:00 (the instant
  APScheduler's ``CronTrigger`` also fires at, as "02:30+01:00"), key
  ``...T03:30 Europe/Paris``: one edition, at the wall-clock time it goes out.
  Matches naming one instant (02:30 and 03:30 that day) are one slot.

The daemon fires with :class:`SlotTrigger` (these slots exactly) rather than
APScheduler 3.11's ``CronTrigger``, which also skips the first slot of the
night after spring-forward (see the class). ``tests/test_schedule.py`` checks
all of this against APScheduler itself.

Changing ``timezone`` changes the keys (08:00 in Paris is not 08:00 in London).

**Catch-up**: after downtime the daemon publishes at most one edition, for the
latest missed slot, and only if it is at most ``misfire_grace`` old; every
other missed slot is skipped (logged). Never a flood.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger

from .cron import CronSpec, parse_cron

if TYPE_CHECKING:
    from .config import Config

SLOT_PREFIX = "cron:"
# Enough to reach a 29 February from any date, with room to spare; a cron that
# never fires is refused by the config, this only bounds the loops.
_MAX_DAYS = 366 * 9


def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _zone_name(tz: tzinfo) -> str:
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
    return f"{SLOT_PREFIX}{local:%Y-%m-%dT%H:%M} {_zone_name(tz)}"


def _matches(spec: CronSpec, day: date) -> bool:
    # Python: Monday = 0; crontab (and CronSpec): Sunday = 0. parse_cron refuses
    # a day-of-month and a weekday together, so AND is crontab's meaning here.
    return (
        day.month in spec.month
        and day.day in spec.day
        and (day.weekday() + 1) % 7 in spec.day_of_week
    )


@lru_cache(maxsize=16)
def _day_slots(spec: CronSpec, tz: tzinfo, day: date) -> tuple[datetime, ...]:
    """The instants of ``day``'s wall-clock matches, sorted, each once, in the zone ``tz``.

    A non-existent (spring-forward) time moves forward by the gap, as PEP 495's
    fold=0 says; an ambiguous (fall-back) one keeps its first instant. So every
    instant here has its own slot key, and two matches naming one instant
    (02:30 and 03:30 on spring-forward day) are one slot.
    """
    if not _matches(spec, day):
        return ()
    instants = {
        datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).astimezone(UTC)
        for hour in spec.hour
        for minute in spec.minute
    }
    return tuple(moment.astimezone(tz) for moment in sorted(instants))


def iter_slots(spec: CronSpec, tz: tzinfo, after: datetime) -> Iterator[datetime]:
    """Every slot strictly after ``after``, in order, one per slot key (bounded: ~9 years)."""
    if after.tzinfo is None:
        raise ValueError("iter_slots needs an aware datetime")
    # The day before too: a slot pushed past midnight by a gap belongs to it.
    first = after.astimezone(tz).date() - timedelta(days=1)
    last = after
    for offset in range(_MAX_DAYS):
        day_slots = _day_slots(spec, tz, first + timedelta(days=offset))
        for moment in day_slots[bisect_right(day_slots, last):]:
            yield moment
            last = moment


def slots_between(spec: CronSpec, tz: tzinfo, start: datetime, end: datetime) -> list[datetime]:
    """The slots in ``(start, end]``, in order, as aware datetimes in ``tz``."""
    out = []
    for moment in iter_slots(spec, tz, start):
        if moment > end:
            break
        out.append(moment)
    return out


def next_slots(config: Config, after: datetime, count: int) -> list[datetime]:
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


class SlotTrigger(BaseTrigger):
    """An APScheduler trigger that fires exactly at :func:`iter_slots`' slots.

    Used by the daemon instead of APScheduler 3.11's ``CronTrigger``, which (1)
    fires twice in the repeated hour when clocks go back and (2) walks days by
    adding 24 hours, so after the spring-forward night it skips the next slot
    in the first hour of a day (a daily ``0 0 * * *`` never fires on
    2026-03-30 in Europe/Paris; a monthly ``0 0 1 * *`` misses 1 April). Both are
    checked in the tests. With this trigger ``syndicate schedule`` shows exactly
    what the daemon will do.
    """

    __slots__ = ("spec", "timezone")

    def __init__(self, spec: CronSpec, timezone: tzinfo) -> None:
        self.spec = spec
        self.timezone = timezone

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        # Like CronTrigger: after a fire, the next slot even if it is already past
        # (APScheduler collects missed runs that way, then coalesces them); for a
        # new job, the first slot at or after now.
        after = previous_fire_time or now - timedelta(microseconds=1)
        return next(iter_slots(self.spec, self.timezone, after), None)

    def __getstate__(self) -> dict[str, Any]:
        return {"version": 1, "expression": self.spec.expression, "timezone": str(self.timezone)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.spec = parse_cron(state["expression"])
        self.timezone = ZoneInfo(state["timezone"])

    def __str__(self) -> str:
        return f"slots[{self.spec.expression!r} in {_zone_name(self.timezone)}]"

    def __repr__(self) -> str:
        return f"<SlotTrigger ({self.spec.expression!r}, timezone={_zone_name(self.timezone)!r})>"


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
    "SlotTrigger",
    "describe",
    "due_slot",
    "iter_slots",
    "next_slots",
    "plan_catch_up",
    "slot_key",
    "slots_between",
]
