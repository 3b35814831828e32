"""How a publish ends, told truthfully: exit status, first line, daemon events.

Against real parts: an aiosmtpd server (or none, or one without STARTTLS), a real
HTTP endpoint (pytest-httpserver) that answers 429 with a huge Retry-After or never
answers, a real ledger file that cannot grow past a file size limit (``ulimit -f``)
in a real ``python -m syndicate`` process.

- 0 complete (a bounce is an outcome), 75 incomplete (pending, will be resumed),
  2 failed (see tests/test_deliveries_cli.py);
- a ledger write error: one line, 75, the edition resumable, nobody lost;
- a slow webhook never delays the email, nor the command past its deadline.
"""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from _smtp_support import SECRET, Recorder, free_port, seed_corpus, smtp_channel, smtp_server
from click.testing import CliRunner
from conftest import ROOT, Clock, Project
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from syndicate.cli import cli
from syndicate.daemon import Daemon
from syndicate.ledger import Ledger
from syndicate.logs import setup_logging

PEOPLE = [f"lecteur{i:02d}@exemple.fr" for i in range(12)]


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET", SECRET)


def run(project: Project, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--config", str(project.config_path), *args])


def setup(project: Project, channels: list[dict[str, Any]],
          people: list[str] = PEOPLE) -> None:
    seed_corpus(project)
    project.write_config(site={"base_url": "https://cas.example.org/"},
                         publish={"email_content": "summary"}, channels=channels)
    with Ledger(project.config().database) as ledger:
        ledger.add_subscribers(people)


def smtp_counts(project: Project, number: int = 1) -> dict[str, Any]:
    with Ledger(project.config().database) as ledger:
        edition = next(e for e in ledger.editions(status=None) if e.number == number)
        return {**ledger.delivery_counts(edition.id).get("smtp", {}), "status": edition.status}


# --------------------------------------------------------------------------- exit status


@pytest.mark.parametrize("trouble", ["server down", "STARTTLS refused"])
def test_smtp_unusable_is_incomplete_then_resume_completes(project: Project,
                                                          trouble: str) -> None:
    if trouble == "server down":
        setup(project, [smtp_channel(free_port(), max_attempts=2)])  # nothing listens there
        published = run(project, "publish-next")
    else:
        with smtp_server() as (_server, port):  # no TLS: STARTTLS is not offered
            setup(project, [smtp_channel(port, security="starttls")])
            published = run(project, "publish-next")
    assert published.exit_code == 75, published.output
    first = published.stdout.splitlines()[0]
    assert first.startswith("incomplete: published edition #1: "), first
    assert f"smtp: 0 sent, {len(PEOPLE)} pending" in first
    assert first.endswith(f"; {len(PEOPLE)} pending, will be resumed: syndicate resume")
    assert smtp_counts(project) == {"sent": 0, "failed": 0, "pending": len(PEOPLE),
                                    "status": "delivering"}

    with smtp_server() as (server, port):  # the server is back (plain, as configured now)
        setup(project, [smtp_channel(port)], people=[])
        resumed = run(project, "resume")
        assert resumed.exit_code == 0, resumed.output
        assert resumed.stdout.startswith("complete: resumed edition #1: ")
        assert sorted(server.by_rcpt()) == PEOPLE
    assert smtp_counts(project)["status"] == "done"


def test_a_hard_bounce_is_an_outcome_not_a_failure(project: Project) -> None:
    bounced = PEOPLE[3]
    recorder = Recorder(rcpt_rules={bounced: ["550 5.1.1 <x>: Recipient address rejected: "
                                              "User unknown in virtual mailbox table"]})
    with smtp_server(recorder) as (server, port):
        setup(project, [{"type": "feed"}, smtp_channel(port)])
        with Ledger(project.config().database) as ledger:  # and one left before the send
            ledger.set_subscriber_status(PEOPLE[5], "unsubscribed")
        published = run(project, "publish-next")
    assert published.exit_code == 0, published.output
    first = published.stdout.splitlines()[0]
    assert first.startswith("complete: published edition #1: "), first
    assert f"smtp: {len(PEOPLE) - 2} sent, 1 bounced" in first
    assert "failed" not in first
    assert published.stderr == ""  # nothing to warn about: cron stays quiet
    assert len(server.messages) == len(PEOPLE) - 2
    assert smtp_counts(project)["status"] == "done"
    shown = json.loads(run(project, "deliveries", "1", "--json").stdout)
    smtp = next(c for c in shown["channels"] if c["channel"] == "smtp")
    assert (smtp["failed"], smtp["bounced"]) == (0, 1)
    # Nothing to retry: a bounce stays a bounce.
    assert run(project, "retry-failed").stdout == "no failed deliveries\n"


# --------------------------------------------------------------------------- ledger write errors

CONCURRENCY = 4
MANY = 400
# Past what the ledger's WAL holds once the edition is claimed, rendered and its rows
# created (about 200 KB here), and well before the 400 sends are recorded (~10 KB each).
FILE_SIZE_LIMIT = 700_000


def _env() -> dict[str, str]:
    env = {**os.environ, "SYNDICATE_SECRET": SECRET,
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("SYNDICATE_CONFIG", None)
    env.pop("SYNDICATE_DEBUG", None)
    return env


def _limit_file_size() -> None:  # in the child, before exec
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


def test_ledger_full_mid_send_one_line_75_then_resume_loses_nobody(project: Project) -> None:
    recorder = Recorder(delay=0.002)
    people = [f"abonne{i:04d}@exemple.fr" for i in range(MANY)]
    with smtp_server(recorder) as (_server, port):
        setup(project, [{"type": "feed"}, {"type": "archive"},
                        smtp_channel(port, concurrency=CONCURRENCY, timeout=10.0)], people)
        database = project.config().database
        command = [sys.executable, "-m", "syndicate", "--config", str(project.config_path)]
        full = subprocess.run([*command, "publish-next"], env=_env(), cwd=project.root,
                              capture_output=True, timeout=120, preexec_fn=_limit_file_size)
        out, err = full.stdout.decode(), full.stderr.decode()
        assert full.returncode == 75, out + err
        assert "Traceback" not in err and "internal error" not in err and out == ""
        (line,) = err.splitlines()  # one line, naming the file and the OS error
        assert line.startswith(f"incomplete: cannot write to the ledger {database}: "
                               "File too large (EFBIG)"), line
        at_failure = smtp_counts(project)
        assert at_failure["status"] == "delivering"  # resumable
        assert 0 < at_failure["sent"] < MANY, "the limit must be crossed in the middle"
        assert at_failure["sent"] + at_failure["pending"] == MANY
        # The workers stopped: at most the messages in flight went out unrecorded.
        assert 0 <= len(recorder.messages) - at_failure["sent"] <= CONCURRENCY

        resumed = subprocess.run([*command, "resume"], env=_env(), cwd=project.root,
                                 capture_output=True, timeout=120)
        assert resumed.returncode == 0, resumed.stderr.decode()
        assert resumed.stdout.decode().startswith("complete: resumed edition #1: ")
    copies = Counter(m.rcpt for m in recorder.messages)
    assert set(copies) == set(people), "somebody never got the edition"
    assert sum(n - 1 for n in copies.values()) <= CONCURRENCY
    assert smtp_counts(project) == {"sent": MANY, "failed": 0, "pending": 0, "status": "done"}
    assert not list(database.parent.glob(".*probe*"))  # the diagnosis left nothing behind


# --------------------------------------------------------------------------- slow channels

DEADLINE = 8  # seconds: the webhooks' (test) deadline


@pytest.fixture
def http() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)  # a hanging handler too
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at the end: lets the hanging handlers return."""
    event = threading.Event()
    yield event
    event.set()


def stuck_endpoints(http: HTTPServer, release: threading.Event) -> list[dict[str, Any]]:
    """Two webhooks: one answers 429 with Retry-After 3600 (an hour), one never answers."""
    http.expect_request("/busy", method="POST").respond_with_response(
        Response("slow down", status=429, headers={"Retry-After": "3600"}))

    def hang(request: Request) -> Response:
        release.wait(60)
        return Response("late", status=200)

    http.expect_request("/hang", method="POST").respond_with_handler(hang)
    common = {"type": "webhook", "deadline": f"{DEADLINE}s", "timeout": 1.0, "backoff": 0.1,
              "max_delay": 86400, "max_attempts": 20}
    return [{**common, "name": "busy", "url": http.url_for("/busy")},
            {**common, "name": "hang", "url": http.url_for("/hang")}]


def healthy(http: HTTPServer) -> None:
    http.clear()
    for path in ("/busy", "/hang"):
        http.expect_request(path, method="POST").respond_with_data("ok", status=200)


def test_a_stuck_webhook_never_delays_the_email_then_resume(
    project: Project, http: HTTPServer, release: threading.Event
) -> None:
    recorder = Recorder()
    with smtp_server(recorder) as (_server, port):
        # The webhooks come first: run one after another, they held the email an hour.
        setup(project, [*stuck_endpoints(http, release), smtp_channel(port)])
        command = [sys.executable, "-m", "syndicate", "--config", str(project.config_path)]
        process = subprocess.Popen([*command, "publish-next"], env=_env(), cwd=project.root,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            limit = time.monotonic() + 60
            while len(recorder.messages) < len(PEOPLE) and process.poll() is None:
                assert time.monotonic() < limit, "the email never went out"
                time.sleep(0.01)
            # Everybody has the email while the webhooks are still being held.
            assert process.poll() is None, process.communicate()
            assert sorted(recorder.by_rcpt()) == PEOPLE
            # ...and the command returns at their deadline, not in an hour.
            out, err = process.communicate(timeout=DEADLINE + 50)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert process.returncode == 75, err.decode()
        first = out.decode().splitlines()[0]
        assert first.startswith("incomplete: published edition #1: "), first
        assert "busy: 0 sent, 1 pending; hang: 0 sent, 1 pending" in first
        assert f"smtp: {len(PEOPLE)} sent" in first
        assert "Traceback" not in err.decode()
        assert smtp_counts(project) == {"sent": len(PEOPLE), "failed": 0, "pending": 0,
                                        "status": "delivering"}

        healthy(http)
        resumed = subprocess.run([*command, "resume"], env=_env(), cwd=project.root,
                                 capture_output=True, timeout=60)
        assert resumed.returncode == 0, resumed.stderr.decode()
        assert resumed.stdout.decode().startswith("complete: resumed edition #1: ")
    assert sorted(request.path for request, _ in http.log) == ["/busy", "/hang"]
    assert len(recorder.messages) == len(PEOPLE)  # nobody mailed twice
    assert smtp_counts(project)["status"] == "done"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    setup_logging("json", stream=stream)
    yield stream
    setup_logging("text")


def test_daemon_slot_not_held_by_a_stuck_channel_and_events_say_so(
    project: Project, http: HTTPServer, release: threading.Event, clock: Clock,
    captured: io.StringIO,
) -> None:
    busy, _hang = stuck_endpoints(http, release)
    setup(project, [{"type": "outbox"}, {**busy, "deadline": "2s"}])
    config = project.config()
    daemon = Daemon(config, now=clock)
    with daemon.session("test daemon"):
        started = time.monotonic()
        first = daemon.publish_slot(clock(), "scheduled")
        assert time.monotonic() - started < 40  # the deadline (2 s), not Retry-After (1 h)
        assert first.outcome == "published"
        healthy(http)
        clock.advance(days=7)
        second = daemon.publish_slot(clock(), "scheduled")
        assert second.edition == 2
    log = [json.loads(line) for line in captured.getvalue().splitlines() if line.strip()]
    wanted = {"published", "published_incomplete", "published_failed", "resumed",
              "delivery_pending"}
    seen = [(e["event"], e["level"], e.get("edition")) for e in log if e.get("event") in wanted]
    assert seen == [
        ("published_incomplete", "warning", 1),
        ("delivery_pending", "warning", None),
        ("resumed", "info", 1),  # the slot after finishes the unfinished edition first
        ("published", "info", 2),
    ], seen
    incomplete = next(e for e in log if e.get("event") == "published_incomplete")
    assert incomplete["message"].startswith("incomplete: published edition #1: ")
    assert incomplete["counts"]["busy"]["pending"] == 1
    pending = next(e for e in log if e.get("event") == "delivery_pending")
    assert "deadline of 2s reached" in pending["message"]
    with Ledger(config.database) as ledger:
        assert [e.status for e in ledger.editions(status=None)] == ["done", "done"]
