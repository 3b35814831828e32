"""MIME messages (syndicate.mail) parsed back with the stdlib, and signed tokens."""

from __future__ import annotations

import email
import logging
import re
from datetime import UTC, datetime
from email import policy
from email.header import decode_header, make_header
from email.utils import parsedate_to_datetime

import pytest
from _render_support import hostile_case, make_config, make_history, seed_cases
from hypothesis import given, settings
from hypothesis import strategies as st

from syndicate.errors import ExpiredToken, InvalidToken, SyndicateError
from syndicate.mail import (
    MessageTemplate,
    as_bytes,
    build_message,
    feedback_id,
    list_id,
    message_id,
    parse_address,
    unsubscribe_header,
)
from syndicate.render.email import clean_name, render_email
from syndicate.tokens import (
    LOCAL_SECRET_KEY,
    make_token,
    outbox_secret,
    secret_from_env,
    verify_token,
)

SECRET = b"0123456789abcdef-test-secret"
FROM = "Études de cas <redaction@etudes.example.org>"
FEEDBACK = "edition-12:list.etudes.example.org:newsletter:syndicate"
DATE = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
URL = "https://etudes.example.org/unsubscribe/" + make_token(SECRET, "unsubscribe",
                                                             "zoe@example.org")
MAILTO = "mailto:desabonnement@etudes.example.org?subject=unsubscribe"


@pytest.fixture(scope="module")
def rendered():
    config = make_config_once()
    return render_email(make_history(seed_cases(), config)[0], config)


_CONFIG = {}


def make_config_once():
    if "c" not in _CONFIG:
        import tempfile
        from pathlib import Path

        _CONFIG["c"] = make_config(Path(tempfile.mkdtemp(prefix="mail-")))
    return _CONFIG["c"]


def test_feedback_id_has_four_fields_without_stray_colons() -> None:
    # Gmail's feedback loop reads colon-separated fields: campaign, list, kind, sender.
    assert feedback_id("edition-12", FROM) == FEEDBACK
    assert feedback_id("a:b", FROM, "transactional").split(":")[0] == "a-b"
    assert len(feedback_id("a:b", FROM).split(":")) == 4


def _build(rendered, **overrides):
    args = dict(to="zoe@example.org", from_addr=FROM, unsubscribe_url=URL,
                message_id=message_id(12, "zoe@example.org", FROM),
                list_id=list_id("Études de cas", FROM), name="Zoé Müller",
                unsubscribe_mailto=MAILTO, date=DATE, feedback=FEEDBACK)
    args.update(overrides)
    return build_message(rendered, **args)


def _parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)


def _decoded(raw: bytes, header: str) -> str:
    """A header's value decoded per RFC 2047 (adjacent encoded-words joined)."""
    value = email.message_from_bytes(raw, policy=policy.compat32)[header]
    text = str(make_header(decode_header(value)))
    return re.sub(r'^"(.*)" <', lambda m: m.group(1).replace('\\"', '"')
                  .replace("\\\\", "\\") + " <", text)


def _check_wire_format(raw: bytes) -> None:
    assert b"\r\n" in raw
    assert not re.search(rb"(?<!\r)\n", raw), "bare LF"
    assert not re.search(rb"\r(?!\n)", raw), "bare CR"
    lines = raw.split(b"\r\n")
    assert max(len(line) for line in lines) <= 998
    _head, _, body = raw.partition(b"\r\n\r\n")
    assert all(len(line) <= 78 for line in body.split(b"\r\n")), "body lines kept short"
    raw.decode("ascii")  # 7-bit clean: every non-ASCII character is encoded


# --------------------------------------------------------------------------- messages


