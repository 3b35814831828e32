"""Connection settings and numbered schema migrations of the ledger.

``MIGRATIONS[n]`` takes a database from version ``n`` to ``n + 1``; the version
lives in ``PRAGMA user_version``. Each step runs in its own ``BEGIN IMMEDIATE``
transaction together with the version bump, so a failed step leaves the
database exactly at the previous version and two processes opening a fresh file
at once cannot both apply a step (the second one re-reads the version under the
write lock and finds nothing to do). Never edit a released step: append one.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

from ..errors import LedgerError

# ``PRAGMA application_id``: "SYND". Lets us refuse someone else's SQLite file
# instead of adding our tables to it.
APPLICATION_ID = 0x53594E44

MIGRATIONS: tuple[str, ...] = (
    # 1: editions, artefacts, deliveries, subscribers, meta.
    """
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );

    CREATE TABLE editions (
        id           INTEGER PRIMARY KEY,
        number       INTEGER NOT NULL UNIQUE,
        slot         TEXT NOT NULL UNIQUE,
        slug         TEXT NOT NULL UNIQUE,   -- a case study is never published twice
        title        TEXT NOT NULL,
        url          TEXT NOT NULL,          -- also the feed GUID
        status       TEXT NOT NULL DEFAULT 'claimed'
                     CHECK (status IN ('claimed', 'delivering', 'done')),
        claimed_at   TEXT NOT NULL,
        published_at TEXT NOT NULL,
        done_at      TEXT
    );

    CREATE TABLE artefacts (
        id         INTEGER PRIMARY KEY,
        edition_id INTEGER NOT NULL REFERENCES editions (id) ON DELETE CASCADE,
        name       TEXT NOT NULL,
        content    TEXT NOT NULL,
        sha256     TEXT NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (edition_id, name)
    );

    CREATE TABLE deliveries (
        id         INTEGER PRIMARY KEY,
        edition_id INTEGER NOT NULL REFERENCES editions (id) ON DELETE CASCADE,
        channel    TEXT NOT NULL,
        recipient  TEXT NOT NULL DEFAULT '',
        status     TEXT NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'sent', 'failed')),
        attempts   INTEGER NOT NULL DEFAULT 0,
        code       INTEGER,
        response   TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (edition_id, channel, recipient)
    );
    -- Partial indexes: marking a row sent only removes an entry from the
    -- pending index (cheap), and the keyset scans of pending / failed rows
    -- never walk the (many) sent ones.
    CREATE INDEX deliveries_pending ON deliveries (edition_id, channel, id)
        WHERE status = 'pending';
    CREATE INDEX deliveries_failed ON deliveries (edition_id, channel, id)
        WHERE status = 'failed';

    CREATE TABLE subscribers (
        id              INTEGER PRIMARY KEY,
        email           TEXT NOT NULL,          -- normalised, as displayed and sent to
        email_key       TEXT NOT NULL UNIQUE,   -- casefolded: uniqueness ignores case
        name            TEXT,
        status          TEXT NOT NULL
                        CHECK (status IN ('pending', 'active', 'unsubscribed', 'bounced')),
        source          TEXT NOT NULL DEFAULT '',
        created_at      TEXT NOT NULL,
        updated_at      TEXT NOT NULL,
        confirmed_at    TEXT,
        unsubscribed_at TEXT
    );
    CREATE INDEX subscribers_status ON subscribers (status, id);
    """,
    # The confirmation outbox: the double opt-in email to send, one row per request
    # (see syndicate.ledger._confirmations and syndicate.confirmations).
    """
    CREATE TABLE confirmations (
        id           INTEGER PRIMARY KEY,
        email        TEXT NOT NULL,          -- normalised, as sent to
        email_key    TEXT NOT NULL,          -- casefolded (see subscribers.email_key)
        status       TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sent', 'failed')),
        requested_at TEXT NOT NULL,          -- the token's expiry counts from here
        due_at       TEXT NOT NULL,          -- next attempt, or end of a sender's lease
        attempts     INTEGER NOT NULL DEFAULT 0,
        claimed_by   TEXT,                   -- the sender holding the lease, if any
        code         INTEGER,
        response     TEXT NOT NULL DEFAULT '',
        updated_at   TEXT NOT NULL
    );
    -- At most one email waiting per address: a second request adds nothing.
    CREATE UNIQUE INDEX confirmations_one_pending ON confirmations (email_key)
        WHERE status = 'pending';
    CREATE INDEX confirmations_due ON confirmations (due_at, id) WHERE status = 'pending';
    CREATE INDEX confirmations_by_address ON confirmations (email_key, requested_at);
    """,
    # Rate-limit counters of the web app's subscribe form (fixed windows), shared by
    # every `serve` process; keys are HMACs, never addresses or IPs (see _limits.py).
    """
    CREATE TABLE rate_limits (
        key        TEXT PRIMARY KEY,
        count      INTEGER NOT NULL,
        expires_at REAL NOT NULL      -- Unix time the window ends
    ) WITHOUT ROWID;
    CREATE INDEX rate_limits_expiry ON rate_limits (expires_at);
    """,
    # 4: many senders (`syndicate worker`). A delivery row is claimed by one worker for a
    # lease (``claimed_by``, ``claimed_until``, renewed by its heartbeat, cleared when the
    # row is marked); ``handoffs`` names the (edition, channel) pairs whose rows the
    # publisher left to the workers. The row stays the queue: no second source of truth.
    """
    ALTER TABLE deliveries ADD COLUMN claimed_by TEXT;
    ALTER TABLE deliveries ADD COLUMN claimed_until TEXT;
    CREATE TABLE handoffs (
        edition_id INTEGER NOT NULL REFERENCES editions (id) ON DELETE CASCADE,
        channel    TEXT NOT NULL,
        handed_at  TEXT NOT NULL,
        PRIMARY KEY (edition_id, channel)
    );
    -- The claims of one owner (its heartbeat renews them): small, since a mark clears one.
    CREATE INDEX deliveries_claimed ON deliveries (claimed_by) WHERE claimed_by IS NOT NULL;
    -- A channel's `rate` across every worker: the next free send slot (Unix time).
    CREATE TABLE send_rates (
        channel TEXT PRIMARY KEY,
        next_at REAL NOT NULL
    ) WITHOUT ROWID;
    """,
    # 5: bounces and complaints learnt after the send (syndicate.bounces), and the
    # subscriber status 'complained'. SQLite cannot alter a CHECK: the subscribers
    # table is rebuilt (nothing references it by foreign key).
    """
    CREATE TABLE subscribers_v4 (
        id              INTEGER PRIMARY KEY,
        email           TEXT NOT NULL,
        email_key       TEXT NOT NULL UNIQUE,
        name            TEXT,
        status          TEXT NOT NULL
                        CHECK (status IN ('pending', 'active', 'unsubscribed', 'bounced',
                                          'complained')),
        source          TEXT NOT NULL DEFAULT '',
        created_at      TEXT NOT NULL,
        updated_at      TEXT NOT NULL,
        confirmed_at    TEXT,
        unsubscribed_at TEXT
    );
    INSERT INTO subscribers_v4 (id, email, email_key, name, status, source, created_at,
                                updated_at, confirmed_at, unsubscribed_at)
        SELECT id, email, email_key, name, status, source, created_at, updated_at,
               confirmed_at, unsubscribed_at FROM subscribers;
    DROP TABLE subscribers;
    ALTER TABLE subscribers_v4 RENAME TO subscribers;
    CREATE INDEX subscribers_status ON subscribers (status, id);

    CREATE TABLE delivery_events (
        id          INTEGER PRIMARY KEY,
        event_id    TEXT NOT NULL UNIQUE,    -- a report's Message-ID: recorded once
        delivery_id INTEGER NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
        recipient   TEXT NOT NULL,           -- the delivery's, casefolded (soft counts)
        kind        TEXT NOT NULL CHECK (kind IN ('hard', 'soft', 'complaint')),
        status      TEXT NOT NULL DEFAULT '',
        diagnostic  TEXT NOT NULL DEFAULT '',
        source      TEXT NOT NULL DEFAULT '',
        occurred_at TEXT NOT NULL,
        recorded_at TEXT NOT NULL
    );
    CREATE INDEX delivery_events_delivery ON delivery_events (delivery_id);
    CREATE INDEX delivery_events_recipient ON delivery_events (recipient, kind, occurred_at);
    """,
    # 6 (analytics): click and open counts per (edition, link), one upsert per hit; the
    # hits of a delivery (so of a subscriber) only with [analytics] per_subscriber.
    """
    CREATE TABLE link_counts (
        id         INTEGER PRIMARY KEY,
        edition_id INTEGER NOT NULL REFERENCES editions (id) ON DELETE CASCADE,
        link       INTEGER NOT NULL,    -- index in tracked-links.json; -1: the open pixel
        hits       INTEGER NOT NULL DEFAULT 0,
        UNIQUE (edition_id, link)
    );
    CREATE TABLE delivery_hits (
        id          INTEGER PRIMARY KEY,
        delivery_id INTEGER NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
        link        INTEGER NOT NULL,
        hit_at      TEXT NOT NULL
    );
    CREATE INDEX delivery_hits_delivery ON delivery_hits (delivery_id);
    """,
    # 7: one artefact of every edition by name (``artefacts_named``: the drift check of
    # ``status`` reads the digests of 5,000 snapshots). Without it that query scans the
    # table, and ``sha256``, stored after the large ``content``, is reached by walking each
    # row's overflow pages; with it the digests are read from the index alone.
    """
    CREATE INDEX artefacts_by_name ON artefacts (name, edition_id, sha256);
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


