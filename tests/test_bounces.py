"""Bounces and complaints that arrive later (issue 11): VERP envelope senders checked on a
real SMTP server, DSN/ARF reports delivered to a real Maildir and read back by
``syndicate bounces fetch`` (a real subprocess), the policy, and bad input."""

from __future__ import annotations

import hashlib
import mailbox
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from _smtp_support import FROM, seed_corpus, smtp_channel, smtp_server
from conftest import Clock, Project

from syndicate.bounces import (
    BouncePolicy,
    DeliveryEvent,
    decide,
    parse_report,
    process_maildir,
    record_event,
)
from syndicate.config import BouncesConfig
from syndicate.errors import LedgerError
from syndicate.ledger import Ledger, open_ledger
from syndicate.ledger._schema import MIGRATIONS, connect, migrate
from syndicate.mail import message_id
from syndicate.pipeline import publish
from syndicate.tokens import (
    UNSUBSCRIBE,
    make_token,
    make_verp_token,
    verify_verp_token,
    verp_address,
    verp_token_in,
)

SECRET = "bounce-test-secret-0123456789abcdef"
DOMAIN = "retour.example.org"
PEOPLE = ["ana@exemple.fr", "bob@exemple.fr", "chloe@exemple.fr", "dan@exemple.fr"]
SETTINGS = BouncesConfig.model_validate({"domain": DOMAIN})


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET", SECRET)


def setup(project: Project, port: int, **bounces: Any) -> Any:
    seed_corpus(project)
    project.write_config(
        site={"base_url": "https://cas.example.org/"},
        channels=[smtp_channel(port, unsubscribe_mailto="desabonnement@cas.example.org")],
        bounces={"domain": DOMAIN, "maildir": "../mail/bounces", **bounces})
    config = project.config()
    with Ledger(config.database) as ledger:
        for address in PEOPLE:
            ledger.add_subscriber(address)
    return config


def published(project: Project, clock: Clock, **bounces: Any) -> tuple[Any, Any, dict[str, str]]:
    """Publish one edition to the test SMTP server: (config, edition, MAIL FROM by rcpt)."""
    with smtp_server() as (server, port):
        config = setup(project, port, **bounces)
        result = publish(config, now=clock)
    assert result.complete, result.reports
    return config, result.edition, {m.rcpt: m.mail_from for m in server.messages}


def maildir(project: Project) -> mailbox.Maildir:
    path = project.root / "mail" / "bounces"
    path.parent.mkdir(parents=True, exist_ok=True)
    return mailbox.Maildir(path, factory=None, create=True)


def dsn(to: str, recipient: str, status: str = "5.1.1", *, report_id: str = "<dsn-1@mx.test>",
        original_id: str = "<x@y>", action: str = "failed",
        diagnostic: str = "smtp; 550 5.1.1 <{r}>: Recipient address rejected: User unknown"
        ) -> bytes:
    """An RFC 3464 DSN as Postfix writes it, delivered to ``to``."""
    return f"""\
Return-Path: <>
Delivered-To: {to}
X-Original-To: {to}
From: MAILER-DAEMON@mx.test (Mail Delivery System)
To: {to}
Subject: Undelivered Mail Returned to Sender
Date: Mon, 30 Nov 2026 10:00:00 +0000
Message-ID: {report_id}
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

I'm sorry to have to inform you that your message could not be delivered.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.test

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Diagnostic-Code: {diagnostic.format(r=recipient)}

--B
Content-Type: text/rfc822-headers

From: {FROM}
To: {recipient}
Subject: Cas
Message-ID: {original_id}

--B--
""".encode()


def arf(to: str, recipient: str, *, report_id: str = "<arf-1@fbl.test>",
        return_path: str = "", original_id: str = "<x@y>") -> bytes:
    """An RFC 5965 abuse report (a mailbox provider's feedback loop)."""
    return f"""\
Delivered-To: {to}
From: fbl@fbl.test
To: {to}
Subject: Abuse report
Message-ID: {report_id}
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="A"

--A
Content-Type: text/plain

This is an email abuse report.

--A
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: FBL/1.0
Version: 1
Original-Rcpt-To: {recipient}

--A
Content-Type: message/rfc822

Return-Path: <{return_path}>
From: {FROM}
To: {recipient}
Message-ID: {original_id}
Subject: Cas

Bonjour
--A--
""".encode()


