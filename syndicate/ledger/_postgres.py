"""The PostgreSQL ledger: the same port, records and contract as :class:`SqliteLedger`.

Opened by :func:`syndicate.ledger.open_ledger` for a ``postgresql://user@host:port/db``
URL (psycopg 3, imported here only: a SQLite installation never loads it). The tables
live in the ``syndicate`` schema of that database, migrated by :mod:`._pg_schema`.

**Threads**: one connection per ledger object, in autocommit mode, every use serialised
by an internal lock held for one statement or one short transaction, never across a
``yield`` (the SQLite class's rule, so callers see the same behaviour). A pool would let
threads of one process write in parallel; nothing needs that yet (the SMTP channel's
threads spend their time in SMTP, not in the ledger), and workers will be processes.

**Processes** coordinate through PostgreSQL: unique constraints, ``LOCK TABLE editions``
for the claim (so the slot/slug checks and ``MAX(number) + 1`` see every committed
claim, exactly as SQLite's ``BEGIN IMMEDIATE``), ``FOR UPDATE SKIP LOCKED`` for the
confirmation leases, ``INSERT … ON CONFLICT`` for counters, and a session advisory lock
for the publisher lock (released by the server when the holder's session ends, however
the holder dies: the flock property, over the network). ``timeout`` bounds the wait for
a connection and for any lock (``lock_timeout``).

**Times** are ``timestamptz``; the session runs in UTC so they come back as aware UTC
datetimes, as from SQLite. The delivery, subscriber, confirmation and rate-limit methods
are in :mod:`._pg_methods`.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config_snapshot import user_cache_dir
from ..digest import sha256_hex
from ..errors import AlreadyPublished, LedgerError, LedgerUnavailable, LockedError, SlotTaken
from ._edition import Edition
from ._lock import LockHolder
from ._pg_claims import PgClaimMethods
from ._pg_methods import PgMethods
from ._pg_queries import PgAnalyticsMethods, PgEventMethods
from ._pg_schema import LOCK_CLASS, PUBLISHER_LOCK, SCHEMA, migrate, one_line, schema_version
from ._port import LedgerPort
from ._records import utcnow
from ._statuses import EDITION_STATUSES
from ._url import LedgerLocation, display_postgres

if TYPE_CHECKING:
    import psycopg

_EDITION_COLS = "id, number, slot, slug, title, url, status, claimed_at, published_at, done_at"
_INSTALL = "pip install 'syndicate[postgresql]'"


def _edition(row: tuple[Any, ...]) -> Edition:
    return Edition(*row)


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise LedgerError(
            f"a PostgreSQL ledger needs psycopg, which is not installed: {_INSTALL}"
        ) from None
    return psycopg


#: The lease when the caller names none (``[schedule] failover``'s default).
DEFAULT_LEASE = 30.0


def lock_settings(lease: float) -> tuple[str, dict[str, Any]]:
    """Server options and libpq parameters of the publisher lock's connection for a lease.

    The lock is a session advisory lock, so it lives exactly as long as the server keeps
    that session. A holder that dies frees it at once (the kernel closes the socket); a
    holder whose machine or network vanished is only noticed through TCP: server-side
    keepalives (idle ``lease/3``, then 3 probes ``lease/9`` apart) end its session, and the
    lock, within about ``2/3`` of the lease. The holder's own side is shorter, so that it
    stops publishing *before* anyone else can take over: client keepalives alike, plus
    ``tcp_user_timeout`` = ``lease/3`` so that the liveness query of a partitioned holder
    fails after at most a third of the lease instead of TCP's ~15 minutes of retries.
    A heartbeat row was rejected: it needs clocks to agree across machines and a writer
    that never stalls, and it would still not stop the old holder's in-flight writes.
    """
    idle, interval = max(1, int(lease // 3)), max(1, int(lease // 9))
    server = (f"-c tcp_keepalives_idle={idle} -c tcp_keepalives_interval={interval}"
              " -c tcp_keepalives_count=3")
    client = {"keepalives": 1, "keepalives_idle": idle, "keepalives_interval": interval,
              "keepalives_count": 3, "tcp_user_timeout": max(1000, int(lease * 1000 // 3))}
    return server, client


def connect(location: LedgerLocation, *, timeout: float, application: str = "syndicate",
            options: str = "", params: Mapping[str, Any] | None = None,
            ) -> psycopg.Connection[tuple[Any, ...]]:
    """A connection with the ledger's session settings, or one line naming host and db."""
    pg = _psycopg()
    shown = display_postgres(location)
    kwargs: dict[str, Any] = dict(params or {})
    if location.password_env:
        password = os.environ.get(location.password_env)
        if password is None:
            raise LedgerError(
                f"cannot connect to the ledger {shown}: the environment variable "
                f"{location.password_env} (storage.database_password_env) is not set")
        kwargs["password"] = password
    millis = max(1, int(timeout * 1000))
    try:
        conn: psycopg.Connection[tuple[Any, ...]] = pg.connect(
            location.conninfo, autocommit=True, connect_timeout=max(2, round(timeout)),
            application_name=application,
            options=f"-c search_path={SCHEMA} -c TimeZone=UTC -c lock_timeout={millis}"
                    f" {options}".rstrip(),
            **kwargs)
    except pg.Error as exc:
        reason = one_line(exc).removeprefix("connection failed: ")
        raise LedgerUnavailable(f"cannot connect to the ledger {shown}: {reason}") from None
    return conn


