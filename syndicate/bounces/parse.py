"""Read a bounce (DSN, RFC 3464), a complaint (ARF, RFC 5965) or an unsubscribe mail.

Pure: bytes in, a :class:`Report` out, nothing stored and nothing raised for bad
input (a report nobody can read is ``kind="unknown"``, its ``problem`` says why).

- DSNs are read with the stdlib email parser from their ``message/delivery-status``
  part (Final-Recipient, Action, Status, Diagnostic-Code, per recipient); the
  non-standard bounces many MTAs still send (qmail, old Exim, Yahoo, Exchange…) by
  flufl.bounce's detectors, the status then taken from the text when it names one.
- ARF reports from their ``message/feedback-report`` part (Feedback-Type,
  Original-Rcpt-To) and the original message they quote.
- Where the report went (its envelope: Delivered-To, X-Original-To, To…) carries
  the VERP token that attributes it; the quoted original's Message-ID is the fallback.
"""

from __future__ import annotations

import email
import email.message
import hashlib
import re
from dataclasses import dataclass, replace
from datetime import datetime
from email.parser import HeaderParser
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime
from typing import Literal

ReportKind = Literal["dsn", "arf", "unsubscribe", "unknown"]
FailureKind = Literal["hard", "soft"]

#: Headers a delivering MTA writes with the envelope recipient (Postfix: the first two).
ENVELOPE_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To")
_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_BASIC = re.compile(r"(?<![\d.])([45])[0-5]\d(?![\d.])")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{4,300}\.[A-Za-z0-9_-]{43}")
_DIAGNOSTIC_MAX = 500


@dataclass(frozen=True)
class Failure:
    """One recipient a report says was not delivered."""

    recipient: str
    kind: FailureKind
    status: str = ""  # enhanced status code, e.g. "5.1.1"; "" when the report names none
    diagnostic: str = ""
    action: str = ""


@dataclass(frozen=True)
class Report:
    """What a mail received at the bounce address says."""

    kind: ReportKind
    report_id: str  # the report's Message-ID, else a digest of its bytes: the event id
    envelope: tuple[str, ...] = ()  # addresses it was delivered to
    failures: tuple[Failure, ...] = ()
    original_message_id: str = ""  # Message-ID of our message, quoted inside
    original_envelope: tuple[str, ...] = ()  # the quoted message's Return-Path (ARF)
    original_recipient: str = ""  # ARF Original-Rcpt-To (or the quoted To)
    feedback_type: str = ""  # ARF: abuse, fraud, not-spam…
    unsubscribe_token: str = ""  # a List-Unsubscribe mailto's token, in the Subject
    date: datetime | None = None
    problem: str = ""  # why it is "unknown"


def _addresses(values: list[str]) -> list[str]:
    return [addr.strip() for _name, addr in getaddresses(values) if "@" in addr]


def _typed(value: str | None) -> str:
    """``rfc822; a@b.c`` -> ``a@b.c`` (the address-type prefix of DSN fields)."""
    text = " ".join(str(value or "").split())
    kind, semi, rest = text.partition(";")
    return (rest if semi else kind).strip().strip("<>")


def _header(msg: email.message.Message, name: str) -> str:
    try:
        return " ".join(str(msg.get(name, "") or "").split())
    except Exception:  # a header the parser could not decode: treat as absent
        return ""


def _report_id(msg: email.message.Message, raw: bytes) -> str:
    found = _header(msg, "Message-ID")
    if found and len(found) < 500:
        return found
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _date(msg: email.message.Message) -> datetime | None:
    try:
        moment = parsedate_to_datetime(_header(msg, "Date"))
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo is not None else None