def connect(path: Path, *, timeout: float) -> sqlite3.Connection:
    """Open ``path`` with the ledger's settings (WAL, synchronous=NORMAL, FKs, busy timeout).

    ``isolation_level=None``: no implicit transactions; the ledger issues
    ``BEGIN IMMEDIATE`` / ``COMMIT`` itself, and a lone UPDATE is its own
    transaction. ``check_same_thread=False``: the Ledger serialises use of the
    connection with its own lock (see :class:`~syndicate.ledger.Ledger`).
    """
    try:
        conn = sqlite3.connect(
            path, timeout=timeout, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise LedgerError(f"cannot open ledger {path}: {exc}") from exc
    try:
        mode = _set_wal(conn, timeout)
        if mode != "wal":
            raise LedgerError(f"ledger {path}: cannot switch to WAL mode (got {mode!r})")
        # NORMAL in WAL mode: a commit is in the WAL file (the OS page cache) when
        # COMMIT returns, so it survives the process being killed; only a power
        # loss or OS crash can lose the last commits. No fsync per commit.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise LedgerError(f"{path} is not a usable SQLite database: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _set_wal(conn: sqlite3.Connection, timeout: float) -> str:
    """``PRAGMA journal_mode = WAL``, retried: switching a fresh file to WAL needs
    an exclusive lock and SQLite does not call the busy handler for it, so
    processes opening a new ledger at the same moment get SQLITE_BUSY at once."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() > deadline:
                raise LedgerError(f"cannot switch to WAL mode: {exc}") from exc
            time.sleep(0.005)


def split_statements(script: str) -> list[str]:
    """Split an SQL script into statements (``sqlite3.complete_statement`` knows
    about strings, comments and trigger bodies)."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(
        ln.strip().startswith("--") or not ln.strip() for ln in buffer.splitlines()
    ):
        raise ValueError(f"incomplete SQL statement at the end of a migration: {buffer!r}")
    return statements


