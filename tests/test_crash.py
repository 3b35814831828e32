"""Crash safety: a real ``syndicate publish-next`` process killed in the middle of a
send to 2,000 subscribers, then ``syndicate resume``, checked against what a real
SMTP server received.

SIGKILL: nobody is lost and at most ``concurrency`` messages arrive twice (those
in flight at the kill, resent with the same Message-ID). SIGTERM: the process
stops cleanly after the messages in flight, everything is recorded, and the
resume sends the rest with no duplicate at all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from _smtp_support import SECRET, Recorder, seed_corpus, smtp_channel, smtp_server
from conftest import ROOT, Project

from syndicate.ledger import Ledger

pytestmark = pytest.mark.slow

SUBSCRIBERS = 2000
CONCURRENCY = 4


def _env() -> dict[str, str]:
    env = {**os.environ, "SYNDICATE_SECRET": SECRET,
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("SYNDICATE_CONFIG", None)
    return env


def _cli(project: Project, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "syndicate", "--config", str(project.config_path), *args],
        env=_env(), cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def _prepare(project: Project, port: int, count: int = SUBSCRIBERS) -> list[str]:
    seed_corpus(project)
    # Summary emails: smaller messages keep the (pure Python) test server fast.
    project.write_config(site={"base_url": "https://cas.example.org/"},
                         publish={"email_content": "summary"},
                         channels=[smtp_channel(port, concurrency=CONCURRENCY, timeout=10.0)])
    addresses = [f"abonne{i:04d}@exemple.fr" for i in range(count)]
    with Ledger(project.config().database) as ledger:
        result = ledger.add_subscribers(addresses)
    assert result.added == count
    return addresses


def _wait_for(recorder: Recorder, count: int, process: subprocess.Popen[bytes],
              timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while len(recorder.messages) < count:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"only {len(recorder.messages)} messages received"
        time.sleep(0.005)


def _ledger_counts(project: Project) -> dict[str, int]:
    with Ledger(project.config().database) as ledger:
        (edition,) = ledger.editions(status=None)
        return {**ledger.delivery_counts(edition.id)["smtp"], "status": edition.status}  # type: ignore[dict-item]


def _check_everyone_once_or_twice(recorder: Recorder, addresses: list[str]) -> Counter[str]:
    copies = Counter(m.rcpt for m in recorder.messages)
    assert set(copies) == set(addresses), "somebody never got the edition"
    # A resent copy is the same message: one Message-ID per subscriber.
    ids: dict[str, set[str]] = {}
    for rcpt, message_id, _conn in recorder.data_seen:
        ids.setdefault(rcpt, set()).add(message_id)
    assert all(len(found) == 1 for found in ids.values())
    assert len({next(iter(found)) for found in ids.values()}) == len(addresses)
    return copies


def test_sigkill_mid_send_then_resume(project: Project) -> None:
    recorder = Recorder(delay=0.004)  # slow enough that the kill lands mid-send
    with smtp_server(recorder) as (_server, port):
        addresses = _prepare(project, port)
        sender = _cli(project, "publish-next")
        _wait_for(recorder, SUBSCRIBERS // 4, sender)
        sender.send_signal(signal.SIGKILL)
        sender.wait(timeout=10)
        at_kill = len(recorder.messages)
        assert 0 < at_kill < SUBSCRIBERS, "the kill must land in the middle of the send"
        counts = _ledger_counts(project)
        assert counts["status"] == "delivering" and counts["pending"] > 0
        # Sent and recorded differ by at most the messages in flight.
        time.sleep(0.2)  # let the server finish what was already on the wire
        assert 0 <= len(recorder.messages) - counts["sent"] <= CONCURRENCY

        resumed = _cli(project, "resume")
        out, err = resumed.communicate(timeout=60)
        assert resumed.returncode == 0, err.decode()
        assert b"resumed edition #1" in out
    copies = _check_everyone_once_or_twice(recorder, addresses)
    duplicates = sum(n - 1 for n in copies.values())
    assert duplicates <= CONCURRENCY, f"{duplicates} duplicates"
    assert _ledger_counts(project) == {"sent": SUBSCRIBERS, "failed": 0, "pending": 0,
                                       "status": "done"}


def test_sigterm_stops_cleanly_then_resume_sends_no_duplicate(project: Project) -> None:
    recorder = Recorder(delay=0.004)
    with smtp_server(recorder) as (_server, port):
        addresses = _prepare(project, port)
        sender = _cli(project, "publish-next")
        _wait_for(recorder, SUBSCRIBERS // 4, sender)
        sender.send_signal(signal.SIGTERM)
        out, err = sender.communicate(timeout=20)
        assert sender.returncode == 75, err.decode()  # incomplete: resumed later
        assert b"Traceback" not in err
        assert b"SIGTERM: stopping after the messages in flight" in err
        assert b"pending" in out
        counts = _ledger_counts(project)
        assert counts["status"] == "delivering" and counts["pending"] > 0
        # Everything that reached the server is recorded, and nothing more.
        assert len(recorder.messages) == counts["sent"] < SUBSCRIBERS

        resumed = _cli(project, "resume")
        out, err = resumed.communicate(timeout=60)
        assert resumed.returncode == 0, err.decode()
    copies = _check_everyone_once_or_twice(recorder, addresses)
    assert max(copies.values()) == 1, "SIGTERM must not cause any duplicate"
    assert _ledger_counts(project) == {"sent": SUBSCRIBERS, "failed": 0, "pending": 0,
                                       "status": "done"}


def test_publish_next_finishes_the_unfinished_edition_first(project: Project) -> None:
    """After a kill, ``publish-next`` completes edition #1 before publishing #2."""
    recorder = Recorder(delay=0.004)
    with smtp_server(recorder) as (_server, port):
        addresses = _prepare(project, port, count=400)
        sender = _cli(project, "publish-next")
        _wait_for(recorder, 50, sender)
        sender.send_signal(signal.SIGKILL)
        sender.wait(timeout=10)
        assert len(recorder.messages) < len(addresses)

        again = _cli(project, "publish-next")
        _out, err = again.communicate(timeout=60)
        assert again.returncode == 0, err.decode()
    with Ledger(project.config().database) as ledger:
        editions = sorted(ledger.editions(status=None), key=lambda e: e.number)
        assert [(e.number, e.status) for e in editions] == [(1, "done"), (2, "done")]
    first = [m for m in recorder.messages if m.message_id.startswith("<edition-1.")]
    second = [m for m in recorder.messages if m.message_id.startswith("<edition-2.")]
    assert len(first) + len(second) == len(recorder.messages)
    assert {m.rcpt for m in first} == {m.rcpt for m in second} == set(addresses)
    assert len(second) == len(addresses)
    assert len(first) - len(addresses) <= CONCURRENCY
    # Edition 1 was finished before edition 2 started.
    assert max(m.at for m in first) < min(m.at for m in second)
