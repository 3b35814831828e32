"""Ledger write cost: µs per ``mark_sent`` against plain sqlite3 doing the same commit.

    python -m bench.ledger              # 6000 rows, batches of 2000, 3 rounds
    python -m bench.ledger -n 20000 --rounds 5

The SMTP channel commits one ``mark_sent`` per message (never batched, so that a kill
resends only what was in flight): its cost bounds the send rate. The ledger is opened
through :func:`syndicate.ledger.open_ledger` (the port), both as a plain path and as a
``sqlite:///`` URL. The baseline is the bare statement on a sqlite3 connection with the
same pragmas (WAL, ``synchronous=NORMAL``) and one ``BEGIN IMMEDIATE … COMMIT`` per
row: the ratio is what the port, its lock and its checks add. An fsync per commit
would cost milliseconds; both figures should be tens of µs. The kinds are measured in
turns, each round on fresh files, and the best batch of all rounds is kept: the machine
is shared, and interleaving makes a burst of load hit every kind alike.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from syndicate.ledger import open_ledger


def _best(batches: Sequence[Sequence[int]], mark: Callable[[int], None]) -> float:
    """Seconds per mark: the best batch (the machine is shared; the best is the cost)."""
    costs = []
    for batch in batches:
        started = time.perf_counter()
        for delivery_id in batch:
            mark(delivery_id)
        costs.append((time.perf_counter() - started) / len(batch))
    return min(costs)


def _ledger_cost(location: str, rows: int, batch: int) -> float:
    with open_ledger(location) as ledger:
        edition = ledger.claim_edition(slot="bench", slug="bench", title="Bench", url="u")
        ledger.ensure_deliveries(edition.id, "smtp", (f"u{i}@x.fr" for i in range(rows)))
        ids = [d.id for d in ledger.pending_deliveries(edition.id, "smtp")]
        batches = [ids[k:k + batch] for k in range(0, len(ids), batch)]
        return _best(batches, lambda i: ledger.mark_sent(i, "250 ok", code=250))


def _sqlite_cost(path: Path, rows: int, batch: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE d (id INTEGER PRIMARY KEY, status TEXT, attempts INTEGER,"
                     " code INTEGER, response TEXT, updated_at TEXT)")
        conn.executemany("INSERT INTO d (status, attempts) VALUES ('pending', 0)",
                         ((),) * rows)
        ids = list(range(1, rows + 1))
        batches = [ids[k:k + batch] for k in range(0, len(ids), batch)]

        def mark(delivery_id: int) -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE d SET status = 'sent', attempts = attempts + 1, code = ?,"
                         " response = ?, updated_at = ? WHERE id = ? AND status != 'sent'",
                         (250, "250 ok", "2026-01-01T00:00:00.000000+00:00", delivery_id))
            conn.execute("COMMIT")

        return _best(batches, mark)
    finally:
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=6000, help="delivery rows to mark")
    parser.add_argument("--batch", type=int, default=2000, help="marks per timed batch")
    parser.add_argument("--rounds", type=int, default=3, help="turns of every kind")
    args = parser.parse_args()
    kinds: dict[str, Callable[[Path], float]] = {
        "plain sqlite3 (baseline)": lambda f: _sqlite_cost(f / "plain.db", args.n, args.batch),
        "open_ledger(path)": lambda f: _ledger_cost(str(f / "path.db"), args.n, args.batch),
        "open_ledger(sqlite:///…)": lambda f: _ledger_cost(f"sqlite:///{f / 'url.db'}",
                                                            args.n, args.batch),
    }
    figures = dict.fromkeys(kinds, float("inf"))
    for _ in range(args.rounds):
        for name, measure in kinds.items():
            with tempfile.TemporaryDirectory() as tmp:
                figures[name] = min(figures[name], measure(Path(tmp)))
    baseline = figures["plain sqlite3 (baseline)"]
    print(f"mark_sent, {args.n} rows, batches of {args.batch}, best of {args.rounds} rounds")
    for name, cost in figures.items():
        print(f"{name:28s} {cost * 1e6:7.1f} µs per mark  {1 / cost:>9,.0f} marks/s  "
              f"{cost / baseline:5.2f}x baseline")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
