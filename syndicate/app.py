"""The application root: what a command (cli, web, daemon) needs, built once from the config.

Commands build an :class:`App` and ask it for the parts they use, instead of each
constructing a ledger, channels or template environment of its own; the parts below
(pipeline, channels, render, ledger) receive what they need and import nothing above
them. Modelled on lemon24/reader's ``make_reader(url, _storage=)``: one place decides
which implementation backs each port.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import jinja2

from . import confirmations
from .config import Config
from .render.templates import template_environment


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class App:
    """One publication, as configured: the config and the clock every part shares."""

    config: Config
    now: Callable[[], datetime] = field(default=_utcnow)

    @property
    def templates(self) -> jinja2.Environment:
        """The one Jinja environment: the operator's ``[storage] templates`` folder over the
        shipped templates (built once per folder, then cached)."""
        return template_environment(self.config.templates_dir)

    def confirmation_sender(
        self, secret: bytes | None,
    ) -> AbstractContextManager[confirmations.ConfirmationSender | None]:
        """The confirmation outbox's sender, running for a ``with`` block (``serve``,
        ``run``); None when this process cannot send (no secret, no email channel)."""
        return confirmations.running(self.config, secret, now=self.now)


__all__ = ["App"]
