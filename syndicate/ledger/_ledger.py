"""The Ledger: editions, artefacts, deliveries, subscribers and meta in one SQLite file."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any

from ..errors import (
    AlreadyPublished,
    InvalidAddress,
    LedgerError,
    SlotTaken,
    SubscriberExists,
)
from . import _lock, _schema
from ._records import (
    EDITION_STATUSES,
    SUBSCRIBER_STATUSES,
    AddResult,
    Delivery,
    Edition,
    Subscriber,
    email_key,
    from_db,
    normalize_email,
    to_db,
    utcnow,
)

DEFAULT_PATH = Path("var/syndicate.db")
CHUNK = 1000  # rows per keyset page / executemany batch: memory stays flat

_EDITION_COLS = "id, number, slot, slug, title, url, status, claimed_at, published_at, done_at"
_DELIVERY_COLS = "id, edition_id, channel, recipient, status, attempts, code, response, updated_at"
_SUBSCRIBER_COLS = (
    "id, email, name, status, source, created_at, updated_at, confirmed_at, unsubscribed_at"
)


def _edition(row: tuple[Any, ...]) -> Edition:
    return Edition(*row[:7], from_db(row[7]), from_db(row[8]), from_db(row[9]))  # type: ignore[arg-type]


def _delivery(row: tuple[Any, ...]) -> Delivery:
    return Delivery(*row[:8], from_db(row[8]))  # type: ignore[arg-type]


def _subscriber(row: tuple[Any, ...]) -> Subscriber:
    return Subscriber(*row[:5], *(from_db(v) for v in row[5:]))  # type: ignore[arg-type]


class Ledger:
    """The single source of truth for what was published and sent to whom.

    One SQLite connection per Ledger object. **Threads**: a Ledger may be shared
    by several threads (the SMTP channel marks deliveries from its sender
    threads): every use of the connection is serialised by an internal lock,
    held for one statement or one short transaction, never across a ``yield``.
    SQLite writes are serialised per database anyway (one writer at a time in
    WAL mode), so a lock costs nothing in throughput and avoids the busy-retry
    dance that one connection per thread would bring. Separate processes each
    open their own Ledger; they coordinate through SQLite's locks (``BEGIN
    IMMEDIATE`` + the busy ``timeout``) and the :meth:`publisher_lock`.

    **Durability**: each write method is one transaction. In WAL mode with
    ``synchronous=NORMAL`` a committed transaction survives the process being
    killed (SIGKILL) without an fsync per commit; only an OS crash or power loss
    can lose the most recent commits. :meth:`mark_sent` is therefore one small
    commit per message, never batched: the resend window after a kill is the
    messages in flight, nothing more.

    Times are aware datetimes stored as ISO 8601 in UTC; ``now`` is the clock.
    """

    def __init__(
        self,
        path: Path | str = DEFAULT_PATH,
        *,
        now: Callable[[], datetime] = utcnow,
        timeout: float = 10.0,
    ) -> None:
        self.path = Path(path)
        self._now = now
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerError(f"cannot create the folder of ledger {self.path}: {exc}") from exc
        self._conn: sqlite3.Connection | None = _schema.connect(self.path, timeout=timeout)
        try:
            _schema.migrate(self._conn, self.path)
        except BaseException:
            self.close()
            raise

    # -- plumbing ---------------------------------------------------------

    def __repr__(self) -> str:
        return f"Ledger({str(self.path)!r})"

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _stamp(self) -> str:
        return to_db(self._now())

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise LedgerError(f"ledger {self.path} is closed")
        return self._conn

    @contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise LedgerError(f"ledger {self.path}: {exc}") from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: the write lock is taken up front,
        so the reads inside it see the state the writes will commit against."""
        with self._lock:
            conn = self._db
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.IntegrityError:
                raise  # callers translate the constraint they expect
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    raise LedgerError(
                        f"ledger {self.path} is busy: another process held its write lock "
                        f"too long ({exc})"
                    ) from exc
                raise LedgerError(f"ledger {self.path}: {exc}") from exc
            except sqlite3.Error as exc:
                raise LedgerError(f"ledger {self.path}: {exc}") from exc

    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        with self._locked() as conn:
            return conn.execute(sql, params).fetchone()

    def _pages(self, sql: str, params: tuple[Any, ...], chunk: int) -> Iterator[tuple[Any, ...]]:
        """Keyset pagination: ``sql`` ends with ``id > ? ORDER BY id LIMIT ?``.

        Each page is fetched whole under the lock and the cursor closed before
        rows are yielded, so no read cursor stays open while the caller writes
        (or another thread does), and memory is one page, whatever the total.
        """
        last = 0
        while True:
            with self._locked() as conn:
                rows = conn.execute(sql, (*params, last, chunk)).fetchall()
            yield from rows
            if len(rows) < chunk:
                return
            last = rows[-1][0]

    # -- publisher lock ---------------------------------------------------

    def publisher_lock(self, owner: str) -> AbstractContextManager[_lock.LockHolder]:
        """Context manager: be the one publisher on this ledger, or raise ``LockedError``
        naming the holder's pid. See :mod:`syndicate.ledger._lock` for why flock."""
        return _lock.publisher_lock(self.path, owner, self._now())

    # -- editions ---------------------------------------------------------

    def claim_edition(
        self,
        *,
        slot: str,
        slug: str,
        title: str,
        url: str,
        published_at: datetime | None = None,
    ) -> Edition:
        """Atomically create the next edition (status 'claimed') for ``slot``.

        Raises ``SlotTaken(slot, existing_slug)`` if the slot has an edition and
        ``AlreadyPublished(slug)`` if the case study has one. Of two processes
        racing for a slot exactly one wins: the check and the insert run in one
        ``BEGIN IMMEDIATE`` transaction (and UNIQUE constraints back it up).
        ``published_at`` (the date of record) defaults to now.
        """
        stamp = self._stamp()
        published = to_db(published_at) if published_at else stamp
        try:
            with self._write() as conn:
                taken = conn.execute("SELECT slug FROM editions WHERE slot = ?", (slot,)).fetchone()
                if taken:
                    raise SlotTaken(slot, taken[0])
                if conn.execute("SELECT 1 FROM editions WHERE slug = ?", (slug,)).fetchone():
                    raise AlreadyPublished(slug)
                (number,) = conn.execute(
                    "SELECT COALESCE(MAX(number), 0) + 1 FROM editions"
                ).fetchone()
                cur = conn.execute(
                    "INSERT INTO editions (number, slot, slug, title, url, status, claimed_at,"
                    " published_at) VALUES (?, ?, ?, ?, ?, 'claimed', ?, ?)",
                    (number, slot, slug, title, url, stamp, published),
                )
                edition_id = cur.lastrowid
        except sqlite3.IntegrityError as exc:  # cannot happen after the checks; be clear anyway
            raise LedgerError(f"ledger {self.path}: cannot claim slot {slot}: {exc}") from exc
        edition = self.get_edition(int(edition_id or 0))
        assert edition is not None
        return edition

    def get_edition(self, id_or_slug: int | str) -> Edition | None:
        """The edition by id (int) or case-study slug (str), or None."""
        column = "id" if isinstance(id_or_slug, int) else "slug"
        row = self._one(f"SELECT {_EDITION_COLS} FROM editions WHERE {column} = ?", (id_or_slug,))
        return _edition(row) if row else None

    def edition_for_slot(self, slot: str) -> Edition | None:
        row = self._one(f"SELECT {_EDITION_COLS} FROM editions WHERE slot = ?", (slot,))
        return _edition(row) if row else None

    def set_edition_status(self, edition_id: int, status: str) -> Edition:
        """Move an edition to ``status``; 'done' records ``done_at``. Moving back
        from 'done' to 'delivering' is allowed (retrying failed deliveries)."""
        if status not in EDITION_STATUSES:
            raise LedgerError(f"unknown edition status {status!r} (one of {EDITION_STATUSES})")
        stamp = self._stamp()
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE editions SET status = ?,"
                " done_at = CASE WHEN ? = 'done' THEN COALESCE(done_at, ?) ELSE NULL END"
                " WHERE id = ?",
                (status, status, stamp, edition_id),
            )
            if cur.rowcount == 0:
                raise LedgerError(f"no edition with id {edition_id} in {self.path}")
        edition = self.get_edition(edition_id)
        assert edition is not None
        return edition

    def unfinished_editions(self) -> list[Edition]:
        """Editions claimed or delivering, oldest first: finish these before anything new."""
        with self._locked() as conn:
            rows = conn.execute(
                f"SELECT {_EDITION_COLS} FROM editions WHERE status != 'done' ORDER BY number"
            ).fetchall()
        return [_edition(r) for r in rows]

    def editions(self, status: str | None = "done", limit: int | None = None) -> list[Edition]:
        """Editions newest first (by number); ``status=None`` for all."""
        sql, params = f"SELECT {_EDITION_COLS} FROM editions", ()
        if status is not None:
            sql, params = sql + " WHERE status = ?", (status,)
        sql += " ORDER BY number DESC"
        if limit is not None:
            sql, params = sql + " LIMIT ?", (*params, limit)
        with self._locked() as conn:
            return [_edition(r) for r in conn.execute(sql, params).fetchall()]

    def published_slugs(self) -> set[str]:
        """Every slug with an edition, finished or not: none of them is published again."""
        with self._locked() as conn:
            return {r[0] for r in conn.execute("SELECT slug FROM editions")}

    # -- artefacts --------------------------------------------------------

    def store_artefacts(
        self, edition_id: int, artefacts: Mapping[str, str], *, replace: bool = False
    ) -> None:
        """Keep what was rendered for an edition so a resume resends exactly that.

        Write-once: storing the same text again is a no-op; different text for a
        stored name raises ``LedgerError`` unless ``replace=True``.
        """
        stamp = self._stamp()
        try:
            with self._write() as conn:
                for name, text in artefacts.items():
                    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
                    row = conn.execute(
                        "SELECT sha256 FROM artefacts WHERE edition_id = ? AND name = ?",
                        (edition_id, name),
                    ).fetchone()
                    if row and row[0] == digest:
                        continue
                    if row and not replace:
                        raise LedgerError(
                            f"edition {edition_id} already has a different artefact {name!r}: "
                            "artefacts are kept as first rendered (pass replace=True to overwrite)"
                        )
                    conn.execute(
                        "INSERT INTO artefacts (edition_id, name, content, sha256, created_at)"
                        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (edition_id, name) DO UPDATE SET"
                        " content = excluded.content, sha256 = excluded.sha256,"
                        " created_at = excluded.created_at",
                        (edition_id, name, text, digest, stamp),
                    )
        except sqlite3.IntegrityError as exc:
            raise LedgerError(f"no edition with id {edition_id} in {self.path}") from exc

    def artefact(self, edition_id: int, name: str) -> str | None:
        row = self._one(
            "SELECT content FROM artefacts WHERE edition_id = ? AND name = ?", (edition_id, name)
        )
        return row[0] if row else None

    def artefact_hashes(self, edition_id: int) -> dict[str, str]:
        """``{name: sha256 hex}`` of the stored artefacts of an edition."""
        with self._locked() as conn:
            return dict(conn.execute(
                "SELECT name, sha256 FROM artefacts WHERE edition_id = ? ORDER BY name",
                (edition_id,),
            ))

    # -- deliveries -------------------------------------------------------

    def ensure_delivery(self, edition_id: int, channel: str, recipient: str = "") -> Delivery:
        """The delivery row for (edition, channel, recipient), created 'pending' if missing."""
        self.ensure_deliveries(edition_id, channel, (recipient,))
        row = self._one(
            f"SELECT {_DELIVERY_COLS} FROM deliveries"
            " WHERE edition_id = ? AND channel = ? AND recipient = ?",
            (edition_id, channel, recipient),
        )
        assert row is not None
        return _delivery(row)

    def ensure_deliveries(
        self, edition_id: int, channel: str, recipients: Iterable[str], *, chunk: int = 5000
    ) -> int:
        """Create the missing 'pending' rows for ``recipients``; return how many were new.

        Streams: ``recipients`` is consumed ``chunk`` at a time (each chunk one
        INSERT OR IGNORE executemany in one transaction), so a generator of
        100,000 addresses never sits in memory. Existing rows are left alone
        (idempotent: a resume calls this again).
        """
        stamp = self._stamp()
        iterator = iter(recipients)
        created = 0
        while True:
            batch = [(edition_id, channel, r, stamp, stamp) for r in islice(iterator, chunk)]
            if not batch:
                return created
            try:
                with self._write() as conn:
                    before = conn.total_changes
                    conn.executemany(
                        "INSERT OR IGNORE INTO deliveries"
                        " (edition_id, channel, recipient, created_at, updated_at)"
                        " VALUES (?, ?, ?, ?, ?)",
                        batch,
                    )
                    created += conn.total_changes - before
            except sqlite3.IntegrityError as exc:  # only the FK can fail: OR IGNORE
                raise LedgerError(f"no edition with id {edition_id} in {self.path}") from exc

    def get_delivery(self, delivery_id: int) -> Delivery | None:
        row = self._one(f"SELECT {_DELIVERY_COLS} FROM deliveries WHERE id = ?", (delivery_id,))
        return _delivery(row) if row else None

    def pending_deliveries(
        self, edition_id: int, channel: str, *, chunk: int = CHUNK
    ) -> Iterator[Delivery]:
        """Pending rows of (edition, channel) in id order, streamed by keyset pages.

        Rows marked while iterating are simply not seen again (the next page
        starts after the last id), so marking as you go is the intended use.
        """
        rows = self._pages(
            f"SELECT {_DELIVERY_COLS} FROM deliveries WHERE edition_id = ? AND channel = ?"
            " AND status = 'pending' AND id > ? ORDER BY id LIMIT ?",
            (edition_id, channel),
            chunk,
        )
        return (_delivery(r) for r in rows)

    def mark_sent(self, delivery_id: int, response: str = "", code: int | None = None) -> None:
        """Record a successful send: one UPDATE, its own commit (see class doc)."""
        with self._locked() as conn:
            cur = conn.execute(
                "UPDATE deliveries SET status = 'sent', attempts = attempts + 1, code = ?,"
                " response = ?, updated_at = ? WHERE id = ?",
                (code, response, self._stamp(), delivery_id),
            )
        if cur.rowcount == 0:
            raise LedgerError(f"no delivery with id {delivery_id} in {self.path}")

    def mark_failed(
        self,
        delivery_id: int,
        code: int | None,
        message: str,
        permanent: bool = True,
    ) -> None:
        """Record a failed attempt with the server's ``code`` and ``message``.

        ``permanent=True``: status 'failed' (only :meth:`reset_failed`, i.e.
        ``retry-failed``, sends it again). ``permanent=False``: the attempt is
        counted and the answer kept, but the row stays 'pending', so the next
        pass or a resume tries again. A row already 'sent' stays 'sent': a
        late failure report must never cause a second copy.
        """
        status = "failed" if permanent else "pending"
        with self._locked() as conn:
            cur = conn.execute(
                "UPDATE deliveries SET status = ?, attempts = attempts + 1, code = ?,"
                " response = ?, updated_at = ? WHERE id = ? AND status != 'sent'",
                (status, code, message, self._stamp(), delivery_id),
            )
        if cur.rowcount == 0 and self.get_delivery(delivery_id) is None:
            raise LedgerError(f"no delivery with id {delivery_id} in {self.path}")

    def delivery_counts(self, edition_id: int) -> dict[str, dict[str, int]]:
        """``{channel: {"sent": n, "failed": n, "pending": n}}`` for an edition."""
        counts: dict[str, dict[str, int]] = {}
        with self._locked() as conn:
            for channel, status, n in conn.execute(
                "SELECT channel, status, COUNT(*) FROM deliveries WHERE edition_id = ?"
                " GROUP BY channel, status ORDER BY channel",
                (edition_id,),
            ):
                counts.setdefault(channel, dict.fromkeys(("sent", "failed", "pending"), 0))
                counts[channel][status] = n
        return counts

    def failed_deliveries(self, edition_id: int | None = None) -> list[Delivery]:
        """Failed rows (of one edition, or all), in id order."""
        sql = f"SELECT {_DELIVERY_COLS} FROM deliveries WHERE status = 'failed'"
        params: tuple[Any, ...] = ()
        if edition_id is not None:
            sql, params = sql + " AND edition_id = ?", (edition_id,)
        with self._locked() as conn:
            return [_delivery(r) for r in conn.execute(sql + " ORDER BY id", params)]

    def reset_failed(self, edition_id: int | None = None, channel: str | None = None) -> int:
        """Put failed rows back to 'pending' (``retry-failed``); return how many.

        Their editions go back from 'done' to 'delivering', so that an edition
        with pending rows is never 'done' and an interrupted retry is finished
        by the next resume like any other unfinished edition.
        """
        where, params = "status = 'failed'", []
        if edition_id is not None:
            where += " AND edition_id = ?"
            params.append(edition_id)
        if channel is not None:
            where += " AND channel = ?"
            params.append(channel)
        with self._write() as conn:
            conn.execute(
                "UPDATE editions SET status = 'delivering', done_at = NULL WHERE status = 'done'"
                f" AND id IN (SELECT DISTINCT edition_id FROM deliveries WHERE {where})",
                params,
            )
            cur = conn.execute(
                f"UPDATE deliveries SET status = 'pending', updated_at = ? WHERE {where}",
                [self._stamp(), *params],
            )
            return cur.rowcount

    # -- subscribers ------------------------------------------------------

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
                return AddResult(added, present, tuple(invalid))
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

    def remove_subscriber(self, email: str) -> bool:
        """Delete the subscriber; False if there was none. (Their past delivery
        rows stay: they record what was sent.)"""
        current = self.get_subscriber(email)
        if current is None:
            return False
        with self._write() as conn:
            conn.execute("DELETE FROM subscribers WHERE id = ?", (current.id,))
        return True

    # -- meta -------------------------------------------------------------

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        """A small persistent value (scheduler state, a local secret…)."""
        row = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return row[0] if row else default

    def set_meta(self, key: str, value: str | None) -> None:
        """Set ``key`` (``None`` deletes it)."""
        with self._write() as conn:
            if value is None:
                conn.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, str(value)),
                )


def _check_subscriber_status(status: str) -> None:
    if status not in SUBSCRIBER_STATUSES:
        raise LedgerError(
            f"unknown subscriber status {status!r} (one of {', '.join(SUBSCRIBER_STATUSES)})"
        )
