"""Ledger records (frozen dataclasses) and time helpers (``utcnow`` is the shared clock of
:mod:`syndicate.clock`, re-exported for the ledger's modules); the statuses they hold are
in :mod:`._statuses`.

The records are defined in :mod:`._edition` (:class:`Edition`) and :mod:`._mail_records`
(:class:`Delivery`, :class:`DeliveryEvent`, :class:`Subscriber`, :class:`AddResult`,
:class:`Confirmation`), each module imported on the first access to one of its records as
an attribute of this one (``_records.Edition(...)``): see :mod:`._mail_records` why."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..clock import utcnow
from ..modules import lazy_attribute

if TYPE_CHECKING:  # re-exported (``as``): ``_records.Delivery`` is typed, not Any
    from ._edition import Edition as Edition
    from ._mail_records import AddResult as AddResult
    from ._mail_records import Confirmation as Confirmation
    from ._mail_records import Delivery as Delivery
    from ._mail_records import DeliveryEvent as DeliveryEvent
    from ._mail_records import Subscriber as Subscriber



def to_db(moment: datetime) -> str:
    """Aware datetime -> ISO 8601 in UTC with a fixed width (text order = time order)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"the ledger stores aware datetimes only, got naive {moment!r}")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def from_db(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


#: Defined on first use, in these modules (``queue`` and ``schedule`` build no edition).
_LATER = {"Edition": "_edition",
          **dict.fromkeys(("AddResult", "Confirmation", "Delivery", "DeliveryEvent",
                           "Subscriber"), "_mail_records")}


def __getattr__(name: str) -> Any:
    return lazy_attribute(globals(), _LATER, name)


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
