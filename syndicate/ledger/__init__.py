"""The ledger: the single source of truth for what was published and sent.

One SQLite file (default ``var/syndicate.db``; WAL, ``synchronous=NORMAL``,
foreign keys, numbered migrations in :mod:`._schema`) holding editions and
their rendered artefacts, one delivery row per (edition, channel, recipient),
subscribers, the web app's rate-limit counters (:mod:`._limits`) and a
small key/value ``meta`` table. See :class:`Ledger` for the
threading and durability rules and :mod:`._lock` for the publisher lock.
"""

from ._confirmations import CONFIRMATION_STATUSES, Confirmation, ConfirmationStatus
from ._deliveries import BOUNCED, OUTCOME_PREFIXES, SKIPPED, is_outcome
from ._ledger import CHUNK, DEFAULT_PATH, Ledger
from ._lock import LockHolder, lock_path, read_holder
from ._records import (
    DELIVERY_STATUSES,
    EDITION_STATUSES,
    SUBSCRIBER_STATUSES,
    AddResult,
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    Subscriber,
    SubscriberStatus,
)
from ._schema import MIGRATIONS, SCHEMA_VERSION
from ._subscribers import normalize_email

__all__ = [
    "BOUNCED",
    "CHUNK",
    "CONFIRMATION_STATUSES",
    "DEFAULT_PATH",
    "DELIVERY_STATUSES",
    "EDITION_STATUSES",
    "MIGRATIONS",
    "OUTCOME_PREFIXES",
    "SCHEMA_VERSION",
    "SKIPPED",
    "SUBSCRIBER_STATUSES",
    "AddResult",
    "Confirmation",
    "ConfirmationStatus",
    "Delivery",
    "DeliveryStatus",
    "Edition",
    "EditionStatus",
    "Ledger",
    "LockHolder",
    "Subscriber",
    "SubscriberStatus",
    "is_outcome",
    "lock_path",
    "normalize_email",
    "read_holder",
]
