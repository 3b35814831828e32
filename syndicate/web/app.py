"""The Flask application behind ``syndicate serve``.

Routes (all public URLs are built on ``[site] base_url``):

- ``GET /…``: the archive and feeds from ``public/`` (ETag, Last-Modified, 304).
- ``POST /unsubscribe/<token>``: RFC 8058 one-click unsubscribe. No redirect, no
  cookie, no CSRF token (the signed token is the authority), idempotent; any body
  (``List-Unsubscribe=One-Click`` form-encoded or multipart, or none).
  ``GET`` shows a confirmation button and never changes anything: mail scanners
  open every link.
- ``GET/POST /subscribe``: double opt-in; the answer is the same page whatever the
  address (no enumeration); ``GET/POST /confirm/<token>``: the signed, expiring
  link of the confirmation email; the GET only shows a button, as above.

Forged or altered tokens change nothing and get a 400 page.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from flask import Flask, Response, redirect, request

from ..config import Config
from ..errors import InvalidAddress
from ..ledger import Ledger, normalize_email
from ..ledger._records import utcnow
from ..render.email import render_template
from ..render.urls import feed_url
from . import confirmations, mailer
from .static import ETags, file_response, resolve

log = logging.getLogger("syndicate.web")

#: How long a confirmation link stays valid.
CONFIRM_TTL = mailer.CONFIRM_TTL
#: Do not mail the same address twice within this many seconds (an attacker could
#: otherwise use the form to flood someone's inbox).
RESEND_INTERVAL = 300.0

_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class _Throttle:
    """Per-address "recently mailed" memory, bounded (a cheap rate limit)."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = self.clock()
        with self._lock:
            if len(self._seen) > 50_000:
                self._seen = {k: t for k, t in self._seen.items() if now - t < self.interval}
            last = self._seen.get(key)
            if last is not None and now - last < self.interval:
                return False
            self._seen[key] = now
            return True