def test_message_parses_back_with_every_header(rendered):
    raw = as_bytes(_build(rendered, reply_to="Courrier des lecteurs <lecteurs@example.org>"))
    _check_wire_format(raw)
    msg = _parse(raw)
    assert not msg.defects
    assert msg["From"].addresses[0].display_name == "Études de cas"
    assert msg["From"].addresses[0].addr_spec == "redaction@etudes.example.org"
    assert msg["To"].addresses[0].display_name == "Zoé Müller"
    assert msg["To"].addresses[0].addr_spec == "zoe@example.org"
    assert msg["Reply-To"].addresses[0].addr_spec == "lecteurs@example.org"
    assert msg["Subject"] == rendered.subject and "é" in msg["Subject"]
    assert b"Subject: Quand =?utf-8?" in raw  # encoded on the wire, decoded back
    assert parsedate_to_datetime(msg["Date"]) == DATE
    assert re.fullmatch(r"<edition-12\.[0-9a-f]{16}@etudes\.example\.org>", msg["Message-ID"])
    assert msg["List-Id"] == "Études de cas <list.etudes.example.org>"
    assert msg["List-Unsubscribe"] == f"<{URL}>, <{MAILTO}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["MIME-Version"] == "1.0" and msg["Content-Language"] == "fr"
    # Providers read these headers raw: never RFC 2047 encoded, whatever their length.
    assert f"List-Unsubscribe: <{URL}>,\r\n <{MAILTO}>\r\n".encode() in raw
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in raw


def test_parts_are_the_personalised_email(rendered):
    msg = _parse(as_bytes(_build(rendered)))
    assert msg.get_content_type() == "multipart/alternative"
    text, html = msg.iter_parts()
    assert text.get_content_type() == "text/plain" and html.get_content_type() == "text/html"
    for part in (text, html):
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] in {"quoted-printable", "base64"}
    want_html, want_text = rendered.personalize(URL, "Zoé Müller")
    # Text travels in canonical form (CRLF line breaks); the parser hands CRLF back.
    got_text = text.get_content().replace("\r\n", "\n")
    got_html = html.get_content().replace("\r\n", "\n")
    assert got_text == want_text
    assert got_html.rstrip("\n") == want_html
    assert "Bonjour Zoé Müller," in got_text
    assert f'href="{URL}"' in got_html
    for part in (got_text, got_html):
        assert rendered.unsubscribe_placeholder not in part
        assert rendered.name_placeholder not in part


def test_message_id_is_deterministic_per_edition_and_subscriber():
    one = message_id(3, "zoe@example.org", FROM)
    assert one == message_id(3, "Zoe@Example.org", "Autre nom <x@etudes.example.org>")
    assert one != message_id(4, "zoe@example.org", FROM)
    assert one != message_id(3, "max@example.org", FROM)
    assert "zoe" not in one  # the address itself never leaks into Message-IDs


def test_header_injection_is_refused(rendered):
    with pytest.raises(ValueError):
        _build(rendered, to="zoe@example.org\r\nBcc: victim@example.org")
    with pytest.raises(ValueError):
        unsubscribe_header("https://x.example/u/1> , <https://evil.example/")
    msg = _parse(as_bytes(_build(rendered, name="Zoé\r\nBcc: victim@example.org")))
    assert msg["Bcc"] is None
    assert msg["To"].addresses[0].display_name == "Zoé Bcc: victim@example.org"
    with pytest.raises(ValueError):
        parse_address("a@example.org, b@example.org")


def test_without_name_or_mailto(rendered):
    raw = as_bytes(_build(rendered, name=None, unsubscribe_mailto=None))
    msg = _parse(raw)
    assert str(msg["To"]) == "zoe@example.org"
    assert msg["List-Unsubscribe"] == f"<{URL}>"
    assert "Bonjour,\r\n" in msg.get_body(("plain",)).get_content()


NAMES = [None, "", "Jean Dupont", 'Jean "Le Boss" \\ Dupont', "Zoé Müller",
         "Ørjan 🐧 Ætherstone-Łukasiewicz", "É" * 100, "a,b;c:<d>@e", "  Jean\r\nBcc: x@y  "]


