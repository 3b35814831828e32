"""What every console page shares: :class:`Console` (config, ledger, clock, rendering) and
:class:`PageSpec`, the declaration a page module exports (see :mod:`syndicate.web.admin`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, g, request, url_for

from ...config import Config
from ...ledger import LedgerPort
from ...render.archive import layout_context
from ...render.templates import render_template

#: Headers of every console answer: nothing cached, no framing, no referrer, no script.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    # same-origin, not no-referrer: with no-referrer Chromium posts forms with "Origin: null",
    # which the cross-site check must refuse. Console URLs hold no token.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex, nofollow",
}


@dataclass(frozen=True)
class PageSpec:
    """A console page: its label in the menu (None: not in the menu), the endpoint the
    menu links to (``admin.<name>``) and ``register(blueprint, console)``, which adds
    its routes. Every route added is covered by the guard (sign-in and CSRF)."""

    label: str | None
    endpoint: str
    register: Callable[[Blueprint, Console], None]


@dataclass(frozen=True)
class Console:
    """The console's shared state, given to each page's ``register``."""

    config: Config
    ledger: LedgerPort
    now: Callable[[], datetime]
    pages: tuple[PageSpec, ...] = field(default=())

    def render(self, template: str, *, title: str, code: int = 200,
               **context: Any) -> Response:
        """``admin/<template>`` in the console's layout: the menu, the operator, the
        CSRF token for forms (``csrf``) and the archive's look."""
        session = g.get("admin_session")
        nav = [(spec.label, url_for(spec.endpoint), request.endpoint == spec.endpoint)
               for spec in self.pages if spec.label is not None]
        base = self.config.site.base_url
        body = render_template(
            self.config, f"admin/{template}",
            **layout_context(self.config, base, f"{title} · Console · {self.config.site.title}"),
            nav=nav, operator=session.operator if session else None,
            csrf=session.csrf if session else "", heading=title,
            login_url=url_for("admin.login"), logout_url=url_for("admin.logout"), **context)
        response = Response(body, status=code, content_type="text/html; charset=utf-8")
        response.headers.update(HEADERS)
        return response
