"""Provider event webhooks, the pure part: is a request genuine, and what does it say.

Each provider proves its requests its own way; each check here takes the bytes and
headers as received and raises :class:`Rejected` (with the HTTP status to answer)
when they are not genuine:

- Amazon SES through SNS: the message signature (SignatureVersion 1: SHA1withRSA,
  2: SHA256withRSA) over the canonical string of the message, checked against the
  signing certificate (fetched by the caller from ``SigningCertURL``, whose host
  :func:`sns_url_ok` checks first), and the topic in the operator's allow-list;
- Postmark: HTTP basic auth (:func:`basic_auth_ok`);
- Mailgun: HMAC-SHA256 of timestamp + token with the signing key, the timestamp
  fresh (the token's single use is the caller's: it is state);
- SendGrid: ECDSA P-256 / SHA-256 over timestamp + body with the published key,
  the timestamp fresh.

Then each payload becomes :class:`ProviderEvent` values (kind hard, soft or
complaint, recipient, status, text, an event id stable across the provider's
retries), and :func:`attribute_event` finds the delivery row: by the VERP token in
an address the provider echoes (SES' ``mail.source``, Mailgun's envelope sender,
a Return-Path header), else by our Message-ID and the recipient (as
:mod:`.attribute` does for DSNs), else the recipient's latest delivery (the
provider itself is authenticated: this may be imprecise about the edition, never
forged). An event that names a token that does not verify is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from ..config import BouncesConfig
from ..errors import SyndicateError
from ..ledger import Delivery, DeliveryEvent, LedgerPort
from ..tokens import verp_token_in
from .attribute import _MESSAGE_ID, Attribution, by_token

EventKind = Literal["hard", "soft", "complaint"]  # as syndicate.ledger.DeliveryEvent.kind

#: How many of the newest editions the last-resort attribution looks through.
RECENT_EDITIONS = 50


class Rejected(SyndicateError):
    """A webhook request that is not genuine, or not for us: answered ``status``,
    logged in one line, nothing recorded."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ProviderEvent:
    """One bounce or complaint a provider reports, before attribution."""

    event_id: str
    kind: EventKind
    recipient: str
    status: str = ""
    diagnostic: str = ""
    occurred_at: datetime | None = None
    addresses: tuple[str, ...] = ()  # echoed envelope sender, Return-Path…: may hold a VERP token
    message_id: str = ""  # the Message-ID we sent, when the provider echoes it


# -- helpers -------------------------------------------------------------------------


def _text(value: Any, limit: int = 1000) -> str:
    return " ".join(str(value).split())[:limit] if value is not None else ""


def _when(value: Any) -> datetime | None:
    """An ISO 8601 string or a Unix time, as an aware UTC datetime (None if neither)."""
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return datetime.fromtimestamp(float(value), UTC)
        if isinstance(value, str) and value:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


def _enhanced(*texts: Any) -> str:
    """The first enhanced status code (``5.1.1``) in ``texts``, or ''."""
    for text in texts:
        match = _STATUS.search(str(text or ""))
        if match:
            return match.group(0)
    return ""


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Rejected("body is not JSON", 400) from None


def _fresh(timestamp: str, now: float, max_age: float) -> None:
    try:
        moment = float(timestamp)
    except ValueError:
        raise Rejected(f"bad timestamp {timestamp[:40]!r}", 400) from None
    if abs(now - moment) > max_age:
        raise Rejected(f"stale timestamp ({int(now - moment)} s old, limit {int(max_age)} s)")


# -- Amazon SES through SNS ----------------------------------------------------------

_SNS_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                                 "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                                "TopicArn", "Type"),
}
_SNS_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}


