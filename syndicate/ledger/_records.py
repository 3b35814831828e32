"""Ledger records (frozen dataclasses) and time helpers (``utcnow`` is the shared clock of
:mod:`syndicate.clock`, re-exported for the ledger's modules); the statuses they hold are
in :mod:`._statuses`.

:class:`Edition` is defined here; the records of sending and subscribing
(:class:`Delivery`, :class:`DeliveryEvent`, :class:`Subscriber`, :class:`AddResult`,
:class:`Confirmation`) are in :mod:`._mail_records`, imported on the first access to one
of them as an attribute of this module (``_records.Delivery(...)``): see there why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..clock import utcnow
from ._statuses import EditionStatus

if TYPE_CHECKING:  # re-exported (``as``): ``_records.Delivery`` is typed, not Any
    from ._mail_records import AddResult as AddResult
    from ._mail_records import Confirmation as Confirmation
    from ._mail_records import Delivery as Delivery
    from ._mail_records import DeliveryEvent as DeliveryEvent
    from ._mail_records import Subscriber as Subscriber



@dataclass(frozen=True)
class Edition:
    """One published (or being published) case study.

    ``published_at`` is the edition's date of record, fixed at claim time so the
    email, the archive page and the feeds, rendered now or on a resume days
    later, all show the same date. ``status`` says whether delivery finished;
    ``done_at`` is when it did (None before).
    """

    id: int
    number: int
    slot: str
    slug: str
    title: str
    url: str
    status: EditionStatus
    claimed_at: datetime
    published_at: datetime
    done_at: datetime | None = None


def to_db(moment: datetime) -> str:
    """Aware datetime -> ISO 8601 in UTC with a fixed width (text order = time order)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"the ledger stores aware datetimes only, got naive {moment!r}")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def from_db(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


#: Defined in :mod:`._mail_records`, on first use.
_LATER = frozenset({"AddResult", "Confirmation", "Delivery", "DeliveryEvent", "Subscriber"})


def __getattr__(name: str) -> Any:
    if name not in _LATER:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import _mail_records

    value = getattr(_mail_records, name)
    globals()[name] = value  # the next access is a plain attribute
    return value


__all__ = [
    "AddResult",
    "Confirmation",
    "Delivery",
    "DeliveryEvent",
    "Edition",
    "Subscriber",
    "from_db",
    "to_db",
    "utcnow",
]
