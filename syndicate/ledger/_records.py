"""Ledger records (frozen dataclasses), statuses and time helpers (``utcnow`` is the
shared clock of :mod:`syndicate.clock`, re-exported for the ledger's modules)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from ..clock import utcnow

EditionStatus = Literal["claimed", "delivering", "done"]
DeliveryStatus = Literal["pending", "sent", "failed"]
SubscriberStatus = Literal["pending", "active", "unsubscribed", "bounced", "complained"]
EventKind = Literal["hard", "soft", "complaint"]

EDITION_STATUSES: tuple[str, ...] = ("claimed", "delivering", "done")
DELIVERY_STATUSES: tuple[str, ...] = ("pending", "sent", "failed")
SUBSCRIBER_STATUSES: tuple[str, ...] = (
    "pending", "active", "unsubscribed", "bounced", "complained")
EVENT_KINDS: tuple[str, ...] = ("hard", "soft", "complaint")


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


@dataclass(frozen=True)
class Delivery:
    """One (edition, channel, recipient) send; recipient is '' for whole-channel sends.

    ``code``/``response``: the last server answer (reply of a successful send, or
    the error code and message of the last failed attempt).
    """

    id: int
    edition_id: int
    channel: str
    recipient: str
    status: DeliveryStatus
    attempts: int
    code: int | None
    response: str
    updated_at: datetime


@dataclass(frozen=True)
class DeliveryEvent:
    """Something learnt about a delivery after it was sent: a hard (5.x.x) or soft
    (4.x.x) bounce, or a complaint. ``event_id`` makes recording it idempotent (the
    report's Message-ID, a provider's event id); ``status`` is the enhanced status
    code when known, ``diagnostic`` the server's text, ``source`` where it came from
    ("maildir", "ses"…), ``occurred_at`` when (None: when it is recorded)."""

    event_id: str
    delivery_id: int
    kind: EventKind
    status: str = ""
    diagnostic: str = ""
    source: str = ""
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class Subscriber:
    id: int
    email: str
    name: str | None
    status: SubscriberStatus
    source: str
    created_at: datetime
    updated_at: datetime
    confirmed_at: datetime | None = None
    unsubscribed_at: datetime | None = None


@dataclass(frozen=True)
class AddResult:
    """What :meth:`Ledger.add_subscribers` did. ``invalid`` holds
    ``(index, address, reason)`` with the 0-based index in the input."""

    added: int
    present: int
    invalid: tuple[tuple[int, str, str], ...] = ()


def to_db(moment: datetime) -> str:
    """Aware datetime -> ISO 8601 in UTC with a fixed width (text order = time order)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"the ledger stores aware datetimes only, got naive {moment!r}")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def from_db(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


__all__ = [
    "DELIVERY_STATUSES",
    "EDITION_STATUSES",
    "EVENT_KINDS",
    "SUBSCRIBER_STATUSES",
    "AddResult",
    "Delivery",
    "DeliveryEvent",
    "DeliveryStatus",
    "Edition",
    "EditionStatus",
    "EventKind",
    "Subscriber",
    "SubscriberStatus",
    "from_db",
    "to_db",
    "utcnow",
]
