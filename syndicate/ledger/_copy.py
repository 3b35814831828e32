"""Copy a SQLite ledger into PostgreSQL (``syndicate ledger migrate``), verified.

:func:`copy_ledger` reads the source file through a read-only SQLite connection inside
one read transaction (one snapshot: a ``run`` still writing would not tear the copy, but
stop it first anyway, or its later writes stay behind), and writes the target in **one
PostgreSQL transaction**: every table, the identity sequences, then the verification.
Anything wrong (a refused row, a lost connection, a checksum that differs) rolls the
whole transaction back, so the target holds after a failure exactly what it held before.
The only thing that may stay is the empty ``syndicate`` schema, created (migrated) before
the copy like any ``open_ledger`` would; an empty ledger there is no ledger at all.

**What is copied**: ``meta``, ``editions``, ``artefacts``, ``deliveries``,
``subscribers``, ``confirmations``, ``delivery_events``, ``link_counts``,
``delivery_hits``, ids kept (then each identity
sequence is set past the largest id). Not copied: the web app's rate-limit counters
(fixed windows of minutes, meaningless after a move) and PostgreSQL's own ``publisher``
row.

**Verified**: per table, the row count and a SHA-256 over the rows in key order in a
form both backends give alike (:func:`canonical`: times as UTC ISO strings with
microseconds, ``None`` as ``null``), computed on the source before and on the target
after, inside the transaction, before the commit.

**Twice**: a target already holding exactly the source's rows (same counts, same
checksums) is reported ``already`` and left alone; a non-empty different one is refused
with one line naming what it holds, unless ``force``, which deletes its rows (in the same
transaction as the copy). Memory is bounded by ``batch`` rows per table, whatever the size
of the ledger (``fetchmany`` on SQLite, ``COPY`` into PostgreSQL, a server-side cursor
for the verification).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LedgerError
from ._pg_schema import SCHEMA, migrate, one_line, schema_version
from ._schema import APPLICATION_ID, SCHEMA_VERSION
from ._url import display_postgres, parse_ledger_url

if TYPE_CHECKING:
    import psycopg

#: Rows read and written per round trip: memory is bounded by this many rows per table.
BATCH = 5000


@dataclass(frozen=True)
class Table:
    """One copied table: its columns (in order), which of them are times, its key."""

    name: str
    columns: tuple[str, ...]
    times: frozenset[str] = frozenset()
    key: str = "id"

    @property
    def identity(self) -> bool:
        return self.key == "id"


#: In foreign-key order (parents first); deleted in the reverse order.
TABLES: tuple[Table, ...] = (
    Table("meta", ("key", "value"), key="key"),
    Table("editions", ("id", "number", "slot", "slug", "title", "url", "status",
                       "claimed_at", "published_at", "done_at"),
          frozenset({"claimed_at", "published_at", "done_at"})),
    Table("artefacts", ("id", "edition_id", "name", "content", "sha256", "created_at"),
          frozenset({"created_at"})),
    Table("deliveries", ("id", "edition_id", "channel", "recipient", "status", "attempts",
                         "code", "response", "created_at", "updated_at"),
          frozenset({"created_at", "updated_at"})),
    Table("subscribers", ("id", "email", "email_key", "name", "status", "source",
                          "created_at", "updated_at", "confirmed_at", "unsubscribed_at"),
          frozenset({"created_at", "updated_at", "confirmed_at", "unsubscribed_at"})),
    Table("confirmations", ("id", "email", "email_key", "status", "requested_at", "due_at",
                            "attempts", "claimed_by", "code", "response", "updated_at"),
          frozenset({"requested_at", "due_at", "updated_at"})),
    Table("delivery_events", ("id", "event_id", "delivery_id", "recipient", "kind", "status",
                              "diagnostic", "source", "occurred_at", "recorded_at"),
          frozenset({"occurred_at", "recorded_at"})),
    Table("link_counts", ("id", "edition_id", "link", "hits")),
    Table("delivery_hits", ("id", "delivery_id", "link", "hit_at"), frozenset({"hit_at"})),
)
#: Left behind on purpose (see the module docstring).
SKIPPED: tuple[str, ...] = ("rate_limits",)


@dataclass(frozen=True)
class TableReport:
    """One table after the copy: rows, its checksum (both sides), batches written."""

    name: str
    rows: int
    checksum: str
    batches: int = 0


@dataclass(frozen=True)
class CopyReport:
    """What :func:`copy_ledger` did. ``already``: the target held these very rows, nothing
    was written; ``replaced``: the rows the target held before ``force`` deleted them."""

    source: str
    target: str
    tables: tuple[TableReport, ...]
    already: bool = False
    replaced: dict[str, int] = field(default_factory=dict)
    skipped: tuple[str, ...] = SKIPPED

    def table(self, name: str) -> TableReport:
        return next(t for t in self.tables if t.name == name)


def canonical(value: Any, is_time: bool) -> Any:
    """A value as both backends give it: times (SQLite's ISO text, PostgreSQL's aware
    datetimes) as UTC ISO strings with microseconds; everything else unchanged."""
    if value is None or not is_time:
        return value
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:  # never written by the ledger; read as UTC rather than fail
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _canonical_rows(table: Table, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    flags = [c in table.times for c in table.columns]
    return [tuple(canonical(v, t) for v, t in zip(row, flags, strict=True)) for row in rows]


class _Digest:
    """Count and SHA-256 of a table's canonical rows, fed in key order."""

    def __init__(self) -> None:
        self.rows = 0
        self._hash = hashlib.sha256()

    def feed(self, rows: Sequence[tuple[Any, ...]]) -> None:
        for row in rows:
            self._hash.update(json.dumps(row, ensure_ascii=False, separators=(",", ":"))
                              .encode("utf-8") + b"\n")
        self.rows += len(rows)

    @property
    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _select(table: Table, *, postgres: bool) -> str:
    # Text keys in byte order on both sides (a PostgreSQL database's collation may not be).
    order = f'{table.key} COLLATE "C"' if postgres and not table.identity else table.key
    return f"SELECT {', '.join(table.columns)} FROM {table.name} ORDER BY {order}"


