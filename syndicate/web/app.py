"""The Flask application behind ``syndicate serve``.

Routes (all public URLs are built on ``[site] base_url``; docs/web.md has the table):

- ``GET /…``: the archive and feeds from ``public/`` (ETag, Last-Modified, 304).
- ``/admin/…``: the operator console (:mod:`.admin`, docs/admin.md), present only when
  ``[admin] operators`` is configured; signed-in operators only, CSRF token on every POST.
- ``POST /hooks/<provider>``: bounce and complaint events of a sending provider
  (:mod:`.hooks`; each disabled until configured in ``[webhooks]``).
- ``POST /unsubscribe/<token>``: RFC 8058 one-click unsubscribe. No redirect, no
  cookie, no CSRF token, no Origin check (mail providers post from their own
  servers; the signed token is the authority), idempotent; any body
  (``List-Unsubscribe=One-Click`` form-encoded or multipart, or none).
- ``GET/POST /subscribe``: double opt-in (``GET /subscribe?email=…``, where the archive
  pages' subscribe box leads, shows the form prefilled); the answer is the same page whatever the
  address (no enumeration), rate limited (:mod:`.throttle`), cross-site posts and
  forms without a valid signed form token refused (:mod:`.formguard`);
  ``POST /confirm/<token>``: the signed, expiring link of the confirmation email.
- ``GET /r/<token>``: a counted link of an email (``[analytics] clicks``): a 302 to the
  edition's link the token names, never anywhere else (404 otherwise); counts one click
  unless a scanner made it (:mod:`.clicks`). ``GET /o/<token>``: the open pixel.

**Only POST changes anything** a subscriber has (the one GET that records something is a
counted link: an aggregate counter, see above). GET and HEAD (HEAD: the headers of the GET) show a
page with a button: mail scanners fetch every link with GET, HEAD and OPTIONS.
Every other method, OPTIONS included, is answered 405. Handlers branch on
``request.method == "POST"``, never on ``== "GET"`` (Flask answers HEAD through
the GET code path).

Every error (4xx/5xx, a corrupt ledger included) gets a French page in the site's
look and one log line; request bodies are capped at :data:`MAX_BODY` bytes.
Forged or altered tokens change nothing and get a 400 page.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, g, redirect, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, default_exceptions
from werkzeug.middleware.proxy_fix import ProxyFix

from .. import confirmations
from ..app import App
from ..clock import utcnow
from ..config import Config
from ..errors import InvalidAddress, InvalidToken
from ..ledger import OPEN_LINK, normalize_email
from ..render.archive import layout_context
from ..render.email import render_template
from ..render.links import TRACKED_LINKS_ARTEFACT, links_from_json
from ..tokens import CLICK, OPEN, TrackToken, link_digest, verify_track_token
from .clicks import verdict
from .formguard import check_form_token, cross_site, form_token
from .hooks import ENDPOINTS as HOOK_ENDPOINTS
from .hooks import install_hooks
from .static import ETags, file_response, resolve
from .throttle import SubscribeLimits, client_key, redact

log = logging.getLogger("syndicate.web")

#: How long a confirmation link stays valid.
CONFIRM_TTL = confirmations.CONFIRM_TTL
#: The largest request body accepted, in bytes (forms are tiny; a one-click
#: unsubscribe carries 26 bytes). waitress refuses larger ones before buffering
#: them (see make_server); this is the same cap for any other WSGI server.
MAX_BODY = 16 * 1024
#: Routes that take a file upload, with their own cap (bytes, multipart overhead
#: included): the console's CSV import. Only reachable with a console session.
UPLOADS = {"admin.import_subscribers": 2 * 1024 * 1024 + 16 * 1024}

_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
#: The open pixel: a transparent 1x1 GIF.
_PIXEL = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000"
                       "010001000002024401003b")
#: The page shown when even the error template cannot be rendered.
_BARE_ERROR = ("<!doctype html><html lang=\"fr\"><meta charset=\"utf-8\">"
               "<title>Erreur {code}</title><p>Erreur {code}. Réessayez plus tard.</p></html>")
_FORM_ERROR = ("Le formulaire a expiré ou n’a pas pu être vérifié. Vérifiez votre adresse "
               "et envoyez-le à nouveau.")


def create_app(
    config: Config,
    *,
    secret: bytes,
    now: Callable[[], datetime] = utcnow,
) -> Flask:
    """The WSGI app for ``config``; ``secret`` signs and checks tokens."""
    app = Flask("syndicate.web", static_folder=None, template_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    # Set before the routes are added: OPTIONS is answered 405 like any method that
    # is not GET, HEAD or POST (Flask would otherwise answer it 200 itself).
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    settings = config.subscribe
    if settings.trusted_proxies:
        # The client is the address that many entries from the right of
        # X-Forwarded-For (what the nearest trusted proxy saw); nothing else is read.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.trusted_proxies, x_proto=0, x_host=0, x_port=0,
            x_prefix=0)
    ledger = App(config, now).open_ledger()
    app.extensions["syndicate.ledger"] = ledger
    limits = SubscribeLimits(settings, ledger, secret)
    etags = ETags()
    public = config.public_dir
    base = config.site.base_url

    def page(template: str, status: int = 200, **context: object) -> Response:
        title = str(context.pop("page_title"))
        body = render_template(
            config,
            f"web/{template}",
            **layout_context(config, base + request.path.lstrip("/"), title),
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

    install_error_pages(app, config, public=public)

    @app.before_request
    def cap_body() -> None:
        # Flask only enforces MAX_CONTENT_LENGTH when a body is read, and the
        # unsubscribe route never reads one: refuse on the declared length at once.
        limit = UPLOADS.get(request.endpoint or "", MAX_BODY)
        # Provider webhooks post larger bodies (SendGrid batches): their own limit.
        if request.endpoint in HOOK_ENDPOINTS:
            limit = config.webhooks.max_body
        request.max_content_length = limit
        if (request.content_length or 0) > limit:
            abort(413)

    install_hooks(app, config, ledger, secret, now)

    # -- unsubscribe ------------------------------------------------------------

    @app.route("/unsubscribe/<token>", methods=["GET", "POST"])
    def unsubscribe(token: str) -> Response:
        title = f"Désinscription · {config.site.title}"
        address = confirmations.unsubscribe_address(token, secret)
        if address is None:
            if request.method == "POST" and not wants_html():
                return text("Lien de désinscription invalide\u00a0: rien n’a été modifié.", 400)
            return page("unsubscribe.html.j2", 400, state="invalid", page_title=title)
        if request.method != "POST":  # GET or HEAD: a scanner, a preview, a person
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
        common: dict[str, Any] = {"page_title": title, "action": here(),
                                  "ttl_hours": CONFIRM_TTL // 3600}

        def form(status: int = 200, error: str = "", email: str = "",
                 name: str = "") -> Response:
            return page("subscribe.html.j2", status, state="form", error=error, email=email,
                        name=name, form_token=form_token(secret, now().timestamp()), **common)

        def sent() -> Response:
            # The one answer to every accepted form, whatever became of it.
            return page("subscribe.html.j2", state="sent", **common)

        if request.method != "POST":
            # The archive pages' subscribe box comes here with ?email=: the form is
            # shown prefilled, with its own token; nothing is recorded before the POST.
            return form(email=(request.args.get("email") or "").strip()[:254])
        if cross_site(request.headers.get("Sec-Fetch-Site"), request.headers.get("Origin"),
                      base):
            g.error_detail = "form posted from another site"
            abort(403)
        raw_email = (request.form.get("email") or "").strip()
        name = " ".join((request.form.get("name") or "").split())[:100] or None
        if request.form.get("website"):  # the hidden trap field: a bot filled it
            log.info("subscribe: trap field filled, ignored")
            return sent()
        verdict = check_form_token(secret, request.form.get("form_token") or "",
                                   now().timestamp(), min_age=settings.form_min_age,
                                   max_age=settings.form_max_age)
        if verdict != "ok":  # shown again with a fresh token: a person just resends it
            g.error_detail = f"form token {verdict}"
            return form(400, _FORM_ERROR, raw_email, name or "")
        try:
            address = normalize_email(raw_email)
        except InvalidAddress:
            return form(400, "Cette adresse électronique n’est pas valide.", raw_email,
                        name or "")
        client = client_key(request.remote_addr)
        refused = limits.consume(client, address)
        if refused is not None:
            log.warning("subscribe: limit per %s reached (client %s, address %s): "
                        "nothing mailed", refused, client, redact(address))
            return sent()
        # The same ledger work for every address (new, pending, active, unsubscribed):
        # an insert that may do nothing, then a read.
        subscriber = ledger.add_subscriber(address, name=name, status="pending", source="web",
                                           exist_ok=True)
        # Active subscribers get nothing (they already receive the editions); everyone
        # else (new, pending, unsubscribed, bounced) must prove the address again.
        if subscriber.status != "active":
            # Only recorded here (no name: what the form says is not mailed until the
            # address is proven); a background sender mails it, never SMTP in a request.
            confirmations.request(ledger, address)
        return sent()

    @app.route("/confirm/<token>", methods=["GET", "POST"])
    def confirm(token: str) -> Response:
        title = f"Confirmation · {config.site.title}"
        verdict, address = confirmations.confirm_address(token, secret, now())
        if address is None:
            status = 410 if verdict == "expired" else 400
            return page("confirm.html.j2", status, state=verdict, page_title=title)
        if request.method != "POST":  # GET or HEAD: only a button
            return page("confirm.html.j2", state="ask", email=address, action=here(),
                        page_title=title)
        current = ledger.get_subscriber(address)
        if current is None:  # removed in between: the link still proves the request
            ledger.add_subscriber(address, status="active", source="web", exist_ok=True)
        elif current.status != "active":
            ledger.set_subscriber_status(address, "active")
            log.info("confirmed %s (was %s)", address, current.status)
        return page("confirm.html.j2", state="done", email=address, page_title=title)

    # -- counted links and the open pixel ([analytics]; docs/admin.md) ----------------
    # The one GET that records anything: an aggregate counter of the edition (and, only
    # with per_subscriber, which delivery), never a subscriber's status or anything a
    # reader can change. A redirect only ever goes to a link stored with the edition.

    analytics = config.analytics
    tracked: dict[int, list[str]] = {}  # edition id -> its links (write-once artefacts)

    def links_of(edition_id: int) -> list[str]:
        if edition_id not in tracked:
            raw = ledger.artefact(edition_id, TRACKED_LINKS_ARTEFACT)
            if raw is None:
                return []  # not cached: clicks may be turned on for it later
            if len(tracked) >= 256:
                tracked.clear()
            tracked[edition_id] = links_from_json(raw)
        return tracked[edition_id]

    def record(mark: TrackToken, enabled: bool) -> None:
        sent = datetime.fromtimestamp(mark.sent, UTC) if mark.sent else None
        delivery = None
        if analytics.per_subscriber and mark.delivery_id is not None:
            row = ledger.get_delivery(mark.delivery_id)
            if row is None or row.edition_id != mark.edition_id:
                return
            delivery = row.id
            if row.status == "sent":
                sent = row.updated_at  # this message's own send time
        # HEAD is told apart from GET here on purpose: Flask runs both through this code.
        why = verdict(request.method, request.headers.get("User-Agent"), sent=sent,
                      now=now(), window=analytics.scanner_window)
        if not enabled or why != "count":
            g.error_detail = why
            return
        ledger.count_hit(mark.edition_id, mark.link, delivery)

    @app.route("/r/<token>", methods=["GET"])
    def click(token: str) -> Response:
        try:
            mark = verify_track_token(secret, CLICK, token)
        except InvalidToken:
            g.error_detail = "forged or altered click token"
            abort(404)
        links = links_of(mark.edition_id)
        if not 0 <= mark.link < len(links) or link_digest(links[mark.link]) != mark.digest:
            g.error_detail = "click token for a link not in the edition"
            abort(404)
        record(mark, analytics.clicks)
        response = redirect(links[mark.link], code=302)
        # Every click reaches us (no cache); the target never learns the token.
        response.headers.update({"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
        return response  # type: ignore[return-value]

    @app.route("/o/<token>", methods=["GET"])
    def opened(token: str) -> Response:
        try:
            mark = verify_track_token(secret, OPEN, token)
        except InvalidToken:
            abort(404)
        if mark.link == OPEN_LINK and ledger.get_edition(mark.edition_id) is not None:
            record(mark, analytics.open_pixel)
        response = Response(_PIXEL, content_type="image/gif")
        response.headers.update({"Cache-Control": "no-store, private"})
        return response

    # -- operator console (only when [admin] names operators: else /admin/ is a 404) --

    if config.admin.enabled:
        from .admin import create_blueprint  # argon2 and the console: only when enabled

        app.register_blueprint(create_blueprint(config, ledger, secret=secret, now=now),
                               url_prefix="/admin")

    # -- archive and feeds ---------------------------------------------------------

    @app.route("/", defaults={"path": ""}, methods=["GET"])
    @app.route("/<path:path>", methods=["GET"])
    def public_file(path: str) -> Response:
        if path.split("/", 1)[0] == "admin":  # the console's (absent: not configured)
            abort(404)
        found, add_slash = resolve(public, path)
        if add_slash:
            return redirect(f"{request.script_root}/{path}/", code=301)  # type: ignore[return-value]
        if found is None:
            abort(404)
        response = file_response(found, etags)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    return app


def install_error_pages(app: Flask, config: Config, *, public: Path | None = None) -> None:
    """Every 4xx/5xx answer of ``app``: a French page in the site's look and one log
    line (``SYNDICATE_DEBUG=1`` adds the traceback of unexpected errors). A 404 is
    the archive's own ``public/404.html`` when there is one."""
    base = config.site.base_url

    def error_page(code: int) -> Response:
        archive_404 = public / "404.html" if public is not None else None
        try:
            if code == 404 and archive_404 is not None and archive_404.is_file():
                body = archive_404.read_text(encoding="utf-8")
            else:
                body = render_template(
                    config, "web/error.html.j2", status=code,
                    **layout_context(config, base + request.path.lstrip("/"),
                                     f"Erreur {code} · {config.site.title}"),
                )
        except Exception as exc:  # templates unreadable: still a French page
            g.error_detail = f"{g.get('error_detail') or ''} (error page: {exc})".strip()
            body = _BARE_ERROR.format(code=code)
        response = Response(body, status=code, content_type="text/html; charset=utf-8")
        response.headers.update(_PAGE_HEADERS)
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        if exc.code is None or exc.code < 400:
            return exc
        response = error_page(exc.code)
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            response.headers["Allow"] = ", ".join(sorted(exc.valid_methods))
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        # A corrupt or vanished ledger, a full disk…: the visitor gets a page, the
        # operator one line (the traceback only on request).
        g.error_detail = f"{type(exc).__name__}: {exc}"
        if os.environ.get("SYNDICATE_DEBUG"):
            log.error("traceback of the next error", exc_info=exc)
        return error_page(500)

    @app.after_request
    def log_error(response: Response) -> Response:
        if response.status_code >= 400:
            rule = request.url_rule.rule if request.url_rule is not None else ""
            # Token routes are logged by their rule: a token holds an address.
            where = rule if "<token>" in rule else request.path[:200]
            detail = g.get("error_detail")
            log.log(logging.ERROR if response.status_code >= 500 else logging.INFO,
                    "%s %s %s%s", response.status_code, request.method,
                    request.script_root + where, f": {detail}" if detail else "")
        return response


def render_error_body(app: Flask, code: int) -> bytes:
    """The page ``app`` answers ``code`` with, for errors raised before the app is
    reached (waitress refuses an oversized request itself, see make_server)."""
    with app.test_request_context("/"):
        response = app.handle_user_exception(_http_exception(code))
        return bytes(app.make_response(response).get_data())


def _http_exception(code: int) -> HTTPException:
    return default_exceptions[code]()