def _field_blocks(part: email.message.Message) -> list[email.message.Message]:
    """The header blocks of a ``message/delivery-status`` or ``feedback-report`` part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        blocks = [p for p in payload if isinstance(p, email.message.Message)]
        if blocks:
            return blocks
    text = payload if isinstance(payload, str) else ""
    if not text:
        raw = part.get_payload(decode=True)
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""
    parser = HeaderParser(policy=compat32)
    return [parser.parsestr(block.strip() + "\n") for block in re.split(r"\n\s*\n", text)
            if block.strip()]


def _quoted_original(msg: email.message.Message) -> email.message.Message | None:
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/rfc822-headers", "text/rfc822-headers"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(
                    payload[0], email.message.Message):
                return payload[0]
            if isinstance(payload, str):
                return HeaderParser(policy=compat32).parsestr(payload)
    return None


def _kind_of(status: str, action: str) -> FailureKind | None:
    if status.startswith("5"):
        return "hard"
    if status.startswith("4"):
        return "soft"
    if action == "failed":
        return "hard"
    if action == "delayed":
        return "soft"
    return None  # delivered, relayed, expanded: not a failure


def _status_of(status_field: str, diagnostic: str) -> str:
    """The enhanced status code of a DSN block: its Status field, else the one the
    Diagnostic-Code quotes, else the class of a basic reply code (``553`` -> 5.0.0)."""
    for text in (status_field, diagnostic):
        match = _STATUS.search(text)
        if match:
            return ".".join(match.groups())
    basic = _BASIC.search(f"{status_field} {diagnostic}")
    return f"{basic.group(1)}.0.0" if basic else ""


def _dsn_failures(msg: email.message.Message) -> list[Failure]:
    found: list[Failure] = []
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        for block in _field_blocks(part)[1:] or _field_blocks(part):
            # The address as we sent it (Original-Recipient) before what the receiving
            # side made of it (Final-Recipient may be an internal or an X.400 name).
            recipient = next((a for a in (_typed(_header(block, "Original-Recipient")),
                                          _typed(_header(block, "Final-Recipient")))
                              if "@" in a), "")
            if not recipient:
                continue
            action = _header(block, "Action").lower()
            diagnostic = _typed(_header(block, "Diagnostic-Code"))[:_DIAGNOSTIC_MAX]
            status = _status_of(_header(block, "Status"), diagnostic)
            kind = _kind_of(status, action)
            if kind is not None:
                found.append(Failure(recipient, kind, status, diagnostic, action))
    return _unique(found)


def _unique(failures: list[Failure]) -> list[Failure]:
    seen: set[tuple[str, str]] = set()
    out = []
    for failure in failures:
        key = (failure.recipient.lower(), failure.status)
        if key not in seen:
            seen.add(key)
            out.append(failure)
    return out


def _text_of(msg: email.message.Message, limit: int = 200_000) -> str:
    chunks: list[str] = []
    size = 0
    for part in msg.walk():
        if part.get_content_maintype() != "text" or size > limit:
            continue
        raw = part.get_payload(decode=True)
        if isinstance(raw, bytes):
            text = raw[:limit].decode(part.get_content_charset() or "utf-8", "replace") \
                if _known_charset(part.get_content_charset()) else raw[:limit].decode(
                    "utf-8", "replace")
            chunks.append(text)
            size += len(text)
    return "\n".join(chunks)


def _known_charset(name: str | None) -> bool:
    import codecs

    try:
        return name is not None and bool(codecs.lookup(name))
    except LookupError:
        return False


def _heuristic_failures(msg: email.message.Message) -> list[Failure]:
    """flufl.bounce's detectors, for bounces that are no RFC 3464 DSN."""
    from flufl.bounce import all_failures  # lazy: only for the odd formats

    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # a detector tripping over a broken message: nothing detected
        return []
    text = _text_of(msg)
    found: list[Failure] = []
    pairs: tuple[tuple[FailureKind, frozenset[bytes]], ...] = (
        ("hard", frozenset(permanent)), ("soft", frozenset(temporary)))
    for kind, addresses in pairs:
        for raw in sorted(addresses):
            recipient = (raw.decode("utf-8", "replace") if isinstance(raw, bytes)
                         else str(raw)).strip().strip("<>")
            if "@" not in recipient:
                continue
            status, diagnostic = _near(text, recipient, "5" if kind == "hard" else "4")
            # A code the bounce states wins over the detector's guess (4.x.x: soft).
            kind = _kind_of(status, "") or kind
            found.append(Failure(recipient, kind, status, diagnostic,
                                 "failed" if kind == "hard" else "delayed"))
    return _unique(found)


