"""Record a bounce or a complaint, and apply the list's policy: the one entry point.

Every source (the bounce mailbox here; provider webhooks later) turns what it
received into a :class:`~syndicate.ledger.DeliveryEvent` naming the delivery row and
calls :func:`record_event`. The policy (:func:`decide`) is pure:

- a hard bounce (5.x.x): the subscriber becomes ``bounced`` at once;
- a soft bounce (4.x.x): ``bounced`` once ``soft_limit`` of them arrived within
  ``soft_window`` (the count includes this one);
- a complaint: ``complained``, never mailed again (sending only mails ``active``).

Only an ``active`` or ``pending`` subscriber changes status (an ``unsubscribed`` one
who complains becomes ``complained``): an event never brings anyone back. Recording
the same event twice stores it once and decides the same way, so a source may
replay a report whose outcome it is not sure was recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ..channels import edition_rates  # the breaker's figures; kept importable from here
from ..clock import utcnow
from ..ledger import DeliveryEvent, LedgerPort, SubscriberStatus

#: Statuses an event may move a subscriber out of.
_MOVABLE = {"hard": ("active", "pending"), "soft": ("active", "pending"),
            "complaint": ("active", "pending", "unsubscribed", "bounced")}


@dataclass(frozen=True)
class BouncePolicy:
    """How many soft bounces within how long make an address ``bounced``."""

    soft_limit: int = 3
    soft_window: timedelta = timedelta(days=7)


@dataclass(frozen=True)
class EventOutcome:
    """What :func:`record_event` did."""

    event: DeliveryEvent
    recipient: str
    new: bool  # False: this event id was recorded before
    status: SubscriberStatus | None = None  # the subscriber's new status, if it changed


def decide(kind: str, current: str, soft_count: int, policy: BouncePolicy
           ) -> SubscriberStatus | None:
    """The subscriber's new status after an event of ``kind`` (None: unchanged)."""
    if current not in _MOVABLE.get(kind, ()):
        return None
    if kind == "complaint":
        return "complained"
    if kind == "hard" or soft_count >= policy.soft_limit:
        return "bounced"
    return None


def record_event(ledger: LedgerPort, event: DeliveryEvent,
                 policy: BouncePolicy = BouncePolicy(), *,
                 now: datetime | None = None) -> EventOutcome:
    """Store ``event`` on its delivery (once per ``event_id``) and apply ``policy`` to
    the subscriber. Raises ``LedgerError`` if the delivery does not exist."""
    delivery = ledger.get_delivery(event.delivery_id)
    if delivery is None or not delivery.recipient:
        from ..errors import LedgerError

        raise LedgerError(f"no per-recipient delivery with id {event.delivery_id}")
    new = ledger.add_delivery_event(event)
    moment = now or utcnow()
    soft = (ledger.count_recipient_events(delivery.recipient, "soft",
                                          moment - policy.soft_window)
            if event.kind == "soft" else 0)
    subscriber = ledger.get_subscriber(delivery.recipient, normalized=True)
    status = None
    if subscriber is not None:
        status = decide(event.kind, subscriber.status, soft, policy)
        if status is not None:
            ledger.set_subscriber_status(subscriber.email, status)
    return EventOutcome(event, delivery.recipient, new, status)


__all__ = ["BouncePolicy", "EventOutcome", "decide", "edition_rates", "record_event"]
