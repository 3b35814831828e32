"""Provider event webhooks (issue 11) on a real waitress server on 127.0.0.1 with a real
SQLite ledger. Only the providers are played by the test, signing real payloads with
their own keys: SNS with an RSA key whose certificate is served over real HTTPS on
127.0.0.1 under the test's own CA; Mailgun with an HMAC key; SendGrid with an ECDSA
P-256 key; Postmark with basic auth."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import logging
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from _web_support import SECRET, Site, site_factory
from conftest import Project
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from syndicate.mail import message_id
from syndicate.tokens import verp_address

DOMAIN = "retour.example.org"
FROM = "lettre@example.org"
PEOPLE = ["ana@exemple.fr", "bob@exemple.fr", "chloe@exemple.fr", "dan@exemple.fr"]
TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-bounces"
POSTMARK_PASSWORD = "pm-hook-password-0123"
MAILGUN_KEY = "key-mailgun-signing-0123456789"


# -- the provider's side: keys, certificates, an HTTPS server on 127.0.0.1 ---------------

def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def _certificate(subject: str, key: Any, issuer: str, issuer_key: Any, *, ca: bool,
                 ip: str | None = None) -> x509.Certificate:
    import ipaddress

    now = datetime.now(UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=7))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ip:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
            critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


class Keys:
    def __init__(self) -> None:
        self.ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ca = _certificate("Test CA", self.ca_key, "Test CA", self.ca_key, ca=True)
        self.tls_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.tls = _certificate("127.0.0.1", self.tls_key, "Test CA", self.ca_key, ca=False,
                                ip="127.0.0.1")
        self.sns_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.sns = _certificate("sns.test", self.sns_key, "sns.test", self.sns_key, ca=False)
        self.other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.sendgrid_key = ec.generate_private_key(ec.SECP256R1())

    def pem(self, cert: x509.Certificate) -> bytes:
        return cert.public_bytes(serialization.Encoding.PEM)

    @property
    def sendgrid_public(self) -> str:
        der = self.sendgrid_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(der).decode()


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


class SnsHost:
    """The SNS side over real HTTPS: the signing certificate and the SubscribeURL."""

    def __init__(self, keys: Keys, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "tls.pem").write_bytes(keys.pem(keys.tls) + keys.tls_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        self.hits: list[str] = []
        cert = keys.pem(keys.sns)
        hits = self.hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(self.path)
                body = cert if self.path == "/cert.pem" else b"<ConfirmSubscriptionResponse/>"
                self.send_response(404 if self.path.startswith("/missing") else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(folder / "tls.pem")
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.base = f"https://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sns_host(keys: Keys, tmp_path: Path) -> Iterator[SnsHost]:
    host = SnsHost(keys, tmp_path / "sns")
    yield host
    host.close()


# -- syndicate's side --------------------------------------------------------------------

class Hooks:
    """A running site with the four providers configured, and one edition sent to PEOPLE."""

    def __init__(self, site: Site) -> None:
        self.site = site
        ledger = site.ledger
        self.edition = ledger.claim_edition(slot="s:1", slug="cas-1", title="Cas", url="u")
        ledger.ensure_deliveries(self.edition.id, "smtp", PEOPLE)
        self.rows = {p: ledger.find_delivery(self.edition.id, p) for p in PEOPLE}
        for person in PEOPLE:
            ledger.add_subscriber(person)

    def verp(self, person: str) -> str:
        row = self.rows[person]
        assert row is not None
        return verp_address(SECRET, row.id, local_part="bounces", separator="+", domain=DOMAIN)

    def message_id(self, person: str) -> str:
        return message_id(self.edition.number, person, FROM)

    def state(self) -> dict[str, Any]:
        """Every subscriber's status and every event recorded: what must not change."""
        ledger = self.site.ledger
        return {p: (self.site.status(p), [(e.event_id, e.kind) for e in
                                          ledger.delivery_events(self.rows[p].id)])  # type: ignore[union-attr]
                for p in PEOPLE}

    def events(self, person: str) -> list[Any]:
        return self.site.ledger.delivery_events(self.rows[person].id)  # type: ignore[union-attr]

    def post(self, provider: str, body: bytes | str, **kwargs: Any) -> requests.Response:
        data = body.encode() if isinstance(body, str) else body
        return requests.post(self.site.url(f"/hooks/{provider}"), data=data, timeout=10,
                             **kwargs)


