"""Crash-recovery benchmark: a real ``publish-next`` killed mid-send, then ``resume``.

    python -m bench.crash                  # 2,000 subscribers, killed at 25 %
    python -m bench.crash -n 10000 --kill-at 0.5 --repeat 3

The figures ``tests/test_crash.py`` used to depend on (how fast a sender reaches a
quarter of its list, how long ``resume`` takes) measured here instead, where load from
elsewhere is a figure and not a failure. Each run is a fresh project (``bench.fanout``'s
one-case corpus, ~40 KB messages) sending through a local discard SMTP server:

- ``clean``: ``syndicate publish-next`` in a subprocess, start to exit (the baseline);
- ``crash``: the same, SIGKILLed once the ledger counts ``--kill-at`` of the list sent
  (polled read-only every 5 ms); then ``syndicate resume``, start to exit.

Target: the resume costs no more than the clean run (it sends the rest, plus its
start-up); and it finishes the edition: every delivery sent, none failed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sqlite3
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


def _command(config: Path, verb: str) -> list[str]:
    return [sys.executable, "-m", "syndicate", "--config", str(config), verb]


def _sent(database: Path) -> tuple[int, int, int]:
    """(sent, pending, failed) deliveries, read without taking any lock of the sender's."""
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as db:
            rows = dict(db.execute("SELECT status, count(*) FROM deliveries GROUP BY status"))
    except sqlite3.OperationalError:  # not created yet
        return 0, 0, 0
    return rows.get("sent", 0), rows.get("pending", 0), rows.get("failed", 0)


def clean_run(work: Path, port: int, subscribers: int) -> float:
    folder = Path(tempfile.mkdtemp(prefix="clean-", dir=work))
    config = make_project(folder, port, subscribers, concurrency=4, size_kb=40)
    started = time.perf_counter()
    subprocess.run(_command(config, "publish-next"), env=_env(), check=True,
                   capture_output=True, cwd=folder)
    return time.perf_counter() - started


def crash_run(work: Path, port: int, subscribers: int, kill_at: float) -> tuple[float, float, int]:
    """(seconds until killed, seconds the resume took, deliveries sent at the kill)."""
    folder = Path(tempfile.mkdtemp(prefix="crash-", dir=work))
    config = make_project(folder, port, subscribers, concurrency=4, size_kb=40)
    database = folder / "var" / "syndicate.db"
    started = time.perf_counter()
    sender = subprocess.Popen(_command(config, "publish-next"), env=_env(), cwd=folder,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    target = int(subscribers * kill_at)
    deadline = time.monotonic() + 600
    while _sent(database)[0] < target:
        if sender.poll() is not None:
            raise SystemExit(f"the sender ended before {target} were sent: use a larger -n")
        if time.monotonic() > deadline:
            raise SystemExit("the sender did not reach the kill point in 10 minutes")
        time.sleep(0.005)
    sender.send_signal(signal.SIGKILL)
    sender.wait(timeout=30)
    killed = time.perf_counter() - started
    at_kill = _sent(database)[0]
    started = time.perf_counter()
    subprocess.run(_command(config, "resume"), env=_env(), check=True, capture_output=True,
                   cwd=folder)
    resumed = time.perf_counter() - started
    sent, pending, failed = _sent(database)
    if (sent, pending, failed) != (subscribers, 0, 0):
        raise SystemExit(f"resume left sent={sent} pending={pending} failed={failed}")
    return killed, resumed, at_kill


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--subscribers", type=int, default=2000)
    parser.add_argument("--kill-at", type=float, default=0.25, help="fraction sent at the kill")
    parser.add_argument("--repeat", type=int, default=1, help="best of this many runs of each")
    parser.add_argument("--server", choices=("auto", "smtp-sink", "python"), default="auto")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-crash-"))
    sink, port, server = start_sink(args.server)
    try:
        n = args.subscribers
        print(f"server: {server}; {n} subscribers; kill at {args.kill_at:.0%}; "
              f"cpus {os.cpu_count()}")
        cleans, crashes = [], []
        for _ in range(args.repeat):  # alternated: load from elsewhere hits both
            cleans.append(clean_run(work, port, n))
            crashes.append(crash_run(work, port, n, args.kill_at))
            killed, resumed, at_kill = crashes[-1]
            print(f"  clean publish-next {cleans[-1]:7.2f} s   killed after {killed:6.2f} s "
                  f"({at_kill} sent)   resume {resumed:7.2f} s")
        clean = min(cleans)
        killed, resumed, _ = min(crashes, key=lambda c: c[1])
        ratio = resumed / clean
        verdict = "OK" if ratio <= 1.0 else "OVER TARGET"
        best = " (best of each)" if args.repeat > 1 else ""
        print(f"time to {args.kill_at:.0%} sent: {killed:.2f} s; clean run {clean:.2f} s; "
              f"resume {resumed:.2f} s")
        print(f"resume / clean run = {ratio:.2f}x{best} (target <= 1.0x): {verdict}")
        return 0 if ratio <= 1.0 else 1
    finally:
        sink.terminate()
        sink.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
