"""The application root: what a command (cli, web, daemon) needs, built once from the config.

Commands build an :class:`App` and ask it for the parts they use, instead of each
constructing a ledger, channels or template environment of its own; the parts below
(pipeline, channels, render, ledger) receive what they need and import nothing above
them. Modelled on lemon24/reader's ``make_reader(url, _storage=)``: one place decides
which implementation backs each port.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .clock import utcnow
from .config_snapshot import ConfigPaths
from .errors import ConfigError, LedgerURLError
from .ledger import ledger_exists, open_ledger, parse_ledger_url, shown_url

if TYPE_CHECKING:  # imported where used: loading a config must stay light (test_layers)
    import jinja2

    from . import confirmations
    from .config import Config
    from .ledger import LedgerPort

# The config models (pydantic) and the channel registry are imported by the functions
# that validate a config, not here: the light commands (``queue``, ``status``,
# ``schedule``) open the ledger with a :class:`LightApp` over the config's snapshot
# (syndicate.config_snapshot) and never pay for them.


@dataclass(frozen=True)
class LightApp:
    """The configured ledger, from a :class:`~syndicate.config.Config` or from its
    validated snapshot (:class:`~syndicate.config_snapshot.ConfigSnapshot`): what the light
    commands need, without the config models or the channels."""

    config: ConfigPaths
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


@dataclass(frozen=True)
class App(LightApp):
    """One publication, as configured: the config and the clock every part shares."""

    config: Config

    @property
    def templates(self) -> jinja2.Environment:
        """The one Jinja environment: the operator's ``[storage] templates`` folder over the
        shipped templates (built once per folder, then cached)."""
        from .render.templates import template_env  # jinja2: only when rendering

        return template_env(self.config)

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
    from .channels import channel_settings_models  # pydantic and the registry: see above
    from .config import read_config

    return read_config(path, channel_models=channel_settings_models())


def parse_config(data: dict[str, Any], path: Path) -> Config:
    """Validate already-parsed TOML ``data`` read from ``path`` (see :func:`load_config`)."""
    from .channels import channel_settings_models  # pydantic and the registry: see above
    from .config import parse_config as _parse_config

    return _parse_config(data, path, channel_models=channel_settings_models())


def config_problems(path: Path) -> tuple[Config | None, list[str]]:
    """Every problem with the config at ``path``, as ``config check`` prints them: schema
    errors, the ledger, then missing secrets (the console's schedule page checks its
    edit with this too)."""
    from .config import secret_problems  # pydantic: see above

    try:
        config = load_config(path)
    except ConfigError as exc:
        return None, exc.problems + secret_problems(path, getattr(exc, "channels", ()))
    return config, (App(config).ledger_problems()
                    + secret_problems(path, enumerate(config.channels))
                    + config.missing_service_secrets())


def import_subscriber_csv(ledger: LedgerPort, text: str, source: str) -> list[str]:
    """Import a subscriber CSV (:func:`~syndicate.csv_cells.read_subscriber_csv`) as active
    subscribers; return the report of ``subscribers import``: the totals line, then one
    line per invalid row (``source:line: address: reason``). A file that is not such a
    CSV raises :class:`~syndicate.csv_cells.CsvImportError` and imports nothing."""
    from .csv_cells import read_subscriber_csv  # csv: only for an import

    rows = read_subscriber_csv(text, source)
    result = ledger.add_subscribers(((row.email, row.name) for row in rows), status="active",
                                    source="import")
    invalid = sorted((rows[index].line, address, reason)
                     for index, address, reason in result.invalid)
    report = [f"{source}: {result.added} added, {result.present} already present, "
              f"{len(invalid)} invalid"]
    report += [f"  {source}:{line}: {address or '(empty)'}: {reason}"
               for line, address, reason in invalid]
    return report


__all__ = ["App", "LightApp", "config_problems", "import_subscriber_csv", "load_config",
           "parse_config"]