def sns_message(body: bytes) -> dict[str, str]:
    """The SNS envelope posted to the endpoint (a JSON object of strings)."""
    message = _json(body)
    if not isinstance(message, dict) or message.get("Type") not in _SNS_FIELDS:
        raise Rejected("not an SNS message", 400)
    for key in ("Message", "MessageId", "Timestamp", "TopicArn", "Signature",
                "SigningCertURL", "SignatureVersion"):
        if not isinstance(message.get(key), str):
            raise Rejected(f"SNS message without {key}", 400)
    return message


def sns_string_to_sign(message: Mapping[str, str]) -> bytes:
    """The canonical text SNS signs: ``Key\\nvalue\\n`` for each signed key present,
    in the documented order for the message's type."""
    out = []
    for key in _SNS_FIELDS[message["Type"]]:
        if key in message and message[key] is not None:
            out.append(f"{key}\n{message[key]}\n")
    return "".join(out).encode("utf-8")


def sns_url_ok(url: str, host_pattern: str) -> bool:
    """Whether ``url`` (a SigningCertURL or SubscribeURL) is https on a host matching
    ``host_pattern`` (``re.fullmatch``, without case)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 -- raises ValueError on a malformed port
    except ValueError:
        return False
    return (parts.scheme == "https" and not parts.username and not parts.password
            and re.fullmatch(host_pattern, host, re.IGNORECASE) is not None)


def verify_sns(message: Mapping[str, str], certificate_pem: bytes) -> None:
    """Raise :class:`Rejected` unless ``message``'s signature verifies with the
    RSA key of ``certificate_pem``."""
    algorithm = _SNS_HASHES.get(message.get("SignatureVersion", ""))
    if algorithm is None:
        raise Rejected(f"SNS SignatureVersion {message.get('SignatureVersion')!r} unsupported")
    try:
        key = x509.load_pem_x509_certificate(certificate_pem).public_key()
        signature = base64.b64decode(message["Signature"], validate=True)
    except (ValueError, binascii.Error):
        raise Rejected("SNS signature or signing certificate unreadable") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise Rejected("SNS signing certificate without an RSA key")
    try:
        key.verify(signature, sns_string_to_sign(message), padding.PKCS1v15(), algorithm())
    except InvalidSignature:
        raise Rejected("bad SNS signature") from None


_SES_KINDS = {"Permanent": "hard", "Transient": "soft", "Undetermined": "soft"}


def ses_events(message: Mapping[str, str]) -> list[ProviderEvent]:
    """The bounces and complaints of an SES notification (the SNS ``Message``, a
    JSON document: ``notificationType`` or, for event publishing, ``eventType``)."""
    try:
        note = json.loads(message["Message"])
    except ValueError:
        raise Rejected("SES notification is not JSON", 400) from None
    if not isinstance(note, dict):
        raise Rejected("SES notification is not an object", 400)
    kind = note.get("notificationType") or note.get("eventType")
    mail = _obj(note.get("mail"))
    addresses = [str(mail.get("source") or "")]
    message_id = ""
    common = mail.get("commonHeaders")
    if isinstance(common, dict):
        message_id = str(common.get("messageId") or "")
    for header in mail.get("headers") or []:
        if not isinstance(header, dict):
            continue
        name = str(header.get("name") or "").lower()
        if name == "return-path":
            addresses.append(str(header.get("value") or ""))
        elif name == "message-id" and not message_id:
            message_id = str(header.get("value") or "")
    addresses_t = tuple(a for a in addresses if a)
    events: list[ProviderEvent] = []
    if kind == "Bounce":
        bounce = _obj(note.get("bounce"))
        event_kind = _SES_KINDS.get(str(bounce.get("bounceType")), "soft")
        feedback = str(bounce.get("feedbackId") or message["MessageId"])
        for item in bounce.get("bouncedRecipients") or []:
            if not isinstance(item, dict) or not item.get("emailAddress"):
                continue
            diagnostic = _text(item.get("diagnosticCode"))
            status = _enhanced(item.get("status"), diagnostic)
            events.append(ProviderEvent(
                f"ses:{feedback}:{str(item['emailAddress']).lower()}",
                "hard" if event_kind == "hard" else "soft", str(item["emailAddress"]),
                status, diagnostic or _text(bounce.get("bounceSubType")),
                _when(bounce.get("timestamp")), addresses_t, message_id))
    elif kind == "Complaint":
        complaint = _obj(note.get("complaint"))
        feedback = str(complaint.get("feedbackId") or message["MessageId"])
        for item in complaint.get("complainedRecipients") or []:
            if not isinstance(item, dict) or not item.get("emailAddress"):
                continue
            events.append(ProviderEvent(
                f"ses:{feedback}:{str(item['emailAddress']).lower()}", "complaint",
                str(item["emailAddress"]), "",
                f"feedback-type: {_text(complaint.get('complaintFeedbackType')) or 'abuse'}",
                _when(complaint.get("timestamp")), addresses_t, message_id))
    return events


# -- Postmark ------------------------------------------------------------------------

def basic_auth_ok(header: str | None, user: str, password: str) -> bool:
    """Whether an ``Authorization: Basic …`` header names ``user`` and ``password``
    (compared in constant time)."""
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given_user, colon, given_password = base64.b64decode(
            value.strip(), validate=True).decode("utf-8").partition(":")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return False
    return bool(colon) & hmac.compare_digest(given_user.encode(), user.encode()) & \
        hmac.compare_digest(given_password.encode(), password.encode())


_POSTMARK_HARD = {"HardBounce", "BadEmailAddress", "ManuallyDeactivated"}
_POSTMARK_SOFT = {"SoftBounce", "Transient", "DnsError", "InboxFull", "Blocked",
                  "DMARCPolicy", "Unknown"}


def postmark_events(body: bytes) -> list[ProviderEvent]:
    """A Postmark Bounce or SpamComplaint webhook (one record per request)."""
    record = _json(body)
    if not isinstance(record, dict):
        raise Rejected("Postmark record is not an object", 400)
    kind_name = str(record.get("Type") or "")
    if record.get("RecordType") == "SpamComplaint" or kind_name == "SpamComplaint":
        kind: EventKind = "complaint"
    elif record.get("RecordType") != "Bounce":
        return []  # deliveries, opens, clicks…: nothing to record
    elif kind_name in _POSTMARK_HARD:
        kind = "hard"
    elif kind_name in _POSTMARK_SOFT:
        kind = "soft"
    else:
        return []  # auto-responders, subscribe requests, virus notices…
    recipient, event_id = str(record.get("Email") or ""), record.get("ID")
    if not recipient or event_id in (None, ""):
        raise Rejected("Postmark record without Email or ID", 400)
    details = _text(record.get("Details")) or _text(record.get("Description"))
    metadata = _obj(record.get("Metadata"))
    return [ProviderEvent(
        f"postmark:{event_id}", kind, recipient,
        "" if kind == "complaint" else _enhanced(details) or ("5.0.0" if kind == "hard" else ""),
        details if kind != "complaint" else "feedback-type: abuse (Postmark SpamComplaint)",
        _when(record.get("BouncedAt")),
        tuple(str(v) for v in metadata.values() if isinstance(v, str)),
        _message_id_in(str(record.get("Content") or "")))]


_HEADER_MESSAGE_ID = re.compile(r"^Message-ID:\s*(<[^>\r\n]{1,250}>)", re.I | re.M)


def _message_id_in(content: str) -> str:
    match = _HEADER_MESSAGE_ID.search(content[:200_000])
    return match.group(1) if match else ""


# -- Mailgun -------------------------------------------------------------------------

def mailgun_check(payload: Mapping[str, Any], key: bytes, now: float, max_age: float
                  ) -> str:
    """Check a Mailgun webhook's ``signature`` object; the token (whose single use
    the caller enforces)."""
    signature = payload.get("signature")
    if not isinstance(signature, dict):
        raise Rejected("Mailgun webhook without a signature object", 400)
    timestamp, token, given = (str(signature.get(k) or "") for k in
                               ("timestamp", "token", "signature"))
    if not (timestamp and token and given) or len(token) > 200:
        raise Rejected("Mailgun signature incomplete", 400)
    expected = hmac.new(key, (timestamp + token).encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), given.lower().encode()):
        raise Rejected("bad Mailgun signature")
    _fresh(timestamp, now, max_age)
    return token


def mailgun_events(payload: Mapping[str, Any]) -> list[ProviderEvent]:
    """The event of a Mailgun webhook: ``failed`` (severity permanent / temporary)
    or ``complained``; anything else is nothing to record."""
    data = payload.get("event-data")
    if not isinstance(data, dict):
        raise Rejected("Mailgun webhook without event-data", 400)
    event, recipient = data.get("event"), str(data.get("recipient") or "")
    if event not in ("failed", "complained"):
        return []
    if not recipient or not data.get("id"):
        raise Rejected("Mailgun event without recipient or id", 400)
    envelope = _obj(data.get("envelope"))
    message = _obj(data.get("message"))
    headers = _obj(message.get("headers"))
    variables = _obj(data.get("user-variables"))
    addresses = tuple(str(a) for a in (envelope.get("sender"), *variables.values())
                      if isinstance(a, str) and a)
    message_id = str(headers.get("message-id") or "")
    if message_id and not message_id.startswith("<"):
        message_id = f"<{message_id}>"  # Mailgun strips the angle brackets
    when = _when(data.get("timestamp"))
    if event == "complained":
        return [ProviderEvent(f"mailgun:{data['id']}", "complaint", recipient, "",
                              "feedback-type: abuse (Mailgun complained)", when, addresses,
                              message_id)]
    status_info = _obj(data.get("delivery-status"))
    permanent = data.get("severity") == "permanent"
    diagnostic = _text(status_info.get("message")) or _text(status_info.get("description"))
    code = str(status_info.get("code") or "")
    status = _enhanced(status_info.get("enhanced-code"), diagnostic) or (
        "5.0.0" if permanent else "4.0.0")
    return [ProviderEvent(f"mailgun:{data['id']}", "hard" if permanent else "soft", recipient,
                          status, f"{code} {diagnostic}".strip(), when, addresses,
                          message_id)]


# -- SendGrid ------------------------------------------------------------------------

def sendgrid_key(public_key: str) -> ec.EllipticCurvePublicKey:
    """The verification key as SendGrid shows it (base64 of the DER public key)."""
    try:
        key = serialization.load_der_public_key(base64.b64decode(public_key, validate=True))
    except (ValueError, binascii.Error):
        raise ValueError("sendgrid_public_key is not a base64 DER public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("sendgrid_public_key is not an elliptic-curve key")
    return key


def sendgrid_check(key: ec.EllipticCurvePublicKey, signature: str | None,
                   timestamp: str | None, body: bytes, now: float, max_age: float) -> None:
    """Check SendGrid's ``X-Twilio-Email-Event-Webhook-Signature`` over timestamp + body."""
    if not signature or not timestamp:
        raise Rejected("SendGrid signature headers missing", 401)
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, timestamp.encode("utf-8") + body, ec.ECDSA(hashes.SHA256()))
    except (ValueError, binascii.Error, InvalidSignature, UnicodeEncodeError):
        raise Rejected("bad SendGrid signature") from None
    _fresh(timestamp, now, max_age)