def _batches(cursor: Any, size: int) -> Iterator[list[tuple[Any, ...]]]:
    while True:  # bounded by the table: each pass consumes up to `size` rows
        rows = cursor.fetchmany(size)
        if not rows:
            return
        yield rows


# -- the source -------------------------------------------------------------------------


def _open_source(path: Path) -> sqlite3.Connection:
    """The SQLite ledger at ``path``, read-only (never migrated, never written)."""
    if not path.is_file():
        raise LedgerError(f"no SQLite ledger at {path} (the source of the copy)")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                               isolation_level=None)
    except sqlite3.Error as exc:
        raise LedgerError(f"cannot open the source ledger {path}: {exc}") from exc
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise LedgerError(f"{path} is not a usable SQLite database: {exc}") from exc
    if app_id != APPLICATION_ID:
        conn.close()
        raise LedgerError(f"{path} is not a syndicate ledger (wrong application id)")
    if version != SCHEMA_VERSION:
        conn.close()
        raise LedgerError(
            f"the source ledger {path} is at schema version {version}, this syndicate at "
            f"{SCHEMA_VERSION}: run `syndicate status` with this syndicate on it first "
            "(it migrates the file), then migrate")
    return conn


def _source_digests(conn: sqlite3.Connection, batch: int) -> dict[str, _Digest]:
    digests: dict[str, _Digest] = {}
    for table in TABLES:
        digest = digests[table.name] = _Digest()
        for rows in _batches(conn.execute(_select(table, postgres=False)), batch):
            digest.feed(_canonical_rows(table, rows))
    return digests


# -- the target -------------------------------------------------------------------------

def _target_digests(conn: psycopg.Connection[tuple[Any, ...]],
                    batch: int) -> dict[str, _Digest]:
    digests: dict[str, _Digest] = {}
    for table in TABLES:
        digest = digests[table.name] = _Digest()
        # A server-side cursor: the rows come `batch` at a time, not all at once.
        with conn.cursor(name=f"syndicate_verify_{table.name}") as cursor:
            cursor.itersize = batch
            cursor.execute(_select(table, postgres=True).encode())
            for rows in _batches(cursor, batch):
                digest.feed(_canonical_rows(table, rows))
    return digests


def _counts(conn: psycopg.Connection[tuple[Any, ...]]) -> dict[str, int]:
    counts = {}
    for table in TABLES:
        row = conn.execute(f"SELECT count(*) FROM {table.name}".encode()).fetchone()
        counts[table.name] = int(row[0]) if row else 0
    return counts


def _copy_table(source: sqlite3.Connection, conn: psycopg.Connection[tuple[Any, ...]],
                table: Table, batch: int,
                write_hook: Callable[[str, int], None] | None) -> int:
    """Stream one table through ``COPY … FROM STDIN``; return the batches written."""
    batches = 0
    statement = f"COPY {table.name} ({', '.join(table.columns)}) FROM STDIN"
    with conn.cursor() as cursor, cursor.copy(statement.encode()) as copy:
        for rows in _batches(source.execute(_select(table, postgres=False)), batch):
            batches += 1
            if write_hook is not None:
                write_hook(table.name, batches)
            for row in _canonical_rows(table, rows):
                copy.write_row(row)
    if table.identity:  # the next claim/insert gets an id past the copied ones
        conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{SCHEMA}.{table.name}', 'id'),"
            f" coalesce(max(id), 1), max(id) IS NOT NULL) FROM {table.name}".encode())
    return batches