def _near(text: str, recipient: str, klass: str) -> tuple[str, str]:
    """The enhanced status code near ``recipient`` in the bounce's text (after it
    first, then before it; else the class of a basic reply code; else ``klass``.0.0)
    and the line naming it."""
    lowered = text.lower()
    at = lowered.find(recipient.lower())
    windows = [text[at:at + 800], text[max(0, at - 400):at]] if at >= 0 else []
    windows.append(text)
    status = ""
    for window in windows[:2]:  # an enhanced code next to the address, else a reply code
        match = _STATUS.search(window)
        basic = _BASIC.search(window)
        if match:
            status = ".".join(match.groups())
        elif basic:
            status = f"{basic.group(1)}.0.0"
        if status:
            break
    if not status:  # no code near it: the class the detector found, as RFC 3463 writes it
        status = f"{klass}.0.0"
    line = ""
    if at >= 0:
        start = text.rfind("\n", 0, at) + 1
        end = text.find("\n", at)
        line = " ".join(text[start:end if end >= 0 else None].split())
    return status, line[:_DIAGNOSTIC_MAX]


def parse_report(raw: bytes) -> Report:
    """The :class:`Report` a mail at the bounce address makes; never raises for bad input."""
    try:
        msg = email.message_from_bytes(raw, policy=compat32)
    except Exception as exc:  # the compat32 parser is lenient; this is belt and braces
        return Report("unknown", "sha256:" + hashlib.sha256(raw).hexdigest(),
                      problem=f"unreadable: {type(exc).__name__}")
    report_id = _report_id(msg, raw)
    envelope = tuple(_addresses([_header(msg, h) for h in ENVELOPE_HEADERS if msg.get(h)]))
    original = _quoted_original(msg)
    original_id = _header(original, "Message-ID") if original is not None else ""
    returned = (tuple(_addresses([_header(original, "Return-Path")]))
                if original is not None else ())
    base = Report("unknown", report_id, envelope, date=_date(msg),
                  original_message_id=original_id, original_envelope=returned)
    ctype = msg.get_content_type()
    report_type = str(msg.get_param("report-type", "") or "").lower()
    feedback = next((p for p in msg.walk()
                     if p.get_content_type() == "message/feedback-report"), None)
    if feedback is not None or report_type == "feedback-report":
        fields = _field_blocks(feedback)[0] if feedback is not None and _field_blocks(
            feedback) else email.message.Message()
        rcpt = _typed(_header(fields, "Original-Rcpt-To"))
        if not rcpt and original is not None:
            rcpt = next(iter(_addresses([_header(original, "To")])), "")
        return replace(base, kind="arf", original_recipient=rcpt,
                       feedback_type=_header(fields, "Feedback-Type").lower() or "abuse")
    failures = _dsn_failures(msg) if ctype == "multipart/report" or any(
        p.get_content_type() == "message/delivery-status" for p in msg.walk()) else []
    if not failures:
        failures = _heuristic_failures(msg)
    if failures:
        return replace(base, kind="dsn", failures=tuple(failures))
    token = _TOKEN.search(_header(msg, "Subject"))
    if token:
        return replace(base, kind="unsubscribe", unsubscribe_token=token.group(0))
    return replace(base, problem="neither a bounce, a complaint nor an unsubscribe")


__all__ = ["ENVELOPE_HEADERS", "Failure", "FailureKind", "Report", "ReportKind", "parse_report"]
