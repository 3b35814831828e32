"""The fault matrix of a cluster (real processes, a real PostgreSQL cluster, a real SMTP
server on 127.0.0.1): 3 ``syndicate worker`` and 2 ``syndicate run`` daemons on one
database, 5,000 subscribers, an edition due. While the workers send, the test SIGKILLs a
random worker or the current leader 10 times (a seeded random: the seed is printed, and
``SYNDICATE_FAULT_SEED`` replays a run), respawning each killed process. Then: nobody
lost, duplicates within the messages the killed workers had in flight, exactly one
edition for the slot, and each time a standby took over the lock within the lease.

Run with ``-s`` to see the figures. The sink is slowed down while the kills go on (so
that they all land during the sends), then sped up. The timeouts are "did not hang"
bounds; the takeover bound is the behaviour.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from _smtp_support import SECRET, Recorder, seed_corpus, smtp_channel, smtp_server
from conftest import ROOT, Project

from syndicate.ledger import open_ledger

pytestmark = pytest.mark.slow

SUBSCRIBERS = 5_000
WORKERS, DAEMONS, KILLS = 3, 2, 10
CONCURRENCY, BATCH = 2, 20
LEASE = 4  # seconds: [delivery] lease (a killed worker's claims come back after it)
FAILOVER = 6  # seconds: [schedule] failover (the smallest allowed is 5)
HANG = 300.0
SLOW = 0.03  # seconds per message at the sink while the kills go on


def _env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "SYNDICATE_SECRET": SECRET, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("SYNDICATE_CONFIG", None)
    return env


@dataclass
class Cluster:
    """The syndicate processes of the test, each role's current set and its logs."""

    project: Project
    tmp_path: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    daemons: list[subprocess.Popen[bytes]] = field(default_factory=list)
    spawned: int = 0
    logs: dict[int, Path] = field(default_factory=dict)  # pid -> its log

    def spawn(self, *args: str) -> subprocess.Popen[bytes]:
        self.spawned += 1
        log = self.tmp_path / f"{args[0]}-{self.spawned}.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "syndicate", "--config", str(self.project.config_path),
             *args], env=_env(self.tmp_path), cwd=self.project.root,
            stdout=subprocess.DEVNULL, stderr=log.open("wb"))
        self.logs[proc.pid] = log
        return proc

    def standby_ready(self, leader: int | None) -> bool:
        """Whether a daemon other than the leader waits as a standby (a respawned one
        may still be starting: killing the leader then measures its start-up)."""
        return any(p.pid != leader and b'"event": "standby"' in self.logs[p.pid].read_bytes()
                   for p in self.daemons)

    def all(self) -> list[subprocess.Popen[bytes]]:
        return [*self.workers, *self.daemons]

    def check_alive(self) -> None:
        for proc in self.all():
            assert proc.poll() is None, f"{proc.args} exited {proc.returncode}"