def fetch(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syndicate", "--config", str(project.config_path), "bounces",
         "fetch", *args], capture_output=True, text=True, timeout=120,
        env={**os.environ, "SYNDICATE_SECRET": SECRET})


def status_of(config: Any, address: str) -> str:
    with Ledger(config.database) as ledger:
        found = ledger.get_subscriber(address)
        assert found is not None
        return found.status


def folder_sizes(box: mailbox.Maildir) -> tuple[int, int, int]:
    def size(name: str) -> int:
        try:
            return len(box.get_folder(name)) if name in box.list_folders() else 0
        except FileNotFoundError:  # being created by a poller thread (cur/ not made yet)
            return 0

    return (len(box), size("processed"), size("unparsed"))


# --------------------------------------------------------------------------- VERP


def test_verp_tokens_sign_the_delivery_id_and_survive_case_folding() -> None:
    secret = SECRET.encode()
    token = make_verp_token(secret, 123456)
    assert verify_verp_token(secret, token) == 123456
    assert verify_verp_token(secret, token.upper()) == 123456  # an MTA folded its case
    address = verp_address(secret, 7, local_part="bounces", separator="+", domain=DOMAIN)
    assert len(address.split("@")[0]) <= 64
    assert verp_token_in(address.upper(), local_part="bounces", separator="+",
                         domain=DOMAIN) == make_verp_token(secret, 7).upper()
    assert verp_token_in("other@" + DOMAIN, local_part="bounces", separator="+",
                         domain=DOMAIN) is None
    from syndicate.errors import InvalidToken

    for forged in ("8-" + token.split("-")[1], token[:-1] + "a", "x", "", "12-", "-abc"):
        with pytest.raises(InvalidToken):
            verify_verp_token(secret, forged)
    with pytest.raises(InvalidToken):
        verify_verp_token(b"another-secret-0123456789", token)


def test_mail_from_carries_a_verified_token_naming_the_delivery_row(project: Project,
                                                                     clock: Clock) -> None:
    config, edition, senders = published(project, clock)
    assert sorted(senders) == sorted(PEOPLE)
    with Ledger(config.database) as ledger:
        for rcpt, sender in senders.items():
            local, _, domain = sender.partition("@")
            assert domain == DOMAIN and local.startswith("bounces+")
            delivery = ledger.get_delivery(verify_verp_token(SECRET.encode(), local[8:]))
            assert delivery is not None
            assert (delivery.recipient, delivery.edition_id, delivery.channel) == (
                rcpt, edition.id, "smtp")
    assert len(set(senders.values())) == len(PEOPLE)


def test_without_a_bounce_domain_the_envelope_sender_is_from(project: Project,
                                                             clock: Clock) -> None:
    _config, _edition, senders = published(project, clock, domain="")
    assert set(senders.values()) == {"lettre@cas.example.org"}


# --------------------------------------------------------------------------- the loop