def exists(location: LedgerLocation, *, timeout: float = 10.0) -> bool:
    """Whether the ledger's schema was ever created in that database (nothing created)."""
    with connect(location, timeout=timeout) as conn:
        return schema_version(conn) > 0


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"the ledger stores aware datetimes only, got naive {moment!r}")
    return moment.astimezone(UTC)


class PostgresLedger(PgMethods, PgClaimMethods, PgEventMethods, PgAnalyticsMethods):
    """The ledger in a PostgreSQL database (see the module for the rules)."""

    def __init__(self, location: LedgerLocation, *, now: Callable[[], datetime] = utcnow,
                 timeout: float = 10.0) -> None:
        self.location = location
        self.shown = display_postgres(location)
        self._now = now
        self._timeout = timeout
        self._lock = threading.RLock()
        self._lock_conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = connect(
            location, timeout=timeout)
        try:
            migrate(self._conn, self.shown)
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.shown!r})"

    # -- publisher lock ---------------------------------------------------

    #: Several machines can share the database: a second ``syndicate run`` waits.
    supports_standby = True

    def publisher_lock(self, owner: str, *, lease: float | None = None
                       ) -> AbstractContextManager[LockHolder]:
        """Be the one publisher on this ledger, or raise ``LockedError`` naming the holder
        (its pid, host, owner and since). A session advisory lock on a connection of its
        own, held for the ``with`` block: PostgreSQL drops it when that session ends, within
        about 2/3 of ``lease`` when the holder's machine vanishes (:func:`lock_settings`)."""
        return self._publisher_lock(owner, self._now(), lease or DEFAULT_LEASE)

    def publisher_lock_alive(self) -> bool:
        """Ask the server, on the lock's own connection, whether this session still holds
        the advisory lock. False when the connection is gone: closed, terminated by the
        server, or silent for ``tcp_user_timeout`` (a third of the lease)."""
        conn = self._lock_conn
        if conn is None or conn.closed:
            return False
        try:
            row = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid()"
                " AND locktype = 'advisory' AND granted AND classid::bigint = %s"
                " AND objid::bigint = %s AND objsubid = 2", (LOCK_CLASS, PUBLISHER_LOCK),
            ).fetchone()
        except _psycopg().Error:
            return False
        return bool(row and row[0])

    @contextmanager
    def _publisher_lock(self, owner: str, now: datetime, lease: float
                        ) -> Iterator[LockHolder]:
        pg = _psycopg()
        server, client = lock_settings(lease)
        conn = connect(self.location, timeout=self._timeout, application="syndicate publisher",
                       options=server, params=client)
        try:
            row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)",
                               (LOCK_CLASS, PUBLISHER_LOCK)).fetchone()
            if not row or not row[0]:
                holder = self._holder(conn)
                who = ("another process" if holder is None else
                       f"pid {holder.pid} ({holder.owner}, since {holder.since})")
                error = LockedError(
                    f"ledger {self.shown} is locked by {who}: another publisher is running "
                    "on this ledger; stop it first or wait for it")
                error.holder = holder  # type: ignore[attr-defined]
                error.lock_file = None  # type: ignore[attr-defined]
                raise error
            me = LockHolder(os.getpid(), owner.replace("\t", " ").replace("\n", " "),
                            now.isoformat(timespec="seconds"))
            with conn.transaction():
                # Holding the lock: any other row names a session that let go or died.
                conn.execute("DELETE FROM publisher")
                conn.execute("INSERT INTO publisher (backend_pid, pid, host, owner, since)"
                             " VALUES (pg_backend_pid(), %s, %s, %s, %s)",
                             (me.pid, socket.gethostname(), me.owner, me.since))
            self._lock_conn = conn
            try:
                yield me
            finally:
                self._lock_conn = None
                if not conn.closed and not conn.broken:
                    conn.execute("DELETE FROM publisher WHERE backend_pid = pg_backend_pid()")
                    conn.execute("SELECT pg_advisory_unlock(%s, %s)",
                                  (LOCK_CLASS, PUBLISHER_LOCK))
        except pg.Error as exc:
            raise LedgerError(f"ledger {self.shown}: publisher lock: {one_line(exc)}") from exc
        finally:
            conn.close()

    @staticmethod
    def _holder(conn: psycopg.Connection[tuple[Any, ...]]) -> LockHolder | None:
        """The row of the session that holds the lock now (a stale row names nobody)."""
        row = conn.execute(
            "SELECT p.pid, p.host, p.owner, p.since FROM publisher p JOIN pg_locks l"
            " ON l.pid = p.backend_pid AND l.locktype = 'advisory' AND l.granted"
            " AND l.classid::bigint = %s AND l.objid::bigint = %s AND l.objsubid = 2"
            " AND l.database = (SELECT oid FROM pg_database"
            "                   WHERE datname = current_database())",
            (LOCK_CLASS, PUBLISHER_LOCK)).fetchone()
        if row is None:
            return None
        pid, host, owner, since = row
        here = host == socket.gethostname()
        return LockHolder(int(pid), owner if here else f"{owner} on {host}", since)

    # -- caches -----------------------------------------------------------

    def cache_dir(self) -> Path:
        """``$XDG_CACHE_HOME/syndicate/postgresql-<hash>`` (``~/.cache`` without it): a
        local folder per database (the hash of user@host:port/db), since the ledger has
        no folder of its own. Each machine fits its own relatedness index."""
        return user_cache_dir() / f"postgresql-{sha256_hex(self.shown.encode())[:16]}"

    # -- editions ---------------------------------------------------------

    def claim_edition(self, *, slot: str, slug: str, title: str, url: str,
                      published_at: datetime | None = None) -> Edition:
        """Atomically create the next edition (see ``SqliteLedger.claim_edition``): the
        table lock makes the checks and the number see every committed claim."""
        pg = _psycopg()
        stamp = self._stamp()
        published = _aware(published_at) if published_at else stamp
        try:
            with self._write() as conn:
                conn.execute("LOCK TABLE editions IN SHARE ROW EXCLUSIVE MODE")
                taken = conn.execute("SELECT slug FROM editions WHERE slot = %s",
                                     (slot,)).fetchone()
                if taken:
                    raise SlotTaken(slot, taken[0])
                if conn.execute("SELECT 1 FROM editions WHERE slug = %s", (slug,)).fetchone():
                    raise AlreadyPublished(slug)
                row = conn.execute(
                    "INSERT INTO editions (number, slot, slug, title, url, status, claimed_at,"
                    " published_at) SELECT COALESCE(MAX(number), 0) + 1, %s, %s, %s, %s,"
                    f" 'claimed', %s, %s FROM editions RETURNING {_EDITION_COLS}",
                    (slot, slug, title, url, stamp, published)).fetchone()
        except pg.IntegrityError as exc:  # cannot happen after the checks
            raise LedgerError(f"ledger {self.shown}: cannot claim slot {slot}: "
                              f"{one_line(exc)}") from exc
        assert row is not None
        return _edition(row)

    def get_edition(self, id_or_slug: int | str) -> Edition | None:
        column = "id" if isinstance(id_or_slug, int) else "slug"
        row = self._one(f"SELECT {_EDITION_COLS} FROM editions WHERE {column} = %s",
                        (id_or_slug,))
        return _edition(row) if row else None

    def edition_for_slot(self, slot: str) -> Edition | None:
        row = self._one(f"SELECT {_EDITION_COLS} FROM editions WHERE slot = %s", (slot,))
        return _edition(row) if row else None

    def set_edition_status(self, edition_id: int, status: str) -> Edition:
        if status not in EDITION_STATUSES:
            raise LedgerError(f"unknown edition status {status!r} (one of {EDITION_STATUSES})")
        with self._write() as conn:
            row = conn.execute(
                "UPDATE editions SET status = %s, done_at = CASE WHEN %s = 'done'"
                " THEN COALESCE(done_at, %s) ELSE NULL END WHERE id = %s"
                f" RETURNING {_EDITION_COLS}",
                (status, status, self._stamp(), edition_id)).fetchone()
        if row is None:
            raise LedgerError(f"no edition with id {edition_id} in {self.shown}")
        return _edition(row)

    def set_edition_title(self, edition_id: int, title: str) -> None:
        with self._write() as conn:
            cur = conn.execute("UPDATE editions SET title = %s WHERE id = %s", (title, edition_id))
            if cur.rowcount == 0:
                raise LedgerError(f"no edition with id {edition_id} in {self.shown}")

    def unfinished_editions(self) -> list[Edition]:
        with self._locked() as conn:
            rows = conn.execute(f"SELECT {_EDITION_COLS} FROM editions WHERE status != 'done'"
                                " ORDER BY number").fetchall()
        return [_edition(r) for r in rows]

    def editions(self, status: str | None = "done", limit: int | None = None) -> list[Edition]:
        sql, params = f"SELECT {_EDITION_COLS} FROM editions", tuple[str | int, ...]()
        if status is not None:
            sql, params = sql + " WHERE status = %s", (status,)
        sql += " ORDER BY number DESC"
        if limit is not None:
            sql, params = sql + " LIMIT %s", (*params, limit)
        with self._locked() as conn:
            return [_edition(r) for r in conn.execute(sql, params).fetchall()]

    def edition_keys(self) -> list[tuple[int, int, str]]:
        with self._locked() as conn:
            return conn.execute(
                "SELECT id, number, slug FROM editions ORDER BY number").fetchall()

    def published_slugs(self) -> set[str]:
        with self._locked() as conn:
            return {r[0] for r in conn.execute("SELECT slug FROM editions").fetchall()}

    # -- artefacts --------------------------------------------------------

    def store_artefacts(self, edition_id: int, artefacts: Mapping[str, str], *,
                        replace: bool = False) -> None:
        """Write-once artefacts (see ``SqliteLedger.store_artefacts``), in one transaction."""
        pg = _psycopg()
        stamp = self._stamp()
        try:
            with self._write() as conn:
                for name, text in artefacts.items():
                    digest = sha256_hex(text.encode("utf-8"))
                    row = conn.execute(
                        "SELECT sha256 FROM artefacts WHERE edition_id = %s AND name = %s"
                        " FOR UPDATE", (edition_id, name)).fetchone()
                    if row and row[0] == digest:
                        continue
                    if row and not replace:
                        raise LedgerError(
                            f"edition {edition_id} already has a different artefact {name!r}: "
                            "artefacts are kept as first rendered (pass replace=True to overwrite)"
                        )
                    conn.execute(
                        "INSERT INTO artefacts (edition_id, name, content, sha256, created_at)"
                        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (edition_id, name) DO UPDATE"
                        " SET content = excluded.content, sha256 = excluded.sha256,"
                        " created_at = excluded.created_at",
                        (edition_id, name, text, digest, stamp))
        except pg.errors.ForeignKeyViolation as exc:
            raise LedgerError(f"no edition with id {edition_id} in {self.shown}") from exc

    def artefact(self, edition_id: int, name: str) -> str | None:
        row = self._one("SELECT content FROM artefacts WHERE edition_id = %s AND name = %s",
                        (edition_id, name))
        return row[0] if row else None

    def artefacts_named(self, name: str, edition_ids: Iterable[int] | None = None, *,
                        digests: bool = False) -> dict[int, str]:
        column = "sha256" if digests else "content"
        sql = f"SELECT edition_id, {column} FROM artefacts WHERE name = %s"
        with self._locked() as conn:
            if edition_ids is None:
                return {r[0]: r[1] for r in conn.execute(sql, (name,)).fetchall()}
            ids = list(dict.fromkeys(edition_ids))
            return {r[0]: r[1] for r in conn.execute(
                sql + " AND edition_id = ANY(%s)", (name, ids)).fetchall()}

    def artefact_hashes(self, edition_id: int) -> dict[str, str]:
        with self._locked() as conn:
            return {r[0]: r[1] for r in conn.execute(
                "SELECT name, sha256 FROM artefacts WHERE edition_id = %s ORDER BY name",
                (edition_id,)).fetchall()}

    # -- meta -------------------------------------------------------------

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self._one("SELECT value FROM meta WHERE key = %s", (key,))
        return row[0] if row else default

    def set_meta(self, key: str, value: str | None) -> None:
        with self._write() as conn:
            if value is None:
                conn.execute("DELETE FROM meta WHERE key = %s", (key,))
            else:
                conn.execute("INSERT INTO meta (key, value) VALUES (%s, %s)"
                             " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                             (key, str(value)))


# mypy --strict checks here that the PostgreSQL ledger implements the whole port.
_CONFORMS: type[LedgerPort] = PostgresLedger

__all__ = ["PostgresLedger", "connect", "exists"]
