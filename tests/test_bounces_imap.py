"""The bounce mailbox over IMAP (issue 11), against a real Dovecot on 127.0.0.1 speaking
IMAPS with its own CA (tests/_imap_support.py): reports delivered into INBOX are read by
``syndicate bounces fetch`` (a real subprocess) and filed in ``processed`` / ``unparsed``;
a wrong password, an untrusted certificate and a connection dropped mid-pass (a real TLS
proxy on 127.0.0.1 in front of Dovecot that hangs up on a chosen command) are one line
each and lose nothing."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import pytest
from _imap_support import Dovecot
from conftest import Clock, Project
from test_bounces import DOMAIN, PEOPLE, SECRET, arf, dsn, published, status_of

from syndicate.bounces import SourceLost, process_source
from syndicate.bounces.imap import ImapSource
from syndicate.ledger import Ledger
from syndicate.tokens import UNSUBSCRIBE, make_token

PASSWORD_ENV = "SYNDICATE_TEST_IMAP_PASSWORD"


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET", SECRET)


def imap_settings(server: Dovecot, port: int | None = None, **more: Any) -> dict[str, Any]:
    return {"maildir": "", "imap_host": "127.0.0.1", "imap_port": port or server.port,
            "imap_user": server.user, "imap_password_env": PASSWORD_ENV,
            "imap_ca_file": str(server.ca_file), "imap_timeout": 20, **more}


def fetch(project: Project, password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syndicate", "--config", str(project.config_path), "bounces",
         "fetch"], capture_output=True, text=True, timeout=120,
        env={**os.environ, "SYNDICATE_SECRET": SECRET, PASSWORD_ENV: password})


def events(config: Any, edition_id: int) -> dict[str, list[tuple[str, str]]]:
    with Ledger(config.database) as ledger:
        found = {}
        for address in PEOPLE:
            row = ledger.find_delivery(edition_id, address)
            assert row is not None
            found[address] = [(e.kind, e.source) for e in ledger.delivery_events(row.id)]
        return found


def test_fetch_over_imap_records_every_kind_and_files_each_message(
        project: Project, clock: Clock, imap_server: Dovecot) -> None:
    config, edition, senders = published(project, clock, **imap_settings(imap_server))
    ana, bob, chloe, dan = PEOPLE
    imap_server.append(dsn(senders[ana], ana, "5.1.1", report_id="<h1@mx.test>"))
    imap_server.append(dsn(senders[bob], bob, "4.2.2", report_id="<s1@mx.test>",
                           action="delayed", diagnostic="smtp; 452 4.2.2 Mailbox full"))
    imap_server.append(arf("fbl@" + DOMAIN, "redacted@exemple.fr", report_id="<c1@fbl.test>",
                           return_path=senders[chloe]))
    token = make_token(SECRET.encode(), UNSUBSCRIBE, dan)
    imap_server.append(f"From: {dan}\nTo: desabonnement@cas.example.org\n"
                       f"Subject: unsubscribe {token}\nMessage-ID: <u1@client>\n\n".encode())
    imap_server.append(b"From: someone@x.fr\nSubject: hello\n\nJust a reply.\n")
    done = fetch(project, imap_server.password)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ("bounces: 5 message(s): 1 hard, 1 soft, 1 complaint, "
                                   "1 unsubscribe, 1 unparsed"), done.stderr
    assert [status_of(config, a) for a in PEOPLE] == ["bounced", "active", "complained",
                                                      "unsubscribed"]
    assert events(config, edition.id) == {ana: [("hard", "imap")], bob: [("soft", "imap")],
                                          chloe: [("complaint", "imap")], dan: []}
    assert imap_server.folder("INBOX") == []
    assert len(imap_server.folder("processed")) == 4
    (unparsed,) = imap_server.folder("unparsed")
    assert b"Just a reply." in unparsed
    # Nothing left: a second pass is empty.
    again = fetch(project, imap_server.password)
    assert again.stdout.strip() == "bounces: 0 message(s)", again.stderr


def test_without_move_a_message_is_copied_before_it_is_deleted(
        project: Project, clock: Clock, imap_server: Dovecot,
        monkeypatch: pytest.MonkeyPatch) -> None:
    config, _edition, senders = published(project, clock, **imap_settings(imap_server))
    ana, bob = PEOPLE[:2]
    imap_server.append(dsn(senders[ana], ana, report_id="<h1@mx.test>"))
    imap_server.append(dsn(senders[bob], bob, report_id="<h2@mx.test>"))
    monkeypatch.setenv(PASSWORD_ENV, imap_server.password)
    with Ledger(config.database) as ledger, \
            ImapSource(config.bounces, ca_file=imap_server.ca_file) as source:
        assert source.move  # Dovecot has MOVE: take the COPY + \Deleted + EXPUNGE path
        source.move = False
        summary = process_source(ledger, config.bounces, source, SECRET.encode())
    assert summary.line() == "bounces: 2 message(s): 2 hard"
    assert imap_server.folder("INBOX") == [] and len(imap_server.folder("processed")) == 2
    assert status_of(config, ana) == status_of(config, bob) == "bounced"


def test_a_wrong_password_is_one_line_naming_host_and_user(
        project: Project, clock: Clock, imap_server: Dovecot) -> None:
    published(project, clock, **imap_settings(imap_server))
    imap_server.append(dsn("x@" + DOMAIN, PEOPLE[0]))
    done = fetch(project, "not-the-password")
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert f"IMAP 127.0.0.1:{imap_server.port} (user {imap_server.user})" in line
    assert "login refused" in line and "not-the-password" not in line
    assert len(imap_server.folder("INBOX")) == 1


def test_an_untrusted_certificate_is_one_line(project: Project, clock: Clock,
                                              imap_server: Dovecot) -> None:
    # No imap_ca_file: the system trust store does not know the test CA.
    published(project, clock, **imap_settings(imap_server, imap_ca_file=""))
    imap_server.append(dsn("x@" + DOMAIN, PEOPLE[0]))
    done = fetch(project, imap_server.password)
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert "TLS certificate not trusted" in line and "imap_ca_file" in line, line
    assert f"127.0.0.1:{imap_server.port}" in line
    assert len(imap_server.folder("INBOX")) == 1


class HangUp:
    """A TLS proxy on 127.0.0.1 in front of Dovecot (with Dovecot's own certificate): it
    relays IMAP both ways and closes both connections, without relaying it, when the
    client sends its ``nth`` command containing ``word`` (counted over all sessions)."""

    def __init__(self, server: Dovecot, word: bytes, nth: int) -> None:
        self.server, self.word, self.nth, self.seen = server, word, nth, 0
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(server.root / "cert.pem", server.root / "key.pem")
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.dropped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(raw,), daemon=True).start()

    def _relay(self, raw: socket.socket) -> None:
        try:
            client = self.tls.wrap_socket(raw, server_side=True)
            upstream = self.server.ssl_context().wrap_socket(
                socket.create_connection(("127.0.0.1", self.server.port), timeout=30),
                server_hostname="127.0.0.1")
        except OSError:
            raw.close()
            return

        def down() -> None:
            try:
                while data := upstream.recv(65536):
                    client.sendall(data)
            except OSError:
                pass

        threading.Thread(target=down, daemon=True).start()
        buffer = b""
        try:
            while data := client.recv(65536):
                buffer += data
                while b"\r\n" in buffer:
                    line, buffer = buffer.split(b"\r\n", 1)
                    if self.word in line.upper():
                        self.seen += 1
                        if self.seen == self.nth:
                            self.dropped.set()
                            return
                    upstream.sendall(line + b"\r\n")
        except OSError:
            pass
        finally:
            for sock in (client, upstream):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def close(self) -> None:
        self.listener.close()


@contextmanager
def hang_up(server: Dovecot, word: bytes, nth: int) -> Iterator[HangUp]:
    proxy = HangUp(server, word, nth)
    try:
        yield proxy
    finally:
        proxy.close()


def test_a_connection_dropped_mid_pass_loses_nothing_and_records_once(
        project: Project, clock: Clock, imap_server: Dovecot) -> None:
    with hang_up(imap_server, b"UID MOVE", 2) as proxy:
        config, edition, senders = published(project, clock,
                                             **imap_settings(imap_server, proxy.port))
        ana, bob, chloe = PEOPLE[:3]
        for n, who in enumerate((ana, bob, chloe)):
            imap_server.append(dsn(senders[who], who, report_id=f"<h{n}@mx.test>"))
        # The first message is recorded and moved; the second recorded, and the
        # connection drops when it is being moved; the third is not read.
        done = fetch(project, imap_server.password)
        assert proxy.dropped.is_set()
        assert done.returncode == 1, done.stderr
        assert done.stdout.strip() == "bounces: 2 message(s): 2 hard"
        (line,) = done.stderr.strip().splitlines()
        assert "connection lost" in line and "the rest stay in the inbox" in line, line
        assert "Traceback" not in done.stderr
        assert len(imap_server.folder("INBOX")) == 2
        assert len(imap_server.folder("processed")) == 1
        # The next pass (the proxy relays everything now) records the second message
        # again, a duplicate, and the third.
        again = fetch(project, imap_server.password)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "bounces: 2 message(s): 1 hard, 1 duplicate"
    assert imap_server.folder("INBOX") == [] and len(imap_server.folder("processed")) == 3
    recorded = events(config, edition.id)
    assert [recorded[a] for a in (ana, bob, chloe)] == [[("hard", "imap")]] * 3


def test_a_server_killed_mid_session_is_source_lost(
        project: Project, clock: Clock, imap_server: Dovecot,
        monkeypatch: pytest.MonkeyPatch) -> None:
    config, _edition, senders = published(project, clock, **imap_settings(imap_server))
    imap_server.append(dsn(senders[PEOPLE[0]], PEOPLE[0]))
    monkeypatch.setenv(PASSWORD_ENV, imap_server.password)
    with ImapSource(config.bounces, ca_file=imap_server.ca_file) as source:
        imap_server.kick()  # Dovecot ends the session server-side
        with pytest.raises(SourceLost, match="connection lost"):
            for _ in range(50):  # the kick lands within a few commands
                source.keys(10)
    assert len(imap_server.folder("INBOX")) == 1


def test_exactly_one_mailbox_may_be_configured(project: Project) -> None:
    project.write_config(bounces={"maildir": "../mail", "imap_host": "imap.example.org",
                                  "imap_user": "u", "imap_password_env": "P"})
    done = subprocess.run(
        [sys.executable, "-m", "syndicate", "--config", str(project.config_path), "bounces",
         "fetch"], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "set either maildir or imap_host, not both" in done.stderr, done.stderr


def test_runs_poller_reads_the_imap_mailbox(project: Project, clock: Clock,
                                            imap_server: Dovecot,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from syndicate.bounces.poller import Poller

    config, _edition, senders = published(project, clock, **imap_settings(imap_server))
    ana = PEOPLE[0]
    imap_server.append(dsn(senders[ana], ana, report_id="<p1@mx.test>"))
    monkeypatch.setenv(PASSWORD_ENV, imap_server.password)
    with Ledger(config.database) as ledger:
        poller = Poller(config, lambda: ledger, SECRET.encode(), interval=3600)
        assert poller.path == (f"imaps://{imap_server.user}@127.0.0.1:{imap_server.port}"
                               "/INBOX")
        poller.once()
        monkeypatch.setenv(PASSWORD_ENV, "wrong")  # a failing pass: one line, no crash
        poller.once()
    assert poller.passes == 2
    assert status_of(config, ana) == "bounced"
    assert imap_server.folder("INBOX") == [] and len(imap_server.folder("processed")) == 1
