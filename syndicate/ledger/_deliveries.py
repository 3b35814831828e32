"""Ledger methods for deliveries: one row per (edition, channel, recipient).

Mixed into :class:`~._ledger.Ledger`; see it for the threading and durability rules.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from itertools import islice
from typing import TYPE_CHECKING, Any

from ..errors import LedgerError
from . import _records
from ._connection import CHUNK, LedgerConnection

if TYPE_CHECKING:
    from ._mail_records import Delivery

#: Prefixes of the ``response`` of a 'failed' row that is an *outcome*, not a failure:
#: the subscriber was no longer active at send time (skipped) or the address does not
#: exist (bounced, the subscriber is marked 'bounced'). Such rows are 'failed' (the
#: ledger has no other final status, and the edition must not wait for them), but
#: ``retry-failed`` leaves them alone and the exit status does not count them.
SKIPPED = "skipped:"
BOUNCED = "bounced:"
OUTCOME_PREFIXES = (SKIPPED, BOUNCED)
_NOT_OUTCOME = " AND ".join(
    f"substr(response, 1, {len(prefix)}) != '{prefix}'" for prefix in OUTCOME_PREFIXES
)


def is_outcome(response: str) -> bool:
    """Whether a failed row's ``response`` marks an outcome (skipped, bounced)."""
    return response.startswith(OUTCOME_PREFIXES)


_DELIVERY_COLS = "id, edition_id, channel, recipient, status, attempts, code, response, updated_at"


def _delivery(row: tuple[Any, ...]) -> Delivery:
    id_, edition_id, channel, recipient, status, attempts, code, response, updated = row
    return _records.Delivery(id_, edition_id, channel, recipient, status, attempts, code, response,
                    datetime.fromisoformat(updated))


def combine_counts(totals: Mapping[int, Mapping[str, int]],
                   open_rows: Mapping[tuple[int, str, str], int]
                   ) -> dict[int, dict[str, dict[str, int]]]:
    """``{edition: {channel: {sent, failed, pending}}}`` from rows per channel and the
    pending and failed rows: the rest were sent."""
    counts: dict[int, dict[str, dict[str, int]]] = {}
    for edition_id in sorted(totals):
        for channel in sorted(totals[edition_id]):
            pending = open_rows.get((edition_id, channel, "pending"), 0)
            failed = open_rows.get((edition_id, channel, "failed"), 0)
            counts.setdefault(edition_id, {})[channel] = {
                "sent": totals[edition_id][channel] - pending - failed,
                "failed": failed, "pending": pending}
    return counts


class DeliveryMethods(LedgerConnection):
    """Create, stream, mark, count and reset delivery rows."""

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
        Rows a worker holds under a live claim are not listed: they are its to send.
        """
        rows = self._pages(
            f"SELECT {_DELIVERY_COLS} FROM deliveries WHERE edition_id = ? AND channel = ?"
            " AND status = 'pending' AND (claimed_until IS NULL OR claimed_until <= ?)"
            " AND id > ? ORDER BY id LIMIT ?",
            (edition_id, channel, self._stamp()),
            chunk,
        )
        return (_delivery(r) for r in rows)

    def mark_sent(self, delivery_id: int, response: str = "", code: int | None = None) -> None:
        """Record a successful send: one UPDATE, its own commit (see class doc)."""
        with self._locked() as conn:
            cur = conn.execute(
                "UPDATE deliveries SET status = 'sent', attempts = attempts + 1, code = ?,"
                " response = ?, updated_at = ?, claimed_by = NULL, claimed_until = NULL"
                " WHERE id = ?",
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

        A worker's claim on the row (:meth:`claim_deliveries`) ends with a final mark
        (sent, or failed for good); a temporary failure keeps it, since its holder is
        still retrying the row and no other worker may take it meanwhile.
        """
        status = "failed" if permanent else "pending"
        with self._locked() as conn:
            cur = conn.execute(
                "UPDATE deliveries SET status = ?, attempts = attempts + 1, code = ?,"
                " response = ?, updated_at = ?,"
                " claimed_by = CASE WHEN ? THEN NULL ELSE claimed_by END,"
                " claimed_until = CASE WHEN ? THEN NULL ELSE claimed_until END"
                " WHERE id = ? AND status != 'sent'",
                (status, code, message, self._stamp(), permanent, permanent, delivery_id),
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

    def delivery_counts_many(
        self, edition_ids: Iterable[int], *,
        known_totals: Mapping[int, Mapping[str, int]] | None = None,
    ) -> dict[int, dict[str, dict[str, int]]]:
        """:meth:`delivery_counts` of several editions (the console's overview); an edition
        with no delivery row is absent.

        Counted as rows per channel (an index-only count) minus the pending and the
        failed rows (the small partial indexes): grouping every row by status would
        read each one. ``known_totals`` (``{edition: {channel: rows}}``, e.g. remembered
        for finished editions, whose rows are all created) skips the first count."""
        ids = sorted({int(i) for i in edition_ids})
        known = known_totals or {}
        totals = {i: dict(known[i]) for i in ids if i in known}
        unknown = [i for i in ids if i not in known]
        with self._locked() as conn:
            if unknown:
                marks = ", ".join("?" * len(unknown))
                for edition_id, channel, n in conn.execute(
                    "SELECT edition_id, channel, COUNT(*) FROM deliveries"
                    f" WHERE edition_id IN ({marks}) GROUP BY edition_id, channel", unknown,
                ):
                    totals.setdefault(edition_id, {})[channel] = n
            open_rows: dict[tuple[int, str, str], int] = {}
            if ids:
                marks = ", ".join("?" * len(ids))
                for status in ("pending", "failed"):
                    for edition_id, channel, n in conn.execute(
                        "SELECT edition_id, channel, COUNT(*) FROM deliveries"
                        f" WHERE status = '{status}' AND edition_id IN ({marks})"
                        " GROUP BY edition_id, channel", ids,
                    ):
                        open_rows[(edition_id, channel, status)] = n
        return combine_counts(totals, open_rows)

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
        by the next resume like any other unfinished edition. Outcomes (rows
        skipped or bounced, see :data:`OUTCOME_PREFIXES`) are not failures: left alone.
        """
        where, params = f"status = 'failed' AND {_NOT_OUTCOME}", list[int | str]()
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
