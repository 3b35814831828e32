"""Workers benchmark: messages per second into a local SMTP sink with 1, 2 and 4
``syndicate worker`` processes on a PostgreSQL ledger, against one ``publish-next``
sending by itself on SQLite and against plain ``smtplib`` over the same number of
connections (no ledger, no rendering: how fast the sink takes mail), in the same run;
then the ledger's cost per message on PostgreSQL.

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
counted in "CPU ms/msg" but in its own column, "PG CPU ms/msg" (the server's processes,
from /proc: the postmaster's own and reaped children's time plus its live backends').

The ledger's cost per message is measured apart, in this process, without SMTP: what a
worker asks of the ledger for each message (claims of ``batch`` rows, then per row the
subscriber read and ``mark_sent``), wall and CPU on both sides, over a fresh edition.
Target: one PostgreSQL worker >= 0.8x the SQLite sender.

Measured here (2 cores shared with other jobs, so the scaling figures are noise-bound),
``python -m bench.workers`` (5,000 messages): plain smtplib 1584 msg/s (0.23 CPU ms/msg);
SQLite publish-next 418 msg/s (1.03 ms/msg); PostgreSQL 1 worker 433 (1.04x, 0.83 ms/msg,
server 0.40 ms/msg), 2 workers 482 (1.15x), 4 workers 472 (1.13x: the 2 cores are full).
The ledger alone: 0.58 ms wall per message on one connection, 0.22 ms CPU in the worker,
0.23 ms in the server. docs/deployment.md, "Capacity", turns these into a model.
"""

from __future__ import annotations

import argparse
import os
import resource
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from email.message import EmailMessage
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


def _proc_cpu(pid: int) -> tuple[float, float]:
    """(own, reaped children's) CPU seconds of ``pid`` from /proc (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    # After the ")": state is field 3, so utime (14) is [11], stime [12], cutime [13]...
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


def server_cpu(data: Path) -> float:
    """CPU seconds used so far by a PostgreSQL cluster: the postmaster, the backends and
    helpers it reaped, and those alive now (children of the postmaster)."""
    postmaster = int((data / "postmaster.pid").read_text().split()[0])
    own, reaped = _proc_cpu(postmaster)
    total = own + reaped
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == postmaster:
            total += _proc_cpu(int(entry.name))[0]
    return total


def plain_smtplib(port: int, subscribers: int, concurrency: int, size_kb: int = 10
                  ) -> tuple[float, float]:
    """The sink's own speed: ``concurrency`` threads, one reused smtplib connection each,
    a ~``size_kb`` KB message per recipient; no ledger, no rendering. (wall, CPU)."""
    message = EmailMessage()
    message["From"], message["Subject"] = "lettre@bench.example.org", "Baseline"
    message.set_content("Une ligne de texte du message de reference, pour la mesure.\n"
                        * 17 * size_kb)  # ~1 KB of ASCII per 17 lines
    data = message.as_bytes()
    recipients = iter(f"abonne{i:06d}@exemple.fr" for i in range(subscribers))
    feed = threading.Lock()

    def run() -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            while True:
                with feed:
                    rcpt = next(recipients, None)
                if rcpt is None:
                    return
                smtp.sendmail("lettre@bench.example.org", [rcpt], data)

    threads = [threading.Thread(target=run) for _ in range(concurrency)]
    started, cpu = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, time.process_time() - cpu


def ledger_cost(url: str, subscribers: int, batch: int, data: Path) -> tuple[float, float, float]:
    """What the ledger costs per message on PostgreSQL, as a worker uses it but without
    SMTP: claim ``batch`` rows, then per row read the subscriber and ``mark_sent``.
    Returns (wall, this process's CPU, the server's CPU) in seconds per message."""
    sys.path.insert(0, str(REPO))
    from datetime import UTC, datetime

    from syndicate.ledger import open_ledger

    with open_ledger(url) as ledger:
        addresses = [f"abonne{i:06d}@exemple.fr" for i in range(subscribers)]
        ledger.add_subscribers(addresses)
        edition = ledger.claim_edition(slot="bench", slug="bench", title="Bench",
                                       url="https://bench.example.org/1/",
                                       published_at=datetime.now(UTC))
        ledger.ensure_deliveries(edition.id, "smtp", addresses)
        ledger.hand_off(edition.id, "smtp")
        started, cpu, server = time.perf_counter(), time.process_time(), server_cpu(data)
        done = 0
        while True:
            rows = ledger.claim_deliveries(edition.id, "smtp", "bench", 60.0, batch)
            if not rows:
                break
            for row in rows:
                ledger.get_subscriber(row.recipient, normalized=True)
                ledger.mark_sent(row.id, "250 2.0.0 Ok", 250)
                done += 1
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu
        server = server_cpu(data) - server
    assert done == subscribers, done
    return wall / done, cpu / done, server / done


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
            wall, cpu = plain_smtplib(port, n, args.concurrency)
            plain = n / wall
            wall, cpu_sqlite = sqlite_sender(work, port, n, args.concurrency)
            base = n / wall
            print(f"{'sender':<28} {'msg/s':>8} {'x SQLite':>9} {'x smtplib':>10} "
                  f"{'CPU ms/msg':>11} {'PG CPU ms/msg':>14}")
            print(f"{'plain smtplib (no ledger)':<28} {plain:8.0f} {plain / base:9.2f} "
                  f"{1.0:10.2f} {cpu / n * 1000:11.2f} {'':>14}")
            print(f"{'SQLite, publish-next':<28} {base:8.0f} {1.0:9.2f} {base / plain:10.2f} "
                  f"{cpu_sqlite / n * 1000:11.2f} {'':>14}")
            for count in args.workers:
                before = server_cpu(cluster.data)
                wall, cpu = pg_workers(work, port, n, args.concurrency, count,
                                       cluster.database())
                server = server_cpu(cluster.data) - before
                rate = n / wall
                label = f"PostgreSQL, {count} worker{'s' if count > 1 else ''}"
                print(f"{label:<28} {rate:8.0f} {rate / base:9.2f} {rate / plain:10.2f} "
                      f"{cpu / n * 1000:11.2f} {server / n * 1000:14.2f}")
            per_wall, per_cpu, per_server = ledger_cost(cluster.database(), n, 50,
                                                        cluster.data)
            print(f"\nledger cost per message on PostgreSQL (claims of 50, subscriber read, "
                  f"mark_sent; no SMTP): {per_wall * 1000:.2f} ms wall, "
                  f"{per_cpu * 1000:.2f} ms CPU in the worker, {per_server * 1000:.2f} ms CPU "
                  f"in the server; {1 / per_wall:.0f} msg/s on one connection")
    finally:
        cluster.stop()
        sink.terminate()
        sink.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
