"""The confirmation outbox: the web request records, a background sender mails.

Real parts: waitress on 127.0.0.1, an SMTP server that accepts connections and
never answers (a raw socket server), aiosmtpd servers that answer, the SQLite
ledger, the outbox Maildir, and subprocesses (a sender killed mid-send,
``syndicate serve`` and ``syndicate run``).
"""

from __future__ import annotations

import email
import logging
import mailbox
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
from _smtp_support import Recorder, free_port, smtp_channel, smtp_server

from syndicate.clock import utcnow
from syndicate.confirmations import CONFIRM_TTL, ConfirmationSender, RetryPolicy, confirm_address
from syndicate.ledger import Ledger
from syndicate.web import make_server, stop_server
from syndicate.web.formguard import form_token

if TYPE_CHECKING:
    from .conftest import Clock, Project

SECRET = b"test-secret-0123456789abcdef"
ROOT = Path(__file__).resolve().parents[1]
OUTBOX = {"type": "outbox", "path": "../var/outbox"}


# --------------------------------------------------------------------------- helpers


class StalledSmtp:
    """An SMTP server that accepts connections and never says a word (not even 220)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.listener.settimeout(0.1)
        self.accepted: list[socket.socket] = []
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.closing.set()
        self.thread.join(5)
        self.listener.close()
        for conn in self.accepted:
            conn.close()


@contextmanager
def stalled_smtp() -> Iterator[StalledSmtp]:
    server = StalledSmtp()
    try:
        yield server
    finally:
        server.close()


@contextmanager
def answering_smtp(port: int) -> Iterator[Recorder]:
    """aiosmtpd on ``port`` (where the stalled server was): the server is back."""
    from aiosmtpd.controller import Controller

    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield recorder
    finally:
        controller.stop()


@contextmanager
def web(config: Any, *, now: Callable[[], datetime] | None = None,
        threads: int = 4) -> Iterator[str]:
    """The app on waitress, as ``syndicate serve`` runs it (without its sender)."""
    port = free_port()
    kwargs: dict[str, Any] = {"now": now} if now else {}
    server = make_server(config, secret=SECRET, port=port, threads=threads,
                         asyncore_loop_timeout=0.05, **kwargs)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        stop_server(server)
        thread.join(5)


#: Limits out of the way: these tests are about sending, tests/test_web_limits.py about limits.
GENEROUS = {f"limit_{kind}": "1000/hour" for kind in ("per_ip", "per_mailbox", "per_domain",
                                                       "global")}


def configure(project: Project, channel: dict[str, Any], base: str = "http://127.0.0.1:9/"
              ) -> Any:
    project.write_config(site={"base_url": base}, channels=[channel], subscribe=GENEROUS)
    return project.config()


def form(address: str, **fields: str) -> dict[str, str]:
    """What the subscribe form posts: the address and a token served 10 s ago."""
    return {"email": address, "form_token": form_token(SECRET, time.time() - 10), **fields}


def outbox(project: Project) -> list[EmailMessage]:
    folder = project.var / "outbox"
    if not all((folder / sub).is_dir() for sub in ("tmp", "new", "cur")):
        return []  # not created yet (or being created right now by another process)
    box = mailbox.Maildir(folder, factory=None, create=False)
    return [email.message_from_bytes(m.as_bytes(), policy=policy.default)
            for m in box]


def text_of(message: EmailMessage) -> str:
    return str(message.get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]


def token_in(message: EmailMessage) -> str:
    import re

    (link,) = re.findall(r"https?://\S+/confirm/(\S+)", text_of(message))
    return str(link)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout}s: {what}"
        time.sleep(0.05)


def publish_dir(config: Any) -> None:
    public = config.public_dir
    (public / "un-cas").mkdir(parents=True, exist_ok=True)
    (public / "feed.xml").write_text("<rss version=\"2.0\"></rss>", "utf-8")
    (public / "un-cas" / "index.html").write_text("<p>L’étude</p>", "utf-8")


# --------------------------------------------------------------------------- the ledger


# The outbox's ledger methods (enqueue, exclusive claims, leases) are tested against
# every backend in tests/test_ledger.py.


# --------------------------------------------------------------------------- no SMTP in a request


def test_stalled_smtp_never_slows_the_site(project: Project,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """50 concurrent subscribe POSTs and feed/page GETs while the SMTP server is
    stalled (timeout 5 s): every answer comes fast, no request thread opens an
    SMTP connection; once the server answers, one email per address."""
    opened: list[str] = []
    real_create_connection = socket.create_connection

    with stalled_smtp() as stalled:
        def recording(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
            if address[1] == stalled.port:
                opened.append(threading.current_thread().name)
            return real_create_connection(address, *args, **kwargs)

        monkeypatch.setattr(socket, "create_connection", recording)
        base_port = free_port()
        config = configure(project, smtp_channel(stalled.port, timeout=5.0),
                           f"http://127.0.0.1:{base_port}/")
        publish_dir(config)
        with Ledger(config.database) as ledger:
            actives = [f"actif{n}@example.org" for n in range(5)]
            for address in actives:
                ledger.add_subscriber(address)
        news = [f"nouveau{n}@example.org" for n in range(40)]
        posts = news + news[:5] + actives  # 50: new, pending again, active
        sender = ConfirmationSender(config, SECRET, interval=0.2).start()
        server = make_server(config, secret=SECRET, port=base_port, threads=4,
                             asyncore_loop_timeout=0.05)
        serving = threading.Thread(target=server.run, daemon=True)
        serving.start()
        base = f"http://127.0.0.1:{base_port}/"
        try:
            times: dict[str, list[float]] = {"post": [], "get": []}
            errors: list[BaseException] = []
            posting = threading.Event()

            def post(address: str) -> None:
                try:
                    start = time.monotonic()
                    r = requests.post(base + "subscribe", data=form(address), timeout=4)
                    times["post"].append(time.monotonic() - start)
                    assert r.status_code == 200
                except BaseException as exc:  # reported below
                    errors.append(exc)

            def poll() -> None:
                try:
                    for _ in range(2000):  # bounded
                        for path in ("feed.xml", "un-cas/"):
                            start = time.monotonic()
                            r = requests.get(base + path, timeout=4)
                            times["get"].append(time.monotonic() - start)
                            assert r.status_code == 200
                        if not posting.is_set():
                            return
                except BaseException as exc:
                    errors.append(exc)

            posting.set()
            pollers = [threading.Thread(target=poll) for _ in range(2)]
            posters = [threading.Thread(target=post, args=(a,)) for a in posts]
            for thread in pollers + posters:
                thread.start()
            for thread in posters:
                thread.join(30)
            posting.clear()
            for thread in pollers:
                thread.join(30)
            assert not errors, errors[:3]
            assert len(times["post"]) == 50 and len(times["get"]) >= 4
            # Generous bounds (the machine is shared), yet well under the 5 s SMTP timeout.
            assert max(times["post"]) < 2.5, sorted(times["post"])[-5:]
            assert max(times["get"]) < 2.5, sorted(times["get"])[-5:]
            assert not [name for name in opened if name != "confirmations"], opened
            wait_until(lambda: len(stalled.accepted) >= 1, 10, "the sender tries the server")
            with Ledger(config.database) as ledger:
                assert ledger.count_confirmations("pending") == 40
                assert ledger.count_confirmations("sent") == 0

            # The server comes back on the same port and answers.
            stalled.close()
            with answering_smtp(stalled.port) as recorder:
                with Ledger(config.database) as ledger:
                    wait_until(lambda: ledger.count_confirmations("sent") == 40, 60,
                               "every confirmation sent")
                    assert ledger.count_confirmations("pending") == 0
                received = recorder.by_rcpt()
                assert sorted(received) == sorted(news)
                assert all(len(found) == 1 for found in received.values())
        finally:
            sender.stop()
            stop_server(server)
            serving.join(5)
    assert set(opened) == {"confirmations"}


def test_a_request_wakes_the_sender_at_once(project: Project) -> None:
    config = configure(project, OUTBOX)
    sender = ConfirmationSender(config, SECRET, interval=60).start()  # it would sleep 60 s
    try:
        with web(config) as base:
            assert requests.post(base + "subscribe", data=form("vite@example.org"),
                                 timeout=5).status_code == 200
            wait_until(lambda: len(outbox(project)) == 1, 10, "the email in the outbox")
    finally:
        sender.stop()


# --------------------------------------------------------------------------- outcomes


def test_4xx_is_retried_5xx_fails_once_with_one_line(
        project: Project, caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder(rcpt_rules={
        "gris@example.org": ["451 4.7.1 Greylisted, try again later", "250"],
        "absent@example.org": ["550 5.1.1 No such user"],
        "plein@example.org": ["452 4.2.2 Mailbox full"],  # always: attempts run out
    })
    with smtp_server(recorder) as (server, port):
        config = configure(project, smtp_channel(port, max_attempts=3))
        with Ledger(config.database) as ledger:
            for address in ("gris@example.org", "absent@example.org", "plein@example.org"):
                ledger.enqueue_confirmation(address)
            caplog.set_level(logging.INFO, logger="syndicate")
            sender = ConfirmationSender(config, SECRET, interval=0.05).start()
            try:
                wait_until(lambda: ledger.count_confirmations("pending") == 0, 30,
                           "all three settled")
            finally:
                sender.stop()
            rows = {r.email: r for r in ledger.confirmations(None)}
    assert rows["gris@example.org"].status == "sent" and rows["gris@example.org"].attempts == 2
    assert rows["gris@example.org"].response.startswith("250 ")
    assert rows["absent@example.org"].status == "failed"
    assert rows["absent@example.org"].code == 550 and rows["absent@example.org"].attempts == 1
    assert rows["plein@example.org"].status == "failed"
    assert rows["plein@example.org"].attempts == 3 and rows["plein@example.org"].code == 452
    assert sorted(server.by_rcpt()) == ["gris@example.org"]
    assert len(server.by_rcpt()["gris@example.org"]) == 1
    rcpts = [a for a, stage, _, _ in server.attempts if stage == "rcpt"]
    assert rcpts.count("absent@example.org") == 1 and rcpts.count("plein@example.org") == 3
    failed = [r.getMessage() for r in caplog.records
              if r.levelno >= logging.WARNING and "absent@example.org" in r.getMessage()]
    assert len(failed) == 1 and "550" in failed[0], failed


def test_a_send_killed_midway_is_taken_again_after_its_lease(project: Project) -> None:
    """A sender process is SIGKILLed while its email is on the way (the server
    stalls); its row stays claimed for the lease, then the next sender sends it."""
    with stalled_smtp() as stalled:
        config = configure(project, smtp_channel(stalled.port, timeout=60.0))
        lease = RetryPolicy.of(config.channels[0]).lease  # the killed sender's lease
        with Ledger(config.database) as ledger:
            ledger.enqueue_confirmation("coupe@example.org")
        script = ("import sys\nfrom syndicate.app import load_config\n"
                  "from syndicate.confirmations import ConfirmationSender\n"
                  f"ConfirmationSender(load_config(sys.argv[1]), {SECRET!r}).run_once()\n")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
        child = subprocess.Popen([sys.executable, "-c", script, str(project.config_path)],
                                 env=env, stderr=subprocess.PIPE)
        try:
            wait_until(lambda: len(stalled.accepted) == 1 or child.poll() is not None, 30,
                       "the child connects")
            assert child.poll() is None, child.stderr.read()  # type: ignore[union-attr]
            child.send_signal(signal.SIGKILL)
            child.wait(10)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(10)
    with Ledger(config.database) as ledger:
        (row,) = ledger.confirmations()
        assert row.claimed_by is not None and row.attempts == 1
    with smtp_server() as (server, port):
        config = configure(project, smtp_channel(port))
        # Within the lease, nobody takes it (the dead sender might still be sending).
        now = ConfirmationSender(config, SECRET)
        assert now.run_once() == 0
        now.stop()
        later = ConfirmationSender(config, SECRET,
                                   now=lambda: utcnow() + timedelta(seconds=lease + 1))
        assert later.run_once() == 1
        later.stop()
    assert [m.rcpt for m in server.messages] == ["coupe@example.org"]
    with Ledger(config.database) as ledger:
        (row,) = ledger.confirmations(None)
        assert row.status == "sent" and row.attempts == 2 and row.claimed_by is None


# --------------------------------------------------------------------------- the email


def test_outbox_fallback_and_no_name_in_the_email(project: Project) -> None:
    """Without an smtp channel the email goes to the outbox Maildir; the name typed
    in the form is nowhere in it (anyone can type anyone's address), but it is
    kept on the pending subscriber."""
    config = configure(project, OUTBOX)
    name = "Gagnez un iPhone sur http://arnaque.example"
    with web(config) as base:
        requests.post(base + "subscribe", data=form("cible@example.org", name=name),
                      timeout=5)
        assert outbox(project) == []  # the request only recorded it
        sender = ConfirmationSender(config, SECRET)
        assert sender.run_once() == 1
        sender.stop()
    (message,) = outbox(project)
    assert message["To"] == "cible@example.org"
    raw = message.as_string()
    assert "arnaque" not in raw and "iPhone" not in raw
    assert text_of(message).startswith("Bonjour,")
    with Ledger(config.database) as ledger:
        subscriber = ledger.get_subscriber("cible@example.org")
        assert subscriber is not None and subscriber.status == "pending"
        assert subscriber.name == name
        (row,) = ledger.confirmations(None)
        assert row.status == "sent" and row.response.startswith("maildir ")


def test_the_link_counts_from_the_request_not_the_send(project: Project, clock: Clock) -> None:
    config = configure(project, OUTBOX)
    requested = clock()
    with Ledger(config.database, now=clock) as ledger:
        ledger.enqueue_confirmation("lent@example.org")
        ledger.enqueue_confirmation("trop-tard@example.org")
        clock.advance(hours=47)
        sender = ConfirmationSender(config, SECRET, now=clock, ledger=ledger, batch=1)
        assert sender.run_once() == 1  # lent@ (requested first)
        clock.advance(hours=2)  # 49 h after the request: the second link is dead
        assert sender.run_once() == 1
        rows = {r.email: r for r in ledger.confirmations(None)}
    assert rows["lent@example.org"].status == "sent"
    assert rows["trop-tard@example.org"].status == "failed"
    assert "expired" in rows["trop-tard@example.org"].response
    (message,) = outbox(project)
    token = token_in(message)
    expiry = requested + timedelta(seconds=CONFIRM_TTL)
    assert confirm_address(token, SECRET, expiry - timedelta(minutes=1))[0] == "ok"
    assert confirm_address(token, SECRET, expiry + timedelta(minutes=1))[0] == "expired"


# --------------------------------------------------------------------------- serve and run


@pytest.mark.slow
def test_serve_sends_confirmations_in_the_background(project: Project) -> None:
    base = f"http://127.0.0.1:{free_port()}/"
    configure(project, OUTBOX, base)
    env = {**os.environ, "SYNDICATE_SECRET": SECRET.decode(), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "syndicate", "--config", str(project.config_path), "serve"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = requests.post(base + "subscribe",
                                         data=form("serve@example.org"), timeout=2)
                break
            except requests.ConnectionError:
                assert proc.poll() is None, proc.stderr.read()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        assert response.status_code == 200
        wait_until(lambda: len(outbox(project)) == 1, 20, "serve mails the confirmation")
    finally:
        proc.terminate()
        assert proc.wait(15) == 0


@pytest.mark.slow
def test_run_sends_confirmations_recorded_by_serve(project: Project, tmp_path: Path) -> None:
    config = configure(project, OUTBOX)
    project.write_config(site={"base_url": "http://127.0.0.1:9/"}, channels=[OUTBOX],
                         schedule={"cron": "0 8 1 1 *"})  # no edition in the meantime
    with Ledger(config.database) as ledger:
        ledger.enqueue_confirmation("daemon@example.org")
    env = {**os.environ, "SYNDICATE_SECRET": SECRET.decode(), "PYTHONPATH": str(ROOT)}
    env.pop("SYNDICATE_CONFIG", None)
    log = tmp_path / "run.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "syndicate", "--config", str(project.config_path), "run"],
        env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"), cwd=project.root,
    )
    try:
        wait_until(lambda: len(outbox(project)) == 1 or proc.poll() is not None, 30,
                   "run mails the confirmation")
        assert proc.poll() is None, log.read_text()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            pytest.fail(f"run ignored SIGTERM for 30 s:\n{log.read_text()}")
        assert code == 0, log.read_text()
    (message,) = outbox(project)
    assert message["To"] == "daemon@example.org"


def test_pending_confirmations_command(project: Project) -> None:
    from click.testing import CliRunner

    from syndicate.cli import cli

    config = configure(project, OUTBOX)
    with Ledger(config.database) as ledger:
        ledger.enqueue_confirmation("attend@example.org")
        ledger.enqueue_confirmation("parti@example.org")
        row = ledger.claim_confirmation("test", lease=60)
        assert row is not None
        ledger.mark_confirmation_sent(row.id, "test", None, "maildir x")
    args = ["--config", str(project.config_path), "subscribers", "pending-confirmations"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "parti@example.org  [pending, next " in result.output
    assert "attend@example.org" not in result.output
    everything = CliRunner().invoke(cli, [*args, "--all"])
    assert "attend@example.org  [sent]" in everything.output and "maildir x" in everything.output
