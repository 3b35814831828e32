"""Crash safety: a real ``syndicate publish-next`` process killed in the middle of a
send to 2,000 subscribers, then ``syndicate resume``, checked against what a real
SMTP server received.

SIGKILL: nobody is lost and at most ``concurrency`` messages arrive twice (those
in flight at the kill, resent with the same Message-ID). SIGTERM: the process
stops cleanly after the messages in flight, everything is recorded, and the
resume sends the rest with no duplicate at all.

The signal lands mid-send by construction, not by speed: the SMTP server holds every
message after the first N at a gate (:class:`GatedRecorder`) until the test has sent
its signal, so a loaded machine (``-n 8``) changes how long a test takes, never what
it checks. How fast a sender gets there and how long a resume takes are figures of
``python -m bench.crash``. The timeouts below are "did not hang" bounds.
"""

from __future__ import annotations

import asyncio
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from _smtp_support import SECRET, Recorder, seed_corpus, smtp_channel, smtp_server
from conftest import ROOT, Project

from syndicate.ledger import Ledger

pytestmark = pytest.mark.slow

SUBSCRIBERS = 2000
CONCURRENCY = 4
HANG = 180.0  # seconds: a bound for "did not hang", never a speed requirement


@dataclass
class GatedRecorder(Recorder):
    """Accepts the first ``hold_after`` messages, then holds each further DATA (no answer)
    until :attr:`gate` is set: the sender is stuck mid-send for as long as the test needs."""

    hold_after: int = 0
    gate: threading.Event = field(default_factory=threading.Event)
    admitted: int = 0
    held: int = 0  # DATA commands waiting at the gate now

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.admitted += 1
            hold = self.admitted > self.hold_after
            self.held += hold
        try:
            for _ in range(int(HANG / 0.01)):  # bounded
                if not hold or self.gate.is_set():
                    break
                await asyncio.sleep(0.01)
            return await super().handle_DATA(server, session, envelope)
        finally:
            with self.lock:
                self.held -= hold

    def wait_until_held(self, process: subprocess.Popen[bytes]) -> None:
        """Until the sender has had ``hold_after`` accepted and waits on the gate."""
        deadline = time.monotonic() + HANG
        while not (len(self.messages) >= self.hold_after and self.held > 0):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, f"only {len(self.messages)} messages received"
            time.sleep(0.005)

    def release(self) -> None:
        """Open the gate and wait until no DATA is held (accepted, or dropped with its
        connection): what was on the wire has landed."""
        self.gate.set()
        deadline = time.monotonic() + HANG
        while self.held:
            assert time.monotonic() < deadline, "held messages never finished"
            time.sleep(0.005)


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


def _read_stderr_until(process: subprocess.Popen[bytes], text: bytes) -> bytes:
    """What ``process`` wrote on stderr up to (and including) ``text``."""
    assert process.stderr is not None
    seen = b""
    deadline = time.monotonic() + HANG
    with selectors.DefaultSelector() as selector:
        selector.register(process.stderr, selectors.EVENT_READ)
        while text not in seen:
            assert time.monotonic() < deadline, seen.decode(errors="replace")
            if selector.select(timeout=0.5):
                chunk = os.read(process.stderr.fileno(), 65536)
                assert chunk, f"stderr closed before {text!r}: {seen.decode(errors='replace')}"
                seen += chunk
    return seen


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
    recorder = GatedRecorder(hold_after=SUBSCRIBERS // 4)
    with smtp_server(recorder) as (_server, port):
        addresses = _prepare(project, port)
        sender = _cli(project, "publish-next")
        recorder.wait_until_held(sender)
        sender.send_signal(signal.SIGKILL)
        sender.wait(timeout=HANG)
        assert len(recorder.messages) == SUBSCRIBERS // 4  # killed mid-send, by construction
        counts = _ledger_counts(project)
        assert counts["status"] == "delivering" and counts["pending"] > 0
        # Sent and recorded differ by at most the messages in flight.
        recorder.release()  # the server finishes what was already on the wire
        assert 0 <= len(recorder.messages) - counts["sent"] <= CONCURRENCY

        resumed = _cli(project, "resume")
        out, err = resumed.communicate(timeout=HANG)
        assert resumed.returncode == 0, err.decode()
        assert b"resumed edition #1" in out
    copies = _check_everyone_once_or_twice(recorder, addresses)
    duplicates = sum(n - 1 for n in copies.values())
    assert duplicates <= CONCURRENCY, f"{duplicates} duplicates"
    assert _ledger_counts(project) == {"sent": SUBSCRIBERS, "failed": 0, "pending": 0,
                                       "status": "done"}


def test_sigterm_stops_cleanly_then_resume_sends_no_duplicate(project: Project) -> None:
    recorder = GatedRecorder(hold_after=SUBSCRIBERS // 4)
    with smtp_server(recorder) as (_server, port):
        addresses = _prepare(project, port)
        sender = _cli(project, "publish-next")
        recorder.wait_until_held(sender)
        sender.send_signal(signal.SIGTERM)
        # The stop is registered before this line is printed: only then do the messages
        # in flight get their answer, so the sender stops well before the end of its list.
        early = _read_stderr_until(sender, b"SIGTERM: stopping after the messages in flight")
        recorder.release()
        out, err = sender.communicate(timeout=HANG)
        err = early + err
        assert sender.returncode == 75, err.decode()  # incomplete: resumed later
        assert b"Traceback" not in err
        assert b"SIGTERM: stopping after the messages in flight" in err
        assert b"pending" in out
        counts = _ledger_counts(project)
        assert counts["status"] == "delivering" and counts["pending"] > 0
        # Everything that reached the server is recorded, and nothing more.
        assert len(recorder.messages) == counts["sent"] < SUBSCRIBERS

        resumed = _cli(project, "resume")
        out, err = resumed.communicate(timeout=HANG)
        assert resumed.returncode == 0, err.decode()
    copies = _check_everyone_once_or_twice(recorder, addresses)
    assert max(copies.values()) == 1, "SIGTERM must not cause any duplicate"
    assert _ledger_counts(project) == {"sent": SUBSCRIBERS, "failed": 0, "pending": 0,
                                       "status": "done"}


def test_publish_next_finishes_the_unfinished_edition_first(project: Project) -> None:
    """After a kill, ``publish-next`` completes edition #1 before publishing #2."""
    recorder = GatedRecorder(hold_after=50)
    with smtp_server(recorder) as (_server, port):
        addresses = _prepare(project, port, count=400)
        sender = _cli(project, "publish-next")
        recorder.wait_until_held(sender)
        sender.send_signal(signal.SIGKILL)
        sender.wait(timeout=HANG)
        recorder.release()
        assert len(recorder.messages) < len(addresses)

        again = _cli(project, "publish-next")
        _out, err = again.communicate(timeout=HANG)
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
