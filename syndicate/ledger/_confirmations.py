"""Ledger methods for the confirmation outbox: the double opt-in emails to send.

The web app only *records* a request (:meth:`ConfirmationMethods.enqueue_confirmation`,
one small commit); a background sender (:mod:`syndicate.confirmations`) takes
due rows one at a time (:meth:`~ConfirmationMethods.claim_confirmation`), sends
them and records the outcome. Rows are not tied to an edition, hence their own
table rather than ``deliveries``.

Claiming is a lease: the claim moves ``due_at`` to the end of the lease and
writes the claimer's name, in one ``BEGIN IMMEDIATE`` transaction, so of several
senders (``serve`` and ``run`` on one ledger) exactly one takes a row. A sender
killed mid-send leaves the row claimed; once the lease is over the row is due
again and the next sender takes it (that one email may then go twice, never more).
The outcome methods only touch a row still claimed by the caller: a sender that
outlived its lease cannot overwrite what the one that took over recorded.

Mixed into :class:`~._ledger.Ledger`; see it for the threading and durability rules.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..errors import LedgerError
from . import _records
from ._connection import LedgerConnection
from ._records import from_db, to_db
from ._statuses import CONFIRMATION_STATUSES
from ._subscribers import email_key, normalize_email

if TYPE_CHECKING:
    from ._mail_records import Confirmation

__all__ = ["ConfirmationMethods"]

_COLS = ("id, email, status, requested_at, due_at, attempts, claimed_by, code, response,"
         " updated_at")


def _confirmation(row: tuple[Any, ...]) -> Confirmation:
    return _records.Confirmation(row[0], row[1], row[2], from_db(row[3]), from_db(row[4]),  # type: ignore[arg-type]
                        row[5], row[6], row[7], row[8], from_db(row[9]))  # type: ignore[arg-type]


class ConfirmationMethods(LedgerConnection):
    """Enqueue, claim, mark, list and prune confirmation emails."""

    def enqueue_confirmation(self, email: str, *, window: float = 0.0) -> bool:
        """Record that ``email`` asked for a confirmation email; True if a row was added.

        Idempotent per address: nothing is added while one is pending, nor when
        one was requested less than ``window`` seconds ago (sent or not), so the
        form cannot be used to flood an inbox. The token's expiry will count from
        now (``requested_at``).
        """
        normalized = normalize_email(email)
        key = email_key(normalized)
        now = self._now()
        stamp = to_db(now)
        since = to_db(now - timedelta(seconds=window))
        try:
            with self._write() as conn:
                if conn.execute(
                    "SELECT 1 FROM confirmations WHERE email_key = ?"
                    " AND (status = 'pending' OR requested_at > ?) LIMIT 1",
                    (key, since),
                ).fetchone():
                    return False
                conn.execute(
                    "INSERT INTO confirmations (email, email_key, requested_at, due_at,"
                    " updated_at) VALUES (?, ?, ?, ?, ?)",
                    (normalized, key, stamp, stamp, stamp),
                )
        except sqlite3.IntegrityError:  # the unique pending index: another writer won
            return False
        return True

    def claim_confirmation(self, owner: str, lease: float) -> Confirmation | None:
        """Take the oldest due pending row for ``lease`` seconds (None: nothing due).

        The claim counts as an attempt. Atomic across processes (see the module).
        """
        now = self._now()
        stamp = to_db(now)
        until = to_db(now + timedelta(seconds=lease))
        with self._write() as conn:
            row = conn.execute(
                "SELECT id FROM confirmations WHERE status = 'pending' AND due_at <= ?"
                " ORDER BY due_at, id LIMIT 1",
                (stamp,),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE confirmations SET due_at = ?, claimed_by = ?, attempts = attempts + 1,"
                " updated_at = ? WHERE id = ?",
                (until, owner, stamp, row[0]),
            )
            claimed = conn.execute(
                f"SELECT {_COLS} FROM confirmations WHERE id = ?", (row[0],)
            ).fetchone()
        return _confirmation(claimed)

    def _finish(self, confirmation_id: int, owner: str, sets: str,
                params: tuple[Any, ...]) -> bool:
        with self._write() as conn:
            cur = conn.execute(
                f"UPDATE confirmations SET {sets}, claimed_by = NULL, updated_at = ?"
                " WHERE id = ? AND status = 'pending' AND claimed_by = ?",
                (*params, self._stamp(), confirmation_id, owner),
            )
            return cur.rowcount == 1

    def mark_confirmation_sent(self, confirmation_id: int, owner: str, code: int | None,
                               response: str) -> bool:
        """The email was accepted (``response``: the server's reply). False if
        ``owner`` no longer holds the row (its lease ran out and another took it)."""
        return self._finish(confirmation_id, owner, "status = 'sent', code = ?, response = ?",
                            (code, response))

    def mark_confirmation_retry(self, confirmation_id: int, owner: str, due_at: datetime,
                                code: int | None, response: str, *,
                                attempts: int | None = None) -> bool:
        """A temporary failure: try again at ``due_at``. ``attempts`` replaces the
        count (the sender does not count an attempt that never reached the server)."""
        return self._finish(
            confirmation_id, owner,
            "due_at = ?, code = ?, response = ?, attempts = COALESCE(?, attempts)",
            (to_db(due_at), code, response, attempts),
        )

    def mark_confirmation_failed(self, confirmation_id: int, owner: str, code: int | None,
                                 response: str) -> bool:
        """Given up for good (a 5xx, attempts exhausted, or the link expired unsent)."""
        return self._finish(confirmation_id, owner, "status = 'failed', code = ?, response = ?",
                            (code, response))

    def get_confirmation(self, confirmation_id: int) -> Confirmation | None:
        row = self._one(f"SELECT {_COLS} FROM confirmations WHERE id = ?", (confirmation_id,))
        return _confirmation(row) if row else None

    def confirmations(self, status: str | None = "pending",
                      limit: int | None = None) -> list[Confirmation]:
        """Rows oldest request first; ``status=None`` for all."""
        sql = f"SELECT {_COLS} FROM confirmations"
        params: tuple[Any, ...] = ()
        if status is not None:
            if status not in CONFIRMATION_STATUSES:
                raise LedgerError(f"unknown confirmation status {status!r} "
                                  f"(one of {', '.join(CONFIRMATION_STATUSES)})")
            sql, params = sql + " WHERE status = ?", (status,)
        sql += " ORDER BY requested_at, id"
        if limit is not None:
            sql, params = sql + " LIMIT ?", (*params, limit)
        with self._locked() as conn:
            return [_confirmation(r) for r in conn.execute(sql, params).fetchall()]

    def count_confirmations(self, status: str = "pending") -> int:
        row = self._one("SELECT COUNT(*) FROM confirmations WHERE status = ?", (status,))
        assert row is not None
        return int(row[0])

    def next_confirmation_due(self) -> datetime | None:
        """When the next pending row becomes due (None: nothing pending)."""
        row = self._one("SELECT MIN(due_at) FROM confirmations WHERE status = 'pending'")
        return from_db(row[0]) if row and row[0] else None

    def prune_confirmations(self, before: datetime) -> int:
        """Delete sent and failed rows requested before ``before``; return how many."""
        with self._write() as conn:
            cur = conn.execute(
                "DELETE FROM confirmations WHERE status != 'pending' AND requested_at < ?",
                (to_db(before),),
            )
            return cur.rowcount