@pytest.fixture
def make_site(project: Project) -> Iterator[Any]:
    yield from site_factory(project)


@pytest.fixture
def hooks(make_site: Any, keys: Keys, sns_host: SnsHost, project: Project,
          monkeypatch: pytest.MonkeyPatch) -> Hooks:
    monkeypatch.setenv("PM_HOOK_PASSWORD", POSTMARK_PASSWORD)
    monkeypatch.setenv("MG_SIGNING_KEY", MAILGUN_KEY)
    (project.root / "config" / "sns-ca.pem").write_bytes(keys.pem(keys.ca))
    site = make_site(sections={
        "bounces": {"domain": DOMAIN},
        "webhooks": {
            "ses_topics": [TOPIC], "ses_cert_host": r"^127\.0\.0\.1$",
            "ses_ca_bundle": "sns-ca.pem",
            "postmark_user": "postmark", "postmark_password_env": "PM_HOOK_PASSWORD",
            "mailgun_signing_key_env": "MG_SIGNING_KEY",
            "sendgrid_public_key": keys.sendgrid_public,
            "max_body": 65536,
        },
    })
    return Hooks(site)


def _wait(condition: Any, what: str) -> None:
    for _ in range(100):  # bounded: 10 s
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


# -- Amazon SES through SNS ----------------------------------------------------------------

SIGNED_KEYS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                                 "TopicArn", "Type"),
}


def sns(keys: Keys, host: SnsHost, kind: str, message: str, *, version: str = "1",
        signer: Any = None, cert_url: str | None = None, topic: str = TOPIC,
        **extra: str) -> dict[str, str]:
    """An SNS envelope signed as SNS does (SHA1withRSA or SHA256withRSA)."""
    envelope = {"Type": kind, "MessageId": hashlib.sha256(message.encode()).hexdigest()[:36],
                "TopicArn": topic, "Message": message,
                "Timestamp": "2026-11-30T12:00:00.000Z", "SignatureVersion": version,
                "SigningCertURL": cert_url or f"{host.base}/cert.pem", **extra}
    text = "".join(f"{k}\n{envelope[k]}\n" for k in SIGNED_KEYS[kind] if k in envelope)
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = (signer or keys.sns_key).sign(text.encode(), padding.PKCS1v15(), algorithm)
    envelope["Signature"] = base64.b64encode(signature).decode()
    return envelope