def test_fetch_records_bounces_and_complaints_and_moves_every_message(
        project: Project, clock: Clock) -> None:
    config, edition, senders = published(project, clock, soft_limit=2)
    box = maildir(project)
    ana, bob, chloe, dan = PEOPLE
    box.add(dsn(senders[ana], ana, "5.1.1", report_id="<h1@mx.test>"))
    box.add(dsn(senders[ana], ana, "5.1.1", report_id="<h1@mx.test>"))  # the same, again
    box.add(dsn(senders[bob], bob, "4.2.2", report_id="<s1@mx.test>", action="delayed",
                diagnostic="smtp; 452 4.2.2 Mailbox full"))
    box.add(arf("fbl@" + DOMAIN, "redacted@exemple.fr", report_id="<c1@fbl.test>",
                return_path=senders[chloe]))
    done = fetch(project)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ("bounces: 4 message(s): 1 hard, 1 soft, 1 complaint, "
                                   "1 duplicate")
    assert folder_sizes(box) == (0, 4, 0)
    assert [status_of(config, a) for a in PEOPLE] == ["bounced", "active", "complained",
                                                      "active"]
    with Ledger(config.database) as ledger:
        rows = {d.recipient: d for d in (ledger.find_delivery(edition.id, a) for a in PEOPLE)
                if d is not None}
        (hard,) = ledger.delivery_events(rows[ana].id)
        assert (hard.kind, hard.status, hard.source, hard.event_id) == (
            "hard", "5.1.1", "maildir", "<h1@mx.test>")
        assert "User unknown" in hard.diagnostic
        assert hard.occurred_at == datetime(2026, 11, 30, 10, tzinfo=UTC)
        (complaint,) = ledger.delivery_events(rows[chloe].id)
        assert complaint.kind == "complaint" and "abuse" in complaint.diagnostic
    # A second soft bounce within the window (soft_limit = 2) bounces bob.
    box.add(dsn(senders[bob], bob, "4.2.2", report_id="<s2@mx.test>", action="delayed"))
    assert fetch(project).stdout.strip() == "bounces: 1 message(s): 1 soft"
    assert status_of(config, bob) == "bounced"
    # deliveries and status show the counts and rates of the edition.
    show = subprocess.run(
        [sys.executable, "-m", "syndicate", "--config", str(project.config_path),
         "deliveries", str(edition.number)], capture_output=True, text=True, timeout=120)
    assert ("reported later: 2 bounced (50.0%: 1 hard, 1 soft), 1 complaint(s) (25.0%) "
            "of 4 sent") in show.stdout, show.stdout + show.stderr
    status = subprocess.run(
        [sys.executable, "-m", "syndicate", "--config", str(project.config_path), "status"],
        capture_output=True, text=True, timeout=120)
    assert "bounces 2 (50.0%), complaints 1 (25.0%)" in status.stdout, status.stderr
    # The next edition is not mailed to the bounced and the complainer.
    with smtp_server() as (server, port):
        project.write_config(channels=[smtp_channel(port)])
        clock.advance(days=7)
        publish(project.config(), now=clock)
    assert sorted(m.rcpt for m in server.messages) == [dan]


def test_attribution_falls_back_to_the_message_id_without_a_token(project: Project,
                                                                  clock: Clock) -> None:
    config, edition, _senders = published(project, clock)
    box = maildir(project)
    ana, bob = PEOPLE[:2]
    # The envelope lost its token (a relay rewrote it): the quoted Message-ID names the
    # edition and the hash of the recipient.
    box.add(dsn("postmaster@" + DOMAIN, ana,
                original_id=message_id(edition.number, ana, FROM), report_id="<f1@mx>"))
    # The Message-ID of another address: attributed to nobody.
    box.add(dsn("postmaster@" + DOMAIN, bob,
                original_id=message_id(edition.number, ana, FROM), report_id="<f2@mx>"))
    done = fetch(project)
    assert done.stdout.strip() == "bounces: 2 message(s): 1 hard, 1 unparsed"
    assert "Message-ID matches no recipient" in done.stderr
    assert status_of(config, ana) == "bounced" and status_of(config, bob) == "active"


def test_mailto_unsubscribe_with_a_verified_token(project: Project, clock: Clock) -> None:
    config, _edition, _senders = published(project, clock)
    box = maildir(project)
    ana, bob = PEOPLE[:2]
    token = make_token(SECRET.encode(), UNSUBSCRIBE, ana)
    box.add(f"From: {ana}\nTo: desabonnement@cas.example.org\nSubject: unsubscribe {token}\n"
            "Message-ID: <u1@client>\n\n".encode())
    forged = make_token(b"not-the-secret-0123456789", UNSUBSCRIBE, bob)
    box.add(f"From: {bob}\nTo: desabonnement@cas.example.org\nSubject: unsubscribe {forged}\n"
            "Message-ID: <u2@client>\n\n".encode())
    done = fetch(project)
    assert done.stdout.strip() == "bounces: 2 message(s): 1 unsubscribe, 1 unparsed"
    assert "invalid token signature" in done.stderr
    assert status_of(config, ana) == "unsubscribed" and status_of(config, bob) == "active"
    assert folder_sizes(box) == (0, 1, 1)


def test_the_mailto_of_list_unsubscribe_carries_the_token(project: Project,
                                                          clock: Clock) -> None:
    with smtp_server() as (server, port):
        config = setup(project, port)
        publish(config, now=clock)
    import re

    from syndicate.tokens import verify_token

    for received in server.messages:
        header = str(received.parse()["List-Unsubscribe"])
        mailto = re.findall(r"<(mailto:[^>]+)>", header)[0]
        assert mailto.startswith("mailto:desabonnement@cas.example.org?subject=unsubscribe%20")
        report = parse_report(f"Subject: unsubscribe {mailto.rsplit('%20', 1)[1]}\n\n"
                              .encode())
        assert verify_token(SECRET.encode(), UNSUBSCRIBE, report.unsubscribe_token) == \
            received.rcpt