def _holder(url: str) -> int | None:
    """The pid of the daemon holding the publisher lock now (None: nobody)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT p.pid FROM syndicate.publisher p JOIN pg_locks l"
            " ON l.pid = p.backend_pid AND l.locktype = 'advisory' AND l.granted"
            " AND l.objsubid = 2").fetchone()
    return int(row[0]) if row else None


def _state(url: str) -> tuple[int, dict[str, int], str] | None:
    """(editions, smtp counts, status of the first) or None before the first edition."""
    with open_ledger(url) as ledger:
        editions = ledger.editions(status=None)
        if not editions:
            return None
        first = min(editions, key=lambda e: e.number)
        return len(editions), ledger.delivery_counts(first.id).get("smtp", {}), first.status


def _until(what: str, check: object, cluster: Cluster, timeout: float = HANG) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        cluster.check_alive()
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_kill_workers_and_leaders_during_the_sends(project: Project, pg_url: str,
                                                   tmp_path: Path) -> None:
    seed = int(os.environ.get("SYNDICATE_FAULT_SEED", random.randrange(1 << 32)))
    rng = random.Random(seed)
    print(f"\nfault matrix: seed {seed} (SYNDICATE_FAULT_SEED={seed} replays it)")
    recorder = Recorder(delay=SLOW)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    slot = now - timedelta(minutes=1)  # a daily slot, a minute ago: due, caught up at start
    with smtp_server(recorder) as (_server, port):
        seed_corpus(project)
        project.write_config(
            site={"base_url": "https://cas.example.org/"}, storage={"database": pg_url},
            publish={"email_content": "summary"},
            schedule={"cron": f"{slot.minute} {slot.hour} * * *", "timezone": "UTC",
                      "failover": f"{FAILOVER}s"},
            delivery={"senders": "workers", "batch": BATCH, "lease": LEASE, "poll": 1},
            channels=[smtp_channel(port, concurrency=CONCURRENCY, timeout=10.0)])
        addresses = [f"abonne{i:05d}@exemple.fr" for i in range(SUBSCRIBERS)]
        with open_ledger(pg_url) as ledger:
            assert ledger.add_subscribers(addresses).added == SUBSCRIBERS
            ledger.set_meta("schedule.last_slot", (slot - timedelta(minutes=1)).isoformat())
        cluster = Cluster(project, tmp_path)
        try:
            cluster.daemons = [cluster.spawn("run", "--log-format", "json")
                               for _ in range(DAEMONS)]
            cluster.workers = [cluster.spawn("worker") for _ in range(WORKERS)]
            _until("the sends to start", lambda: len(recorder.messages) >= 100, cluster)
            kills: list[tuple[str, int]] = []  # (role, messages received at the kill)
            takeovers: list[float] = []
            worker_kills = 0
            for _ in range(KILLS):
                time.sleep(rng.uniform(0.3, 1.0))
                if rng.random() < 0.4:  # the leader
                    _until("a leader", lambda: _holder(pg_url) is not None, cluster)
                    leader = _holder(pg_url)
                    _until("a standby", lambda leader=leader: cluster.standby_ready(leader),  # type: ignore[misc]
                           cluster)
                    (victim,) = [p for p in cluster.daemons if p.pid == leader]
                    victim.send_signal(signal.SIGKILL)
                    killed = time.monotonic()
                    victim.wait(HANG)
                    kills.append(("leader", len(recorder.messages)))
                    cluster.daemons.remove(victim)
                    cluster.daemons.append(cluster.spawn("run", "--log-format", "json"))
                    _until("a standby to take over", lambda leader=leader: _holder(pg_url) not in
                           (None, leader), cluster, timeout=FAILOVER + 30)
                    takeovers.append(time.monotonic() - killed)
                else:
                    victim = rng.choice(cluster.workers)
                    victim.send_signal(signal.SIGKILL)
                    victim.wait(HANG)
                    kills.append(("worker", len(recorder.messages)))
                    worker_kills += 1
                    cluster.workers.remove(victim)
                    cluster.workers.append(cluster.spawn("worker"))
            during = _state(pg_url)
            recorder.delay = 0.0  # the kills are over: let the sends finish
            _until("the edition to be done",
                   lambda: (s := _state(pg_url)) is not None and s[2] == "done", cluster)
        finally:
            for proc in cluster.all():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            codes = [proc.wait(60) for proc in cluster.all()]
        assert codes == [0] * len(codes), codes
    copies = Counter(m.rcpt for m in recorder.messages)
    lost = len(set(addresses) - set(copies))
    duplicates = sum(n - 1 for n in copies.values())
    state = _state(pg_url)
    assert state is not None
    editions, counts, _status = state
    print(f"fault matrix: {len(kills)} kills ({worker_kills} workers, "
          f"{len(kills) - worker_kills} leaders) at messages "
          f"{', '.join(f'{role[0]}@{n}' for role, n in kills)}")
    print(f"fault matrix: {SUBSCRIBERS} subscribers, {len(recorder.messages)} messages "
          f"received, {lost} lost, {duplicates} duplicate(s) (bound: {CONCURRENCY} in "
          f"flight x {worker_kills} worker kills = {CONCURRENCY * worker_kills}; a batch x "
          f"kills = {BATCH * worker_kills}); {editions} edition(s)")
    print("fault matrix: takeovers after the leader's SIGKILL: "
          f"{', '.join(f'{t:.2f} s' for t in takeovers) or 'none'} (failover {FAILOVER} s)")
    assert during is not None and during[2] != "done", "the kills did not land during sends"
    assert lost == 0
    # Only the killed workers' messages in flight (sent, not yet marked) go twice.
    assert duplicates <= CONCURRENCY * worker_kills, duplicates
    assert editions == 1 and counts.get("sent") == SUBSCRIBERS and not counts.get("pending")
    import psycopg

    with psycopg.connect(pg_url) as conn:
        slots = conn.execute("SELECT slot, count(*) FROM syndicate.editions GROUP BY slot"
                             ).fetchall()
    assert [n for _slot, n in slots] == [1], slots
    assert all(t <= FAILOVER for t in takeovers), takeovers