def sendgrid_events(body: bytes) -> list[ProviderEvent]:
    """The bounces and complaints of a SendGrid event batch (a JSON array): bounce
    (type bounce: hard; blocked: soft), dropped, deferred (soft), spamreport."""
    batch = _json(body)
    if not isinstance(batch, list):
        raise Rejected("SendGrid body is not an array of events", 400)
    return list(_sendgrid(batch))


def _sendgrid(batch: Iterable[Any]) -> Iterator[ProviderEvent]:
    for item in batch:
        if not isinstance(item, dict) or not item.get("email"):
            continue
        event, reason = item.get("event"), _text(item.get("reason") or item.get("response"))
        kind: EventKind
        if event == "spamreport":
            kind = "complaint"
        elif event == "bounce":
            kind = "soft" if item.get("type") == "blocked" else "hard"
        elif event == "deferred":
            kind = "soft"
        elif event == "dropped":
            lowered = reason.lower()
            kind = ("complaint" if "spam" in lowered else
                    "hard" if "bounced address" in lowered or "invalid" in lowered else "soft")
        else:
            continue
        event_id = item.get("sg_event_id") or (f"{item.get('sg_message_id')}:{event}:"
                                               f"{item.get('timestamp')}")
        addresses = tuple(str(v) for k, v in item.items()
                          if isinstance(v, str) and "@" in v and k not in ("email",))
        status = "" if kind == "complaint" else _enhanced(item.get("status"), reason) or (
            "5.0.0" if kind == "hard" else "4.0.0")
        yield ProviderEvent(
            f"sendgrid:{event_id}", kind, str(item["email"]), status,
            reason if kind != "complaint" else f"feedback-type: abuse (SendGrid {event})",
            _when(item.get("timestamp")), addresses, str(item.get("smtp-id") or ""))


