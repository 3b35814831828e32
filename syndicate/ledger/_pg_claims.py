"""The PostgreSQL twin of :mod:`._claims` (whose docstrings state the contract).

A claim is one ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING``:
claimers running at once lock disjoint rows and none waits for another; a row claimed
and committed meanwhile fails the re-checked condition (``claimed_until``) and is left
out. Mixed into :class:`~._postgres.PostgresLedger`.
"""

from __future__ import annotations

from datetime import timedelta

from ._claims import MAX_CLAIM
from ._mail_records import Delivery
from ._pg_methods import _DELIVERY_COLS, PgConnection


class PgClaimMethods(PgConnection):
    """Hand-offs, claims, their heartbeat and the end of a handed-off edition."""

    def hand_off(self, edition_id: int, channel: str) -> None:
        with self._write() as conn:
            conn.execute("INSERT INTO handoffs (edition_id, channel, handed_at)"
                         " VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                         (edition_id, channel, self._stamp()))

    def take_back(self, edition_id: int, channel: str) -> bool:
        with self._write() as conn:
            return conn.execute("DELETE FROM handoffs WHERE edition_id = %s AND channel = %s",
                                (edition_id, channel)).rowcount == 1

    def handoffs(self) -> list[tuple[int, str]]:
        with self._locked() as conn:
            return [(int(e), str(c)) for e, c in conn.execute(
                "SELECT h.edition_id, h.channel FROM handoffs h JOIN editions e"
                " ON e.id = h.edition_id WHERE e.status != 'done'"
                " ORDER BY e.number, h.channel").fetchall()]

    def claim_deliveries(self, edition_id: int, channel: str, owner: str, lease: float,
                         limit: int) -> list[Delivery]:
        now = self._stamp()
        until = now + timedelta(seconds=lease)
        limit = max(1, min(limit, MAX_CLAIM))
        with self._write() as conn:
            # MATERIALIZED: the locking sub-select runs once (as ``id IN (…)`` it may run
            # again per row and take more than ``limit``).
            rows = conn.execute(
                "WITH picked AS MATERIALIZED (SELECT d.id FROM deliveries d"
                " WHERE d.edition_id = %s AND d.channel = %s AND d.status = 'pending'"
                " AND (d.claimed_until IS NULL OR d.claimed_until <= %s)"
                " AND EXISTS (SELECT 1 FROM handoffs h WHERE h.edition_id = d.edition_id"
                " AND h.channel = d.channel) ORDER BY d.id LIMIT %s FOR UPDATE SKIP LOCKED)"
                " UPDATE deliveries SET claimed_by = %s, claimed_until = %s FROM picked"
                " WHERE deliveries.id = picked.id"
                f" RETURNING {', '.join('deliveries.' + c for c in _DELIVERY_COLS.split(', '))}",
                (edition_id, channel, now, limit, owner, until)).fetchall()
        return sorted((Delivery(*r) for r in rows), key=lambda d: d.id)

    def renew_claims(self, owner: str, lease: float) -> int:
        until = self._stamp() + timedelta(seconds=lease)
        with self._write() as conn:
            return int(conn.execute(
                "UPDATE deliveries SET claimed_until = %s WHERE claimed_by = %s"
                " AND status = 'pending'", (until, owner)).rowcount)

    def release_claims(self, owner: str) -> int:
        with self._write() as conn:
            return int(conn.execute(
                "UPDATE deliveries SET claimed_by = NULL, claimed_until = NULL"
                " WHERE claimed_by = %s", (owner,)).rowcount)

    def reserve_send(self, channel: str, interval: float) -> float:
        now = self._now().timestamp()
        with self._write() as conn:
            row = conn.execute(
                "INSERT INTO send_rates AS r (channel, next_at) VALUES (%s, %s + %s)"
                " ON CONFLICT (channel) DO UPDATE SET next_at = GREATEST(r.next_at, %s) + %s"
                " RETURNING next_at", (channel, now, interval, now, interval)).fetchone()
        assert row is not None
        return float(row[0]) - interval

    def finish_edition(self, edition_id: int) -> bool:
        with self._write() as conn:
            return conn.execute(
                "UPDATE editions SET status = 'done', done_at = COALESCE(done_at, %s)"
                " WHERE id = %s AND status = 'delivering'"
                " AND EXISTS (SELECT 1 FROM handoffs WHERE edition_id = %s)"
                " AND NOT EXISTS (SELECT 1 FROM deliveries WHERE edition_id = %s"
                " AND status = 'pending')",
                (self._stamp(), edition_id, edition_id, edition_id)).rowcount == 1


__all__ = ["PgClaimMethods"]
