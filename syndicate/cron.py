"""Standard crontab expressions, translated for APScheduler 3.

APScheduler's ``CronTrigger.from_crontab`` numbers weekdays from Monday = 0,
while crontab(5) says 0 or 7 = Sunday. We expand the weekday field ourselves
into day names (``sun,tue``), which APScheduler reads unambiguously.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import tzinfo

from apscheduler.triggers.cron import CronTrigger

_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12),
           ("day_of_week", 0, 7))
_ITEM = re.compile(r"^(\*|[0-9a-z]+(?:-[0-9a-z]+)?)(?:/([0-9]+))?$")


@dataclass(frozen=True)
class CronSpec:
    """A parsed crontab line: each field expanded to the set of values it allows."""

    expression: str
    minute: frozenset[int]
    hour: frozenset[int]
    day: frozenset[int]
    month: frozenset[int]
    day_of_week: frozenset[int]  # 0 = Sunday ... 6 = Saturday

    def trigger(self, timezone: tzinfo) -> CronTrigger:
        """An APScheduler trigger with crontab's meaning."""
        return CronTrigger(
            minute=_join(self.minute),
            hour=_join(self.hour),
            day=_join(self.day),
            month=_join(self.month),
            day_of_week=",".join(_NAMES[d] for d in sorted(self.day_of_week)),
            timezone=timezone,
        )


def _join(values: frozenset[int]) -> str:
    return ",".join(str(v) for v in sorted(values))


def _value(token: str, name: str, low: int, high: int) -> int:
    if name == "day_of_week" and token[:3] in _NAMES and token.isalpha():
        return _NAMES.index(token[:3])
    if name == "month" and token[:3] in _MONTHS and token.isalpha():
        return _MONTHS.index(token[:3]) + 1
    if not token.isdigit():
        raise ValueError(f"{name} field: {token!r} is not a number")
    number = int(token)
    if not low <= number <= high:
        raise ValueError(f"{name} field: {number} is outside {low}-{high}")
    return number


def _expand(field: str, name: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for item in field.lower().split(","):
        match = _ITEM.match(item)
        if not match:
            raise ValueError(f"{name} field: cannot read {item!r}")
        span, step_text = match.groups()
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"{name} field: step must be at least 1")
        if span == "*":
            start, stop = low, high if name != "day_of_week" else 6
        elif "-" in span:
            first, last = span.split("-", 1)
            start, stop = _value(first, name, low, high), _value(last, name, low, high)
            if start > stop:
                raise ValueError(f"{name} field: range {span!r} runs backwards")
        else:
            start = _value(span, name, low, high)
            stop = high if step_text else start
        values.update(range(start, stop + 1, step))
    if name == "day_of_week":
        values = {v % 7 for v in values}  # 7 is Sunday too
    return frozenset(values)


def parse_cron(expression: str) -> CronSpec:
    """Parse a 5-field crontab expression; raise ``ValueError`` saying what is wrong."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(
            f"5 fields 'minute hour day month weekday' (got {len(fields)}), e.g. '0 8 * * 2' "
            "for Tuesdays at 08:00"
        )
    expanded = [
        _expand(f, name, low, high) for f, (name, low, high) in zip(fields, _FIELDS, strict=True)
    ]
    day_restricted = fields[2] != "*"
    weekday_restricted = fields[4] != "*"
    if day_restricted and weekday_restricted:
        # crontab ORs the two fields, APScheduler ANDs them: refuse rather than surprise.
        raise ValueError(
            "a day-of-month or a weekday, not both (crontab would run on either, "
            "the scheduler on both at once)"
        )
    days, months = expanded[2], expanded[3]
    if not any(day <= _MONTH_DAYS[month - 1] for day in days for month in months):
        # e.g. '0 8 31 2 *': valid fields, but the scheduler would never fire.
        raise ValueError(
            f"a date that exists: day {_join(days)} never occurs in month {_join(months)}"
        )
    return CronSpec(expression, *expanded)


_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February: leap years count
