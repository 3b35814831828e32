"""Which delivery a report is about: by its VERP token, checked by signature; else by
the quoted Message-ID and the failed recipient.

A report whose envelope carries a token that does not verify is **forged** (or made
for another secret): it is refused outright, with no fallback, so nobody can bounce an
address by sending a report to ``bounces+anything@``. The fallback is only for reports
that carry no token at all (an MTA that rewrote the envelope, a forwarder): the
Message-ID ``<edition-N.<sha256(address)[:16]>@…>`` (:func:`syndicate.mail.message_id`)
must name an edition and the hash of the failed recipient, and that recipient must have
a delivery row in that edition.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from ..config import BouncesConfig
from ..errors import InvalidToken
from ..ledger import Delivery, DeliveryEvent, LedgerPort
from ..tokens import verify_verp_token, verp_token_in
from .parse import Failure, Report

# The format of syndicate.mail.message_id (kept in step: tests check both).
_MESSAGE_ID = re.compile(r"<?edition-(\d{1,9})\.([0-9a-f]{16})@", re.I)


@dataclass(frozen=True)
class Attribution:
    """The events a report makes, or why it makes none (``problem``)."""

    events: tuple[DeliveryEvent, ...] = ()
    problem: str = ""
    forged: bool = False


def _tokens(report: Report, settings: BouncesConfig) -> list[str]:
    found = []
    for address in (*report.envelope, *report.original_envelope):
        token = verp_token_in(address, local_part=settings.local_part,
                              separator=settings.separator, domain=settings.domain)
        if token is not None and token not in found:
            found.append(token)
    return found


def _event(report: Report, delivery: Delivery, source: str) -> DeliveryEvent:
    if report.kind == "arf":
        return DeliveryEvent(report.report_id, delivery.id, "complaint", "",
                             f"feedback-type: {report.feedback_type}", source, report.date)
    failure = _failure_for(report.failures, delivery.recipient)
    return DeliveryEvent(report.report_id, delivery.id, failure.kind, failure.status,
                         failure.diagnostic, source, report.date)


def _failure_for(failures: tuple[Failure, ...], recipient: str) -> Failure:
    """The failure about ``recipient`` (a forwarded address may show another one)."""
    wanted = recipient.lower()
    return next((f for f in failures if f.recipient.lower() == wanted), failures[0])


def attribute(report: Report, ledger: LedgerPort, secret: bytes, settings: BouncesConfig,
              source: str = "maildir") -> Attribution:
    """The delivery events ``report`` (a DSN or an ARF report) makes."""
    tokens = _tokens(report, settings) if settings.domain else []
    if not tokens:
        return _fallback(report, ledger, source)
    found = by_token(tokens, ledger, secret)
    return found if isinstance(found, Attribution) else \
        Attribution((_event(report, found, source),))


def by_token(tokens: list[str], ledger: LedgerPort, secret: bytes) -> Delivery | Attribution:
    """The delivery the first verifying VERP token of ``tokens`` names, or why there is none:
    a token naming no delivery, or no token that verifies (forged). Every source of events
    (mailbox reports, provider webhooks) attributes by token through here."""
    for token in tokens:
        try:
            delivery_id = verify_verp_token(secret, token)
        except InvalidToken:
            continue
        delivery = ledger.get_delivery(delivery_id)
        if delivery is None or not delivery.recipient:
            return Attribution(problem=f"token names no delivery ({delivery_id})")
        return delivery
    return Attribution(problem=f"forged bounce token {tokens[0][:40]!r}", forged=True)


def _fallback(report: Report, ledger: LedgerPort, source: str) -> Attribution:
    match = _MESSAGE_ID.search(report.original_message_id)
    if match is None:
        return Attribution(problem="no bounce token and no Message-ID of ours inside")
    number, digest = int(match.group(1)), match.group(2).lower()
    candidates = ([f.recipient for f in report.failures] if report.kind == "dsn"
                  else [report.original_recipient])
    edition = next((e for e in ledger.editions(status=None) if e.number == number), None)
    if edition is None:
        return Attribution(problem=f"Message-ID names edition #{number}, unknown here")
    for recipient in candidates:
        if hashlib.sha256(recipient.strip().lower().encode("utf-8")).hexdigest()[:16] != digest:
            continue
        delivery = ledger.find_delivery(edition.id, recipient)
        if delivery is not None:
            return Attribution((_event(report, delivery, source),))
    return Attribution(problem="no bounce token, and the Message-ID matches no recipient "
                               "named in the report")


__all__ = ["Attribution", "attribute"]
