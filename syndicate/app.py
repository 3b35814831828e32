"""The application root: what a command (cli, web, daemon) needs, built once from the config.

Commands build an :class:`App` and ask it for the parts they use, instead of each
constructing a ledger, channels or template environment of its own; the parts below
(pipeline, channels, render, ledger) receive what they need and import nothing above
them. Modelled on lemon24/reader's ``make_reader(url, _storage=)``: one place decides
which implementation backs each port.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from .clock import utcnow
from .config import Config
from .errors import ConfigError, LedgerURLError
from .ledger import LedgerPort, ledger_exists, open_ledger, parse_ledger_url, shown_url


@dataclass(frozen=True)
class App:
    """One publication, as configured: the config and the clock every part shares."""

    config: Config
    now: Callable[[], datetime] = field(default=utcnow)

    def open_ledger(self) -> LedgerPort:
        """The configured ledger (``[storage] database``), opened on this app's clock; the
        caller closes it (``with app.open_ledger() as ledger:``). A location the ledger
        cannot open is a config error naming the file and the key."""
        with self._ledger_location():
            return open_ledger(self.config.ledger_url, now=self.now)

    def ledger_exists(self) -> bool:
        """Whether the configured ledger was ever created (read-only commands skip it)."""
        with self._ledger_location():
            return ledger_exists(self.config.ledger_url)

    def ledger_problems(self) -> list[str]:
        """What is wrong with ``[storage] database`` (for ``config check``), opening nothing."""
        try:
            with self._ledger_location():
                parse_ledger_url(self.config.ledger_url)
        except ConfigError as exc:
            return exc.problems
        return []

    @contextmanager
    def _ledger_location(self) -> Iterator[None]:
        try:
            yield
        except LedgerURLError as exc:
            written = shown_url(str(self.config.storage.database))
            raise ConfigError(self.config.path, [
                f"{self.config.path}: storage.database = {written!r}: {exc.reason}"
            ]) from None


__all__ = ["App"]
