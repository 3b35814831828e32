"""Workers benchmark: messages per second into a local SMTP sink with 1, 2 and 4
``syndicate worker`` processes on a PostgreSQL ledger, against one ``publish-next``
sending by itself on SQLite, in the same run.

    python -m bench.workers                 # 5,000 subscribers, ~10 KB messages
    python -m bench.workers -n 2000 --workers 1 2

The sink is Postfix's ``smtp-sink`` when installed (else the asyncio discard server of
``bench.fanout``); PostgreSQL is a throwaway cluster (tests/_postgres_support.py, Debian's
binaries). Each figure is wall time from the start of the sending processes to the exit
of the last (``publish-next`` on SQLite; ``worker --once`` after a ``publish-next`` that
handed the edition off on PostgreSQL), so process start-up is included; CPU seconds per
message are those of the sending processes (children's rusage), so the figure holds on
a bigger machine. The SQLite figure includes rendering the edition (the workers' do not:
the publisher rendered it before handing off), and the PostgreSQL server's own CPU is not
counted. Target: one PostgreSQL worker >= 0.8x the SQLite sender.

Measured here (2 cores shared with other jobs, so the scaling figures are noise-bound),
``python -m bench.workers -n 2000``: SQLite publish-next 270 msg/s (1.77 CPU ms/msg);
PostgreSQL 1 worker 271 (1.00x, 1.15 ms/msg), 2 workers 284 (1.05x), 4 workers 190 (0.70x:
8 sending processes' threads and the server on 2 busy cores).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.fanout import SECRET, make_project, start_sink

REPO = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    env = {**os.environ, "SYNDICATE_SECRET": SECRET,
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("SYNDICATE_CONFIG", None)
    return env


def _syndicate(config: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "syndicate", "--config", str(config), *args],
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(processes: list[subprocess.Popen[bytes]], started: float, cpu: float
           ) -> tuple[float, float]:
    for process in processes:
        _out, err = process.communicate(timeout=3600)
        if process.returncode not in (0,):
            raise SystemExit(f"exit {process.returncode}: {err.decode()[-2000:]}")
    return time.perf_counter() - started, _children_cpu() - cpu


def sqlite_sender(work: Path, port: int, subscribers: int, concurrency: int) -> tuple[float, float]:
    folder = Path(tempfile.mkdtemp(prefix="sqlite-", dir=work))
    config = make_project(folder, port, subscribers, concurrency=concurrency, size_kb=10)
    started, cpu = time.perf_counter(), _children_cpu()
    return _timed([_syndicate(config, "publish-next")], started, cpu)


def pg_workers(work: Path, port: int, subscribers: int, concurrency: int, workers: int,
               url: str) -> tuple[float, float]:
    sys.path.insert(0, str(REPO))
    from syndicate.ledger import open_ledger

    folder = Path(tempfile.mkdtemp(prefix=f"pg{workers}-", dir=work))
    config = make_project(folder, port, 0, concurrency=concurrency, size_kb=10)
    text = config.read_text(encoding="utf-8")
    text = text.replace(f'database = "{folder / "var" / "syndicate.db"}"', f'database = "{url}"')
    config.write_text(text + '\n[delivery]\nsenders = "workers"\nbatch = 50\n', encoding="utf-8")
    with open_ledger(url) as ledger:
        ledger.add_subscribers(f"abonne{i:06d}@exemple.fr" for i in range(subscribers))
    publisher = _syndicate(config, "publish-next")
    out, err = publisher.communicate(timeout=3600)
    if publisher.returncode != 0 or not out.startswith(b"handed:"):
        raise SystemExit(f"publish-next: {out.decode()}{err.decode()}")
    started, cpu = time.perf_counter(), _children_cpu()
    return _timed([_syndicate(config, "worker", "--once") for _ in range(workers)],
                  started, cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--subscribers", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--server", choices=("auto", "smtp-sink", "python"), default="auto")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "tests"))
    from _postgres_support import Cluster, find_bindir, unavailable_reason

    reason = unavailable_reason()
    if reason:
        raise SystemExit(reason)
    bindir = find_bindir()
    assert bindir is not None
    sink, port, name = start_sink(args.server)
    cluster = Cluster(bindir)
    n = args.subscribers
    try:
        with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
            work = Path(tmp)
            print(f"{n} messages (~10 KB) into {name}, smtp concurrency {args.concurrency}, "
                  f"{os.cpu_count()} cores")
            wall, cpu = sqlite_sender(work, port, n, args.concurrency)
            base = n / wall
            print(f"{'sender':<28} {'msg/s':>8} {'ratio':>7} {'CPU ms/msg':>11}")
            print(f"{'SQLite, publish-next':<28} {base:8.0f} {1.0:7.2f} {cpu / n * 1000:11.2f}")
            for count in args.workers:
                wall, cpu = pg_workers(work, port, n, args.concurrency, count,
                                       cluster.database())
                rate = n / wall
                label = f"PostgreSQL, {count} worker{'s' if count > 1 else ''}"
                print(f"{label:<28} {rate:8.0f} {rate / base:7.2f} {cpu / n * 1000:11.2f}")
    finally:
        cluster.stop()
        sink.terminate()
        sink.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
