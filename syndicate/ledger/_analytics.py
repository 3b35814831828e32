"""Ledger methods for analytics (``[analytics]``): click and open counts.

``link_counts`` holds one row per (edition, link) (``link`` is the index in the edition's
``tracked-links.json``; :data:`OPEN_LINK` for the open pixel), bumped by **one upsert** per
counted hit: atomic, concurrent-safe across processes, no read first. ``delivery_hits``
(which delivery, so which subscriber, hit what and when) is written only when the caller
passes a delivery id, i.e. with ``[analytics] per_subscriber``. The SQL is written once
with ``?`` placeholders; the PostgreSQL twin runs it with ``%s`` (as :mod:`._events`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from ._queries import Queries, SqliteQueries

#: The ``link`` of the open pixel's count.
OPEN_LINK = -1

_BUMP = ("INSERT INTO link_counts (edition_id, link, hits) VALUES (?, ?, 1)"
         " ON CONFLICT (edition_id, link) DO UPDATE SET hits = link_counts.hits + 1")
_HIT = "INSERT INTO delivery_hits (delivery_id, link, hit_at) VALUES (?, ?, ?)"


class AnalyticsMethods(Queries):
    """Count hits and read the counts (mixed into both ledgers)."""

    def count_hit(self, edition_id: int, link: int, delivery_id: int | None = None) -> None:
        """Add one hit on ``link`` of the edition (one upsert); with ``delivery_id``, also
        record which delivery it came from (per-subscriber analytics only)."""
        self._q_exec(_BUMP, (edition_id, link))
        if delivery_id is not None:
            self._q_exec(_HIT, (delivery_id, link, self._q_now()))

    def hit_counts(self, edition_ids: Iterable[int]) -> dict[int, dict[int, int]]:
        """``{edition id: {link: hits}}`` for these editions (those without any: absent)."""
        ids = sorted(set(edition_ids))
        out: dict[int, dict[int, int]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ", ".join("?" * len(chunk))
            for edition_id, link, hits in self._q_all(
                    f"SELECT edition_id, link, hits FROM link_counts"
                    f" WHERE edition_id IN ({marks})", tuple(chunk)):
                out.setdefault(int(edition_id), {})[int(link)] = int(hits)
        return out

    def delivery_hits(self, delivery_id: int) -> list[tuple[int, datetime]]:
        """The hits recorded on one delivery (per-subscriber analytics): (link, when)."""
        rows = self._q_all("SELECT link, hit_at FROM delivery_hits WHERE delivery_id = ?"
                           " ORDER BY id", (delivery_id,))
        return [(int(link), at if isinstance(at, datetime) else datetime.fromisoformat(at))
                for link, at in rows]


class SqliteAnalyticsMethods(SqliteQueries, AnalyticsMethods):
    pass



__all__ = ["OPEN_LINK", "AnalyticsMethods", "SqliteAnalyticsMethods"]
