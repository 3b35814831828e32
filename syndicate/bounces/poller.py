"""``run`` reads the bounce Maildir every ``[bounces] poll_interval`` (a thread of its own).

A pass that fails (the ledger unreachable, the folder gone) is one log line and the
next pass tries again: the poller never stops the daemon, and a message only leaves
the inbox once its outcome is recorded (:func:`~.mailbox.process_maildir`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..config import Config
from ..ledger import LedgerPort
from .mailbox import process_maildir

log = logging.getLogger("syndicate.bounces")


class Poller:
    """Process ``path`` every ``interval`` seconds until :meth:`stop`."""

    def __init__(self, config: Config, ledger: Callable[[], LedgerPort | None], secret: bytes,
                 *, interval: float | None = None, logger: logging.Logger = log) -> None:
        self.settings = config.bounces
        self.path = config.resolve(Path(self.settings.maildir))
        self.ledger = ledger
        self.secret = secret
        self.interval = float(self.settings.poll_interval if interval is None else interval)
        self.log = logger
        self.passes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bounces", daemon=True)

    def start(self) -> Poller:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def once(self) -> None:
        try:
            ledger = self.ledger()
            if ledger is None:
                return
            summary = process_maildir(ledger, self.settings, self.path, self.secret,
                                      logger=self.log)
        except Exception as exc:  # one line, and the next pass tries again
            self.log.error("bounces: pass over %s failed: %s: %s", self.path,
                           type(exc).__name__, exc)
            return
        finally:
            self.passes += 1
        if summary.total:
            self.log.info("%s", summary.line())

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.once()


@contextmanager
def polling(config: Config, ledger: Callable[[], LedgerPort | None], secret: bytes | None,
            ) -> Iterator[Poller | None]:
    """A :class:`Poller` for the duration of the block, or None (one log line) when
    there is no Maildir, no interval or no secret to check tokens with."""
    settings = config.bounces
    if not settings.maildir or not settings.poll_interval:
        yield None
        return
    if secret is None:
        log.info("no SYNDICATE_SECRET: the bounce Maildir is not read by this process")
        yield None
        return
    poller = Poller(config, ledger, secret).start()
    log.info("bounces: reading %s every %ss", poller.path, settings.poll_interval)
    try:
        yield poller
    finally:
        poller.stop()


__all__ = ["Poller", "polling"]
