"""``syndicate serve``: archive, feeds, one-click unsubscribe and double opt-in, over HTTP.

A Flask app (:func:`create_app`) served by waitress (:func:`make_server`). The
public address is ``[site] base_url``: when it has a path (``https://x.org/lettre/``)
the app is mounted under that path, so the links in emails reach it unchanged
whether a reverse proxy forwards the prefix or the app is exposed directly.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from werkzeug.exceptions import NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from ..config import Config
from ..ledger._records import utcnow
from .app import create_app

__all__ = ["create_app", "default_port", "make_server", "make_wsgi", "stop_server"]


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
    return DispatcherMiddleware(NotFound(), {prefix: app})


def make_server(config: Config, *, secret: bytes, host: str = "127.0.0.1",
                port: int | None = None, threads: int = 4,
                now: Callable[[], datetime] = utcnow, **adjustments: Any) -> Any:
    """A waitress server (not yet running: call ``.run()``; ``.close()`` stops it).
    ``port=0`` picks a free port (``server.effective_port``)."""
    import waitress

    return waitress.create_server(
        make_wsgi(config, secret=secret, now=now),
        host=host,
        port=default_port(config) if port is None else port,
        threads=threads,
        ident="syndicate",
        clear_untrusted_proxy_headers=True,
        **adjustments,  # other waitress settings (tests shorten the loop timeout)
    )


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

    server.trigger.pull_trigger(close_all)
    server.task_dispatcher.shutdown(timeout=timeout)
