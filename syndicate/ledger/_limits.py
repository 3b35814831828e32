"""Ledger methods for rate-limit counters (fixed windows), shared by processes.

The web app's subscribe form counts requests per client IP, mailbox, recipient
domain and in all (:mod:`syndicate.web.throttle`, through the ``limits``
library's storage interface). The counters live here rather than in memory so
that every ``syndicate serve`` process, and a restarted one, sees the same
counts. Each increment is one ``BEGIN IMMEDIATE`` transaction: two processes
counting the same key never lose an increment.

Expired rows are pruned a few at a time by the increments themselves, so the
table holds roughly the keys seen during the longest window, never more.
Mixed into :class:`~._ledger.Ledger`; see it for the threading rules.
"""

from __future__ import annotations

from ._connection import LedgerConnection

#: Expired rows deleted per increment (bounded work; enough to keep pace, since
#: every increment creates at most one row).
PRUNE_BATCH = 8


class LimitMethods(LedgerConnection):
    """Fixed-window counters: increment, read, clear, prune."""

    def _clock(self) -> float:
        return self._now().timestamp()

    def limit_incr(self, key: str, expiry: float, amount: int = 1) -> int:
        """Add ``amount`` to ``key``'s counter and return the new count. A counter
        whose window has ended starts again at ``amount`` with a new window of
        ``expiry`` seconds."""
        now = self._clock()
        with self._write() as conn:
            conn.execute(
                "DELETE FROM rate_limits WHERE key IN (SELECT key FROM rate_limits"
                " WHERE expires_at <= ? LIMIT ?)",
                (now, PRUNE_BATCH),
            )
            row = conn.execute(
                "INSERT INTO rate_limits (key, count, expires_at) VALUES (?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET"
                " count = CASE WHEN expires_at <= ? THEN excluded.count"
                "         ELSE count + excluded.count END,"
                " expires_at = CASE WHEN expires_at <= ? THEN excluded.expires_at"
                "              ELSE expires_at END"
                " RETURNING count",
                (key, amount, now + expiry, now, now),
            ).fetchone()
        return int(row[0])

    def limit_get(self, key: str) -> int:
        """The count of ``key`` in its current window (0 if none)."""
        row = self._one(
            "SELECT count FROM rate_limits WHERE key = ? AND expires_at > ?",
            (key, self._clock()),
        )
        return int(row[0]) if row else 0

    def limit_expiry(self, key: str) -> float:
        """When ``key``'s window ends (Unix time; now if it has none)."""
        now = self._clock()
        row = self._one(
            "SELECT expires_at FROM rate_limits WHERE key = ? AND expires_at > ?", (key, now)
        )
        return float(row[0]) if row else now

    def limit_clear(self, key: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM rate_limits WHERE key = ?", (key,))

    def limit_reset(self) -> int:
        """Forget every counter; return how many there were."""
        with self._write() as conn:
            return int(conn.execute("DELETE FROM rate_limits").rowcount)

    def limit_rows(self) -> int:
        """How many counters are stored, expired ones included (tests, ``ledger`` stats)."""
        row = self._one("SELECT COUNT(*) FROM rate_limits")
        return int(row[0]) if row else 0
