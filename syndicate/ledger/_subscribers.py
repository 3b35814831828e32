"""Ledger methods for subscribers, and the address rules they apply.

Addresses are validated and normalised on the way in (:func:`normalize_email`)
and unique whatever their case (:func:`email_key`). Mixed into
:class:`~._ledger.Ledger`; see it for the threading and durability rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import islice
from typing import TYPE_CHECKING, Any

from ..errors import InvalidAddress, LedgerError, SubscriberExists
from . import _records
from ._connection import CHUNK, LedgerConnection
from ._records import from_db, to_db
from ._statuses import SUBSCRIBER_STATUSES

if TYPE_CHECKING:
    from ._mail_records import AddResult, Subscriber

_SUBSCRIBER_COLS = (
    "id, email, name, status, source, created_at, updated_at, confirmed_at, unsubscribed_at"
)


def normalize_email(address: str) -> str:
    """The normalised form of ``address`` (stripped, domain lowercased, IDNA
    decoded); raises :class:`~syndicate.errors.InvalidAddress`. No DNS lookup."""
    if not isinstance(address, str) or not address.strip():
        raise InvalidAddress(str(address), "empty address")
    # Lazy: email_validator (with the asyncio and DNS modules it loads) costs ~90 ms, and
    # every command opens the ledger package; only adding or checking an address needs it.
    from email_validator import EmailNotValidError, validate_email

    try:
        info = validate_email(address.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(address.strip(), str(exc)) from None
    return info.normalized


def email_key(normalized: str) -> str:
    """The uniqueness key: the whole address casefolded. Local parts are
    case-sensitive in theory, never in practice, and two rows for
    ``Alice@x.fr`` and ``alice@x.fr`` would mean two copies of each edition."""
    return normalized.casefold()


def like_pattern(query: str) -> str:
    """``%query%`` for a LIKE with ``ESCAPE '\\'``: the query case folded, its own
    ``%``, ``_`` and ``\\`` taken literally."""
    folded = query.strip().casefold()[:200]
    escaped = folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _subscriber(row: tuple[Any, ...]) -> Subscriber:
    id_, email, name, status, source, created, updated, confirmed, unsubscribed = row
    return _records.Subscriber(id_, email, name, status, source, _when(created), _when(updated),
                      from_db(confirmed), from_db(unsubscribed))


def _when(text: str) -> datetime:
    """A NOT NULL time column."""
    return datetime.fromisoformat(text)


def _check_subscriber_status(status: str) -> None:
    if status not in SUBSCRIBER_STATUSES:
        raise LedgerError(
            f"unknown subscriber status {status!r} (one of {', '.join(SUBSCRIBER_STATUSES)})"
        )


class SubscriberMethods(LedgerConnection):
    """Add (one or in bulk), read, stream, count, change and remove subscribers."""

    def add_subscriber(
        self,
        email: str,
        name: str | None = None,
        status: str = "active",
        source: str = "cli",
        *,
        exist_ok: bool = False,
    ) -> Subscriber:
        """Add a subscriber; the address is validated and normalised.

        Raises ``InvalidAddress``; ``SubscriberExists`` if the address (in any
        case) is already there, whatever its status, unless ``exist_ok`` (then
        the existing row is returned unchanged).
        """
        _check_subscriber_status(status)
        normalized = normalize_email(email)
        stamp = self._stamp()
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO subscribers (email, email_key, name, status, source, created_at,"
                " updated_at, confirmed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (email_key) DO NOTHING",
                (normalized, email_key(normalized), name or None, status, source, stamp, stamp,
                 stamp if status == "active" else None),
            )
            created = cur.rowcount == 1
        subscriber = self.get_subscriber(normalized)
        assert subscriber is not None
        if not created and not exist_ok:
            raise SubscriberExists(subscriber.email, subscriber)
        return subscriber

    def add_subscribers(
        self,
        entries: Iterable[str | tuple[str, str | None]],
        *,
        status: str = "active",
        source: str = "import",
        chunk: int = 5000,
    ) -> AddResult:
        """Bulk add (imports, benchmarks): ``entries`` are addresses or
        ``(address, name)``; streamed in chunks. Existing addresses are counted as
        present and left alone; invalid ones are returned, not raised."""
        _check_subscriber_status(status)
        stamp = self._stamp()
        confirmed = stamp if status == "active" else None
        added = present = 0
        invalid: list[tuple[int, str, str]] = []
        iterator = enumerate(entries)
        while True:
            batch = []
            for index, entry in islice(iterator, chunk):
                address, name = (entry, None) if isinstance(entry, str) else entry
                try:
                    normalized = normalize_email(address)
                except InvalidAddress as exc:
                    invalid.append((index, str(address), exc.reason))
                    continue
                batch.append((normalized, email_key(normalized), name or None, status, source,
                              stamp, stamp, confirmed))
            if not batch:
                return _records.AddResult(added, present, tuple(invalid))
            with self._write() as conn:
                before = conn.total_changes
                conn.executemany(
                    "INSERT OR IGNORE INTO subscribers (email, email_key, name, status, source,"
                    " created_at, updated_at, confirmed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    batch,
                )
                new = conn.total_changes - before
            added += new
            present += len(batch) - new

    def get_subscriber(self, email: str, *, normalized: bool = False) -> Subscriber | None:
        """The subscriber with this address (any case), or None (also for an invalid address).

        ``normalized=True``: ``email`` is an address as the ledger stored it (a
        delivery's recipient), so it is not validated again: the SMTP channel
        re-reads each subscriber just before sending, and validation would cost
        more than the query.
        """
        try:
            key = email_key(email if normalized else normalize_email(email))
        except InvalidAddress:
            return None
        row = self._one(f"SELECT {_SUBSCRIBER_COLS} FROM subscribers WHERE email_key = ?", (key,))
        return _subscriber(row) if row else None

    def set_subscriber_status(self, email: str, status: str) -> Subscriber:
        """Change a subscriber's status; 'active' stamps ``confirmed_at``,
        'unsubscribed' stamps ``unsubscribed_at``. Raises ``LedgerError`` if unknown."""
        _check_subscriber_status(status)
        current = self.get_subscriber(email)
        if current is None:
            raise LedgerError(f"{email.strip()} is not a subscriber")
        stamp = self._stamp()
        with self._write() as conn:
            conn.execute(
                "UPDATE subscribers SET status = ?, updated_at = ?,"
                " confirmed_at = CASE WHEN ? = 'active' THEN ? ELSE confirmed_at END,"
                " unsubscribed_at = CASE WHEN ? = 'unsubscribed' THEN ? ELSE unsubscribed_at END"
                " WHERE id = ?",
                (status, stamp, status, stamp, status, stamp, current.id),
            )
        updated = self.get_subscriber(current.email)
        assert updated is not None
        return updated

    def iter_subscribers(
        self, status: str | None = "active", *, chunk: int = CHUNK
    ) -> Iterator[Subscriber]:
        """Subscribers in id (sign-up) order, streamed by keyset pages; ``None`` = all."""
        if status is None:
            rows = self._pages(
                f"SELECT {_SUBSCRIBER_COLS} FROM subscribers WHERE id > ? ORDER BY id LIMIT ?",
                (), chunk,
            )
        else:
            _check_subscriber_status(status)
            rows = self._pages(
                f"SELECT {_SUBSCRIBER_COLS} FROM subscribers WHERE status = ? AND id > ?"
                " ORDER BY id LIMIT ?",
                (status,), chunk,
            )
        return (_subscriber(r) for r in rows)

    def count_subscribers(self, status: str | None = None) -> int:
        if status is None:
            row = self._one("SELECT COUNT(*) FROM subscribers")
        else:
            _check_subscriber_status(status)
            row = self._one("SELECT COUNT(*) FROM subscribers WHERE status = ?", (status,))
        assert row is not None
        return int(row[0])

    def subscriber_counts(self) -> dict[str, int]:
        """How many subscribers have each status (every status present, 0 included), in
        one pass over the status index."""
        counts = dict.fromkeys(SUBSCRIBER_STATUSES, 0)
        with self._locked() as conn:
            for status, n in conn.execute(
                    "SELECT status, COUNT(*) FROM subscribers GROUP BY status").fetchall():
                counts[status] = int(n)
        return counts

    def search_subscribers(self, query: str = "", status: str | None = None, *,
                           before_id: int | None = None, limit: int = 50) -> list[Subscriber]:
        """One page of subscribers, newest first (keyset: pass the last id shown as
        ``before_id`` for the next page), whose address or name contains ``query``
        (case folded) and whose status is ``status`` (None: any)."""
        sql = f"SELECT {_SUBSCRIBER_COLS} FROM subscribers WHERE id < ?"
        params: list[Any] = [before_id if before_id is not None else 2**62]
        if status is not None:
            _check_subscriber_status(status)
            sql += " AND status = ?"
            params.append(status)
        if query.strip():
            pattern = like_pattern(query)
            # SQLite's LIKE folds ASCII case itself (lower() would double the scan's cost);
            # email_key is already case folded.
            sql += " AND (email_key LIKE ? ESCAPE '\\' OR name LIKE ? ESCAPE '\\')"
            params += [pattern, pattern]
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(max(1, min(int(limit), 1000)))
        with self._locked() as conn:
            return [_subscriber(r) for r in conn.execute(sql, params).fetchall()]

    def subscriber_timeline(self, since: datetime | None = None
                            ) -> list[tuple[str, int, int, int]]:
        """``(day, joins, unsubscribes, bounces)`` per UTC day (``YYYY-MM-DD``, in order)
        since ``since`` (None: all): joins by ``created_at``, unsubscribes by
        ``unsubscribed_at``, bounces by the last change of a bounced subscriber."""
        start = to_db(since) if since is not None else ""
        days: dict[str, list[int]] = {}
        with self._locked() as conn:
            for column, where, index in (
                ("created_at", "", 0),
                ("unsubscribed_at", " AND unsubscribed_at IS NOT NULL", 1),
                ("updated_at", " AND status = 'bounced'", 2),
            ):
                for day, n in conn.execute(
                    f"SELECT substr({column}, 1, 10) AS day, COUNT(*) FROM subscribers"
                    f" WHERE {column} >= ?{where} GROUP BY day", (start,),
                ):
                    days.setdefault(day, [0, 0, 0])[index] = n
        return [(day, c[0], c[1], c[2]) for day, c in sorted(days.items())]

    def remove_subscriber(self, email: str) -> bool:
        """Delete the subscriber; False if there was none. (Their past delivery
        rows stay: they record what was sent.)"""
        current = self.get_subscriber(email)
        if current is None:
            return False
        with self._write() as conn:
            conn.execute("DELETE FROM subscribers WHERE id = ?", (current.id,))
        return True
