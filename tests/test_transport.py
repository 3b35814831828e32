"""The transport (:mod:`syndicate.transport`): what it imports, one message on its own
connection against a real SMTP server (aiosmtpd), the Maildir writer, and the one
backoff formula every retrying sender uses with its own settings."""

from __future__ import annotations

import json
import mailbox
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from _smtp_support import FROM, Recorder, free_port, smtp_channel, smtp_server
from conftest import Clock, Project

from syndicate.channels.smtp import transport_settings
from syndicate.channels.webhook import WebhookSettings, retry_delay
from syndicate.confirmations import RetryPolicy, decide
from syndicate.errors import ChannelError, SendError
from syndicate.mail import as_bytes
from syndicate.transport import (
    DkimSettings,
    MaildirWriter,
    SmtpTransport,
    TransportSettings,
    backoff_delay,
)

ABOVE = ("syndicate.channels", "syndicate.pipeline", "syndicate.web", "syndicate.confirmations",
         "syndicate.daemon", "syndicate.cli", "syndicate.app")


# --------------------------------------------------------------------------- layering


def test_transport_imports_nothing_above_it() -> None:
    """A fresh interpreter importing the transport (and using it) loads no module of
    the layers above: channels, pipeline, web, confirmations, commands."""
    script = (
        "import json, sys\n"
        "import syndicate.transport as t\n"
        "t.SmtpTransport(t.TransportSettings('x', 'localhost'), password=None, tls=None)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('syndicate'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    loaded = json.loads(out)
    assert "syndicate.transport.smtp" in loaded
    above = [m for m in loaded if m.startswith(ABOVE)]
    assert not above, above


# --------------------------------------------------------------------------- one message


def _message(to: str = "zoe@exemple.fr") -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = FROM, to, "Un essai"
    message.set_content(".NET\n..\nfin.\n.\n")
    return as_bytes(message)


def test_send_delivers_exact_bytes_and_reports_refusals_with_their_code(
        project: Project) -> None:
    """One message on its own connection (the confirmation emails): the server gets
    it byte for byte, lines starting with '.' included (stuffed on the wire, unstuffed
    by the server); a refusal is a SendError carrying the reply code, the recipient,
    and whether to retry."""
    data = _message()
    assert b"\r\n.\r\n" in data  # would end DATA early if sent unstuffed
    handler = Recorder(rcpt_rules={"nobody@exemple.fr": ["550 5.1.1 no such user"],
                                   "later@exemple.fr": ["451 4.3.0 try again later"]})
    with smtp_server(handler) as (server, port):
        project.write_config(site={"base_url": "https://cas.example.org/"},
                             channels=[smtp_channel(port)])
        config = project.config()
        transport = SmtpTransport.prepare(transport_settings(config.channels[0], config.resolve))
        code, reply = transport.send(data, FROM, "zoe@exemple.fr")
        with pytest.raises(SendError) as refused:
            transport.send(data, FROM, "nobody@exemple.fr")
        with pytest.raises(SendError) as deferred:
            transport.send(data, FROM, "later@exemple.fr")
    assert (code, reply) == (250, "2.0.0 Ok: queued as TEST1")
    (received,) = server.messages
    assert (received.mail_from, received.rcpt) == ("lettre@cas.example.org", "zoe@exemple.fr")
    assert received.data == data
    assert isinstance(refused.value, ChannelError)  # what callers of a channel catch
    assert str(refused.value) == "channel smtp: nobody@exemple.fr: 550 5.1.1 no such user"
    assert (refused.value.permanent, refused.value.code, refused.value.recipient) == (
        True, 550, "nobody@exemple.fr")
    assert str(deferred.value) == "channel smtp: later@exemple.fr: 451 4.3.0 try again later"
    assert (deferred.value.permanent, deferred.value.code) == (False, 451)
    assert deferred.value.detail == "later@exemple.fr: 451 4.3.0 try again later"


def test_server_or_settings_unusable_is_a_send_error_without_recipient(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nobody listening, a missing password, an unreadable key: no recipient named
    (the server, not the message), and no reply code to parse out of a text."""
    down = TransportSettings("smtp", "127.0.0.1", free_port(), security="none", timeout=2.0)
    with pytest.raises(SendError) as refused:
        SmtpTransport.prepare(down).send(_message(), FROM, "zoe@exemple.fr")
    assert (refused.value.recipient, refused.value.code, refused.value.permanent) == (
        None, None, False)
    assert "ConnectionRefusedError" in str(refused.value)

    monkeypatch.delenv("SMTP_TEST_PW", raising=False)
    no_password = TransportSettings("smtp", "127.0.0.1", 25, username="u",
                                    password_env="SMTP_TEST_PW")
    with pytest.raises(SendError, match="SMTP_TEST_PW") as missing:
        SmtpTransport.prepare(no_password)
    assert (missing.value.recipient, missing.value.permanent) == (None, True)

    no_key = TransportSettings("smtp", "127.0.0.1", 25, security="none",
                               dkim=DkimSettings("s", "cas.example.org", tmp_path / "nope.pem"))
    with pytest.raises(SendError, match=r"dkim_key_file .*nope\.pem"):
        SmtpTransport.prepare(no_key)


def test_transport_settings_from_the_channel(project: Project) -> None:
    """The one place the channel's keys become the transport's: port defaulted,
    file paths relative to the config file."""
    project.write_config(channels=[smtp_channel(0, security="tls", tls_ca_file="ca.pem",
                                                dkim_selector="s", dkim_domain="d.example",
                                                dkim_key_file="keys/dkim.pem")])
    config = project.config()
    settings = transport_settings(config.channels[0], config.resolve)
    assert (settings.name, settings.host, settings.effective_port) == ("smtp", "127.0.0.1", 465)
    assert settings.tls_ca_file == config.resolve(Path("ca.pem"))
    assert settings.dkim == DkimSettings("s", "d.example", config.resolve(Path("keys/dkim.pem")))
    assert settings.tls_ca_file is not None and settings.tls_ca_file.is_absolute()


def test_maildir_writer(tmp_path: Path) -> None:
    folder = tmp_path / "outbox"
    writer = MaildirWriter(folder)
    key = writer.add(_message())
    assert (folder / "new" / key).read_bytes() == _message()
    assert [m["Subject"] for m in mailbox.Maildir(folder, create=False)] == ["Un essai"]
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(OSError):
        MaildirWriter(tmp_path / "file" / "outbox").open()


# --------------------------------------------------------------------------- one backoff


def test_backoff_formula() -> None:
    assert [backoff_delay(n, 2.0, 30.0) for n in range(1, 7)] == [2, 4, 8, 16, 30, 30]
    assert backoff_delay(1, 2.0, 30.0, retry_after=7.0) == 7.0  # the server's word...
    assert backoff_delay(1, 2.0, 30.0, retry_after=3600.0) == 30.0  # ...within the cap
    assert backoff_delay(3, 0.0, 30.0) == 0.0


def _spy(monkeypatch: pytest.MonkeyPatch, module: Any) -> list[tuple[Any, ...]]:
    """Record the calls ``module`` makes to the transport's backoff_delay."""
    calls: list[tuple[Any, ...]] = []

    def spy(*args: Any) -> float:
        calls.append(args)
        return backoff_delay(*args)

    monkeypatch.setattr(module, "backoff_delay", spy)
    return calls


def test_webhook_delays_unchanged_and_from_the_shared_formula(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from syndicate.channels import webhook

    calls = _spy(monkeypatch, webhook)
    settings = WebhookSettings.model_validate({"type": "webhook", "url": "https://x.example/",
                                               "backoff": 1.0, "max_delay": 5.0})
    assert [retry_delay(n, settings, None) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]
    assert retry_delay(1, settings, 3.0) == 3.0  # Retry-After honoured
    assert retry_delay(1, settings, 3600.0) == 5.0  # and capped
    assert len(calls) == 6


def test_confirmation_delays_unchanged_and_from_the_shared_formula(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The sender's retries (the smtp channel's settings; defaults for the outbox)
    and its queue hold when the server cannot be used."""
    from syndicate import confirmations

    calls = _spy(monkeypatch, confirmations)
    policy = RetryPolicy()  # the outbox's, and the smtp channel's defaults
    deferred = SendError("smtp", "a@b.fr: 451 4.3.0 later", permanent=False, code=451,
                         recipient="a@b.fr")
    assert [decide(deferred, n, policy).delay for n in (1, 2, 3)] == [2.0, 4.0, 8.0]
    last = decide(deferred, 4, policy)
    assert (last.action, last.code, last.text) == (
        "failed", 451, "a@b.fr: 451 4.3.0 later (after 4 attempts)")
    down = SendError("smtp", "server answered 421 busy", permanent=False, code=421)
    held = [decide(down, 1, policy, held=n) for n in range(8)]
    assert [o.delay for o in held] == [2, 4, 8, 16, 32, 64, 120, 120]
    assert all(o.hold and not o.counted and o.code == 421 for o in held)
    fast = RetryPolicy(max_attempts=3, backoff=0.5, max_delay=1.0)
    assert [decide(deferred, n, fast).delay for n in (1, 2)] == [0.5, 1.0]
    assert len(calls) == 3 + 8 + 2


def test_decide_reads_the_error_not_its_text() -> None:
    """The outcome comes from the SendError's attributes: a recipient-like text in a
    server error is still the server's, a refusal is classified by its code."""
    policy = RetryPolicy()
    refused = decide(SendError("smtp", "a@b.fr: 550 5.1.1 no such user", permanent=True,
                               code=550, recipient="a@b.fr"), 1, policy)
    assert (refused.action, refused.code, refused.counted) == ("failed", 550, True)
    dropped = decide(SendError("smtp", "a@b.fr: connection dropped: gone", permanent=False,
                               recipient="a@b.fr"), 1, policy)
    assert (dropped.action, dropped.code, dropped.hold, dropped.counted) == (
        "retry", None, True, True)
    auth = decide(SendError("smtp", "AUTH refused for 'u': 535 5.7.8 no", permanent=True,
                            code=535), 1, policy)
    assert (auth.action, auth.code, auth.hold, auth.counted) == ("retry", 535, True, False)


def test_smtp_channel_delays_from_the_shared_formula(project: Project, clock: Clock,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The smtp channel waits the shared formula's delays with its own settings."""
    from _smtp_support import SECRET, seed_corpus

    from syndicate.channels import smtp
    from syndicate.ledger import Ledger
    from syndicate.pipeline import publish

    calls = _spy(monkeypatch, smtp)
    monkeypatch.setenv("SYNDICATE_SECRET", SECRET)
    handler = Recorder(rcpt_rules={"later@exemple.fr": ["451 4.3.0 later", "451 4.3.0 later",
                                                        "250"]})
    with smtp_server(handler) as (_server, port):
        seed_corpus(project)
        project.write_config(site={"base_url": "https://cas.example.org/"},
                             channels=[smtp_channel(port, concurrency=1, backoff=0.01,
                                                    max_delay=0.015)])
        config = project.config()
        with Ledger(config.database) as ledger:
            ledger.add_subscriber("later@exemple.fr")
        result = publish(config, now=clock)
    (report,) = result.reports
    assert report.sent == 1, result.reports
    assert calls == [(1, 0.01, 0.015), (2, 0.01, 0.015)]
    assert [backoff_delay(*c) for c in calls] == [0.01, 0.015]
