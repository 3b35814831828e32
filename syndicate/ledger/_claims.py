"""Ledger methods for many senders: delivery rows handed to workers and claimed by them.

The delivery row is the queue (``syndicate worker``, docs/deployment.md): the publisher
creates one 'pending' row per recipient as always, then *hands off* the channel
(:meth:`ClaimMethods.hand_off`); a worker *claims* a batch of its pending rows for a
lease (``claimed_by``, ``claimed_until``), sends them, and marks each one as today
(``mark_sent`` / ``mark_failed`` clear the claim). Its heartbeat renews the lease of the
claims it holds (:meth:`~ClaimMethods.renew_claims`); the claims of a worker that died
run out and another worker takes the rows. On SQLite a claim is one ``BEGIN IMMEDIATE``
transaction (two workers on one machine never take the same row); PostgreSQL's twin is
in :mod:`._pg_claims` (``FOR UPDATE SKIP LOCKED``).

Lease times are the ledger's clock (``now``): keep the workers' clocks in step (NTP),
a skew eats into the lease. Mixed into :class:`~._ledger.SqliteLedger`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from ._connection import LedgerConnection
from ._deliveries import _DELIVERY_COLS, _delivery
from ._records import to_db

if TYPE_CHECKING:
    from ._mail_records import Delivery

#: The most rows one claim takes (a batch is a few dozen; this bounds a wrong setting).
MAX_CLAIM = 1000


class ClaimMethods(LedgerConnection):
    """Hand-offs, claims, their heartbeat and the end of a handed-off edition."""

    def hand_off(self, edition_id: int, channel: str) -> None:
        """Leave the pending rows of (edition, channel) to the workers (idempotent)."""
        with self._write() as conn:
            conn.execute("INSERT OR IGNORE INTO handoffs (edition_id, channel, handed_at)"
                         " VALUES (?, ?, ?)", (edition_id, channel, self._stamp()))

    def take_back(self, edition_id: int, channel: str) -> bool:
        """Undo :meth:`hand_off` (a publisher sending by itself again): no worker claims a
        row of the pair any more; rows already claimed stay their holders' until marked or
        their lease runs out (``pending_deliveries`` skips them). True if it was handed."""
        with self._write() as conn:
            return conn.execute("DELETE FROM handoffs WHERE edition_id = ? AND channel = ?",
                                (edition_id, channel)).rowcount == 1

    def handoffs(self) -> list[tuple[int, str]]:
        """``(edition id, channel)`` handed to the workers, of editions not done, oldest
        edition first: what a worker looks for rows to claim in."""
        with self._locked() as conn:
            return [(int(e), str(c)) for e, c in conn.execute(
                "SELECT h.edition_id, h.channel FROM handoffs h JOIN editions e"
                " ON e.id = h.edition_id WHERE e.status != 'done'"
                " ORDER BY e.number, h.channel").fetchall()]

    def claim_deliveries(self, edition_id: int, channel: str, owner: str, lease: float,
                         limit: int) -> list[Delivery]:
        """Claim up to ``limit`` pending rows of a handed-off (edition, channel) for
        ``owner`` until now + ``lease`` seconds, in id order: rows nobody holds, or whose
        claim ran out (its worker died or lost the ledger). Empty when none is left (or
        the channel was not handed off). Of two claimers at once each gets other rows."""
        now = self._now()
        stamp, until = to_db(now), to_db(now + timedelta(seconds=lease))
        limit = max(1, min(limit, MAX_CLAIM))
        with self._write() as conn:
            ids = [r[0] for r in conn.execute(
                "SELECT d.id FROM deliveries d WHERE d.edition_id = ? AND d.channel = ?"
                " AND d.status = 'pending' AND (d.claimed_until IS NULL OR d.claimed_until <= ?)"
                " AND EXISTS (SELECT 1 FROM handoffs h WHERE h.edition_id = d.edition_id"
                " AND h.channel = d.channel) ORDER BY d.id LIMIT ?",
                (edition_id, channel, stamp, limit)).fetchall()]
            if not ids:
                return []
            marks = ", ".join("?" * len(ids))
            conn.execute(f"UPDATE deliveries SET claimed_by = ?, claimed_until = ?"
                         f" WHERE id IN ({marks})", (owner, until, *ids))
            rows = conn.execute(f"SELECT {_DELIVERY_COLS} FROM deliveries"
                                f" WHERE id IN ({marks}) ORDER BY id", ids).fetchall()
        return [_delivery(r) for r in rows]

    def renew_claims(self, owner: str, lease: float) -> int:
        """The heartbeat: extend every pending claim of ``owner`` to now + ``lease``;
        return how many it holds. A claim already taken over by another is not its own."""
        until = to_db(self._now() + timedelta(seconds=lease))
        with self._write() as conn:
            return int(conn.execute(
                "UPDATE deliveries SET claimed_until = ? WHERE claimed_by = ?"
                " AND status = 'pending'", (until, owner)).rowcount)

    def release_claims(self, owner: str) -> int:
        """Give back every claim of ``owner`` (a worker stopping cleanly): its unsent rows
        are free for the others at once instead of after the lease; return how many."""
        with self._write() as conn:
            return int(conn.execute(
                "UPDATE deliveries SET claimed_by = NULL, claimed_until = NULL"
                " WHERE claimed_by = ?", (owner,)).rowcount)

    def reserve_send(self, channel: str, interval: float) -> float:
        """A channel's ``rate`` held across every worker together: reserve the next free
        send slot of ``channel`` (slots ``interval`` seconds apart) and return when it is
        (Unix time, the ledger's clock); the caller sleeps until then. One atomic update
        per message, the reservation scheme of the in-process limiter
        (``transport.RateLimiter``) kept in the ledger."""
        now = self._now().timestamp()
        with self._write() as conn:
            conn.execute("INSERT OR IGNORE INTO send_rates (channel, next_at) VALUES (?, ?)",
                         (channel, now))
            row = conn.execute(
                "UPDATE send_rates SET next_at = MAX(next_at, ?) + ? WHERE channel = ?"
                " RETURNING next_at", (now, interval, channel)).fetchone()
        return float(row[0]) - interval

    def finish_edition(self, edition_id: int) -> bool:
        """Mark a handed-off edition 'done' if no row of it is pending (whoever sent the
        last one, or the publisher noticing); True when this call did it. An edition never
        handed off is the publisher's to close (``set_edition_status``)."""
        with self._write() as conn:
            return conn.execute(
                "UPDATE editions SET status = 'done', done_at = COALESCE(done_at, ?)"
                " WHERE id = ? AND status = 'delivering'"
                " AND EXISTS (SELECT 1 FROM handoffs WHERE edition_id = ?)"
                " AND NOT EXISTS (SELECT 1 FROM deliveries WHERE edition_id = ?"
                " AND status = 'pending')",
                (self._stamp(), edition_id, edition_id, edition_id)).rowcount == 1


__all__ = ["MAX_CLAIM", "ClaimMethods"]