# --------------------------------------------------------------------------- bad input


def test_bad_input_is_set_aside_with_one_line_each_and_changes_nobody(
        project: Project, clock: Clock) -> None:
    config, edition, senders = published(project, clock, max_size=50_000)
    box = maildir(project)
    ana = PEOPLE[0]
    good = dsn(senders[ana], ana, report_id="<t1@mx>")
    forged_to = f"bounces+{make_verp_token(b'another-secret-0123456789', 1)}@{DOMAIN}"
    unknown = verp_address(SECRET.encode(), 99999, local_part="bounces", separator="+",
                           domain=DOMAIN)
    samples = {
        "truncated": good[: len(good) // 3],
        "forged": dsn(forged_to, ana, report_id="<t2@mx>"),
        "unknown row": dsn(unknown, ana, report_id="<t3@mx>"),
        "garbage token": dsn(f"bounces+zzz@{DOMAIN}", ana, report_id="<t4@mx>"),
        "not utf-8": dsn(senders[ana], ana, report_id="<t5@mx>").replace(
            b"User unknown", b"Utilisateur inconnu \xe9\xff\xfe"),
        "huge": good.replace(b"--B--", b"--B\nContent-Type: application/octet-stream\n\n"
                             + b"A" * 60_000 + b"\n--B--"),
        "empty": b"",
        "binary": bytes(range(256)) * 4,
        "no report": b"From: someone@x.fr\nSubject: hello\n\nJust a reply.\n",
    }
    for raw in samples.values():
        box.add(raw)
    done = fetch(project)
    assert done.returncode == 0, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if "moved to unparsed" in ln]
    assert done.stdout.strip() == "bounces: 9 message(s): 1 hard, 8 unparsed", done.stderr
    assert len(lines) == 8, done.stderr
    assert any("forged bounce token" in ln for ln in lines)
    assert any("token names no delivery (99999)" in ln for ln in lines)
    assert any("larger than max_size" in ln for ln in lines)
    assert folder_sizes(box) == (0, 1, 8)  # nothing lost
    # Only the genuine (non-UTF-8) report changed a status: the forged one named ana too.
    assert status_of(config, ana) == "bounced"
    assert [status_of(config, a) for a in PEOPLE[1:]] == ["active"] * 3
    with Ledger(config.database) as ledger:
        row = ledger.find_delivery(edition.id, ana)
        assert row is not None
        (event,) = ledger.delivery_events(row.id)
        assert event.event_id == "<t5@mx>" and "\ufffd" in event.diagnostic


def test_forged_reports_change_nobody(project: Project, clock: Clock) -> None:
    config, _edition, senders = published(project, clock)
    box = maildir(project)
    for n, address in enumerate(PEOPLE):
        token = senders[address].split("+", 1)[1].split("@")[0]
        number, mac = token.split("-")
        altered = f"bounces+{int(number) + 1}-{mac}@{DOMAIN}"  # another row, same MAC
        box.add(dsn(altered, address, report_id=f"<g{n}@mx>"))
        box.add(arf(f"fbl@{DOMAIN}", address, report_id=f"<a{n}@fbl>", return_path=altered))
    done = fetch(project)
    assert done.stdout.strip() == "bounces: 8 message(s): 8 unparsed"
    assert all(status_of(config, a) == "active" for a in PEOPLE)


def test_a_ledger_that_cannot_record_leaves_the_messages_in_place(project: Project,
                                                                  clock: Clock) -> None:
    config, _edition, senders = published(project, clock)
    box = maildir(project)
    ana = PEOPLE[0]
    box.add(dsn(senders[ana], ana))
    path = project.root / "mail" / "bounces"
    with open_ledger(config.ledger_url) as ledger:
        ledger.close()  # every call now fails
        with pytest.raises(LedgerError):
            process_maildir(ledger, config.bounces, path, SECRET.encode())
    assert folder_sizes(box) == (1, 0, 0)
    assert fetch(project).stdout.strip() == "bounces: 1 message(s): 1 hard"