def migrate(
    conn: sqlite3.Connection, path: Path, migrations: Sequence[str] = MIGRATIONS
) -> int:
    """Bring the database to ``len(migrations)``; return the version found on opening.

    Refuses (``LedgerError``) a database written by a newer syndicate and a
    SQLite file that belongs to another application.
    """
    target = len(migrations)
    # One read transaction: the version and the tables seen are one snapshot
    # (another process may be migrating the same fresh file right now).
    try:
        conn.execute("BEGIN")
        found = _version(conn, path)
        _check_owner(conn, path, found)
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")
    if found > target:
        raise LedgerError(
            f"ledger {path} has schema version {found} but this syndicate only knows "
            f"versions up to {target}: it was written by a newer syndicate; upgrade "
            "syndicate (or point [storage] database at another file)"
        )
    version = found
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            # Re-read under the write lock: another process may have migrated meanwhile.
            version = _version(conn, path)
            if version >= target:
                conn.execute("ROLLBACK")
                return found
            _check_owner(conn, path, version)
            if version == 0:
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            for statement in split_statements(migrations[version]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise LedgerError(
                    f"ledger {path}: migration to schema version {version + 1} failed "
                    f"(database left at version {version}): {exc}"
                ) from exc
            raise


def _version(conn: sqlite3.Connection, path: Path) -> int:
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        raise LedgerError(f"{path} is not a usable SQLite database: {exc}") from exc


def _check_owner(conn: sqlite3.Connection, path: Path, version: int) -> None:
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    if version == 0:
        if app_id not in (0, APPLICATION_ID) or conn.execute(
            "SELECT 1 FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' LIMIT 1"
        ).fetchone():
            raise LedgerError(
                f"{path} is a SQLite database that is not a syndicate ledger "
                "(it already has tables); refusing to touch it"
            )
    elif app_id != APPLICATION_ID:
        raise LedgerError(
            f"{path} is a SQLite database of another application "
            f"(application_id {app_id:#x}); refusing to touch it"
        )
