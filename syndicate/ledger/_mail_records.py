"""The records of sending and subscribing (deliveries, their later events, subscribers,
confirmation emails): frozen dataclasses, defined when first used.

Apart from :mod:`._records` (editions, statuses, time helpers) because defining a frozen
dataclass costs about a millisecond at import (its methods are generated and compiled),
and the commands that only read editions (``queue``, ``status``, ``schedule``) never
build one of these: the ledger's modules reach them through ``_records.Delivery`` and
the like (:func:`._records.__getattr__`), so this module is imported on the first
delivery, event, subscriber or confirmation read or written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ._statuses import (
    ConfirmationStatus,
    DeliveryStatus,
    EventKind,
    SubscriberStatus,
)


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


@dataclass(frozen=True)
class Confirmation:
    """One confirmation email to send (``pending``), sent, or given up (``failed``).

    ``attempts`` counts the claims (an attempt started, even if its sender died);
    ``due_at`` is when it may be taken next (the retry time, or the end of the
    lease of the sender that holds it: ``claimed_by``). ``code``/``response``: the
    last server answer (the reply of the send, or the last error).
    """

    id: int
    email: str
    status: ConfirmationStatus
    requested_at: datetime
    due_at: datetime
    attempts: int
    claimed_by: str | None
    code: int | None
    response: str
    updated_at: datetime

__all__ = ["AddResult", "Confirmation", "Delivery", "DeliveryEvent", "Subscriber"]