def test_fetch_needs_a_maildir(project: Project) -> None:
    project.write_config(bounces={"maildir": ""})
    done = fetch(project)
    assert done.returncode == 1
    assert "[bounces] has no mailbox: set maildir or imap_host" in done.stderr
    assert "Traceback" not in done.stderr


# --------------------------------------------------------------------------- policy


def test_policy_decisions() -> None:
    policy = BouncePolicy(soft_limit=3, soft_window=timedelta(days=7))
    assert decide("hard", "active", 0, policy) == "bounced"
    assert decide("soft", "active", 2, policy) is None
    assert decide("soft", "active", 3, policy) == "bounced"
    assert decide("complaint", "active", 0, policy) == "complained"
    assert decide("complaint", "unsubscribed", 0, policy) == "complained"
    assert decide("hard", "unsubscribed", 0, policy) is None  # never brings anyone back
    assert decide("hard", "complained", 0, policy) is None


def test_soft_bounces_count_only_within_the_window(tmp_path: Path, clock: Clock) -> None:
    policy = BouncePolicy(soft_limit=2, soft_window=timedelta(days=3))
    with open_ledger(str(tmp_path / "l.db"), now=clock) as ledger:
        ledger.add_subscriber("zoe@x.fr")
        edition = ledger.claim_edition(slot="s", slug="c", title="t", url="u")
        row = ledger.ensure_delivery(edition.id, "smtp", "zoe@x.fr")
        first = record_event(ledger, DeliveryEvent("<1>", row.id, "soft", "4.2.2"), policy,
                             now=clock())
        assert first.new and first.status is None
        clock.advance(days=5)  # the first one is out of the window
        second = record_event(ledger, DeliveryEvent("<2>", row.id, "soft", "4.2.2"), policy,
                              now=clock())
        assert second.status is None
        again = record_event(ledger, DeliveryEvent("<2>", row.id, "soft", "4.2.2"), policy,
                             now=clock())
        assert not again.new and again.status is None  # a replay counts once
        third = record_event(ledger, DeliveryEvent("<3>", row.id, "soft", "4.4.7"), policy,
                             now=clock())
        assert third.status == "bounced"


def test_migration_4_keeps_subscribers_of_a_version_3_ledger(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = connect(path, timeout=5)
    migrate(conn, path, MIGRATIONS[:3])
    conn.execute("INSERT INTO subscribers (email, email_key, status, created_at, updated_at)"
                 " VALUES ('a@x.fr', 'a@x.fr', 'bounced', '2026-01-01', '2026-01-01')")
    conn.close()
    with Ledger(path) as ledger:
        found = ledger.get_subscriber("a@x.fr")
        assert found is not None and found.status == "bounced"
        assert ledger.set_subscriber_status("a@x.fr", "complained").status == "complained"
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert check.execute("PRAGMA foreign_key_check").fetchall() == []


def test_message_id_fallback_format_matches_the_mail_module() -> None:
    from syndicate.bounces.attribute import _MESSAGE_ID

    mid = message_id(12, "Zoe@X.fr", FROM)
    match = _MESSAGE_ID.search(mid)
    assert match is not None and match.group(1) == "12"
    assert match.group(2) == hashlib.sha256(b"zoe@x.fr").hexdigest()[:16]


def test_run_polls_the_maildir_and_survives_a_failing_pass(project: Project,
                                                           clock: Clock) -> None:
    import time

    from syndicate.bounces.poller import Poller

    config, _edition, senders = published(project, clock)
    box = maildir(project)
    ana = PEOPLE[0]
    with open_ledger(config.ledger_url) as ledger:
        broken = {"yes": True}

        def current() -> Any:
            if broken["yes"]:
                raise LedgerError("ledger unreachable")
            return ledger

        poller = Poller(config, current, SECRET.encode(), interval=0.02).start()
        try:
            box.add(dsn(senders[ana], ana))
            deadline = time.monotonic() + 30
            while poller.passes < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert folder_sizes(box) == (1, 0, 0)  # failed passes: left in place
            broken["yes"] = False
            # the copy lands in .processed a moment before the original goes
            while folder_sizes(box) != (0, 1, 0) and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            poller.stop()
        assert folder_sizes(box) == (0, 1, 0)
        found = ledger.get_subscriber(ana)
        assert found is not None and found.status == "bounced"
