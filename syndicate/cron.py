"""Crontab expressions, read and walked by cronsim (cron's own rules, DST included).

`cronsim <https://pypi.org/project/cronsim/>`_ (the library behind Healthchecks.io's
cron checks) parses the five fields and enumerates their matches the way Vixie cron /
cronie run them: 0 or 7 = Sunday; a day-of-month and a weekday both restricted mean
*either* (``0 8 1 * 1``: the 1st of each month and every Monday); its extensions ``L``
(``0 8 L * *``, the last day of the month), ``5L`` (the last Friday) and ``2#1`` (the first
Tuesday) work too. Across DST changes it follows cron (see :mod:`syndicate.schedule`).

What is left here is the wording: cronsim says ``Bad minute``; the operator is told
``minute field: 61 is outside 0-59``. :func:`parse_cron` accepts exactly what cronsim
accepts (cronsim is the parser of record) and explains a refusal field by field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from cronsim import CronSim, CronSimError

_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12),
           ("day_of_week", 0, 7))
_NAMES = {"day_of_week": ["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
          "month": ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                    "nov", "dec"]}
_ITEM = re.compile(r"^(\*|[0-9a-z]+(?:-[0-9a-z]+)?)(?:/([0-9]+))?$")
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February: leap years count
# Any moment will do: parsing does not depend on it.
_EPOCH = datetime(2000, 1, 1)


@dataclass(frozen=True)
class CronSpec:
    """A crontab line that cronsim accepted (walk it with :func:`syndicate.schedule.iter_slots`)."""

    expression: str


def parse_cron(expression: str) -> CronSpec:
    """Check a 5-field crontab expression; raise ``ValueError`` saying what is wrong."""
    fields = expression.split()
    if len(fields) != 5:
        # cronsim would also read 6 fields (seconds first): not crontab.
        raise ValueError(
            f"5 fields 'minute hour day month weekday' (got {len(fields)}), e.g. '0 8 * * 2' "
            "for Tuesdays at 08:00"
        )
    try:
        CronSim(expression, _EPOCH)
    except CronSimError as exc:
        raise ValueError(_explain(fields) or _cronsim_words(fields, str(exc))) from None
    return CronSpec(expression)


# --------------------------------------------------------------------------- wording


def _explain(fields: list[str]) -> str | None:
    """What is wrong with ``fields`` that cronsim refused, in the operator's words
    (None: not found here, cronsim's own message is used)."""
    values: dict[str, set[int]] = {}
    for text, (name, low, high) in zip(fields, _FIELDS, strict=True):
        try:
            values[name] = _expand(text, name, low, high)
        except ValueError as exc:
            return str(exc)
        except _Extension:
            values[name] = set(range(low, high + 1))
    days, months = values["day"], values["month"]
    if fields[4] == "*" and not any(d <= _MONTH_DAYS[m - 1] for d in days for m in months):
        # e.g. '0 8 31 2 *': valid fields, but cron would never run it.
        return f"a date that exists: day {_join(days)} never occurs in month {_join(months)}"
    return None


def _cronsim_words(fields: list[str], message: str) -> str:
    # cronsim says "Bad day-of-week": name the field as above and show what it holds.
    index = {"Bad minute": 0, "Bad hour": 1, "Bad day-of-month": 2, "Bad month": 3,
             "Bad day-of-week": 4}.get(message)
    if index is None:
        return message
    return f"{_FIELDS[index][0]} field: cannot read {fields[index]!r}"


class _Extension(Exception):
    """A cronsim extension (``L``, ``LW``, ``5L``, ``2#1``): cronsim alone judges it."""


def _join(values: set[int]) -> str:
    return ",".join(str(v) for v in sorted(values))


def _value(token: str, name: str, low: int, high: int) -> int:
    names = _NAMES.get(name, [])
    if token.isalpha() and token[:3] in names:
        return names.index(token[:3]) + (1 if name == "month" else 0)
    if not token.isdigit():
        raise ValueError(f"{name} field: {token!r} is not a number")
    number = int(token)
    if not low <= number <= high:
        raise ValueError(f"{name} field: {number} is outside {low}-{high}")
    return number


def _expand(field: str, name: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for item in field.lower().split(","):
        if re.search(r"[l#w]", item) and not item.isalpha():
            raise _Extension
        match = _ITEM.match(item)
        if not match:
            raise ValueError(f"{name} field: cannot read {item!r}")
        span, step_text = match.groups()
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"{name} field: step must be at least 1")
        if span == "*":
            start, stop = low, high
        elif "-" in span:
            first, last = span.split("-", 1)
            start, stop = _value(first, name, low, high), _value(last, name, low, high)
            if start > stop:
                raise ValueError(f"{name} field: range {span!r} runs backwards")
        else:
            start = _value(span, name, low, high)
            stop = high if step_text else start
        values.update(range(start, stop + 1, step))
    return values


__all__ = ["CronSpec", "parse_cron"]