@pytest.mark.parametrize("name", NAMES)
def test_fast_template_matches_build_message(rendered, name):
    template = MessageTemplate(rendered, from_addr=FROM, list_id=list_id("Études de cas", FROM),
                               date=DATE, feedback=FEEDBACK)
    for to in ("zoe@example.org", "jean.dupont+lettre@sub.example.co.uk"):
        mid = message_id(12, to, FROM)
        fast = template.render(to=to, unsubscribe_url=URL, message_id=mid, name=name,
                               unsubscribe_mailto=MAILTO)
        slow = as_bytes(_build(rendered, to=to, message_id=mid, name=name))
        _check_wire_format(fast)
        a, b = _parse(fast), _parse(slow)
        assert not a.defects and all(not p.defects for p in a.iter_parts())
        assert sorted(a.keys()) == sorted(b.keys())
        for key in a:
            if key == "To":
                # The stdlib parser keeps the folding white space between adjacent
                # encoded-words of a long display name (RFC 2047 says to drop it), on
                # its own output as on ours: compare the RFC 2047 decoding instead.
                assert _decoded(fast, "To") == _decoded(slow, "To") == (
                    f"{clean_name(name)} <{to}>" if clean_name(name) else to)
            elif key != "Content-Type":  # the boundaries differ
                assert str(a[key]) == str(b[key]), key
        assert [p.get_content() for p in a.iter_parts()] == \
            [p.get_content() for p in b.iter_parts()]
        assert [p.get_content_type() for p in a.iter_parts()] == ["text/plain", "text/html"]


def test_fast_template_on_hostile_text(tmp_path):
    config = make_config(tmp_path)
    rendered = render_email(make_history([hostile_case()], config)[0], config)
    template = MessageTemplate(rendered, from_addr=FROM, list_id=list_id("T", FROM), date=DATE)
    raw = template.render(to="zoe@example.org", unsubscribe_url=URL,
                          message_id=message_id(1, "zoe@example.org", FROM), name="Zoé")
    msg = _parse(raw)
    text = msg.get_body(("plain",)).get_content()
    assert "<script>alert(1)</script>" in text.replace("\n", " ")
    assert "https://unsubscribe-x.invalid/" in text.replace("\n", " ")  # corpus text intact
    assert URL in text and "Bonjour Zoé," in text


# --------------------------------------------------------------------------- tokens


def test_token_round_trip_and_shape():
    token = make_token(SECRET, "unsubscribe", "zoé@example.org")
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}", token)  # URL-safe as is
    assert verify_token(SECRET, "unsubscribe", token) == "zoé@example.org"
    assert make_token(SECRET, "unsubscribe", "a@example.org") != \
        make_token(SECRET, "unsubscribe", "b@example.org")


def test_forged_or_altered_tokens_are_refused():
    token = make_token(SECRET, "unsubscribe", "zoe@example.org")
    payload, signature = token.split(".")
    with pytest.raises(InvalidToken):
        verify_token(b"another-secret-of-16+", "unsubscribe", token)
    with pytest.raises(InvalidToken):
        verify_token(SECRET, "confirm", token)  # made for another purpose
    forged_payload = make_token(b"attacker-secret-xxxx", "unsubscribe", "victim@example.org")
    with pytest.raises(InvalidToken):
        verify_token(SECRET, "unsubscribe", forged_payload.split(".")[0] + "." + signature)
    for bad in ("", "abc", ".", "a.b", f"{payload}.", f".{signature}", f"{payload}.{signature}x",
                f"{payload}x.{signature}", f"{payload}.{signature}.x", "%%%." + signature,
                "x" * 5000):
        with pytest.raises(InvalidToken):
            verify_token(SECRET, "unsubscribe", bad)


@settings(max_examples=60, deadline=None)
@given(position=st.integers(min_value=0, max_value=200), char=st.sampled_from("Aa0_-.="))
def test_any_single_character_change_is_refused(position, char):
    token = make_token(SECRET, "unsubscribe", "zoe@example.org")
    index = position % len(token)
    altered = token[:index] + char + token[index + 1:]
    if altered == token:
        return
    with pytest.raises(InvalidToken):
        verify_token(SECRET, "unsubscribe", altered)


def test_expiry():
    token = make_token(SECRET, "confirm", "zoe@example.org", expires=1_000_000)
    assert verify_token(SECRET, "confirm", token, now=999_999) == "zoe@example.org"
    with pytest.raises(ExpiredToken):
        verify_token(SECRET, "confirm", token, now=1_000_000)
    # Extending the expiry means altering the token: refused as forged, not as expired.
    signature = token.split(".")[1]
    longer = make_token(b"other-secret-0123456", "confirm", "zoe@example.org", 9_999_999_999)
    with pytest.raises(InvalidToken) as caught:
        verify_token(SECRET, "confirm", longer.split(".")[0] + "." + signature, now=1)
    assert not isinstance(caught.value, ExpiredToken)