def create_app(
    config: Config,
    *,
    secret: bytes,
    now: Callable[[], datetime] = utcnow,
    resend_interval: float = RESEND_INTERVAL,
) -> Flask:
    """The WSGI app for ``config``; ``secret`` signs and checks tokens."""
    app = Flask("syndicate.web", static_folder=None, template_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024  # forms are tiny
    ledger = Ledger(config.database, now=now)
    app.extensions["syndicate.ledger"] = ledger
    etags = ETags()
    throttle = _Throttle(resend_interval)
    public = config.public_dir
    base = config.site.base_url

    def page(template: str, status: int = 200, **context: object) -> Response:
        body = render_template(
            config,
            f"web/{template}",
            site=config.site,
            canonical=base + request.path.lstrip("/"),
            feeds={kind: feed_url(base, kind) for kind in ("rss", "atom", "json")},
            **context,
        )
        response = Response(body, status=status, content_type="text/html; charset=utf-8")
        response.headers.update(_PAGE_HEADERS)
        return response

    def text(message: str, status: int = 200) -> Response:
        response = Response(message + "\n", status=status,
                            content_type="text/plain; charset=utf-8")
        response.headers.update(_PAGE_HEADERS)
        return response

    def here() -> str:
        # With base_url under a sub-path the app is mounted there (see make_wsgi).
        return request.script_root + request.path

    def wants_html() -> bool:
        # Mail providers POST without asking for HTML; a browser (our own button)
        # prefers it. RFC 8058 only needs a 2xx; the text is for humans.
        best = request.accept_mimetypes.best_match(["text/plain", "text/html"])
        return best == "text/html" and request.accept_mimetypes["text/html"] > 0

    # -- unsubscribe ------------------------------------------------------------

    @app.route("/unsubscribe/<token>", methods=["GET", "POST"])
    def unsubscribe(token: str) -> Response:
        title = f"Désinscription · {config.site.title}"
        address = mailer.unsubscribe_address(token, secret)
        if address is None:
            if request.method == "POST" and not wants_html():
                return text("Lien de désinscription invalide\u00a0: rien n’a été modifié.", 400)
            return page("unsubscribe.html.j2", 400, state="invalid", page_title=title)
        if request.method == "GET":
            return page("unsubscribe.html.j2", state="ask", email=address, action=here(),
                        page_title=title)
        current = ledger.get_subscriber(address)
        if current is not None and current.status in ("active", "pending"):
            ledger.set_subscriber_status(address, "unsubscribed")
            log.info("unsubscribed %s (one-click)", current.email)
        # Already unsubscribed, bounced or removed: the same answer (idempotent).
        if wants_html():
            return page("unsubscribe.html.j2", state="done", email=address, page_title=title)
        return text(f"Désinscription enregistrée\u00a0: {address} ne recevra plus "
                    f"«\u00a0{config.site.title}\u00a0».")

    # -- subscribe (double opt-in) ---------------------------------------------------

    @app.route("/subscribe", methods=["GET", "POST"])
    def subscribe() -> Response:
        title = f"S’abonner · {config.site.title}"
        common = {"page_title": title, "action": here(), "ttl_hours": CONFIRM_TTL // 3600}
        if request.method == "GET":
            return page("subscribe.html.j2", state="form", error="", email="", name="", **common)
        raw_email = (request.form.get("email") or "").strip()
        name = " ".join((request.form.get("name") or "").split())[:100] or None
        if request.form.get("website"):  # the hidden trap field: a bot filled it
            return page("subscribe.html.j2", state="sent", **common)
        try:
            address = normalize_email(raw_email)
        except InvalidAddress:
            return page("subscribe.html.j2", 400, state="form", email=raw_email,
                        name=name or "", error="Cette adresse électronique n’est pas valide.",
                        **common)
        current = ledger.get_subscriber(address)
        if current is None:
            ledger.add_subscriber(address, name=name, status="pending", source="web",
                                  exist_ok=True)
        # Active subscribers get nothing (they already receive the editions); everyone
        # else (new, pending, unsubscribed, bounced) must prove the address again.
        needs_mail = current is None or current.status != "active"
        if needs_mail and throttle.allow(address.casefold()):
            # Only recorded here; a background sender mails it (never SMTP in a request).
            confirmations.request(ledger, address)
        return page("subscribe.html.j2", state="sent", **common)

    @app.route("/confirm/<token>", methods=["GET", "POST"])
    def confirm(token: str) -> Response:
        title = f"Confirmation · {config.site.title}"
        verdict, address = mailer.confirm_address(token, secret, now())
        if address is None:
            status = 410 if verdict == "expired" else 400
            return page("confirm.html.j2", status, state=verdict, page_title=title)
        if request.method == "GET":
            return page("confirm.html.j2", state="ask", email=address, action=here(),
                        page_title=title)
        current = ledger.get_subscriber(address)
        if current is None:  # removed in between: the link still proves the request
            ledger.add_subscriber(address, status="active", source="web", exist_ok=True)
        elif current.status != "active":
            ledger.set_subscriber_status(address, "active")
            log.info("confirmed %s (was %s)", address, current.status)
        return page("confirm.html.j2", state="done", email=address, page_title=title)

    # -- archive and feeds ---------------------------------------------------------

    @app.route("/", defaults={"path": ""}, methods=["GET", "HEAD"])
    @app.route("/<path:path>", methods=["GET", "HEAD"])
    def public_file(path: str) -> Response:
        found, add_slash = resolve(public, path)
        if add_slash:
            return redirect(f"{request.script_root}/{path}/", code=301)  # type: ignore[return-value]
        if found is None:
            return not_found()
        response = file_response(found, etags)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    def not_found() -> Response:
        missing = public / "404.html"
        body = (missing.read_text(encoding="utf-8") if missing.is_file()
                else "<!doctype html><html lang=\"fr\"><meta charset=\"utf-8\">"
                     "<title>Page introuvable</title><p>Page introuvable.</p></html>")
        return Response(body, status=404, content_type="text/html; charset=utf-8")

    return app
