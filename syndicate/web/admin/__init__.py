"""The operator console under ``/admin/`` of ``syndicate serve`` (docs/admin.md).

A Flask blueprint, registered by :func:`syndicate.web.app.create_app` only when ``[admin]
operators`` names someone; otherwise no ``/admin/`` route exists (404). Access rules
(:mod:`.access`, :mod:`.auth`): argon2id passwords, signed session cookies scoped to
``/admin/``, a CSRF token on every state-changing request, rate-limited sign-in.

**Adding a page**: write a module here exporting ``PAGE = PageSpec(label, "admin.<view>",
register)`` where ``register(bp, console)`` adds its routes to the blueprint (GET shows,
POST changes: the guard has already checked the session and the CSRF token of every
POST), a template ``syndicate/templates/admin/<name>.html.j2`` extending
``admin/_layout.html.j2`` (forms include ``<input type="hidden" name="csrf" value="{{ csrf
}}">``), and add ``PAGE`` to :data:`PAGES` (the menu follows its order).
``tests/test_admin.py`` walks the URL map: a new route is checked for sign-in and CSRF
without a new test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from flask import Blueprint

from ...config import Config
from ...ledger import LedgerPort
from . import analytics, editions, overview, preview, queue, schedule, subscribers
from .access import install_guard, register_login
from .auth import LoginLimits, Sessions
from .base import Console, PageSpec

#: The console's pages, in menu order.
PAGES: tuple[PageSpec, ...] = (overview.PAGE, queue.PAGE, schedule.PAGE, preview.PAGE,
                                editions.PAGE, subscribers.PAGE, analytics.PAGE)


def create_blueprint(config: Config, ledger: LedgerPort, *, secret: bytes,
                     now: Callable[[], datetime]) -> Blueprint:
    """The console's blueprint (to register with ``url_prefix="/admin"``)."""
    bp = Blueprint("admin", __name__)
    console = replace(Console(config, ledger, now), pages=PAGES)
    sessions = Sessions(config.admin, secret, ledger, lambda: now().timestamp())
    install_guard(bp, console, sessions)
    register_login(bp, console, sessions, LoginLimits(config.admin, ledger, secret), secret)
    for page in PAGES:
        page.register(bp, console)
    return bp


__all__ = ["PAGES", "Console", "PageSpec", "create_blueprint"]
