"""The ``smtp`` channel against real SMTP servers (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import base64
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import dkim
import pytest
from _smtp_support import (
    FROM,
    SECRET,
    Authenticator,
    Recorder,
    seed_corpus,
    self_signed_cert,
    server_tls_context,
    smtp_channel,
    smtp_server,
)
from conftest import Clock, Project

from syndicate.channels.smtp import SmtpSettings
from syndicate.errors import ConfigError
from syndicate.ledger import Delivery, Ledger
from syndicate.mail import message_id
from syndicate.pipeline import PublishResult, publish, resume
from syndicate.tokens import UNSUBSCRIBE, verify_token
from syndicate.transport import Failure, RateLimiter, backoff_delay, classify, is_no_such_user

PEOPLE = [
    ("zoe@exemple.fr", "Zoé « Zaza » Martin"),
    ("bob@exemple.fr", None),
    ("claire@exemple.fr", "Claire, DRH"),
    ("dan@exemple.fr", "Dan"),
    ("eve@exemple.fr", "Ève"),
]


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET", SECRET)


def setup(project: Project, port: int, people: list[tuple[str, str | None]] = PEOPLE,
          **settings: Any) -> Any:
    seed_corpus(project)
    project.write_config(site={"base_url": "https://cas.example.org/"},
                         channels=[smtp_channel(port, **settings)])
    config = project.config()
    with Ledger(config.database) as ledger:
        for address, name in people:
            ledger.add_subscriber(address, name=name)
    return config


def report(result: PublishResult) -> Any:
    (only,) = result.reports
    return only


def rows(config: Any, edition_id: int) -> dict[str, Delivery]:
    """Every smtp delivery row of the edition, by recipient (read straight from the file)."""
    with sqlite3.connect(config.database) as conn:
        ids = [r[0] for r in conn.execute(
            "SELECT id FROM deliveries WHERE edition_id = ? AND channel = 'smtp'", (edition_id,))]
    with Ledger(config.database) as ledger:
        found = [ledger.get_delivery(i) for i in ids]
    return {d.recipient: d for d in found if d is not None}


def status_of(config: Any, address: str) -> str:
    with Ledger(config.database) as ledger:
        subscriber = ledger.get_subscriber(address)
        assert subscriber is not None
        return subscriber.status


def test_messages_parsed_back(project: Project, clock: Clock) -> None:
    with smtp_server() as (server, port):
        config = setup(project, port, unsubscribe_mailto="desabonnement@cas.example.org",
                       reply_to="redaction@cas.example.org")
        result = publish(config, now=clock)
    assert report(result).sent == len(PEOPLE), result.reports
    assert result.complete
    received = server.by_rcpt()
    assert sorted(received) == sorted(address for address, _ in PEOPLE)
    assert all(len(copies) == 1 for copies in received.values())
    edition = result.edition
    for address, name in PEOPLE:
        (copy,) = received[address]
        raw = copy.data
        # CRLF everywhere: no bare LF, no bare CR, lines within 998 octets.
        assert b"\r\n" in raw
        assert re.search(rb"(?<!\r)\n", raw) is None
        assert re.search(rb"\r(?!\n)", raw) is None
        assert max(len(line) for line in raw.split(b"\r\n")) <= 998
        assert copy.mail_from == "lettre@cas.example.org"
        msg = copy.parse()
        assert msg.get_content_type() == "multipart/alternative"
        text = msg.get_body(("plain",)).get_content()
        html = msg.get_body(("html",)).get_content()
        assert str(msg["Subject"]) == edition.title  # UTF-8 subject decoded back
        assert msg["Subject"].isascii() is False or edition.title.isascii()
        assert str(msg["From"]) == FROM
        assert msg["To"].addresses[0].addr_spec == address
        assert msg["To"].addresses[0].display_name == (name or "")
        assert str(msg["Reply-To"]) == "redaction@cas.example.org"
        assert str(msg["Message-ID"]) == message_id(edition.number, address, FROM)
        assert str(msg["List-Id"]).endswith("<list.cas.example.org>")
        assert str(msg["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
        uris = re.findall(r"<([^>]+)>", str(msg["List-Unsubscribe"]))
        # The mailto carries the subscriber's token in its Subject (syndicate.bounces).
        assert uris[1].startswith("mailto:desabonnement@cas.example.org?subject=unsubscribe%20")
        mail_token = uris[1].rsplit("%20", 1)[1]
        assert verify_token(SECRET.encode(), UNSUBSCRIBE, mail_token) == address
        assert uris[0].startswith("https://cas.example.org/unsubscribe/")
        token = uris[0].rsplit("/", 1)[1]
        assert verify_token(SECRET.encode(), UNSUBSCRIBE, token) == address
        assert uris[0] in text and uris[0] in html
        greeting = f"Bonjour {name}," if name else "Bonjour,"
        assert greeting in text
        assert edition.title.split()[0] in html
    # One delivery row per subscriber, each with the server's reply.
    found = rows(config, edition.id)
    assert {r.status for r in found.values()} == {"sent"}
    assert all(r.response.startswith("250 2.0.0 Ok: queued as TEST") for r in found.values())
    assert all(r.code == 250 for r in found.values())


def test_temporary_failures_retried_on_a_fresh_connection(project: Project, clock: Clock) -> None:
    recorder = Recorder(
        rcpt_rules={"bob@exemple.fr": ["450 4.2.0 greylisted, come back later", "250"]},
        data_rules={"claire@exemple.fr": ["drop", "250"],            # connection lost once
                    "dan@exemple.fr": ["421 4.3.2 shutting down", "250"]},
    )
    with smtp_server(recorder) as (server, port):
        config = setup(project, port, concurrency=1, max_attempts=3)
        result = publish(config, now=clock)
    assert report(result).sent == len(PEOPLE) and report(result).failed == 0, result.reports
    assert result.complete
    received = server.by_rcpt()
    assert all(len(received[address]) == 1 for address, _ in PEOPLE)
    for address, stage in (("bob@exemple.fr", "rcpt"), ("claire@exemple.fr", "data"),
                           ("dan@exemple.fr", "data")):
        tries = [a for a in server.attempts if a[0] == address and a[1] == stage]
        assert len(tries) == 2
        failed, accepted = tries
        assert failed[2] != "250"
        assert accepted[3] != failed[3], f"{address}: retried on the same connection"
    # The resent message is the same message: same Message-ID on both DATA attempts.
    claire = {mid for rcpt, mid, _conn in server.data_seen if rcpt == "claire@exemple.fr"}
    assert claire == {message_id(result.edition.number, "claire@exemple.fr", FROM)}
    found = rows(config, result.edition.id)
    assert found["bob@exemple.fr"].attempts == 2
    assert found["claire@exemple.fr"].attempts == 2
    assert found["zoe@exemple.fr"].attempts == 1


def test_permanent_failures_recorded_bounces_marked_others_sent(project: Project,
                                                                clock: Clock) -> None:
    recorder = Recorder(
        rcpt_rules={
            "bob@exemple.fr": ["550 5.1.1 <bob@exemple.fr>: Recipient address rejected: "
                               "User unknown in virtual mailbox table"],
            "claire@exemple.fr": ["552 5.2.2 mailbox full"],
            "eve@exemple.fr": ["451 4.3.0 temporarily unavailable"],  # never gets better
        },
        data_rules={"dan@exemple.fr": ["554 5.7.1 message rejected as spam"]},
    )
    with smtp_server(recorder) as (server, port):
        config = setup(project, port, max_attempts=2)
        result = publish(config, now=clock)
    got = report(result)
    # A bounce is an outcome, counted apart from the failures.
    assert (got.sent, got.failed, got.bounced) == (1, 3, 1), result.reports
    assert result.complete  # failures are recorded, nothing left pending
    assert result.outcome == "failed"
    assert sorted(server.by_rcpt()) == ["zoe@exemple.fr"]
    found = rows(config, result.edition.id)
    assert (found["bob@exemple.fr"].status, found["bob@exemple.fr"].code) == ("failed", 550)
    assert "User unknown" in found["bob@exemple.fr"].response
    assert found["bob@exemple.fr"].response.startswith("bounced: ")
    assert (found["claire@exemple.fr"].code, found["dan@exemple.fr"].code) == (552, 554)
    assert (found["eve@exemple.fr"].code, found["eve@exemple.fr"].attempts) == (451, 2)
    assert len([a for a in server.attempts if a[0] == "bob@exemple.fr"]) == 1  # 5xx: no retry
    assert status_of(config, "bob@exemple.fr") == "bounced"
    for address in ("claire@exemple.fr", "dan@exemple.fr", "eve@exemple.fr"):
        assert status_of(config, address) == "active"  # not a "no such user"


def test_connection_dropped_every_time_fails_only_that_address(project: Project,
                                                               clock: Clock) -> None:
    recorder = Recorder(data_rules={"bob@exemple.fr": ["drop"]})
    with smtp_server(recorder) as (server, port):
        config = setup(project, port, max_attempts=3)
        result = publish(config, now=clock)
    got = report(result)
    assert (got.sent, got.failed) == (len(PEOPLE) - 1, 1)
    bob = rows(config, result.edition.id)["bob@exemple.fr"]
    assert (bob.status, bob.code, bob.attempts) == ("failed", None, 3)
    assert "connection dropped" in bob.response
    assert "bob@exemple.fr" not in server.by_rcpt()
    assert status_of(config, "bob@exemple.fr") == "active"


def test_inactive_subscribers_never_mailed(project: Project, clock: Clock) -> None:
    """Unsubscribed and bounced addresses get nothing, even if they leave during the send."""
    late = "late@exemple.fr"
    people = [*PEOPLE, (late, None)]
    recorder = Recorder(delay=0.05)
    with smtp_server(recorder) as (server, port):
        config = setup(project, port, people, concurrency=1)
        with Ledger(config.database) as ledger:
            ledger.set_subscriber_status("bob@exemple.fr", "unsubscribed")
            ledger.set_subscriber_status("claire@exemple.fr", "bounced")
            ledger.add_subscriber("pending@exemple.fr", status="pending")

        # The last subscriber unsubscribes while the first messages are going out:
        # their row exists already, the status check just before sending stops it.
        original = recorder.handle_DATA

        async def unsubscribe_then_accept(*args: Any) -> str:
            if not recorder.messages:
                with Ledger(config.database) as ledger:
                    ledger.set_subscriber_status(late, "unsubscribed")
            return await original(*args)

        recorder.handle_DATA = unsubscribe_then_accept  # type: ignore[method-assign]
        result = publish(config, now=clock)
    assert sorted(server.by_rcpt()) == ["dan@exemple.fr", "eve@exemple.fr", "zoe@exemple.fr"]
    got = report(result)
    assert (got.sent, got.skipped, got.failed) == (3, 1, 0)
    found = rows(config, result.edition.id)
    assert set(found) == {"zoe@exemple.fr", "dan@exemple.fr", "eve@exemple.fr", late}
    assert found[late].response.startswith("skipped:")
    assert result.complete


def test_starttls_with_auth_password_from_environment(project: Project, clock: Clock,
                                                      tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = self_signed_cert(tmp_path)
    auth = Authenticator("lettre", "s3cret-from-env")
    monkeypatch.setenv("SMTP_TEST_PASSWORD", "s3cret-from-env")
    with smtp_server(tls_context=server_tls_context(cert, key), require_starttls=True,
                     auth_required=True, authenticator=auth) as (server, port):
        config = setup(project, port, security="starttls", tls_ca_file=str(cert),
                       username="lettre", password_env="SMTP_TEST_PASSWORD")
        assert config.missing_secrets() == []
        result = publish(config, now=clock)
    assert report(result).sent == len(PEOPLE), result.reports
    assert len(server.messages) == len(PEOPLE)
    assert (b"lettre", b"s3cret-from-env") in auth.seen
    assert b"s3cret" not in project.config_path.read_bytes()  # never in the file


def test_implicit_tls(project: Project, clock: Clock, tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    with smtp_server(ssl_context=server_tls_context(cert, key)) as (server, port):
        config = setup(project, port, security="tls", tls_ca_file=str(cert))
        result = publish(config, now=clock)
    assert report(result).sent == len(PEOPLE), result.reports
    assert len(server.messages) == len(PEOPLE)


def test_untrusted_certificate_or_bad_password_leaves_everyone_pending(
        project: Project, clock: Clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = self_signed_cert(tmp_path)
    monkeypatch.setenv("SMTP_TEST_PASSWORD", "wrong")
    auth = Authenticator("lettre", "right")
    with smtp_server(tls_context=server_tls_context(cert, key), require_starttls=True,
                     auth_required=True, authenticator=auth) as (server, port):
        config = setup(project, port, security="starttls",
                       username="lettre", password_env="SMTP_TEST_PASSWORD")
        result = publish(config, now=clock)  # system CAs: the self-signed cert is refused
        got = report(result)
        assert (got.sent, got.pending) == (0, len(PEOPLE))
        assert "certificate" in got.detail
        assert not result.complete  # the edition stays unfinished: nobody is lost

        project.write_config(site={"base_url": "https://cas.example.org/"}, channels=[
            smtp_channel(port, security="starttls", tls_ca_file=str(cert), username="lettre",
                         password_env="SMTP_TEST_PASSWORD")])
        (again,) = resume(project.config(), now=clock)
        assert (report(again).sent, report(again).pending) == (0, len(PEOPLE))
        assert "AUTH refused" in report(again).detail

        monkeypatch.setenv("SMTP_TEST_PASSWORD", "right")
        (final,) = resume(project.config(), now=clock)
    assert report(final).sent == len(PEOPLE) and final.complete
    assert len(server.messages) == len(PEOPLE)


def test_server_down_leaves_everyone_pending(project: Project, clock: Clock) -> None:
    from _smtp_support import free_port

    config = setup(project, free_port(), max_attempts=2)
    result = publish(config, now=clock)
    got = report(result)
    assert (got.sent, got.failed, got.pending) == (0, 0, len(PEOPLE))
    assert "cannot use SMTP server" in got.detail
    assert not result.complete


def test_rate_limit_is_honoured(project: Project, clock: Clock) -> None:
    people = [(f"r{i}@exemple.fr", None) for i in range(12)]
    with smtp_server() as (server, port):
        config = setup(project, port, people, concurrency=3, rate=20)
        started = time.monotonic()
        result = publish(config, now=clock)
        elapsed = time.monotonic() - started
    assert report(result).sent == 12
    # 12 messages at 20/s: the first goes at once, the last no sooner than 11/20 s later.
    times = sorted(m.at for m in server.messages)
    assert times[-1] - times[0] >= 11 / 20 * 0.9
    assert elapsed < 5


def test_dkim_signature_verifies_and_covers_list_headers(project: Project, clock: Clock,
                                                         tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == b"lettre2026._domainkey.cas.example.org." else None

    with smtp_server() as (server, port):
        config = setup(project, port, dkim_selector="lettre2026",
                       dkim_domain="cas.example.org", dkim_key_file=str(key_file))
        publish(config, now=clock)
    assert len(server.messages) == len(PEOPLE)
    for copy in server.messages:
        assert dkim.verify(copy.data, dnsfunc=dns)
        signature = copy.parse()["DKIM-Signature"]
        signed = {h.strip().lower() for h in
                  re.search(r"\bh=([^;]+)", str(signature)).group(1).split(":")}
        assert {"from", "subject", "list-unsubscribe", "list-unsubscribe-post",
                "feedback-id"} <= signed
        assert copy.parse()["Feedback-ID"] == "edition-1:list.cas.example.org:newsletter:syndicate"
        # Altering a signed header breaks the signature.
        forged = copy.data.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
                                   b"List-Unsubscribe-Post: List-Unsubscribe=Two-Clicks")
        assert forged != copy.data
        assert not dkim.verify(forged, dnsfunc=dns)


# --------------------------------------------------------------------------- settings


def test_settings_and_secrets(project: Project) -> None:
    seed_corpus(project)
    project.write_config(channels=[smtp_channel(2525, username="u", password_env="SMTP_PW")])
    config = project.config()
    (settings,) = config.channels
    assert settings.from_address == FROM
    assert settings.effective_port == 2525
    problems = config.missing_secrets({"SYNDICATE_SECRET": SECRET})
    assert len(problems) == 1 and "SMTP_PW" in problems[0]
    problems = config.missing_secrets({"SMTP_PW": "x"})
    assert len(problems) == 1 and "SYNDICATE_SECRET" in problems[0]
    assert SmtpSettings.model_validate({"type": "smtp", "host": "h", "from": "a@b.fr",
                                        "security": "tls"}).effective_port == 465


@pytest.mark.parametrize(("entry", "expected"), [
    ({"from": "pas une adresse"}, "from"),
    ({"username": "u"}, "username and password_env go together"),
    ({"dkim_selector": "s"}, "DKIM needs all three"),
    ({"security": "ssl"}, "security"),
    ({"password_env": "not a name!", "username": "u"}, "NAME of an environment variable"),
    ({"password": "in the file"}, "unknown key"),
])
def test_settings_errors(project: Project, entry: dict[str, Any], expected: str) -> None:
    project.write_config(channels=[{**smtp_channel(25), **entry}])
    with pytest.raises(ConfigError) as caught:
        project.config()
    assert expected in str(caught.value)


# --------------------------------------------------------------------------- pure decisions


@pytest.mark.parametrize(("code", "text", "bounce"), [
    (550, "5.1.1 User unknown", True),
    (550, "Mailbox unavailable", True),
    (551, "User not local", True),
    (553, "Mailbox name not allowed", True),
    (550, "5.7.1 Message rejected as spam", False),
    (552, "5.2.2 Mailbox full", False),
    (554, "Transaction failed", False),
    (550, "5.1.10 Null MX", True),
])
def test_no_such_user(code: int, text: str, bounce: bool) -> None:
    assert is_no_such_user(code, text) is bounce


def test_classify() -> None:
    import smtplib

    refused = classify(smtplib.SMTPRecipientsRefused({"a@b.fr": (550, b"5.1.1 no such user")}))
    assert refused == Failure(550, "5.1.1 no such user", temporary=False, bounce=True)
    assert classify(smtplib.SMTPRecipientsRefused({"a@b.fr": (450, b"later")})).temporary
    assert classify(smtplib.SMTPDataError(451, b"later")).temporary
    data = classify(smtplib.SMTPDataError(550, b"rejected"))
    assert (data.temporary, data.bounce) == (False, False)  # content, not the address
    assert classify(smtplib.SMTPServerDisconnected("gone")).temporary
    assert classify(TimeoutError("timed out")).temporary
    assert classify(ConnectionResetError()).reconnect
    with pytest.raises(KeyError):
        classify(KeyError("a bug is not an SMTP failure"))


def test_backoff_and_rate_limiter() -> None:
    import threading

    assert [backoff_delay(n, 2.0, 30.0) for n in (1, 2, 3, 4, 5, 6)] == [2, 4, 8, 16, 30, 30]
    now = [100.0]
    limiter = RateLimiter(4, clock=lambda: now[0])
    stop = threading.Event()
    assert limiter.wait(stop)  # the first slot is now
    assert limiter._next == pytest.approx(100.25)
    stop.set()
    assert not limiter.wait(stop)  # stopped while waiting for its slot


def test_international_addresses(project: Project, clock: Clock) -> None:
    """An IDN domain goes out in its ASCII (IDNA) form; a UTF-8 mailbox needs SMTPUTF8."""
    people = [("anne@exémple.fr", "Anne"), ("zoé@exemple.fr", None), ("bob@exemple.fr", None)]
    with smtp_server(enable_SMTPUTF8=True) as (server, port):
        config = setup(project, port, people)
        result = publish(config, now=clock)
        assert report(result).sent == 3, result.reports
        assert sorted(server.by_rcpt()) == ["anne@xn--exmple-cva.fr", "bob@exemple.fr",
                                            "zoé@exemple.fr"]
    (anne,) = server.by_rcpt()["anne@xn--exmple-cva.fr"]
    assert anne.parse()["To"].addresses[0].domain in ("exémple.fr", "xn--exmple-cva.fr")


def test_utf8_mailbox_without_smtputf8_fails_only_that_address(project: Project,
                                                               clock: Clock) -> None:
    people = [("zoé@exemple.fr", None), ("bob@exemple.fr", None)]
    with smtp_server(enable_SMTPUTF8=False) as (server, port):
        config = setup(project, port, people)
        result = publish(config, now=clock)
    assert (report(result).sent, report(result).failed) == (1, 1)
    zoe = rows(config, result.edition.id)["zoé@exemple.fr"]
    assert zoe.status == "failed" and "SMTPUTF8" in zoe.response
    assert sorted(server.by_rcpt()) == ["bob@exemple.fr"]


def test_progress_plain_lines_when_not_a_terminal(caplog: pytest.LogCaptureFixture) -> None:
    import io
    import logging

    from syndicate.channels._mailing import Progress

    now = [0.0]
    logger = logging.getLogger("test.progress")
    with caplog.at_level(logging.INFO, logger="test.progress"), \
            Progress("smtp #1", 25, logger, every=10, interval=5.0, stream=io.StringIO(),
                     clock=lambda: now[0]) as progress:
        for i in range(25):
            now[0] += 0.1
            progress.advance("failed" if i == 3 else "sent")
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "smtp #1: 10/25 (9 sent, 1 failed), 10/s"
    assert lines[1].startswith("smtp #1: 20/25 (19 sent, 1 failed)")
    assert lines[-1].startswith("smtp #1: finished: 25/25 (24 sent, 1 failed)")
    assert len(lines) == 3


def test_progress_bar_on_a_terminal() -> None:
    import io
    import logging

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    from syndicate.channels._mailing import Progress

    with Progress("smtp #2", 50, logging.getLogger("test.bar"), stream=stream) as progress:
        for _ in range(50):
            progress.advance("sent")
    assert "smtp #2" in stream.getvalue() and "50/50" in stream.getvalue()


def test_sender_refused_for_good_stops_with_everyone_pending(project: Project,
                                                             clock: Clock) -> None:
    class RefuseSender(Recorder):
        async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,
                              mail_options: list[str]) -> str:
            return "553 5.7.1 Sender address rejected: not owned by user"

    with smtp_server(RefuseSender()) as (server, port):
        config = setup(project, port)
        result = publish(config, now=clock)
    got = report(result)
    assert (got.sent, got.failed, got.pending) == (0, 0, len(PEOPLE))
    assert "refuses the sender lettre@cas.example.org: 553" in got.detail
    assert not result.complete and server.messages == []


@pytest.mark.parametrize("base_url", ["https://cas.example.org/",
                                      "https://a.example.org/lettre/",
                                      "https://newsletter.tres-long-domaine.example.org/x/y/"])
def test_smtp_bytes_are_exactly_the_dot_stuffed_message(project: Project, clock: Clock,
                                                        base_url: str,
                                                        tmp_path: Path) -> None:
    """What the channel hands to DATA is smtplib's transparency applied to the message,
    whatever the wrap positions of the per-subscriber values (and with DKIM too)."""
    from smtplib import _quote_periods

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from syndicate.channels import Bookkeeping, DeliveryJob
    from syndicate.channels._mailing import Mailing, MailSender
    from syndicate.ledger import Subscriber
    from syndicate.render.email import render_email
    from syndicate.transport import dkim_signer

    seed_corpus(project)
    project.write_config(site={"base_url": base_url}, channels=[])
    config = project.config()
    result = publish(config, now=clock)  # no channel: just an edition and its view
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    with Ledger(config.database) as ledger:
        job = DeliveryJob(result.edition, result.view, (result.view,),
                          render_email(result.view, config),
                          Bookkeeping(ledger, result.edition, now=clock), now=clock)
        for signer in (None, dkim_signer("s", "cas.example.org", key)):
            sender = MailSender(FROM, unsubscribe_mailto="d@cas.example.org")
            mailing = Mailing(job, config, sender)
            mailing.start(secret=SECRET.encode(), signer=signer)
            names = [None, ".NET", "..", "Zoé « . »", "a" * 70 + ".", "." * 100]
            for i, name in enumerate(names):
                now = clock()
                subscriber = Subscriber(i, f"p{'.' * i}{i}@exemple.fr", name, "active", "t",
                                        now, now)
                plain = mailing.message(subscriber)
                stuffed = mailing.message(subscriber, smtp=True)
                assert b"\r\n." in plain  # the HTML's CSS has lines starting with '.'
                if signer is None:
                    assert stuffed == _quote_periods(plain)
                else:  # two signatures differ (t=): compare the bodies
                    body = plain.split(b"\r\n\r\n", 1)[1]
                    assert stuffed.split(b"\r\n\r\n", 1)[1] == _quote_periods(body)