def test_secret_from_env():
    assert secret_from_env(environ={"SYNDICATE_SECRET": "x" * 32}) == b"x" * 32
    assert secret_from_env(required=False, environ={}) is None
    with pytest.raises(SyndicateError, match="SYNDICATE_SECRET is not set"):
        secret_from_env(environ={})
    with pytest.raises(SyndicateError, match="too short"):
        secret_from_env(environ={"SYNDICATE_SECRET": "short"})


def test_outbox_secret_falls_back_to_a_local_secret(tmp_path, caplog):
    from syndicate.ledger import Ledger

    with Ledger(tmp_path / "ledger.db") as ledger:
        env = {"SYNDICATE_SECRET": "s" * 20}
        assert outbox_secret(ledger, environ=env) == b"s" * 20
        assert ledger.get_meta(LOCAL_SECRET_KEY) is None
        with caplog.at_level(logging.WARNING, logger="syndicate.tokens"):
            first = outbox_secret(ledger, environ={})
        assert "syndicate serve" in caplog.text
        assert len(first) == 64 and ledger.get_meta(LOCAL_SECRET_KEY) == first.decode()
    with Ledger(tmp_path / "ledger.db") as ledger:  # kept: links stay stable across runs
        assert outbox_secret(ledger, environ={}) == first


# --------------------------------------------------------------------------- outbox channel


def _outbox(config, **settings):
    from syndicate.channels import build_channel
    from syndicate.channels.outbox import OutboxSettings

    return build_channel(OutboxSettings.model_validate({"type": "outbox", **settings}), config)


def _maildir(folder) -> list[bytes]:
    import mailbox

    box = mailbox.Maildir(folder, create=False)
    return [box.get_bytes(key) for key in sorted(box.iterkeys())]


@pytest.fixture
def outbox_env(tmp_path, monkeypatch):
    from syndicate.ledger import Ledger

    monkeypatch.delenv("SYNDICATE_SECRET", raising=False)
    config = make_config(tmp_path, publish={"test_address": "essai@etudes.example.org"})
    history = make_history(seed_cases()[:2], config)
    with Ledger(config.database) as ledger:
        yield config, ledger, history


def test_outbox_default_path_is_relative_to_the_config(outbox_env):
    config, _ledger, _history = outbox_env
    channel = _outbox(config)
    assert channel.folder == (config.folder / ".." / "var" / "outbox").resolve()
    assert _outbox(config, path="/srv/boite").folder.as_posix() == "/srv/boite"


def test_outbox_without_subscribers_writes_one_sample(outbox_env, caplog):
    from _render_support import make_job

    config, ledger, history = outbox_env
    job = make_job(config, ledger, history, 0)
    with caplog.at_level(logging.WARNING):
        report = _outbox(config).deliver(job)
    assert (report.sent, report.failed, report.pending) == (1, 0, 0), report
    assert "SYNDICATE_SECRET is not set" in caplog.text
    (raw,) = _maildir(_outbox(config).folder)
    _check_wire_format(raw)
    msg = _parse(raw)
    assert str(msg["To"]) == "essai@etudes.example.org"
    assert msg["From"].addresses[0].display_name == "Études de cas"
    assert msg["From"].addresses[0].addr_spec == "redaction@etudes.example.org"
    assert msg["Subject"] == job.email.subject
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = msg["List-Unsubscribe"].strip("<>")
    assert url.startswith(f"{config.site.base_url}unsubscribe/")
    local = ledger.get_meta(LOCAL_SECRET_KEY).encode()
    assert verify_token(local, "unsubscribe", url.rsplit("/", 1)[1]) == "essai@etudes.example.org"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert parsedate_to_datetime(msg["Date"]) == job.edition.published_at
    counts = ledger.delivery_counts(job.edition.id)
    assert counts == {"outbox": {"sent": 1, "failed": 0, "pending": 0}}


