"""``syndicate worker``: send the mail the publisher handed to the workers
(``[delivery] senders = "workers"``, see :mod:`syndicate.worker`)."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import click

from ..app import App
from ..logs import setup_logging
from ._group import AppContext, cli, pass_app


@cli.command("worker")
@click.option("--once", is_flag=True,
              help="Drain: exit once no handed-off delivery is pending (else run until "
              "SIGTERM).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Log lines as text or one JSON object per line.")
@pass_app
def worker_cmd(app: AppContext, once: bool, log_format: str) -> None:
    """Claim and send the delivery rows handed to the workers, on any machine sharing
    the ledger: batches under a lease renewed by a heartbeat; a killed worker's rows are
    taken over by the others. SIGTERM finishes the messages in flight and exits 0.
    """
    from ..worker import Worker  # the mail stack: for this command only

    config = app.config
    for problem in config.missing_secrets():
        raise click.ClickException(problem)
    if config.delivery.senders != "workers":
        click.echo(f"warning: {config.path}: [delivery] senders = "
                   f"{config.delivery.senders!r}: the publisher sends by itself and hands "
                   "nothing to the workers", err=True)
    setup_logging(log_format, level=logging.INFO)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        Worker(config, ledger=App(config).open_ledger, stop=stop).run(once=once)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