# -- attribution ---------------------------------------------------------------------

def attribute_event(event: ProviderEvent, ledger: LedgerPort, secret: bytes,
                    settings: BouncesConfig, source: str) -> Attribution:
    """The delivery event ``event`` makes: by VERP token, else our Message-ID and the
    recipient, else the recipient's latest delivery; a token that does not verify is
    refused (``forged``)."""
    tokens: list[str] = []
    if settings.domain:
        for address in event.addresses:
            token = verp_token_in(address, local_part=settings.local_part,
                                  separator=settings.separator, domain=settings.domain)
            if token is not None and token not in tokens:
                tokens.append(token)
    if tokens:
        found = by_token(tokens, ledger, secret)
        return found if isinstance(found, Attribution) else \
            Attribution((_delivery_event(event, found, source),))
    delivery = _by_message_id(event, ledger) or _latest(event.recipient, ledger)
    if delivery is None:
        return Attribution(problem="no delivery to this recipient")
    return Attribution((_delivery_event(event, delivery, source),))


def _delivery_event(event: ProviderEvent, delivery: Delivery, source: str) -> DeliveryEvent:
    return DeliveryEvent(event.event_id[:300], delivery.id, event.kind, event.status,
                         event.diagnostic, source, event.occurred_at)


def _by_message_id(event: ProviderEvent, ledger: LedgerPort) -> Delivery | None:
    match = _MESSAGE_ID.search(event.message_id)
    if match is None:
        return None
    number, digest = int(match.group(1)), match.group(2).lower()
    wanted = hashlib.sha256(event.recipient.strip().lower().encode("utf-8")).hexdigest()[:16]
    if wanted != digest:
        return None
    edition = next((e for e in ledger.editions(status=None) if e.number == number), None)
    return None if edition is None else ledger.find_delivery(edition.id, event.recipient)


def _latest(recipient: str, ledger: LedgerPort) -> Delivery | None:
    for edition in ledger.editions(status=None, limit=RECENT_EDITIONS):
        delivery = ledger.find_delivery(edition.id, recipient)
        if delivery is not None:
            return delivery
    return None


__all__ = [
    "ProviderEvent", "Rejected", "attribute_event", "basic_auth_ok", "mailgun_check",
    "mailgun_events", "postmark_events", "sendgrid_check", "sendgrid_events", "sendgrid_key",
    "ses_events", "sns_message", "sns_string_to_sign", "sns_url_ok", "verify_sns",
]
