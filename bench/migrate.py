"""``ledger migrate`` memory: peak RSS of a copy of 10k and of 100k deliveries.

    python -m bench.migrate                 # 10k and 100k deliveries, batch 5000
    python -m bench.migrate -n 200000

Starts a throwaway PostgreSQL cluster (tests/_postgres_support.py: Debian's binaries),
builds SQLite ledgers of ``n / 10`` and ``n`` deliveries, and copies each in a fresh
subprocess (so its peak RSS, ``ru_maxrss``, is that copy's alone). The baseline is the
same subprocess opening the same ledgers without copying. Streaming means ten times the
rows take about the same memory: the printed ratio of the peaks should stay near 1.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from syndicate.ledger import SqliteLedger

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import resource, sys, time
from syndicate.ledger import copy_ledger, SqliteLedger
path, url, copy = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
started = time.perf_counter()
if copy:
    report = copy_ledger(path, url)
    assert report.table("deliveries").rows > 0
else:
    SqliteLedger(path).close()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter() - started)
"""


def _build(path: Path, rows: int) -> None:
    with SqliteLedger(path) as ledger:
        edition = ledger.claim_edition(slot="2026-01-05T07:00", slug="big", title="Big",
                                       url="https://x.example/big")
        ledger.ensure_deliveries(edition.id, "outbox",
                                 (f"r{i}@example.org" for i in range(rows)))


def _child(path: Path, url: str, copy: bool) -> tuple[int, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), url, "1" if copy else "0"],
                         capture_output=True, text=True, check=True, timeout=600)
    kib, seconds = out.stdout.split()
    return int(kib), float(seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100_000, help="deliveries of the big ledger")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "tests"))
    from _postgres_support import Cluster, find_bindir

    bindir = find_bindir()
    if bindir is None:
        print("PostgreSQL binaries not found (apt-get install postgresql)")
        return 1
    cluster = Cluster(bindir)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            peaks = {}
            for rows in (args.n // 10, args.n):
                path = Path(tmp) / f"{rows}.db"
                started = time.perf_counter()
                _build(path, rows)
                built = time.perf_counter() - started
                base, _ = _child(path, cluster.database(), copy=False)
                peak, seconds = _child(path, cluster.database(), copy=True)
                peaks[rows] = peak
                print(f"{rows:>7} deliveries: built in {built:.1f} s; copy peak RSS "
                      f"{peak / 1024:.1f} MiB (open only: {base / 1024:.1f} MiB, "
                      f"+{(peak - base) / 1024:.1f} MiB), {seconds:.1f} s, "
                      f"{rows / seconds:,.0f} rows/s")
            small, big = peaks[args.n // 10], peaks[args.n]
            print(f"peak RSS of the copy, {args.n} vs {args.n // 10} rows: "
                  f"x{big / small:.2f} (streaming: ~1; holding the rows would grow ~10x)")
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
