"""Ledger methods for delivery events: bounces and complaints learnt after the send.

One row per event (``event_id`` unique: recording one twice changes nothing), on the
delivery it is about. Written by :func:`syndicate.bounces.record_event`, the one entry
point of every source (the bounce mailbox, provider webhooks). The SQL is written once
with ``?`` placeholders; the PostgreSQL twin (:class:`~._pg_queries.PgEventMethods`) runs
the same statements with ``%s`` and its own time type.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from ..errors import LedgerError
from . import _records
from ._queries import Queries, SqliteQueries
from ._records import from_db
from ._statuses import EVENT_KINDS

if TYPE_CHECKING:
    from ._mail_records import Delivery, DeliveryEvent

_EVENT_COLS = "event_id, delivery_id, kind, status, diagnostic, source, occurred_at"
_DELIVERY_COLS = ("id, edition_id, channel, recipient, status, attempts, code, response,"
                  " updated_at")
#: What one event may keep of a diagnostic text (a report can quote a whole message).
DIAGNOSTIC_MAX = 1000


class _EventSql:
    """The statements, with ``?`` placeholders (rewritten by the PostgreSQL twin)."""

    insert = ("INSERT INTO delivery_events (event_id, delivery_id, recipient, kind, status,"
              " diagnostic, source, occurred_at, recorded_at)"
              " SELECT ?, d.id, lower(d.recipient), ?, ?, ?, ?, ?, ? FROM deliveries d"
              " WHERE d.id = ? ON CONFLICT (event_id) DO NOTHING")
    count = ("SELECT COUNT(*) FROM delivery_events WHERE recipient = lower(?) AND kind = ?"
             " AND occurred_at >= ?")
    per_kind = ("SELECT e.kind, COUNT(DISTINCT e.delivery_id) FROM delivery_events e"
                " JOIN deliveries d ON d.id = e.delivery_id WHERE d.edition_id = ?"
                " GROUP BY e.kind")
    of_delivery = (f"SELECT {_EVENT_COLS} FROM delivery_events WHERE delivery_id = ?"
                   " ORDER BY id")
    bounced = ("SELECT COUNT(DISTINCT e.delivery_id) FROM delivery_events e"
               " JOIN deliveries d ON d.id = e.delivery_id WHERE d.edition_id = ?"
               " AND e.kind IN ('hard', 'soft')")
    sent = ("SELECT COUNT(*) FROM deliveries WHERE edition_id = ? AND status = 'sent'"
            " AND recipient != ''")
    find = (f"SELECT {_DELIVERY_COLS} FROM deliveries WHERE edition_id = ?"
            " AND lower(recipient) = lower(?) AND recipient != '' ORDER BY id LIMIT 1")


class EventMethods(Queries):
    """Record and count delivery events (mixed into both ledgers)."""

    def add_delivery_event(self, event: DeliveryEvent) -> bool:
        """Store ``event``; True if it is new, False if ``event_id`` was recorded before.
        Raises ``LedgerError`` for an unknown kind or delivery."""
        if event.kind not in EVENT_KINDS:
            raise LedgerError(f"unknown event kind {event.kind!r}; expected one of "
                              f"{', '.join(EVENT_KINDS)}")
        stamp = self._q_now()
        occurred = stamp if event.occurred_at is None else self._q_when(event.occurred_at)
        added = self._q_exec(_EventSql.insert, (
            event.event_id[:500], event.kind, event.status[:32],
            event.diagnostic[:DIAGNOSTIC_MAX], event.source[:64], occurred, stamp,
            event.delivery_id))
        if added:
            return True
        if self._q_one("SELECT 1 FROM deliveries WHERE id = ?", (event.delivery_id,)) is None:
            raise LedgerError(f"no delivery with id {event.delivery_id}")
        return False

    def count_recipient_events(self, recipient: str, kind: str, since: datetime) -> int:
        """Events of ``kind`` about deliveries to ``recipient`` (any case) since ``since``."""
        row = self._q_one(_EventSql.count, (recipient, kind, self._q_when(since)))
        return int(row[0]) if row else 0

    def delivery_event_counts(self, edition_id: int) -> dict[str, int]:
        """Per kind, how many of the edition's deliveries had at least one such event;
        ``bounced``: with a hard or a soft one; ``sent``: per-recipient rows sent."""
        counts = dict.fromkeys(EVENT_KINDS, 0)
        for kind, n in self._q_all(_EventSql.per_kind, (edition_id,)):
            counts[str(kind)] = int(n)
        for key, sql in (("bounced", _EventSql.bounced), ("sent", _EventSql.sent)):
            row = self._q_one(sql, (edition_id,))
            counts[key] = int(row[0]) if row else 0
        return counts

    def delivery_events(self, delivery_id: int) -> list[DeliveryEvent]:
        """The events recorded on one delivery, oldest first."""
        out = []
        for event_id, did, kind, status, diagnostic, source, occurred in self._q_all(
                _EventSql.of_delivery, (delivery_id,)):
            moment = occurred if isinstance(occurred, datetime) else from_db(occurred)
            out.append(_records.DeliveryEvent(event_id, int(did), kind, status, diagnostic, source,
                                     moment))
        return out

    def find_delivery(self, edition_id: int, recipient: str) -> Delivery | None:
        """The edition's per-recipient delivery to ``recipient`` (any case), if any."""
        row = self._q_one(_EventSql.find, (edition_id, recipient))
        if row is None:
            return None
        id_, edition_id, channel, recipient, status, attempts, code, response, updated = row
        moment = updated if isinstance(updated, datetime) else datetime.fromisoformat(updated)
        return _records.Delivery(id_, edition_id, channel, recipient, status, attempts, code,
                                 response, moment)


class SqliteEventMethods(SqliteQueries, EventMethods):
    pass



__all__ = ["DIAGNOSTIC_MAX", "EventMethods", "SqliteEventMethods"]
