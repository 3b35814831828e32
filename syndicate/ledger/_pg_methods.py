"""The PostgreSQL ledger's plumbing and its delivery, subscriber, confirmation and
rate-limit methods (the SQL twins of :mod:`._deliveries`, :mod:`._subscribers`,
:mod:`._confirmations` and :mod:`._limits`, whose docstrings state the contract).

Mixed into :class:`~._postgres.PostgresLedger`; see it for the threading rules. The
pure rules (address normalisation, outcome prefixes, statuses) are imported from the
SQLite modules, so both backends apply the same ones.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import TYPE_CHECKING, Any, Self

from ..errors import InvalidAddress, LedgerError, LedgerUnavailable, SubscriberExists
from ._connection import CHUNK
from ._deliveries import _NOT_OUTCOME, combine_counts
from ._limits import PRUNE_BATCH
from ._mail_records import AddResult, Confirmation, Delivery, Subscriber
from ._pg_schema import one_line
from ._statuses import CONFIRMATION_STATUSES, SUBSCRIBER_STATUSES
from ._subscribers import _check_subscriber_status, email_key, like_pattern, normalize_email

if TYPE_CHECKING:
    import psycopg

_DELIVERY_COLS = "id, edition_id, channel, recipient, status, attempts, code, response, updated_at"
_SUBSCRIBER_COLS = (
    "id, email, name, status, source, created_at, updated_at, confirmed_at, unsubscribed_at"
)
_CONFIRMATION_COLS = ("id, email, status, requested_at, due_at, attempts, claimed_by, code,"
                      " response, updated_at")


def _stamp_of(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"the ledger stores aware datetimes only, got naive {moment!r}")
    return moment.astimezone(UTC)


class PgConnection:
    """One connection shared by threads under one lock; transactions; keyset pages."""

    # Set by PostgresLedger.__init__.
    _conn: psycopg.Connection[tuple[Any, ...]] | None
    _now: Callable[[], datetime]
    _lock: threading.RLock
    shown: str

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _stamp(self) -> datetime:
        return _stamp_of(self._now())

    @property
    def _db(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._conn is None:
            raise LedgerError(f"ledger {self.shown} is closed")
        return self._conn

    def _error(self, exc: Exception) -> LedgerError:
        import psycopg

        if isinstance(exc, psycopg.errors.LockNotAvailable):
            return LedgerError(f"ledger {self.shown} is busy: another process held a lock "
                               f"too long ({one_line(exc)})")
        if isinstance(exc, psycopg.OperationalError) or (self._conn is not None
                                                         and self._conn.broken):
            # The server went away (restart, network): the caller may reconnect and retry.
            return LedgerUnavailable(f"ledger {self.shown}: connection lost: "
                                     f"{one_line(exc)}")
        return LedgerError(f"ledger {self.shown}: {one_line(exc)}")

    @contextmanager
    def _locked(self) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        import psycopg

        with self._lock:
            try:
                yield self._db
            except psycopg.Error as exc:
                raise self._error(exc) from exc

    @contextmanager
    def _write(self) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        """One transaction; constraint violations reach the caller (it translates the
        one it expects), other database errors become one-line ``LedgerError``s."""
        import psycopg

        with self._lock:
            conn = self._db
            try:
                with conn.transaction():
                    yield conn
            except psycopg.IntegrityError:
                raise
            except psycopg.Error as exc:
                raise self._error(exc) from exc

    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        with self._locked() as conn:
            return conn.execute(sql.encode(), params).fetchone()

    def _pages(self, sql: str, params: tuple[Any, ...], chunk: int) -> Iterator[tuple[Any, ...]]:
        """Keyset pagination (``… id > %s ORDER BY id LIMIT %s``), each page fetched whole
        under the lock before its rows are yielded (see ``SqliteLedger``)."""
        last = 0
        while True:
            with self._locked() as conn:
                rows = conn.execute(sql.encode(), (*params, last, chunk)).fetchall()
            yield from rows
            if len(rows) < chunk:
                return
            last = rows[-1][0]


class PgMethods(PgConnection):
    """Deliveries, subscribers, confirmations and rate-limit counters."""

    # -- deliveries -------------------------------------------------------

    def ensure_delivery(self, edition_id: int, channel: str, recipient: str = "") -> Delivery:
        self.ensure_deliveries(edition_id, channel, (recipient,))
        row = self._one(f"SELECT {_DELIVERY_COLS} FROM deliveries"
                        " WHERE edition_id = %s AND channel = %s AND recipient = %s",
                        (edition_id, channel, recipient))
        assert row is not None
        return Delivery(*row)

    def ensure_deliveries(self, edition_id: int, channel: str, recipients: Iterable[str], *,
                          chunk: int = 5000) -> int:
        """Missing 'pending' rows, ``chunk`` recipients per statement and transaction."""
        import psycopg

        stamp = self._stamp()
        iterator = iter(recipients)
        created = 0
        while True:
            batch = list(islice(iterator, chunk))
            if not batch:
                return created
            try:
                with self._write() as conn:
                    cur = conn.execute(
                        "INSERT INTO deliveries (edition_id, channel, recipient, created_at,"
                        " updated_at) SELECT %s, %s, r, %s, %s FROM unnest(%s::text[])"
                        " WITH ORDINALITY AS t(r, n) ORDER BY n ON CONFLICT DO NOTHING",
                        (edition_id, channel, stamp, stamp, batch))
                    created += max(cur.rowcount, 0)
            except psycopg.errors.ForeignKeyViolation as exc:
                raise LedgerError(f"no edition with id {edition_id} in {self.shown}") from exc
            except psycopg.IntegrityError as exc:
                raise self._error(exc) from exc

    def get_delivery(self, delivery_id: int) -> Delivery | None:
        row = self._one(f"SELECT {_DELIVERY_COLS} FROM deliveries WHERE id = %s", (delivery_id,))
        return Delivery(*row) if row else None

    def pending_deliveries(self, edition_id: int, channel: str, *,
                           chunk: int = CHUNK) -> Iterator[Delivery]:
        rows = self._pages(
            f"SELECT {_DELIVERY_COLS} FROM deliveries WHERE edition_id = %s AND channel = %s"
            " AND status = 'pending' AND (claimed_until IS NULL OR claimed_until <= %s)"
            " AND id > %s ORDER BY id LIMIT %s",
            (edition_id, channel, self._stamp()), chunk)
        return (Delivery(*r) for r in rows)

    def mark_sent(self, delivery_id: int, response: str = "", code: int | None = None) -> None:
        with self._locked() as conn:
            cur = conn.execute(
                "UPDATE deliveries SET status = 'sent', attempts = attempts + 1, code = %s,"
                " response = %s, updated_at = %s, claimed_by = NULL, claimed_until = NULL"
                " WHERE id = %s",
                (code, response, self._stamp(), delivery_id))
        if cur.rowcount == 0:
            raise LedgerError(f"no delivery with id {delivery_id} in {self.shown}")

    def mark_failed(self, delivery_id: int, code: int | None, message: str,
                    permanent: bool = True) -> None:
        status = "failed" if permanent else "pending"
        with self._locked() as conn:
            cur = conn.execute(
                "UPDATE deliveries SET status = %s, attempts = attempts + 1, code = %s,"
                " response = %s, updated_at = %s,"
                " claimed_by = CASE WHEN %s THEN NULL ELSE claimed_by END,"
                " claimed_until = CASE WHEN %s THEN NULL ELSE claimed_until END"
                " WHERE id = %s AND status != 'sent'",
                (status, code, message, self._stamp(), permanent, permanent, delivery_id))
        if cur.rowcount == 0 and self.get_delivery(delivery_id) is None:
            raise LedgerError(f"no delivery with id {delivery_id} in {self.shown}")

    def delivery_counts(self, edition_id: int) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        with self._locked() as conn:
            for channel, status, n in conn.execute(
                "SELECT channel, status, COUNT(*) FROM deliveries WHERE edition_id = %s"
                " GROUP BY channel, status ORDER BY channel", (edition_id,)).fetchall():
                counts.setdefault(channel, dict.fromkeys(("sent", "failed", "pending"), 0))
                counts[channel][status] = int(n)
        return counts

    def delivery_counts_many(
        self, edition_ids: Iterable[int], *,
        known_totals: Mapping[int, Mapping[str, int]] | None = None,
    ) -> dict[int, dict[str, dict[str, int]]]:
        ids = sorted({int(i) for i in edition_ids})
        known = known_totals or {}
        totals = {i: dict(known[i]) for i in ids if i in known}
        unknown = [i for i in ids if i not in known]
        open_rows: dict[tuple[int, str, str], int] = {}
        with self._locked() as conn:
            if unknown:
                for edition_id, channel, n in conn.execute(
                    "SELECT edition_id, channel, COUNT(*) FROM deliveries"
                    " WHERE edition_id = ANY(%s) GROUP BY edition_id, channel",
                    (unknown,)).fetchall():
                    totals.setdefault(int(edition_id), {})[channel] = int(n)
            if ids:
                for edition_id, channel, status, n in conn.execute(
                    "SELECT edition_id, channel, status, COUNT(*) FROM deliveries"
                    " WHERE status IN ('pending', 'failed') AND edition_id = ANY(%s)"
                    " GROUP BY edition_id, channel, status", (ids,)).fetchall():
                    open_rows[(int(edition_id), channel, status)] = int(n)
        return combine_counts(totals, open_rows)

    def failed_deliveries(self, edition_id: int | None = None) -> list[Delivery]:
        sql = f"SELECT {_DELIVERY_COLS} FROM deliveries WHERE status = 'failed'"
        params: tuple[Any, ...] = ()
        if edition_id is not None:
            sql, params = sql + " AND edition_id = %s", (edition_id,)
        with self._locked() as conn:
            return [Delivery(*r) for r in conn.execute((sql + " ORDER BY id").encode(),
                                                       params).fetchall()]

    def reset_failed(self, edition_id: int | None = None, channel: str | None = None) -> int:
        where, params = f"status = 'failed' AND {_NOT_OUTCOME}", list[int | str]()
        if edition_id is not None:
            where += " AND edition_id = %s"
            params.append(edition_id)
        if channel is not None:
            where += " AND channel = %s"
            params.append(channel)
        with self._write() as conn:
            conn.execute(
                ("UPDATE editions SET status = 'delivering', done_at = NULL WHERE status ="
                 f" 'done' AND id IN (SELECT edition_id FROM deliveries WHERE {where})"
                 ).encode(), params)
            cur = conn.execute(
                f"UPDATE deliveries SET status = 'pending', updated_at = %s WHERE {where}"
                .encode(), [self._stamp(), *params])
            return cur.rowcount

    # -- subscribers ------------------------------------------------------

    def add_subscriber(self, email: str, name: str | None = None, status: str = "active",
                       source: str = "cli", *, exist_ok: bool = False) -> Subscriber:
        _check_subscriber_status(status)
        normalized = normalize_email(email)
        stamp = self._stamp()
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO subscribers (email, email_key, name, status, source, created_at,"
                " updated_at, confirmed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (email_key) DO NOTHING",
                (normalized, email_key(normalized), name or None, status, source, stamp, stamp,
                 stamp if status == "active" else None))
            created = cur.rowcount == 1
        subscriber = self.get_subscriber(normalized)
        assert subscriber is not None
        if not created and not exist_ok:
            raise SubscriberExists(subscriber.email, subscriber)
        return subscriber

    def add_subscribers(self, entries: Iterable[str | tuple[str, str | None]], *,
                        status: str = "active", source: str = "import",
                        chunk: int = 5000) -> AddResult:
        _check_subscriber_status(status)
        stamp = self._stamp()
        confirmed = stamp if status == "active" else None
        added = present = 0
        invalid: list[tuple[int, str, str]] = []
        iterator = enumerate(entries)
        while True:
            emails: list[str] = []
            keys: list[str] = []
            names: list[str | None] = []
            for index, entry in islice(iterator, chunk):
                address, name = (entry, None) if isinstance(entry, str) else entry
                try:
                    normalized = normalize_email(address)
                except InvalidAddress as exc:
                    invalid.append((index, str(address), exc.reason))
                    continue
                emails.append(normalized)
                keys.append(email_key(normalized))
                names.append(name or None)
            if not emails:
                return AddResult(added, present, tuple(invalid))
            with self._write() as conn:
                cur = conn.execute(
                    "INSERT INTO subscribers (email, email_key, name, status, source,"
                    " created_at, updated_at, confirmed_at) SELECT e, k, n, %s, %s, %s, %s, %s"
                    " FROM unnest(%s::text[], %s::text[], %s::text[]) WITH ORDINALITY"
                    " AS t(e, k, n, i) ORDER BY i ON CONFLICT (email_key) DO NOTHING",
                    (status, source, stamp, stamp, confirmed, emails, keys, names))
                new = max(cur.rowcount, 0)
            added += new
            present += len(emails) - new

    def get_subscriber(self, email: str, *, normalized: bool = False) -> Subscriber | None:
        try:
            key = email_key(email if normalized else normalize_email(email))
        except InvalidAddress:
            return None
        row = self._one(f"SELECT {_SUBSCRIBER_COLS} FROM subscribers WHERE email_key = %s",
                        (key,))
        return Subscriber(*row) if row else None

    def set_subscriber_status(self, email: str, status: str) -> Subscriber:
        _check_subscriber_status(status)
        current = self.get_subscriber(email)
        if current is None:
            raise LedgerError(f"{email.strip()} is not a subscriber")
        stamp = self._stamp()
        with self._write() as conn:
            row = conn.execute(
                "UPDATE subscribers SET status = %s, updated_at = %s,"
                " confirmed_at = CASE WHEN %s = 'active' THEN %s ELSE confirmed_at END,"
                " unsubscribed_at = CASE WHEN %s = 'unsubscribed' THEN %s"
                " ELSE unsubscribed_at END WHERE id = %s"
                f" RETURNING {_SUBSCRIBER_COLS}",
                (status, stamp, status, stamp, status, stamp, current.id)).fetchone()
        if row is None:  # removed meanwhile
            raise LedgerError(f"{email.strip()} is not a subscriber")
        return Subscriber(*row)

    def iter_subscribers(self, status: str | None = "active", *,
                         chunk: int = CHUNK) -> Iterator[Subscriber]:
        if status is None:
            rows = self._pages(f"SELECT {_SUBSCRIBER_COLS} FROM subscribers WHERE id > %s"
                               " ORDER BY id LIMIT %s", (), chunk)
        else:
            _check_subscriber_status(status)
            rows = self._pages(f"SELECT {_SUBSCRIBER_COLS} FROM subscribers WHERE status = %s"
                               " AND id > %s ORDER BY id LIMIT %s", (status,), chunk)
        return (Subscriber(*r) for r in rows)

    def count_subscribers(self, status: str | None = None) -> int:
        if status is None:
            row = self._one("SELECT COUNT(*) FROM subscribers")
        else:
            _check_subscriber_status(status)
            row = self._one("SELECT COUNT(*) FROM subscribers WHERE status = %s", (status,))
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
        sql = f"SELECT {_SUBSCRIBER_COLS} FROM subscribers WHERE id < %s"
        params: list[Any] = [before_id if before_id is not None else 2**62]
        if status is not None:
            _check_subscriber_status(status)
            sql += " AND status = %s"
            params.append(status)
        if query.strip():
            pattern = like_pattern(query)
            sql += (" AND (email_key LIKE %s ESCAPE '\\'"
                    " OR lower(coalesce(name, '')) LIKE %s ESCAPE '\\')")
            params += [pattern, pattern]
        sql += " ORDER BY id DESC LIMIT %s"
        params.append(max(1, min(int(limit), 1000)))
        with self._locked() as conn:
            return [Subscriber(*r) for r in conn.execute(sql.encode(), params).fetchall()]

    def subscriber_timeline(self, since: datetime | None = None
                            ) -> list[tuple[str, int, int, int]]:
        start = since if since is not None else datetime(1970, 1, 1, tzinfo=UTC)
        days: dict[str, list[int]] = {}
        with self._locked() as conn:
            for column, where, index in (
                ("created_at", "", 0),
                ("unsubscribed_at", " AND unsubscribed_at IS NOT NULL", 1),
                ("updated_at", " AND status = 'bounced'", 2),
            ):
                for day, n in conn.execute(
                    f"SELECT to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day,"
                    f" COUNT(*) FROM subscribers WHERE {column} >= %s{where} GROUP BY day"
                    .encode(), (start,)).fetchall():
                    days.setdefault(day, [0, 0, 0])[index] = int(n)
        return [(day, c[0], c[1], c[2]) for day, c in sorted(days.items())]

    def remove_subscriber(self, email: str) -> bool:
        current = self.get_subscriber(email)
        if current is None:
            return False
        with self._write() as conn:
            conn.execute("DELETE FROM subscribers WHERE id = %s", (current.id,))
        return True

    # -- confirmation outbox ----------------------------------------------

    def enqueue_confirmation(self, email: str, *, window: float = 0.0) -> bool:
        import psycopg

        normalized = normalize_email(email)
        key = email_key(normalized)
        now = self._stamp()
        since = now - timedelta(seconds=window)
        try:
            with self._write() as conn:
                if conn.execute(
                    "SELECT 1 FROM confirmations WHERE email_key = %s"
                    " AND (status = 'pending' OR requested_at > %s) LIMIT 1",
                    (key, since)).fetchone():
                    return False
                conn.execute(
                    "INSERT INTO confirmations (email, email_key, requested_at, due_at,"
                    " updated_at) VALUES (%s, %s, %s, %s, %s)",
                    (normalized, key, now, now, now))
        except psycopg.errors.UniqueViolation:  # the unique pending index: another won
            return False
        return True

    def claim_confirmation(self, owner: str, lease: float) -> Confirmation | None:
        """The oldest due pending row, leased; ``SKIP LOCKED``: of two claimers running at
        once, the second takes the next row instead of waiting for the first."""
        now = self._stamp()
        with self._write() as conn:
            row = conn.execute(
                "UPDATE confirmations SET due_at = %s, claimed_by = %s,"
                " attempts = attempts + 1, updated_at = %s WHERE id = (SELECT id FROM"
                " confirmations WHERE status = 'pending' AND due_at <= %s"
                " ORDER BY due_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)"
                f" RETURNING {_CONFIRMATION_COLS}",
                (now + timedelta(seconds=lease), owner, now, now)).fetchone()
        return Confirmation(*row) if row else None

    def _finish(self, confirmation_id: int, owner: str, sets: str,
                params: tuple[Any, ...]) -> bool:
        with self._write() as conn:
            cur = conn.execute(
                (f"UPDATE confirmations SET {sets}, claimed_by = NULL, updated_at = %s"
                 " WHERE id = %s AND status = 'pending' AND claimed_by = %s").encode(),
                (*params, self._stamp(), confirmation_id, owner))
            return cur.rowcount == 1

    def mark_confirmation_sent(self, confirmation_id: int, owner: str, code: int | None,
                               response: str) -> bool:
        return self._finish(confirmation_id, owner, "status = 'sent', code = %s, response = %s",
                            (code, response))

    def mark_confirmation_retry(self, confirmation_id: int, owner: str, due_at: datetime,
                                code: int | None, response: str, *,
                                attempts: int | None = None) -> bool:
        return self._finish(
            confirmation_id, owner,
            "due_at = %s, code = %s, response = %s, attempts = COALESCE(%s, attempts)",
            (_stamp_of(due_at), code, response, attempts))

    def mark_confirmation_failed(self, confirmation_id: int, owner: str, code: int | None,
                                 response: str) -> bool:
        return self._finish(confirmation_id, owner,
                            "status = 'failed', code = %s, response = %s", (code, response))

    def get_confirmation(self, confirmation_id: int) -> Confirmation | None:
        row = self._one(f"SELECT {_CONFIRMATION_COLS} FROM confirmations WHERE id = %s",
                        (confirmation_id,))
        return Confirmation(*row) if row else None

    def confirmations(self, status: str | None = "pending",
                      limit: int | None = None) -> list[Confirmation]:
        sql = f"SELECT {_CONFIRMATION_COLS} FROM confirmations"
        params: tuple[Any, ...] = ()
        if status is not None:
            if status not in CONFIRMATION_STATUSES:
                raise LedgerError(f"unknown confirmation status {status!r} "
                                  f"(one of {', '.join(CONFIRMATION_STATUSES)})")
            sql, params = sql + " WHERE status = %s", (status,)
        sql += " ORDER BY requested_at, id"
        if limit is not None:
            sql, params = sql + " LIMIT %s", (*params, limit)
        with self._locked() as conn:
            return [Confirmation(*r) for r in conn.execute(sql.encode(), params).fetchall()]

    def count_confirmations(self, status: str = "pending") -> int:
        row = self._one("SELECT COUNT(*) FROM confirmations WHERE status = %s", (status,))
        assert row is not None
        return int(row[0])

    def next_confirmation_due(self) -> datetime | None:
        row = self._one("SELECT MIN(due_at) FROM confirmations WHERE status = 'pending'")
        return row[0] if row and row[0] else None

    def prune_confirmations(self, before: datetime) -> int:
        with self._write() as conn:
            return conn.execute(
                "DELETE FROM confirmations WHERE status != 'pending' AND requested_at < %s",
                (_stamp_of(before),)).rowcount

    # -- rate-limit counters ------------------------------------------------

    def _clock(self) -> float:
        return self._now().timestamp()

    def limit_incr(self, key: str, expiry: float, amount: int = 1) -> int:
        """One upsert (atomic across processes), after pruning a few expired rows."""
        now = self._clock()
        with self._write() as conn:
            conn.execute("DELETE FROM rate_limits WHERE key IN (SELECT key FROM rate_limits"
                         " WHERE expires_at <= %s LIMIT %s FOR UPDATE SKIP LOCKED)",
                         (now, PRUNE_BATCH))
            row = conn.execute(
                "INSERT INTO rate_limits AS r (key, count, expires_at) VALUES (%s, %s, %s)"
                " ON CONFLICT (key) DO UPDATE SET"
                " count = CASE WHEN r.expires_at <= %s THEN excluded.count"
                "         ELSE r.count + excluded.count END,"
                " expires_at = CASE WHEN r.expires_at <= %s THEN excluded.expires_at"
                "              ELSE r.expires_at END"
                " RETURNING count",
                (key, amount, now + expiry, now, now)).fetchone()
        assert row is not None
        return int(row[0])

    def limit_get(self, key: str) -> int:
        row = self._one("SELECT count FROM rate_limits WHERE key = %s AND expires_at > %s",
                        (key, self._clock()))
        return int(row[0]) if row else 0

    def limit_expiry(self, key: str) -> float:
        now = self._clock()
        row = self._one("SELECT expires_at FROM rate_limits WHERE key = %s AND expires_at > %s",
                        (key, now))
        return float(row[0]) if row else now

    def limit_clear(self, key: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM rate_limits WHERE key = %s", (key,))

    def limit_reset(self) -> int:
        with self._write() as conn:
            return int(conn.execute("DELETE FROM rate_limits").rowcount)

    def limit_rows(self) -> int:
        row = self._one("SELECT COUNT(*) FROM rate_limits")
        return int(row[0]) if row else 0


__all__ = ["PgConnection", "PgMethods"]
