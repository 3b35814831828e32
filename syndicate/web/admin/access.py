"""Sign-in, sign-out and the guard every console route passes first.

The guard (:func:`install_guard`, a ``before_request`` of the blueprint) answers for
every ``/admin/`` route except the sign-in page: without a valid session a GET or HEAD
is redirected to the sign-in page and any other method refused (403); a POST must come
from this site (``Sec-Fetch-Site``/``Origin``) and carry the session's CSRF token (the
``csrf`` form field, or an ``X-CSRF-Token`` header), else 403. The sign-in form carries
a signed, expiring token of its own (:mod:`syndicate.web.formguard`), since there is no
session yet.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, abort, g, redirect, request, url_for

from ..formguard import check_form_token, cross_site, form_token
from ..throttle import client_key
from .auth import COOKIE, LoginLimits, Sessions, csrf_ok, derive_key, verify_password
from .base import Console

log = logging.getLogger("syndicate.web.admin")

#: Endpoints reachable without a session (their own checks apply).
PUBLIC = frozenset({"admin.login"})
_LOGIN_MAX_AGE = 3600


def cookie_path() -> str:
    return f"{request.script_root}/admin/"


def install_guard(bp: Blueprint, console: Console, sessions: Sessions) -> None:
    base = console.config.site.base_url

    @bp.before_request
    def guard() -> Any:
        if request.endpoint in PUBLIC:
            return None
        session = sessions.check(request.cookies.get(COOKIE))
        if session is None:
            if request.method in ("GET", "HEAD"):
                return redirect(url_for("admin.login"), code=303)
            g.error_detail = "no session"
            abort(403)
        g.admin_session = session
        if request.method not in ("GET", "HEAD"):
            if cross_site(request.headers.get("Sec-Fetch-Site"),
                          request.headers.get("Origin"), base):
                g.error_detail = "posted from another site"
                abort(403)
            sent = request.form.get("csrf") or request.headers.get("X-CSRF-Token")
            if not csrf_ok(session, sent):
                g.error_detail = "missing or wrong CSRF token"
                abort(403)
        return None


def register_login(bp: Blueprint, console: Console, sessions: Sessions, limits: LoginLimits,
                   secret: bytes) -> None:
    config = console.config
    form_key = derive_key(secret, "login-form")
    secure = config.site.base_url.startswith("https://")

    def form(status: int = 200, error: str = "", name: str = "") -> Response:
        return console.render("login.html.j2", title="Connexion", code=status, error=error,
                              name=name, login_token=form_token(form_key,
                                                                console.now().timestamp()))

    @bp.route("/login", methods=["GET", "POST"])
    def login() -> Response:
        if request.method != "POST":
            return form()
        if cross_site(request.headers.get("Sec-Fetch-Site"), request.headers.get("Origin"),
                      config.site.base_url):
            g.error_detail = "sign-in posted from another site"
            abort(403)
        name = (request.form.get("operator") or "").strip()[:64]
        verdict = check_form_token(form_key, request.form.get("login_token") or "",
                                   console.now().timestamp(), min_age=0,
                                   max_age=_LOGIN_MAX_AGE)
        if verdict != "ok":
            g.error_detail = f"sign-in form token {verdict}"
            return form(400, "Le formulaire a expiré\u00a0: recommencez.", name)
        refused = limits.consume(client_key(request.remote_addr), name)
        if refused is not None:
            log.warning("admin sign-in: limit per %s reached (client %s)", refused,
                        client_key(request.remote_addr))
            return form(429, "Trop de tentatives de connexion. Réessayez plus tard.", name)
        if not verify_password(config.admin.operators, name,
                               request.form.get("password") or ""):
            log.warning("admin sign-in refused for %r from %s", name,
                        client_key(request.remote_addr))
            return form(401, "Identifiant ou mot de passe incorrect.", name)
        _session, value = sessions.issue(name)
        log.info("admin sign-in: %s", name)
        response = redirect(url_for("admin.overview"), code=303)
        response.set_cookie(COOKIE, value, max_age=sessions.lifetime, path=cookie_path(),
                            secure=secure, httponly=True, samesite="Strict")
        return response  # type: ignore[return-value]

    @bp.route("/logout", methods=["POST"])
    def logout() -> Response:
        sessions.revoke(g.admin_session)
        log.info("admin sign-out: %s", g.admin_session.operator)
        response = redirect(url_for("admin.login"), code=303)
        response.delete_cookie(COOKIE, path=cookie_path(), secure=secure, httponly=True,
                               samesite="Strict")
        return response  # type: ignore[return-value]
