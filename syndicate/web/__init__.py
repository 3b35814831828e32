"""``syndicate serve``: archive, feeds, one-click unsubscribe and double opt-in, over HTTP.

A Flask app (:func:`create_app`) served by waitress (:func:`make_server`). The
public address is ``[site] base_url``: when it has a path (``https://x.org/lettre/``)
the app is mounted under that path, so the links in emails reach it unchanged
whether a reverse proxy forwards the prefix or the app is exposed directly.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from ..clock import utcnow
from ..config import Config
from .app import MAX_BODY, UPLOADS, create_app, install_error_pages, render_error_body

__all__ = ["create_app", "default_port", "make_server", "make_wsgi", "stop_server"]

log = logging.getLogger("syndicate.web")


def default_port(config: Config) -> int:
    """The port of ``base_url`` when it names one (``http://127.0.0.1:8080/``), else 8080."""
    return urlsplit(config.site.base_url).port or 8080


def make_wsgi(config: Config, *, secret: bytes,
              now: Callable[[], datetime] = utcnow) -> Callable[..., Any]:
    """The WSGI callable: the app, mounted under ``base_url``'s path if it has one."""
    app = create_app(config, secret=secret, now=now)
    prefix = urlsplit(config.site.base_url).path.rstrip("/")
    if not prefix:
        return app
    # Outside the prefix: an app with no route, i.e. the French 404 page.
    outside = Flask("syndicate.web", static_folder=None, template_folder=None)
    install_error_pages(outside, config)
    return DispatcherMiddleware(outside, {prefix: app})


def make_server(config: Config, *, secret: bytes, host: str = "127.0.0.1",
                port: int | None = None, threads: int = 4,
                now: Callable[[], datetime] = utcnow, **adjustments: Any) -> Any:
    """A waitress server (not yet running: call ``.run()``; ``.close()`` stops it).
    ``port=0`` picks a free port (``server.effective_port``).

    Request bodies over ``MAX_BODY`` bytes are refused by waitress as soon as the
    headers announce them (or, chunked, once that much has arrived), before they
    are buffered; its error answers (400, 413, 431…) are the app's French pages.
    """
    import waitress

    server = waitress.create_server(
        make_wsgi(config, secret=secret, now=now),
        host=host,
        port=default_port(config) if port is None else port,
        threads=threads,
        ident="syndicate",
        # X-Forwarded-* are dropped unless [subscribe] trusted_proxies says a proxy
        # adds X-Forwarded-For; the app then reads only that (werkzeug's ProxyFix).
        clear_untrusted_proxy_headers=not config.subscribe.trusted_proxies,
        # waitress refuses a body >= this. With a provider webhook configured it lets
        # [webhooks] max_body through, and the app caps every other route at MAX_BODY.
        max_request_body_size=_body_cap(config) + 1,
        **adjustments,  # other waitress settings (tests shorten the loop timeout)
    )
    pages_app = create_error_app(config)
    pages = {code: render_error_body(pages_app, code) for code in (400, 413, 431, 500, 501)}
    server.channel_class = _channel_class(pages)
    return server


def _body_cap(config: Config) -> int:
    """waitress's body cap: 16 KiB, raised for the console's CSV import when the console
    is on and for the provider webhooks when one is configured (the app keeps each other
    route at MAX_BODY itself)."""
    cap = max(MAX_BODY, *UPLOADS.values()) if config.admin.enabled else MAX_BODY
    hooks = config.webhooks
    if hooks.ses_topics or hooks.postmark_user or hooks.mailgun_signing_key_env or \
            hooks.sendgrid_public_key:
        cap = max(cap, hooks.max_body)
    return cap


def create_error_app(config: Config) -> Flask:
    """An app with no route: only the error pages (outside the prefix, waitress' errors)."""
    app = Flask("syndicate.web", static_folder=None, template_folder=None)
    install_error_pages(app, config)
    return app


def _channel_class(pages: dict[int, bytes]) -> type:
    """waitress' connection class, its error answers replaced by ``pages``."""
    from waitress.channel import HTTPChannel
    from waitress.task import ErrorTask

    class PageErrorTask(ErrorTask):  # type: ignore[misc]
        def execute(self) -> None:
            error = self.request.error
            body = pages.get(error.code)
            if body is None:
                super().execute()
                return
            self.status = f"{error.code} {error.reason}"
            self.response_headers.extend([
                ("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")])
            self.set_close_on_finish()
            self.content_length = len(body)
            self.write(body)
            log.info("%s refused by waitress (%s): %s", error.code, error.reason, error.body)

    class PageChannel(HTTPChannel):  # type: ignore[misc]
        error_task_class = PageErrorTask

    return PageChannel


def stop_server(server: Any, timeout: float = 5.0) -> None:
    """Stop a server whose ``run()`` is going on in another thread.

    Closing its sockets from here would pull them from under the loop's select();
    instead the closing runs *in* the loop thread (waitress' trigger), the loop ends
    when nothing is left to watch, then the worker threads are joined.
    """

    def close_all() -> None:
        server.close()  # the listening socket and the trigger
        for channel in list(server._map.values()):  # open client connections
            channel.close()

    try:
        server.trigger.pull_trigger(close_all)
    except OSError as exc:
        # The trigger pipe is already gone (its loop ended, or its descriptor was closed
        # under it): nothing runs the thunk, so close from here; no select() is watching.
        log.warning("waitress trigger unusable (%s); closing the server directly", exc)
        with contextlib.suppress(OSError):
            close_all()
    server.task_dispatcher.shutdown(timeout=timeout)
