"""Stopping a send cleanly from the command line: SIGTERM and Ctrl-C.

A long fan-out must not be cut in the middle of a message: the handler only
sets the pipeline's stop event; the channels see it between messages, finish
and record the ones in flight, and return with the rest still pending, which
``syndicate resume`` (or the next ``publish-next`` / ``run``) finishes. A
second Ctrl-C interrupts at once, for an operator who really means it.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import click

#: The signals that stop a send cleanly. The command then exits with its outcome:
#: 75 (incomplete) while deliveries are left pending (see cli/publish.py).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class GracefulStop:
    """The stop event and which signal set it (``None`` while running)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal: signal.Signals | None = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        received = signal.Signals(signum)
        if self.event.is_set() and received == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: stop now
        if not self.event.is_set():
            self.signal = received
            self.event.set()
            hint = " (Ctrl-C again to interrupt now)" if received == signal.SIGINT else ""
            click.echo(f"{received.name}: stopping after the messages in flight; "
                       f"`syndicate resume` finishes the edition{hint}", err=True)


@contextmanager
def graceful_stop() -> Iterator[GracefulStop]:
    """Install SIGTERM/SIGINT handlers that set ``.event`` for the duration of the block.

    Only the main thread may install handlers; elsewhere (tests calling the CLI
    from a thread) the block runs without them.
    """
    stop = GracefulStop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {sig: signal.signal(sig, stop._handle) for sig in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
