"""The SQLite ledger: editions, artefacts, deliveries, subscribers and meta in one file.

:class:`SqliteLedger` implements :class:`~._port.LedgerPort`; open one with
:func:`syndicate.ledger.open_ledger` (a path or a ``sqlite:///`` URL). This module holds
the class and its edition, artefact and meta methods; the
connection plumbing is :mod:`._connection`, the delivery, subscriber and
confirmation-outbox methods are :mod:`._deliveries`, :mod:`._subscribers` and
:mod:`._confirmations`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..digest import sha256_hex
from ..errors import AlreadyPublished, LedgerError, SlotTaken
from . import _records
from ._analytics import SqliteAnalyticsMethods
from ._claims import ClaimMethods
from ._confirmations import ConfirmationMethods
from ._connection import CHUNK, DEFAULT_PATH
from ._deliveries import DeliveryMethods
from ._events import SqliteEventMethods
from ._limits import LimitMethods
from ._records import from_db, to_db
from ._statuses import EDITION_STATUSES
from ._subscribers import SubscriberMethods

if TYPE_CHECKING:  # the Protocols: for the type checker (see _CONFORMS)
    from ._edition import Edition
    from ._lock import LockHolder
    from ._port import LedgerPort

__all__ = ["CACHE_FOLDER", "CHUNK", "DEFAULT_PATH", "Ledger", "SqliteLedger"]

#: The folder beside the database file that holds the caches derived from it.
CACHE_FOLDER = "cache"

_EDITION_COLS = "id, number, slot, slug, title, url, status, claimed_at, published_at, done_at"


def _edition(row: tuple[Any, ...]) -> Edition:
    id_, number, slot, slug, title, url, status, claimed, published, done = row
    return _records.Edition(id_, number, slot, slug, title, url, status,
                            datetime.fromisoformat(claimed), datetime.fromisoformat(published),
                            from_db(done))


class SqliteLedger(DeliveryMethods, ClaimMethods, SubscriberMethods, ConfirmationMethods,
                   LimitMethods, SqliteEventMethods, SqliteAnalyticsMethods):
    """The single source of truth for what was published and sent to whom, in SQLite.

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

    # -- publisher lock ---------------------------------------------------

    #: One machine, one publisher: a second ``syndicate run`` refuses (no standby).
    supports_standby = False

    def publisher_lock(self, owner: str, *, lease: float | None = None
                       ) -> AbstractContextManager[LockHolder]:
        """Context manager: be the one publisher on this ledger, or raise ``LockedError``
        naming the holder's pid. See :mod:`syndicate.ledger._lock` for why flock.
        ``lease`` is ignored: a flock is never lost while its process lives."""
        from . import _lock  # fcntl and the holder's record: not for the read-only commands

        return _lock.publisher_lock(self.path, owner, self._now())

    def publisher_lock_alive(self) -> bool:
        """A flock cannot be lost while this process lives."""
        return True

    # -- caches -----------------------------------------------------------

    def cache_dir(self) -> Path:
        """``cache/`` beside the database file: where the relatedness index has always been
        cached (``<database folder>/cache``), so existing installations keep theirs."""
        return self.path.parent / CACHE_FOLDER

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

    def set_edition_title(self, edition_id: int, title: str) -> None:
        """Record a corrected title (``syndicate republish``); number, slot, URL and dates stay."""
        with self._write() as conn:
            cur = conn.execute("UPDATE editions SET title = ? WHERE id = ?", (title, edition_id))
            if cur.rowcount == 0:
                raise LedgerError(f"no edition with id {edition_id} in {self.path}")

    def unfinished_editions(self) -> list[Edition]:
        """Editions claimed or delivering, oldest first: finish these before anything new."""
        with self._locked() as conn:
            rows = conn.execute(
                f"SELECT {_EDITION_COLS} FROM editions WHERE status != 'done' ORDER BY number"
            ).fetchall()
        return [_edition(r) for r in rows]

    def editions(self, status: str | None = "done", limit: int | None = None) -> list[Edition]:
        """Editions newest first (by number); ``status=None`` for all."""
        sql, params = f"SELECT {_EDITION_COLS} FROM editions", tuple[str | int, ...]()
        if status is not None:
            sql, params = sql + " WHERE status = ?", (status,)
        sql += " ORDER BY number DESC"
        if limit is not None:
            sql, params = sql + " LIMIT ?", (*params, limit)
        with self._locked() as conn:
            return [_edition(r) for r in conn.execute(sql, params).fetchall()]

    def edition_keys(self) -> list[tuple[int, int, str]]:
        """``(id, number, slug)`` of every edition, finished or not, oldest first: what a
        check over the whole history needs (``status``'s drift check at 5,000 editions),
        without building an :class:`Edition` (three datetimes) per row."""
        with self._locked() as conn:
            return conn.execute("SELECT id, number, slug FROM editions ORDER BY number").fetchall()

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
                    digest = sha256_hex(text.encode("utf-8"))
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

    def artefacts_named(
        self, name: str, edition_ids: Iterable[int] | None = None, *, digests: bool = False
    ) -> dict[int, str]:
        """``{edition id: content}`` of the artefact ``name`` of every edition that has one
        (only those of ``edition_ids`` when given), in one query per ``CHUNK`` ids; with
        ``digests=True`` its sha256 hex instead of its content (nothing large is read)."""
        column = "sha256" if digests else "content"
        sql = f"SELECT edition_id, {column} FROM artefacts WHERE name = ?"
        with self._locked() as conn:
            if edition_ids is None:
                return dict(conn.execute(sql, (name,)).fetchall())
            ids = list(dict.fromkeys(edition_ids))
            found: dict[int, str] = {}
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start:start + CHUNK]
                marks = ", ".join("?" * len(chunk))
                found.update(conn.execute(f"{sql} AND edition_id IN ({marks})", (name, *chunk)))
            return found

    def artefact_hashes(self, edition_id: int) -> dict[str, str]:
        """``{name: sha256 hex}`` of the stored artefacts of an edition."""
        with self._locked() as conn:
            return dict(conn.execute(
                "SELECT name, sha256 FROM artefacts WHERE edition_id = ? ORDER BY name",
                (edition_id,),
            ))

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


#: The name the SQLite ledger had before the port (``syndicate.Ledger``, tests, scripts).
Ledger = SqliteLedger

# mypy --strict checks here that the SQLite ledger implements the whole port.
if TYPE_CHECKING:
    _CONFORMS: type[LedgerPort] = SqliteLedger
