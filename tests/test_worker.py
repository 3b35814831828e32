"""Many senders: ``syndicate worker`` processes sharing an edition's deliveries (real
subprocesses, a real SMTP server on 127.0.0.1, a real PostgreSQL cluster or SQLite file).

The publisher (``publish-next`` with ``[delivery] senders = "workers"``) creates the rows
and hands them off; two or three workers claim them in batches under a lease. Nobody is
sent twice and nobody is lost; a worker SIGKILLed mid-send leaves its claims to run out,
and the others finish, with at most its messages in flight sent twice. The timeouts are
"did not hang" bounds.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from _smtp_support import SECRET, Recorder, seed_corpus, smtp_channel, smtp_server
from conftest import ROOT, Project
from test_crash import GatedRecorder

from syndicate.ledger import open_ledger

pytestmark = pytest.mark.slow

HANG = 180.0
CONCURRENCY = 2
BATCH = 20
LEASE = 4  # seconds: short, so that a killed worker's claims run out quickly


def _env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "SYNDICATE_SECRET": SECRET, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("SYNDICATE_CONFIG", None)
    return env


def _cli(project: Project, tmp_path: Path, *args: str, log: Path | None = None
         ) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "syndicate", "--config", str(project.config_path), *args],
        env=_env(tmp_path), cwd=project.root, stdout=subprocess.PIPE,
        stderr=log.open("wb") if log else subprocess.PIPE)


def _prepare(project: Project, port: int, database: str, count: int, *, batch: int = BATCH,
             **channel: Any) -> list[str]:
    seed_corpus(project)
    project.write_config(
        site={"base_url": "https://cas.example.org/"}, storage={"database": database},
        publish={"email_content": "summary"},
        delivery={"senders": "workers", "batch": batch, "lease": LEASE, "poll": 1},
        channels=[smtp_channel(port, concurrency=CONCURRENCY, timeout=10.0, **channel)])
    addresses = [f"abonne{i:04d}@exemple.fr" for i in range(count)]
    with open_ledger(project.config().ledger_url) as ledger:
        assert ledger.add_subscribers(addresses).added == count
    return addresses


def _publish(project: Project, tmp_path: Path, count: int) -> None:
    """``publish-next`` hands the edition to the workers: rows made, nothing sent."""
    publisher = _cli(project, tmp_path, "publish-next")
    out, err = publisher.communicate(timeout=HANG)
    assert publisher.returncode == 0, err.decode()
    assert out.decode().startswith("handed: published edition #1"), out.decode()
    assert f"{count} handed to the workers" in out.decode()
    counts, status = _counts(project)
    assert status == "delivering" and counts["pending"] == count and counts["sent"] == 0


def _counts(project: Project) -> tuple[dict[str, int], str]:
    with open_ledger(project.config().ledger_url) as ledger:
        (edition,) = ledger.editions(status=None)
        return ledger.delivery_counts(edition.id)["smtp"], edition.status


def _sent_by(log: Path) -> int:
    found = re.search(rb"stopped: \d+ claimed, (\d+) sent", log.read_bytes())
    assert found, log.read_text()
    return int(found.group(1))


def _share(project: Project, tmp_path: Path, database: str, workers: int, count: int) -> None:
    recorder = Recorder(delay=0.02)  # a message takes a while: the workers overlap
    with smtp_server(recorder) as (_server, port):
        addresses = _prepare(project, port, database, count)
        _publish(project, tmp_path, count)
        assert recorder.messages == []
        logs = [tmp_path / f"worker{i}.log" for i in range(workers)]
        procs = [_cli(project, tmp_path, "worker", "--once", log=log) for log in logs]
        for proc, log in zip(procs, logs, strict=True):
            assert proc.wait(HANG) == 0, log.read_text()
    copies = Counter(m.rcpt for m in recorder.messages)
    assert set(copies) == set(addresses), "somebody never got the edition"
    assert max(copies.values()) == 1, "somebody got it twice"
    shares = [_sent_by(log) for log in logs]
    assert sum(shares) == count
    assert sum(1 for n in shares if n) >= 2, f"one worker did it all: {shares}"
    counts, status = _counts(project)
    assert (counts["sent"], counts["pending"], status) == (count, 0, "done")


def test_three_workers_share_an_edition_on_postgresql(project: Project, pg_url: str,
                                                      tmp_path: Path) -> None:
    _share(project, tmp_path, pg_url, workers=3, count=320)


def test_two_workers_share_an_edition_on_sqlite(project: Project, tmp_path: Path) -> None:
    _share(project, tmp_path, str(project.var / "syndicate.db"), workers=2, count=300)


def test_a_killed_workers_claims_run_out_and_another_finishes(
        project: Project, pg_url: str, tmp_path: Path) -> None:
    count = 300
    recorder = GatedRecorder(hold_after=50)
    with smtp_server(recorder) as (_server, port):
        addresses = _prepare(project, port, pg_url, count)
        _publish(project, tmp_path, count)
        first = _cli(project, tmp_path, "worker", log=tmp_path / "first.log")
        recorder.wait_until_held(first)
        with open_ledger(pg_url) as ledger:
            (edition,) = ledger.editions(status=None)
            held = ledger.claim_deliveries(edition.id, "smtp", "probe", LEASE, 1)
        assert held, "the first worker holds only a batch, the rest is free"
        first.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        first.wait(HANG)
        recorder.release()  # what was on the wire lands: sent, not recorded
        logs = [tmp_path / "second.log", tmp_path / "third.log"]
        others = [_cli(project, tmp_path, "worker", "--once", log=log) for log in logs]
        for proc, log in zip(others, logs, strict=True):
            assert proc.wait(HANG) == 0, log.read_text()
        took = time.monotonic() - killed
    print(f"rows of the killed worker finished {took:.1f} s after the kill (lease {LEASE} s)")
    copies = Counter(m.rcpt for m in recorder.messages)
    assert set(copies) == set(addresses), "somebody never got the edition"
    duplicates = sum(n - 1 for n in copies.values())
    assert duplicates <= BATCH, f"{duplicates} duplicates"
    assert duplicates <= CONCURRENCY  # in fact: only its messages in flight
    counts, status = _counts(project)
    assert (counts["sent"], counts["pending"], status) == (count, 0, "done")


def test_a_wrong_senders_value_is_one_line(project: Project, tmp_path: Path) -> None:
    project.write_config(delivery={"senders": "wrokers"})
    proc = _cli(project, tmp_path, "worker", "--once")
    _out, err = proc.communicate(timeout=HANG)
    assert proc.returncode == 1
    lines = err.decode().strip().splitlines()
    assert lines == [f"error: {project.config_path}: delivery.senders = 'wrokers': expected "
                     "one of 'self' or 'workers'"], lines


def test_a_channels_rate_holds_across_workers(project: Project, pg_url: str,
                                              tmp_path: Path) -> None:
    """Two workers, ``rate = 20`` per second on the channel: together, never faster. The
    bound is the behaviour (a lower bound on the time the sends span), not a speed."""
    count, rate = 60, 20.0
    recorder = Recorder()
    with smtp_server(recorder) as (_server, port):
        _prepare(project, port, pg_url, count, batch=5, rate=rate)
        _publish(project, tmp_path, count)
        logs = [tmp_path / f"worker{i}.log" for i in range(2)]
        procs = [_cli(project, tmp_path, "worker", "--once", log=log) for log in logs]
        for proc, log in zip(procs, logs, strict=True):
            assert proc.wait(HANG) == 0, log.read_text()
    shares = [_sent_by(log) for log in logs]
    assert sum(shares) == count and all(shares), shares
    times = sorted(m.at for m in recorder.messages)
    # n messages at most `rate` per second span about (n - 1) / rate, whatever the number
    # of workers; with a limiter per worker two would take half that. 0.8: arrival jitter.
    span = times[-1] - times[0]
    print(f"{count} messages by 2 workers at rate {rate:g}/s: {span:.2f} s")
    assert span >= (count - 1) / rate * 0.8, span


def test_back_to_self_the_publisher_takes_the_hand_off_back(project: Project,
                                                           tmp_path: Path) -> None:
    """Handed to the workers, then ``senders = "self"`` again: the resume takes the
    channel back (no worker may claim it) and sends what is pending itself."""
    recorder = Recorder()
    with smtp_server(recorder) as (_server, port):
        addresses = _prepare(project, port, str(project.var / "syndicate.db"), 30)
        _publish(project, tmp_path, 30)
        with open_ledger(project.config().ledger_url) as ledger:
            (edition,) = ledger.editions(status=None)
            assert ledger.handoffs() == [(edition.id, "smtp")]
        project.write_config(
            site={"base_url": "https://cas.example.org/"},
            storage={"database": str(project.var / "syndicate.db")},
            publish={"email_content": "summary"},
            channels=[smtp_channel(port, concurrency=CONCURRENCY, timeout=10.0)])
        resumed = _cli(project, tmp_path, "resume")
        out, err = resumed.communicate(timeout=HANG)
        assert resumed.returncode == 0, err.decode()
        assert out.decode().startswith("complete: resumed edition #1"), out.decode()
        with open_ledger(project.config().ledger_url) as ledger:
            assert ledger.handoffs() == []
            assert ledger.claim_deliveries(edition.id, "smtp", "late", LEASE, 10) == []
    assert sorted(m.rcpt for m in recorder.messages) == sorted(addresses)
    counts, status = _counts(project)
    assert (counts["sent"], counts["pending"], status) == (30, 0, "done")


def test_sigterm_finishes_in_flight_and_gives_the_claims_back(
        project: Project, pg_url: str, tmp_path: Path) -> None:
    count = 200
    recorder = GatedRecorder(hold_after=30)
    with smtp_server(recorder) as (_server, port):
        addresses = _prepare(project, port, pg_url, count)
        _publish(project, tmp_path, count)
        first = _cli(project, tmp_path, "worker", log=tmp_path / "first.log")
        recorder.wait_until_held(first)
        first.send_signal(signal.SIGTERM)
        recorder.release()
        assert first.wait(HANG) == 0, (tmp_path / "first.log").read_text()
        assert b"unsent claim(s) given back" in (tmp_path / "first.log").read_bytes()
        with open_ledger(pg_url) as ledger:
            (edition,) = ledger.editions(status=None)
            # Given back: free at once, no lease to wait for.
            assert ledger.claim_deliveries(edition.id, "smtp", "probe", LEASE, 1)
            assert ledger.release_claims("probe") == 1
        second = _cli(project, tmp_path, "worker", "--once", log=tmp_path / "second.log")
        assert second.wait(HANG) == 0, (tmp_path / "second.log").read_text()
    copies = Counter(m.rcpt for m in recorder.messages)
    assert set(copies) == set(addresses) and max(copies.values()) == 1
    counts, status = _counts(project)
    assert (counts["sent"], counts["pending"], status) == (count, 0, "done")
