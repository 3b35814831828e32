"""The statuses and kinds the ledger's records hold: each as a ``Literal`` type and as the
tuple of its values (what the ledger checks, and what the commands offer as choices).
Apart from the records so that both modules of them (:mod:`._records`,
:mod:`._mail_records`) read them without importing each other."""

from __future__ import annotations

from typing import Literal

EditionStatus = Literal["claimed", "delivering", "done"]
DeliveryStatus = Literal["pending", "sent", "failed"]
SubscriberStatus = Literal["pending", "active", "unsubscribed", "bounced", "complained"]
EventKind = Literal["hard", "soft", "complaint"]
ConfirmationStatus = Literal["pending", "sent", "failed"]

EDITION_STATUSES: tuple[str, ...] = ("claimed", "delivering", "done")
DELIVERY_STATUSES: tuple[str, ...] = ("pending", "sent", "failed")
SUBSCRIBER_STATUSES: tuple[str, ...] = (
    "pending", "active", "unsubscribed", "bounced", "complained")
EVENT_KINDS: tuple[str, ...] = ("hard", "soft", "complaint")
CONFIRMATION_STATUSES: tuple[str, ...] = ("pending", "sent", "failed")

__all__ = [
    "CONFIRMATION_STATUSES", "DELIVERY_STATUSES", "EDITION_STATUSES", "EVENT_KINDS",
    "SUBSCRIBER_STATUSES", "ConfirmationStatus", "DeliveryStatus", "EditionStatus",
    "EventKind", "SubscriberStatus",
]
