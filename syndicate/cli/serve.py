"""``syndicate serve``: the web app (archive, feeds, unsubscribe, subscribe) on waitress,
and the sender of the confirmation outbox (:mod:`syndicate.confirmations`)."""

from __future__ import annotations

import logging
import signal
from types import FrameType

import click

from ..logs import setup_logging
from ..tokens import secret_from_env
from ._group import AppContext, cli, pass_app


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (put a TLS reverse proxy in front for the public).")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Port to listen on (default: the port of [site] base_url, else 8080).")
@click.option("--threads", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Worker threads.")
@pass_app
def serve(app: AppContext, host: str, port: int | None, threads: int) -> None:
    """Serve the archive and feeds, one-click unsubscribe and the subscribe form.

    Links in emails are built on [site] base_url: make it the public address of this
    server. Needs SYNDICATE_SECRET in the environment (it signs the links).
    Confirmation emails are sent by a background thread, never in a request.
    """
    # Flask, waitress and the mail stack: imported for this command only.
    from ..confirmations import running
    from ..web import make_server

    secret = secret_from_env()  # refuses to start without it (one-line error, exit 1)
    config = app.config
    setup_logging(level=logging.INFO)
    server = make_server(config, secret=secret, host=host, port=port, threads=threads)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)  # unwinds server.run(); in-flight requests are short

    signal.signal(signal.SIGTERM, stop)
    listen = f"http://{host}:{server.effective_port}/"
    click.echo(f"serving {listen} (public address {config.site.base_url}); Ctrl-C to stop",
               err=True)
    # The confirmation outbox: requests are recorded by the app, mailed from here.
    with running(config, secret):
        try:
            server.run()
        finally:
            server.close()