def ses_bounce(recipient: str, source: str, *, permanent: bool = True,
               message_id: str = "", feedback: str = "fb-1") -> str:
    return json.dumps({
        "notificationType": "Bounce",
        "bounce": {"bounceType": "Permanent" if permanent else "Transient",
                   "bounceSubType": "General", "feedbackId": feedback,
                   "timestamp": "2026-11-30T11:59:00.000Z",
                   "bouncedRecipients": [{"emailAddress": recipient, "action": "failed",
                                          "status": "5.1.1" if permanent else "4.2.2",
                                          "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]},
        "mail": {"source": source, "messageId": "0102-ses-id", "destination": [recipient],
                 "commonHeaders": {"messageId": message_id}},
    })


def ses_complaint(recipient: str, message_id: str) -> str:
    return json.dumps({
        "notificationType": "Complaint",
        "complaint": {"complainedRecipients": [{"emailAddress": recipient}],
                      "feedbackId": "fb-complaint-1", "complaintFeedbackType": "abuse",
                      "timestamp": "2026-11-30T11:59:00.000Z"},
        "mail": {"source": FROM, "messageId": "0102-ses-id-2",
                 "headers": [{"name": "Message-ID", "value": message_id}]},
    })


def test_ses_bounce_complaint_and_replay(hooks: Hooks, keys: Keys, sns_host: SnsHost) -> None:
    bounce = sns(keys, sns_host, "Notification",
                 ses_bounce("ana@exemple.fr", hooks.verp("ana@exemple.fr")), version="1")
    answer = hooks.post("ses", json.dumps(bounce),
                        headers={"Content-Type": "text/plain; charset=UTF-8"})
    assert answer.status_code == 200, answer.text
    assert hooks.site.status("ana@exemple.fr") == "bounced"
    (event,) = hooks.events("ana@exemple.fr")
    assert (event.kind, event.status, event.source) == ("hard", "5.1.1", "ses")
    assert "user unknown" in event.diagnostic

    # No VERP in the envelope sender: our Message-ID and the recipient (version 2 signature).
    complaint = sns(keys, sns_host, "Notification",
                    ses_complaint("bob@exemple.fr", hooks.message_id("bob@exemple.fr")),
                    version="2")
    assert hooks.post("ses", json.dumps(complaint)).status_code == 200
    assert hooks.site.status("bob@exemple.fr") == "complained"

    before = hooks.state()
    for _ in range(2):  # SNS retries: the same event counts once
        assert hooks.post("ses", json.dumps(bounce)).status_code == 200
    assert hooks.state() == before
    # The signing certificate was fetched once, then cached.
    assert sns_host.hits.count("/cert.pem") == 1


def test_ses_forgeries_change_nothing(hooks: Hooks, keys: Keys, sns_host: SnsHost) -> None:
    payload = ses_bounce("ana@exemple.fr", hooks.verp("ana@exemple.fr"))
    before = hooks.state()
    altered = sns(keys, sns_host, "Notification", payload)
    altered["Message"] = ses_bounce("chloe@exemple.fr", hooks.verp("chloe@exemple.fr"))
    forged = {
        "altered after signing": altered,
        "signed by another key": sns(keys, sns_host, "Notification", payload,
                                     signer=keys.other_key),
        "certificate on a foreign host": sns(keys, sns_host, "Notification", payload,
                                             cert_url="https://sns.evil.example/cert.pem"),
        "certificate over http": sns(keys, sns_host, "Notification", payload,
                                     cert_url=sns_host.base.replace("https", "http") + "/c.pem"),
        "topic not allowed": sns(keys, sns_host, "Notification", payload,
                                 topic="arn:aws:sns:eu-west-1:999999999999:theirs"),
        "unknown signature version": sns(keys, sns_host, "Notification", payload, version="3"),
    }
    for what, envelope in forged.items():
        answer = hooks.post("ses", json.dumps(envelope))
        assert 400 <= answer.status_code < 500, what
    assert hooks.post("ses", b"not json").status_code == 400
    # A certificate URL on the right host that does not answer: refused, and not asked
    # again for a while (forged messages cannot make every request a round-trip).
    missing = sns(keys, sns_host, "Notification", payload,
                  cert_url=f"{sns_host.base}/missing.pem")
    for _ in range(3):
        assert hooks.post("ses", json.dumps(missing)).status_code == 403
    assert sns_host.hits.count("/missing.pem") == 1
    for method in ("GET", "HEAD", "PUT", "OPTIONS"):
        answer = requests.request(method, hooks.site.url("/hooks/ses"), timeout=5)
        assert answer.status_code == 405, method
        assert answer.headers["Allow"] == "POST"
    assert hooks.state() == before
    # The foreign and plain-http certificate URLs were never fetched.
    assert set(sns_host.hits) <= {"/cert.pem", "/missing.pem"}


def test_ses_subscription_confirmed_only_when_genuine(hooks: Hooks, keys: Keys,
                                                      sns_host: SnsHost) -> None:
    url = f"{sns_host.base}/?Action=ConfirmSubscription&Token=good"
    forged = sns(keys, sns_host, "SubscriptionConfirmation", "confirm", signer=keys.other_key,
                 SubscribeURL=f"{sns_host.base}/?Action=ConfirmSubscription&Token=forged",
                 Token="forged")
    assert hooks.post("ses", json.dumps(forged)).status_code == 403
    other_topic = sns(keys, sns_host, "SubscriptionConfirmation", "confirm",
                      topic="arn:aws:sns:eu-west-1:999999999999:theirs",
                      SubscribeURL=f"{sns_host.base}/?Token=other", Token="other")
    assert hooks.post("ses", json.dumps(other_topic)).status_code == 403
    genuine = sns(keys, sns_host, "SubscriptionConfirmation", "confirm", SubscribeURL=url,
                  Token="good")
    assert hooks.post("ses", json.dumps(genuine)).status_code == 200
    _wait(lambda: any("Token=good" in h for h in sns_host.hits), "the confirmation GET")
    assert not any("forged" in h or "other" in h for h in sns_host.hits)


# -- Postmark ---------------------------------------------------------------------------------

def postmark_record(kind: str, email: str, event_id: int) -> str:
    if kind == "SpamComplaint":
        return json.dumps({"RecordType": "SpamComplaint", "ID": event_id, "Type": "SpamComplaint",
                           "TypeCode": 512, "Email": email, "MessageID": "pm-uuid",
                           "BouncedAt": "2026-11-30T11:59:00Z"})
    return json.dumps({"RecordType": "Bounce", "ID": event_id, "Type": kind,
                       "TypeCode": 1 if kind == "HardBounce" else 4096, "Email": email,
                       "MessageID": "pm-uuid", "Description": "The server was unable to deliver",
                       "Details": "smtp;550 5.1.1 The email account does not exist",
                       "BouncedAt": "2026-11-30T11:59:00Z", "Metadata": {}})


def test_postmark(hooks: Hooks) -> None:
    auth = ("postmark", POSTMARK_PASSWORD)
    before = hooks.state()
    for bad in (None, ("postmark", "wrong"), ("someone", POSTMARK_PASSWORD)):
        answer = hooks.post("postmark", postmark_record("HardBounce", "ana@exemple.fr", 1),
                            auth=bad)
        assert answer.status_code == 401, bad
    assert requests.get(hooks.site.url("/hooks/postmark"), auth=auth,
                        timeout=5).status_code == 405
    assert hooks.state() == before

    bounce = postmark_record("HardBounce", "ana@exemple.fr", 4323372036854775807)
    assert hooks.post("postmark", bounce, auth=auth).status_code == 200
    assert hooks.site.status("ana@exemple.fr") == "bounced"
    (event,) = hooks.events("ana@exemple.fr")
    assert (event.kind, event.status) == ("hard", "5.1.1")
    assert hooks.post("postmark", postmark_record("SpamComplaint", "bob@exemple.fr", 7),
                      auth=auth).status_code == 200
    assert hooks.site.status("bob@exemple.fr") == "complained"
    soft = postmark_record("SoftBounce", "chloe@exemple.fr", 9)
    assert hooks.post("postmark", soft, auth=auth).status_code == 200
    assert hooks.site.status("chloe@exemple.fr") == "active"  # one soft bounce of three
    after = hooks.state()
    for body in (bounce, soft):
        assert hooks.post("postmark", body, auth=auth).status_code == 200
    assert hooks.state() == after


# -- Mailgun ------------------------------------------------------------------------------------

def mailgun(event_data: dict[str, Any], *, token: str, timestamp: int | None = None,
            key: str = MAILGUN_KEY) -> str:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    return json.dumps({"signature": {"timestamp": stamp, "token": token,
                                     "signature": signature}, "event-data": event_data})


def mailgun_failed(email: str, sender: str, *, event_id: str, permanent: bool = True
                   ) -> dict[str, Any]:
    return {"event": "failed", "id": event_id, "severity": "permanent" if permanent
            else "temporary", "recipient": email, "timestamp": time.time(),
            "envelope": {"sender": sender, "targets": email},
            "message": {"headers": {"message-id": "20261130.abc@mg.example.org"}},
            "delivery-status": {"code": 550, "message": "5.1.1 mailbox does not exist",
                                "attempt-no": 1}}


def test_mailgun(hooks: Hooks, caplog: pytest.LogCaptureFixture) -> None:
    failed = mailgun_failed("ana@exemple.fr", hooks.verp("ana@exemple.fr"), event_id="mg-1")
    before = hooks.state()
    rejected = {
        "bad signature": mailgun(failed, token="t-bad", key="not-the-key"),
        "stale timestamp": mailgun(failed, token="t-old", timestamp=int(time.time()) - 3600),
        "future timestamp": mailgun(failed, token="t-new", timestamp=int(time.time()) + 3600),
    }
    for what, body in rejected.items():
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="syndicate"):
            assert hooks.post("mailgun", body).status_code == 403, what
        # One log line per refusal, saying why.
        lines = [r.getMessage() for r in caplog.records if r.name.startswith("syndicate")]
        assert len(lines) == 1 and "403 POST /hooks/mailgun" in lines[0], lines
        assert ("signature" if what == "bad signature" else "stale timestamp") in lines[0]
    assert hooks.post("mailgun", "[]").status_code == 400
    assert requests.head(hooks.site.url("/hooks/mailgun"), timeout=5).status_code == 405
    assert hooks.state() == before

    first = mailgun(failed, token="t-1")
    assert hooks.post("mailgun", first).status_code == 200
    assert hooks.site.status("ana@exemple.fr") == "bounced"
    (event,) = hooks.events("ana@exemple.fr")
    assert (event.kind, event.status) == ("hard", "5.1.1")
    assert hooks.post("mailgun", first).status_code == 403  # the same token, replayed
    # Mailgun sends the same event again under a new token: recorded once.
    assert hooks.post("mailgun", mailgun(failed, token="t-2")).status_code == 200
    assert len(hooks.events("ana@exemple.fr")) == 1

    complained = {"event": "complained", "id": "mg-2", "recipient": "bob@exemple.fr",
                  "timestamp": time.time(),
                  "message": {"headers": {"message-id": hooks.message_id("bob@exemple.fr")
                                          .strip("<>")}}}
    assert hooks.post("mailgun", mailgun(complained, token="t-3")).status_code == 200
    assert hooks.site.status("bob@exemple.fr") == "complained"


def test_forged_verp_token_in_a_genuine_event_changes_nothing(hooks: Hooks) -> None:
    row = hooks.rows["ana@exemple.fr"]
    assert row is not None
    forged = f"bounces+{row.id}-aaaaaaaaaaaaaaaa@{DOMAIN}"
    before = hooks.state()
    body = mailgun(mailgun_failed("ana@exemple.fr", forged, event_id="mg-f"), token="t-f")
    assert hooks.post("mailgun", body).status_code == 200
    assert hooks.state() == before


# -- SendGrid -----------------------------------------------------------------------------------

def sendgrid(keys: Keys, events: list[dict[str, Any]], *, timestamp: int | None = None,
             signer: Any = None) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(events).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = (signer or keys.sendgrid_key).sign(stamp.encode() + body,
                                                   ec.ECDSA(hashes.SHA256()))
    return body, {"Content-Type": "application/json",
                  "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
                  "X-Twilio-Email-Event-Webhook-Timestamp": stamp}


def test_sendgrid(hooks: Hooks, keys: Keys) -> None:
    batch = [
        {"email": "ana@exemple.fr", "event": "bounce", "type": "bounce", "status": "5.1.1",
         "reason": "550 5.1.1 no such user", "sg_event_id": "sg-1", "timestamp": 1764500000,
         "smtp-id": hooks.message_id("ana@exemple.fr")},
        {"email": "bob@exemple.fr", "event": "spamreport", "sg_event_id": "sg-2",
         "timestamp": 1764500000},
        {"email": "chloe@exemple.fr", "event": "deferred", "sg_event_id": "sg-3",
         "response": "421 4.7.0 try later", "timestamp": 1764500000},
        {"email": "dan@exemple.fr", "event": "delivered", "sg_event_id": "sg-4"},
    ]
    before = hooks.state()
    body, headers = sendgrid(keys, batch)
    other = ec.generate_private_key(ec.SECP256R1())
    rejected = [
        sendgrid(keys, batch, signer=other),
        sendgrid(keys, batch, timestamp=int(time.time()) - 3600),
        (body.replace(b"bounce", b"deferr"), headers),  # altered body
        (body, {"Content-Type": "application/json"}),  # unsigned
    ]
    for data, head in rejected:
        assert 400 <= hooks.post("sendgrid", data, headers=head).status_code < 500
    assert requests.get(hooks.site.url("/hooks/sendgrid"), timeout=5).status_code == 405
    assert hooks.state() == before

    assert hooks.post("sendgrid", body, headers=headers).status_code == 200
    assert hooks.site.status("ana@exemple.fr") == "bounced"
    assert hooks.site.status("bob@exemple.fr") == "complained"
    assert hooks.site.status("chloe@exemple.fr") == "active"
    assert [e.kind for e in hooks.events("chloe@exemple.fr")] == ["soft"]
    assert hooks.events("dan@exemple.fr") == []
    after = hooks.state()
    assert hooks.post("sendgrid", body, headers=headers).status_code == 200  # a retry
    assert hooks.state() == after


# -- limits and defaults ------------------------------------------------------------------------

def test_body_limit(hooks: Hooks, keys: Keys) -> None:
    body, headers = sendgrid(keys, [{"email": "ana@exemple.fr", "event": "bounce",
                                     "padding": "x" * 70_000}])
    assert hooks.post("sendgrid", body, headers=headers).status_code == 413
    assert hooks.site.status("ana@exemple.fr") == "active"


def test_disabled_without_config(make_site: Any) -> None:
    site = make_site()
    for provider in ("ses", "postmark", "mailgun", "sendgrid"):
        assert requests.post(site.url(f"/hooks/{provider}"), data=b"{}",
                             timeout=5).status_code == 404
        assert requests.get(site.url(f"/hooks/{provider}"), timeout=5).status_code == 405


def test_missing_secret_refuses_to_start(project: Project) -> None:
    from syndicate.errors import ConfigError
    from syndicate.web import create_app

    project.write_config(webhooks={"mailgun_signing_key_env": "UNSET_MG_KEY_FOR_TEST"})
    with pytest.raises(ConfigError, match="variable UNSET_MG_KEY_FOR_TEST is not set"):
        create_app(project.config(), secret=SECRET)


def test_malformed_genuine_bodies_are_refused_or_ignored_never_500(hooks: Hooks, keys: Keys,
                                                                   sns_host: SnsHost) -> None:
    auth = ("postmark", POSTMARK_PASSWORD)
    before = hooks.state()
    assert hooks.post("postmark", "[1, 2]", auth=auth).status_code == 400
    assert hooks.post("postmark", b"\xff\xfe", auth=auth).status_code == 400
    assert hooks.post("postmark", json.dumps({"RecordType": "Bounce", "Type": "HardBounce"}),
                      auth=auth).status_code == 400
    odd = sns(keys, sns_host, "Notification", json.dumps(
        {"notificationType": "Bounce", "bounce": ["not", "an", "object"], "mail": "x"}))
    assert hooks.post("ses", json.dumps(odd)).status_code == 200
    assert hooks.post("ses", json.dumps(sns(keys, sns_host, "Notification", "not json"))
                      ).status_code == 400
    body, headers = sendgrid(keys, [])
    assert hooks.post("sendgrid", body, headers=headers).status_code == 200
    body, headers = sendgrid(keys, {"email": "ana@exemple.fr"})  # type: ignore[arg-type]
    assert hooks.post("sendgrid", body, headers=headers).status_code == 400
    assert hooks.post("mailgun", mailgun({"event": "failed"}, token="t-m")).status_code == 400
    assert hooks.state() == before
