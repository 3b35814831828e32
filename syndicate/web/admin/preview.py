"""The preview (``/admin/preview``): the next edition's email at phone (375 px) and
desktop (600 px) widths, its text part and its feed item, rendered by
:func:`syndicate.pipeline.preview` (the renderers of ``publish``; the ledger is read,
never written), and "send a test".

The email is shown in sandboxed ``<iframe srcdoc>`` (no script, no same-origin, no
navigation) under the console's own CSP (a srcdoc frame inherits it: no remote
resource is fetched). A test goes to the address typed, through the first enabled
``smtp`` channel's server (:mod:`syndicate.transport`, as the channel sends: TLS,
AUTH, DKIM), as ``email.eml`` of the preview; it is recorded nowhere but the log, and
limited per operator (:data:`TEST_LIMIT`, counted in the ledger like sign-ins).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from flask import Blueprint, Response, g, redirect, request, url_for
from limits import parse_many
from limits.strategies import FixedWindowRateLimiter

from ... import pipeline
from ...channels.smtp import SmtpSettings, transport_settings
from ...errors import InvalidAddress, NothingToPublish, SyndicateError
from ...ledger import normalize_email
from ...transport import SmtpTransport
from ..throttle import LedgerStorage
from .base import Console, PageSpec

log = logging.getLogger("syndicate.web.admin")

#: Test sends allowed per operator.
TEST_LIMIT = "5/10 minutes;30/day"
MESSAGES = {
    "sent": "Test envoyé à {email} ({detail}).",
    "invalid": "Adresse invalide\u00a0: {email}.",
    "limit": "Trop d’envois de test\u00a0: réessayez dans quelques minutes.",
    "nosmtp": "Aucun canal smtp activé dans la configuration\u00a0: rien n’a été envoyé.",
    "failed": "Le serveur SMTP a refusé le test pour {email}\u00a0: {detail}",
}


def smtp_channel(console: Console) -> SmtpSettings | None:
    """The first enabled ``smtp`` channel (the one editions and confirmations use)."""
    return next((c for c in console.config.channels
                 if c.enabled and c.type == "smtp" and isinstance(c, SmtpSettings)), None)


def register(bp: Blueprint, console: Console) -> None:
    config = console.config
    limiter = FixedWindowRateLimiter(LedgerStorage(console.ledger))
    rules = parse_many(TEST_LIMIT)

    @bp.route("/preview", methods=["GET"])
    def preview() -> Response:
        done = request.args.get("done")
        message = (MESSAGES[done].format(email=(request.args.get("email") or "")[:254],
                                         detail=(request.args.get("detail") or "")[:300])
                   if done in MESSAGES else "")
        context: dict[str, Any] = {
            "message": message, "channel": smtp_channel(console), "problem": "",
            "send_url": url_for("admin.send_test"), "default": config.publish.test_address}
        try:
            result = pipeline.preview(config, ledger=console.ledger, now=console.now)
        except NothingToPublish:
            return console.render("preview.html.j2", title="Aperçu", result=None, **context)
        except SyndicateError as exc:
            return console.render("preview.html.j2", title="Aperçu", result=None, code=500,
                                  **{**context, "problem": str(exc)})
        files = result.files
        return console.render(
            "preview.html.j2", title="Aperçu", result=result,
            html=files["email.html"].decode("utf-8"), text=files["email.txt"].decode("utf-8"),
            feed=files["feed-item.xml"].decode("utf-8"), **context)

    def back(done: str, email: str = "", detail: str = "") -> Response:
        return redirect(url_for("admin.preview", done=done, email=email or None,  # type: ignore[return-value]
                                detail=detail or None), code=303)

    @bp.route("/preview/send", methods=["POST"])
    def send_test() -> Response:
        typed = (request.form.get("email") or "").strip()[:254]
        try:
            address = normalize_email(typed)
        except InvalidAddress:
            return back("invalid", typed)
        operator = g.admin_session.operator
        key = hashlib.sha256(operator.casefold().encode()).hexdigest()[:32]
        if not all(limiter.hit(rule, "admin-test-send", key) for rule in rules):
            log.warning("admin %s: test send refused (limit %s)", operator, TEST_LIMIT)
            return back("limit")
        channel = smtp_channel(console)
        if channel is None:
            return back("nosmtp")
        try:
            result = pipeline.preview(config, ledger=console.ledger, now=console.now,
                                      to=address)
            server = transport_settings(channel, config.resolve)
            code, reply = SmtpTransport.prepare(server).send(
                result.files["email.eml"], channel.from_address, address)
        except SyndicateError as exc:
            log.warning("admin %s: test send to %s failed: %s", operator, address, exc)
            return back("failed", address, str(exc)[:300])
        log.info("admin %s: test of edition #%s sent to %s via %s: %s %s", operator,
                 result.view.number, address, channel.name, code, reply)
        return back("sent", address, f"{channel.name}\u00a0: {code} {reply}"[:300])


PAGE = PageSpec("Aperçu", "admin.preview", register)
