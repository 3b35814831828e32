"""``run`` reads the bounce mailbox every ``[bounces] poll_interval`` (a thread of its own).

:func:`open_source` is the configured mailbox (a Maildir or IMAP), for ``run`` and
``syndicate bounces fetch`` alike.

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
from ..errors import SyndicateError
from ..ledger import LedgerPort
from .mailbox import MaildirSource, Source, Summary, process_source

log = logging.getLogger("syndicate.bounces")


def mailbox_name(config: Config) -> str:
    """The configured mailbox, for log lines (no secret in it)."""
    b = config.bounces
    if b.imap_host:
        return f"imaps://{b.imap_user}@{b.imap_host}:{b.imap_port}/{b.imap_folder}"
    return str(config.resolve(Path(b.maildir)))


@contextmanager
def open_source(config: Config, *, maildir: Path | None = None) -> Iterator[Source]:
    """The configured bounce mailbox (``maildir`` overrides it), closed afterwards."""
    settings = config.bounces
    if maildir is not None or settings.maildir:
        yield MaildirSource(maildir or config.resolve(Path(settings.maildir)))
        return
    if not settings.imap_host:
        raise SyndicateError("[bounces] has no mailbox: set maildir or imap_host (where the "
                             "bounce address is delivered; see docs/deliverability.md)")
    from .imap import ImapSource

    ca = config.resolve(Path(settings.imap_ca_file)) if settings.imap_ca_file else None
    with ImapSource(settings, ca_file=ca) as source:
        yield source


def process_configured(config: Config, ledger: LedgerPort, secret: bytes, *,
                       maildir: Path | None = None, logger: logging.Logger = log,
                       unsubscribed: Callable[[str], None] | None = None) -> Summary:
    """One pass over the configured mailbox."""
    with open_source(config, maildir=maildir) as source:
        return process_source(ledger, config.bounces, source, secret, logger=logger,
                              unsubscribed=unsubscribed)


class Poller:
    """Process ``path`` every ``interval`` seconds until :meth:`stop`."""

    def __init__(self, config: Config, ledger: Callable[[], LedgerPort | None], secret: bytes,
                 *, interval: float | None = None, logger: logging.Logger = log) -> None:
        self.config = config
        self.settings = config.bounces
        self.path = mailbox_name(config)
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
            summary = process_configured(self.config, ledger, self.secret, logger=self.log)
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
    there is no mailbox, no interval or no secret to check tokens with."""
    settings = config.bounces
    if not (settings.maildir or settings.imap_host) or not settings.poll_interval:
        yield None
        return
    if secret is None:
        log.info("no SYNDICATE_SECRET: the bounce mailbox is not read by this process")
        yield None
        return
    poller = Poller(config, ledger, secret).start()
    log.info("bounces: reading %s every %ss", poller.path, settings.poll_interval)
    try:
        yield poller
    finally:
        poller.stop()


__all__ = ["Poller", "mailbox_name", "open_source", "polling", "process_configured"]