def _describe(counts: dict[str, int]) -> str:
    held = [f"{n} {name}" for name, n in counts.items() if n]
    return ", ".join(held)


def copy_ledger(
    source: str | os.PathLike[str],
    target: str,
    *,
    force: bool = False,
    batch: int = BATCH,
    timeout: float = 10.0,
    write_hook: Callable[[str, int], None] | None = None,
) -> CopyReport:
    """Copy the SQLite ledger at ``source`` (a path or ``sqlite:///`` URL) into the
    PostgreSQL ledger at ``target`` (a ``postgresql://`` URL, ``?password_env=`` honoured),
    all or nothing, and verify it (see the module). Returns a :class:`CopyReport`; raises
    :class:`~syndicate.errors.LedgerError` (one line) for a refused source or target, a
    non-empty different target without ``force``, or a copy that failed or did not verify
    (the target then left as it was). ``write_hook(table, batch_number)`` is called before
    each batch is written (tests use it to fail mid-copy)."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    where = parse_ledger_url(source)
    if where.scheme != "sqlite" or where.path is None:
        raise LedgerError(
            f"the source ledger {where.shown} is not a SQLite file: `ledger migrate` copies "
            "a SQLite ledger into PostgreSQL (use pg_dump to copy between PostgreSQL servers)")
    dest = parse_ledger_url(target)
    if dest.scheme != "postgresql":
        raise LedgerError(f"the target {dest.shown} is not a postgresql:// URL: `ledger "
                          "migrate` copies into PostgreSQL")
    from ._postgres import _psycopg, connect  # psycopg: loaded for PostgreSQL only

    pg = _psycopg()
    shown = display_postgres(dest)
    with closing(_open_source(where.path)) as src:
        src.execute("BEGIN")  # one read snapshot for every pass below
        expected = _source_digests(src, batch)
        tables = tuple(TableReport(t.name, expected[t.name].rows, expected[t.name].hexdigest)
                       for t in TABLES)
        with connect(dest, timeout=timeout, application="syndicate ledger migrate") as conn:
            migrate(conn, shown)
            if schema_version(conn) != SCHEMA_VERSION:  # pragma: no cover - same numbering
                raise LedgerError(f"ledger {shown}: schema version differs from the source's")
            try:
                with conn.transaction():
                    # Writers wait (readers do not) until the copy commits or rolls back.
                    conn.execute(("LOCK TABLE " + ", ".join(t.name for t in TABLES)
                                  + " IN EXCLUSIVE MODE").encode())
                    held = _counts(conn)
                    replaced: dict[str, int] = {}
                    if any(held.values()):
                        found = _target_digests(conn, batch)
                        if all(found[t.name].hexdigest == expected[t.name].hexdigest
                               and found[t.name].rows == expected[t.name].rows
                               for t in TABLES):
                            return CopyReport(str(where.path), shown, tables, already=True)
                        if not force:
                            raise LedgerError(
                                f"the target {shown} already holds a different ledger "
                                f"({_describe(held)}): nothing copied; --force replaces "
                                "its rows with the source's")
                        for table in reversed(TABLES):
                            conn.execute(f"DELETE FROM {table.name}".encode())
                        replaced = {k: v for k, v in held.items() if v}
                    written = {t.name: _copy_table(src, conn, t, batch, write_hook)
                               for t in TABLES}
                    found = _target_digests(conn, batch)
                    for table in TABLES:
                        want, got = expected[table.name], found[table.name]
                        if (want.rows, want.hexdigest) != (got.rows, got.hexdigest):
                            raise LedgerError(
                                f"copy to {shown} did not verify: {table.name} has "
                                f"{got.rows} rows (checksum {got.hexdigest[:12]}) against "
                                f"{want.rows} ({want.hexdigest[:12]}) in the source; "
                                "rolled back, the target is unchanged")
            except pg.Error as exc:
                raise LedgerError(
                    f"copy to {shown} failed, rolled back (the target is unchanged): "
                    f"{one_line(exc)}") from exc
    return CopyReport(str(where.path), shown,
                      tuple(TableReport(t.name, t.rows, t.checksum, written[t.name])
                            for t in tables), replaced=replaced)


__all__ = ["BATCH", "SKIPPED", "TABLES", "CopyReport", "TableReport", "canonical",
           "copy_ledger"]
