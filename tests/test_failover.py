"""Failover: several ``syndicate run`` daemons on one PostgreSQL ledger (real cluster, real
subprocesses). One leads, the others wait as standbys; a leader SIGKILLed mid-send is
replaced within the lease, the standby finishes the unfinished edition and keeps the
schedule; a leader that loses its lock connection steps down and contends again.

The timeouts here are "did not hang" bounds; the takeover bound (lease + 15 s) is the
behaviour "did take over within the lease", generous for loaded machines.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from _smtp_support import SECRET, seed_corpus, smtp_channel, smtp_server
from conftest import ROOT, Project
from test_crash import CONCURRENCY, GatedRecorder
from test_daemon import fill_corpus, read_events, stop, wait_for

from syndicate.ledger import open_ledger

pytestmark = pytest.mark.slow

LEASE = 10  # [schedule] failover, seconds: a standby polls every max(1, LEASE / 6) s


def _start(project: Project, log: Path, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1",
           "SYNDICATE_SECRET": SECRET, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("SYNDICATE_CONFIG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "syndicate", "--config", str(project.config_path), "run",
         "--log-format", "json"],
        stdout=subprocess.DEVNULL, stderr=log.open("wb"), env=env, cwd=project.root)


def _slot_counts(pg_url: str) -> list[tuple[str, int]]:
    import psycopg

    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT slot, count(*) FROM syndicate.editions"
                            " GROUP BY slot ORDER BY slot").fetchall()
    return [(str(slot), int(n)) for slot, n in rows]


def _is(name: str) -> Any:
    return lambda e: e.get("event") == name


def test_standby_takes_over_a_leader_killed_mid_send(project: Project, pg_url: str,
                                                     tmp_path: Path) -> None:
    recorder = GatedRecorder(hold_after=50)
    with smtp_server(recorder) as (_server, port):
        seed_corpus(project)
        fill_corpus(project, 3)
        project.write_config(
            site={"base_url": "https://cas.example.org/"}, storage={"database": pg_url},
            publish={"email_content": "summary"},
            schedule={"cron": "* * * * *", "timezone": "Europe/Paris", "failover": f"{LEASE}s"},
            channels=[smtp_channel(port, concurrency=CONCURRENCY, timeout=10.0)])
        addresses = [f"abonne{i:04d}@exemple.fr" for i in range(400)]
        with open_ledger(pg_url) as ledger:
            ledger.add_subscribers(addresses)
        first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
        first = _start(project, first_log, tmp_path)
        second: subprocess.Popen[bytes] | None = None
        try:
            wait_for(first_log, first, _is("scheduled"), 60)
            second = _start(project, second_log, tmp_path)
            standby = wait_for(second_log, second, _is("standby"), 60)
            assert f"pid {first.pid} " in standby["holder"]
            # The leader's first slot (within a minute) is held at the gate mid-send.
            recorder.wait_until_held(first)
            first.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            first.wait(60)
            recorder.release()
            wait_for(second_log, second, _is("leader"), LEASE + 15)
            takeover = time.monotonic() - killed
            print(f"takeover after SIGKILL: {takeover:.2f} s (lease {LEASE} s)")
            resumed = wait_for(second_log, second,
                               lambda e: str(e.get("event", "")).startswith("resumed"), 120)
            assert resumed["edition"] == 1
            # ... and then it publishes the next slot on the schedule, once.
            wait_for(second_log, second, _is("published"), 130)
        finally:
            if first.poll() is None:
                first.kill()
            code = stop(second) if second is not None else None
        assert code == 0, second_log.read_text()
    counts = _slot_counts(pg_url)
    assert counts and all(n == 1 for _slot, n in counts), counts
    first_edition = [m for m in recorder.messages if m.message_id.startswith("<edition-1.")]
    copies = Counter(m.rcpt for m in first_edition)
    assert set(copies) == set(addresses), "somebody never got edition #1"
    duplicates = sum(n - 1 for n in copies.values())
    assert duplicates <= CONCURRENCY, f"{duplicates} duplicates"
    with open_ledger(pg_url) as ledger:
        (one,) = [e for e in ledger.editions(status=None) if e.number == 1]
        assert one.status == "done"
        assert ledger.delivery_counts(one.id)["smtp"]["sent"] == len(addresses)
    events = [e.get("event") for e in read_events(second_log)]
    assert events.index("standby") < events.index("leader") < events.index("scheduled")


def test_a_leader_that_loses_its_lock_steps_down_and_contends_again(
        project: Project, pg_url: str, pg_cluster: Any, tmp_path: Path) -> None:
    """The lock's session ends under the leader (as a partition ends it, server-side):
    the leader notices within a poll, steps down (it stops publishing) and waits as a
    standby; the other daemon leads. Neither exits until told."""
    project.write_config(storage={"database": pg_url},
                         schedule={"cron": "0 8 1 1 *", "failover": "6s"})
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first = _start(project, first_log, tmp_path)
    second: subprocess.Popen[bytes] | None = None
    try:
        wait_for(first_log, first, _is("scheduled"), 60)
        second = _start(project, second_log, tmp_path)
        wait_for(second_log, second, _is("standby"), 60)
        name = pg_url.rsplit("/", 1)[1]
        pg_cluster.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                       f" WHERE datname = '{name}' AND application_name = 'syndicate publisher'")
        wait_for(first_log, first, _is("lock_lost"), 30)
        wait_for(first_log, first, _is("stepped_down"), 30)
        wait_for(second_log, second, _is("leader"), 30)
        wait_for(second_log, second, _is("scheduled"), 30)
        # The old leader is a standby now, waiting on the new one.
        after = [e.get("event") for e in read_events(first_log)].index("stepped_down")
        standby = wait_for(first_log, first, _is("standby"), 30, after=after)
        assert f"pid {second.pid} " in standby["holder"]
        assert first.poll() is None
    finally:
        code_first = stop(first)
        code = stop(second) if second is not None else None
    assert code == 0, second_log.read_text()
    assert code_first == 0, first_log.read_text()
    last = read_events(first_log)[-1]
    assert last["event"] == "stopped" and last["signal"] == "SIGTERM"


def test_a_standby_stops_on_sigterm(project: Project, pg_url: str, tmp_path: Path) -> None:
    project.write_config(storage={"database": pg_url}, schedule={"cron": "0 8 1 1 *"})
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first = _start(project, first_log, tmp_path)
    try:
        wait_for(first_log, first, _is("scheduled"), 60)
        second = _start(project, second_log, tmp_path)
        wait_for(second_log, second, _is("standby"), 60)
        assert stop(second) == 0, second_log.read_text()
        assert "leader" not in [e.get("event") for e in read_events(second_log)]
    finally:
        assert stop(first) == 0
