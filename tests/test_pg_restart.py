"""PostgreSQL restarted in the middle of a send (real cluster, real subprocesses, a real
SMTP server on 127.0.0.1): ``pg_ctl restart -m fast`` ends every session while workers
and a ``run`` daemon are sending. They log the outage once, open the ledger again with a
bounded backoff and finish: nobody is lost, and at most the messages in flight when the
connection died are sent twice. The timeouts are "did not hang" bounds.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from _postgres_support import Cluster
from _smtp_support import Recorder, smtp_channel, smtp_server
from conftest import Project
from test_daemon import read_events, stop, wait_for
from test_failover import _is, _start
from test_worker import CONCURRENCY, HANG, _cli, _counts, _prepare, _publish

pytestmark = pytest.mark.slow


def _wait_for_messages(recorder: Recorder, count: int, procs: list[subprocess.Popen[bytes]]
                       ) -> None:
    deadline = time.monotonic() + HANG
    while len(recorder.messages) < count:
        for proc in procs:
            assert proc.poll() is None, proc.returncode
        assert time.monotonic() < deadline, f"only {len(recorder.messages)} messages"
        time.sleep(0.01)


def test_workers_reconnect_after_a_postgresql_restart_and_finish(
        project: Project, pg_url: str, pg_cluster: Cluster, tmp_path: Path) -> None:
    count, workers = 800, 2
    recorder = Recorder(delay=0.005)
    with smtp_server(recorder) as (_server, port):
        addresses = _prepare(project, port, pg_url, count)
        _publish(project, tmp_path, count)
        logs = [tmp_path / f"worker{i}.log" for i in range(workers)]
        procs = [_cli(project, tmp_path, "worker", "--once", log=log) for log in logs]
        _wait_for_messages(recorder, count // 5, procs)
        before = len(recorder.messages)
        pg_cluster.restart()
        restarted = time.monotonic()
        for proc, log in zip(procs, logs, strict=True):
            assert proc.wait(HANG) == 0, log.read_text()
        took = time.monotonic() - restarted
    copies = Counter(m.rcpt for m in recorder.messages)
    duplicates = sum(n - 1 for n in copies.values())
    print(f"PostgreSQL restarted after {before} of {count} messages; the workers finished "
          f"{took:.1f} s later; {duplicates} duplicate(s)")
    assert set(copies) == set(addresses), "somebody never got the edition"
    # Each worker's smtp threads had at most one message on the wire when its connection
    # died: sent, not marked, sent again once the claim ran out.
    assert duplicates <= workers * CONCURRENCY, duplicates
    counts, status = _counts(project)
    assert (counts["sent"], counts["pending"], status) == (count, 0, "done")
    for log in logs:
        text = log.read_text()
        # One line when the outage starts and one when it ends, not one per message.
        assert len(re.findall("ledger unavailable", text)) == 1, text
        assert len(re.findall("ledger back after", text)) == 1, text


def test_a_self_sending_daemon_steps_down_reconnects_and_finishes(
        project: Project, pg_url: str, pg_cluster: Cluster, tmp_path: Path) -> None:
    """``run`` sending by itself (``senders = "self"``) when the server restarts: its
    lock connection dies, it steps down, opens the ledger again once the server is back,
    leads again and resumes the edition to the end."""
    count = 600
    recorder = Recorder(delay=0.005)
    with smtp_server(recorder) as (_server, port):
        addresses = _prepare(project, port, pg_url, count)
        _publish(project, tmp_path, count)  # an unfinished edition, every row pending
        project.write_config(
            site={"base_url": "https://cas.example.org/"}, storage={"database": pg_url},
            publish={"email_content": "summary"},
            schedule={"cron": "0 8 1 1 *", "failover": "6s"},
            channels=[smtp_channel(port, concurrency=CONCURRENCY, timeout=10.0)])
        log = tmp_path / "daemon.log"
        daemon = _start(project, log, tmp_path)
        try:
            _wait_for_messages(recorder, count // 5, [daemon])
            pg_cluster.restart()
            wait_for(log, daemon, _is("stepped_down"), 60)
            resumed = [e for e in read_events(log) if e.get("event") == "leader"]
            wait_for(log, daemon, lambda e: str(e.get("event", "")).startswith("resumed")
                     and e.get("outcome") != "partial", HANG,
                     after=[e.get("event") for e in read_events(log)].index("stepped_down"))
            deadline = time.monotonic() + HANG
            while _counts(project)[1] != "done":
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        finally:
            code = stop(daemon)
    assert code == 0, log.read_text()
    events = [e.get("event") for e in read_events(log)]
    assert events.count("leader") + events.count("locked") >= 2, events
    assert events.count("lock_lost") == 1, events
    assert resumed is not None
    copies = Counter(m.rcpt for m in recorder.messages)
    duplicates = sum(n - 1 for n in copies.values())
    print(f"daemon: {duplicates} duplicate(s) after a PostgreSQL restart mid-send")
    assert set(copies) == set(addresses), "somebody never got the edition"
    assert duplicates <= CONCURRENCY, duplicates
    counts, status = _counts(project)
    assert (counts["sent"], counts["pending"], status) == (count, 0, "done")


def test_the_reconnection_backoff_grows_and_is_bounded() -> None:
    from syndicate.worker import reconnect_delay

    delays = [reconnect_delay(n, 1.0) for n in range(1, 12)]
    assert delays[:4] == [0.25, 0.5, 1.0, 2.0]
    assert delays == sorted(delays) and max(delays) == 10.0
    assert reconnect_delay(10_000, 30.0) == 30.0  # never more than a poll when that is longer
