"""The ledger: the single source of truth for what was published and sent.

A port (:class:`LedgerPort`, a ``typing.Protocol`` over frozen-dataclass records) with
its implementations behind it, opened in one place: :func:`open_ledger` takes a file
path or a ``sqlite:///`` URL, or a ``postgresql://`` URL for the PostgreSQL
implementation (:mod:`._postgres`, same records and migrations numbered alike, psycopg
imported only then; docs/deployment.md) (:mod:`._url`). The SQLite implementation is one file
(default ``var/syndicate.db``; WAL, ``synchronous=NORMAL``, foreign keys, numbered
migrations in :mod:`._schema`) holding editions and their rendered artefacts, one
delivery row per (edition, channel, recipient), subscribers, the web app's rate-limit
counters (:mod:`._limits`) and a small key/value ``meta`` table. See
:class:`SqliteLedger` for the threading and durability rules and :mod:`._lock` for the
publisher lock. :func:`copy_ledger` (:mod:`._copy`) copies a SQLite ledger into
PostgreSQL, all or nothing, verified (``syndicate ledger migrate``).
"""

from typing import TYPE_CHECKING, Any

from ..modules import lazy_attribute
from ._analytics import OPEN_LINK
from ._deliveries import BOUNCED, OUTCOME_PREFIXES, SKIPPED, is_outcome
from ._ledger import CACHE_FOLDER, CHUNK, DEFAULT_PATH, Ledger, SqliteLedger
from ._open import ledger_exists, open_ledger, using_ledger
from ._schema import MIGRATIONS, SCHEMA_VERSION
from ._statuses import (
    CONFIRMATION_STATUSES,
    DELIVERY_STATUSES,
    EDITION_STATUSES,
    EVENT_KINDS,
    SUBSCRIBER_STATUSES,
    ConfirmationStatus,
    DeliveryStatus,
    EditionStatus,
    SubscriberStatus,
)
from ._subscribers import normalize_email
from ._url import SCHEMES, LedgerLocation, parse_ledger_url, shown_url

if TYPE_CHECKING:
    from ._copy import CopyReport, TableReport, copy_ledger
    from ._edition import Edition
    from ._lock import LockHolder, lock_path, read_holder
    from ._mail_records import AddResult, Confirmation, Delivery, DeliveryEvent, Subscriber
    from ._port import (
        ConfirmationOutbox,
        DeliveryClaims,
        DeliveryEvents,
        DeliveryStore,
        EditionStore,
        LedgerPort,
        LedgerSource,
        LinkCounters,
        RateLimitCounters,
        SubscriberStore,
    )

#: Loaded on first use (PEP 562): ``ledger migrate`` only (the copy); the port's Protocols,
#: which code reads in annotations and the light commands (``queue``, ``status``) never;
#: the publisher lock and the records, which ``queue`` and ``schedule`` never use.
_LAZY = {"CopyReport": "_copy", "TableReport": "_copy", "copy_ledger": "_copy",
         **dict.fromkeys(("ConfirmationOutbox", "DeliveryClaims", "DeliveryEvents",
                          "DeliveryStore", "EditionStore", "LedgerPort", "LedgerSource",
                          "LinkCounters", "RateLimitCounters", "SubscriberStore"), "_port"),
         # The publisher lock (fcntl, the holder's record): publishing commands only.
         **dict.fromkeys(("LockHolder", "lock_path", "read_holder"), "_lock"),
         # Defined on first use: see _mail_records.
         "Edition": "_edition",
         **dict.fromkeys(("AddResult", "Confirmation", "Delivery", "DeliveryEvent",
                          "Subscriber"), "_mail_records")}


def __getattr__(name: str) -> Any:
    return lazy_attribute(globals(), _LAZY, name)


__all__ = [
    "BOUNCED",
    "CACHE_FOLDER",
    "CHUNK",
    "CONFIRMATION_STATUSES",
    "DEFAULT_PATH",
    "DELIVERY_STATUSES",
    "EDITION_STATUSES",
    "EVENT_KINDS",
    "MIGRATIONS",
    "OPEN_LINK",
    "OUTCOME_PREFIXES",
    "SCHEMA_VERSION",
    "SCHEMES",
    "SKIPPED",
    "SUBSCRIBER_STATUSES",
    "AddResult",
    "Confirmation",
    "ConfirmationOutbox",
    "ConfirmationStatus",
    "CopyReport",
    "Delivery",
    "DeliveryClaims",
    "DeliveryEvent",
    "DeliveryEvents",
    "DeliveryStatus",
    "DeliveryStore",
    "Edition",
    "EditionStatus",
    "EditionStore",
    "Ledger",
    "LedgerLocation",
    "LedgerPort",
    "LedgerSource",
    "LinkCounters",
    "LockHolder",
    "RateLimitCounters",
    "SqliteLedger",
    "Subscriber",
    "SubscriberStatus",
    "SubscriberStore",
    "TableReport",
    "copy_ledger",
    "is_outcome",
    "ledger_exists",
    "lock_path",
    "normalize_email",
    "open_ledger",
    "parse_ledger_url",
    "read_holder",
    "shown_url",
    "using_ledger",
]
