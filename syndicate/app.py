"""The application root: what a command (cli, web, daemon) needs, built once from the config.

Commands build an :class:`App` and ask it for the parts they use, instead of each
constructing a ledger, channels or template environment of its own; the parts below
(pipeline, channels, render, ledger) receive what they need and import nothing above
them. Modelled on lemon24/reader's ``make_reader(url, _storage=)``: one place decides
which implementation backs each port.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .channels import channel_settings_models
from .config import Config, read_config
from .config import parse_config as _parse_config

if TYPE_CHECKING:  # imported where used: loading a config must stay light (test_layers)
    import jinja2

    from . import confirmations


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
        from .render.templates import template_environment  # jinja2: only when rendering

        return template_environment(self.config.templates_dir)

    def confirmation_sender(
        self, secret: bytes | None,
    ) -> AbstractContextManager[confirmations.ConfirmationSender | None]:
        """The confirmation outbox's sender, running for a ``with`` block (``serve``,
        ``run``); None when this process cannot send (no secret, no email channel)."""
        from . import confirmations  # mail rendering and SMTP: only serve and run need them

        return confirmations.running(self.config, secret, now=self.now)


def load_config(path: Path | str | os.PathLike[str] | None = None) -> Config:
    """Read and validate a config file (``--config``, else ``$SYNDICATE_CONFIG``, else
    ``config/syndicate.toml``), each ``[[channels]]`` entry with the settings model of
    its type from the channel registry (entry points); raise
    :class:`~syndicate.errors.ConfigError` listing every problem.

    Only the channel types the file names are imported (a type is loaded on lookup).
    """
    return read_config(path, channel_models=channel_settings_models())


def parse_config(data: dict[str, Any], path: Path) -> Config:
    """Validate already-parsed TOML ``data`` read from ``path`` (see :func:`load_config`)."""
    return _parse_config(data, path, channel_models=channel_settings_models())


__all__ = ["App", "load_config", "parse_config"]