def test_outbox_writes_each_active_subscriber_once(outbox_env, monkeypatch):
    from _render_support import make_job

    config, ledger, history = outbox_env
    monkeypatch.setenv("SYNDICATE_SECRET", "s" * 32)
    ledger.add_subscriber("zoe@example.org", name="Zoé Müller")
    ledger.add_subscriber("jean@example.org")
    ledger.add_subscriber("max@example.org", name="Max")
    ledger.add_subscriber("parti@example.org", status="unsubscribed")
    job = make_job(config, ledger, history, 0)
    channel = _outbox(config, **{"from": "La rédaction <lettre@etudes.example.org>",
                                 "unsubscribe_mailto": "stop@etudes.example.org"})
    # SIGTERM before the first message: rows exist, nothing written, all pending.
    job.stop.set()
    report = channel.deliver(job)
    assert (report.sent, report.pending) == (0, 3)
    assert _maildir(channel.folder) == []
    # Max unsubscribes before the resume: he must not get it.
    ledger.set_subscriber_status("max@example.org", "unsubscribed")
    job.stop.clear()
    report = channel.deliver(job)
    assert (report.sent, report.skipped, report.failed, report.pending) == (2, 1, 0, 0), report
    messages = {_parse(raw)["To"].addresses[0].addr_spec: raw for raw in _maildir(channel.folder)}
    assert set(messages) == {"zoe@example.org", "jean@example.org"}
    ids = set()
    for address, raw in messages.items():
        _check_wire_format(raw)
        msg = _parse(raw)
        assert msg["From"].addresses[0].display_name == "La rédaction"
        assert msg["Message-ID"] == message_id(job.edition.number, address,
                                               "lettre@etudes.example.org")
        ids.add(msg["Message-ID"])
        url, mailto = (part.strip(" <>") for part in msg["List-Unsubscribe"].split(","))
        # The mailto's Subject carries the token (read back by `bounces fetch`).
        assert mailto.startswith("mailto:stop@etudes.example.org?subject=unsubscribe%20")
        assert verify_token(b"s" * 32, "unsubscribe", mailto.rsplit("%20", 1)[1]) == address
        assert verify_token(b"s" * 32, "unsubscribe", url.rsplit("/", 1)[1]) == address
        text = msg.get_body(("plain",)).get_content()
        assert url in text.replace("\r\n", "\n")
    assert "Bonjour Zoé Müller," in _parse(messages["zoe@example.org"]).get_body(
        ("plain",)).get_content()
    assert len(ids) == 2
    # Resume again: nothing is written twice.
    report = channel.deliver(job)
    assert (report.sent, report.pending) == (0, 0) and report.skipped == 2
    assert len(_maildir(channel.folder)) == 2
    rows = {d.recipient: d for d in ledger.failed_deliveries(job.edition.id)}
    assert set(rows) == {"max@example.org"} and rows["max@example.org"].response.startswith(
        "skipped:")
    assert ledger.delivery_counts(job.edition.id)["outbox"] == {"sent": 2, "failed": 1,
                                                                  "pending": 0}


def test_outbox_rows_are_fixed_when_the_edition_goes_out(outbox_env):
    from _render_support import make_job

    config, ledger, history = outbox_env
    ledger.add_subscriber("zoe@example.org")
    job = make_job(config, ledger, history, 0)
    channel = _outbox(config)
    assert channel.deliver(job).sent == 1
    ledger.add_subscriber("tard@example.org")  # subscribed after: gets the next edition
    assert channel.deliver(job).sent == 0
    assert len(_maildir(channel.folder)) == 1


def test_outbox_unwritable_folder_leaves_rows_pending_or_failed(outbox_env, tmp_path):
    from _render_support import make_job

    config, ledger, history = outbox_env
    ledger.add_subscriber("zoe@example.org")
    blocker = tmp_path / "fichier"
    blocker.write_text("x", encoding="utf-8")
    job = make_job(config, ledger, history, 0)
    report = _outbox(config, path=str(blocker / "boite")).deliver(job)
    assert report.sent == 0 and not report.ok
    assert "Maildir" in report.detail
    assert ledger.delivery_counts(job.edition.id)["outbox"]["sent"] == 0
