"""``run``: publish on the schedule until stopped (the daemon, :mod:`syndicate.daemon`)."""

from __future__ import annotations

import logging
import sys

import click

from ..errors import ConfigError, LockedError, SyndicateError
from ..logs import setup_logging
from ._group import AppContext, cli, pass_app


@cli.command("run")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Log lines for people (text) or machines (json).")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@pass_app
def run_cmd(app: AppContext, log_format: str, verbose: bool) -> None:
    """Publish on the schedule until stopped (SIGTERM or Ctrl-C); reload the config on change.

    One daemon per ledger: on SQLite a second one refuses; on PostgreSQL it waits as a
    standby and takes over within [schedule] failover if the leader dies. On start (or
    takeover) it finishes unfinished editions and catches up at most one missed slot
    (within [schedule] misfire_grace).
    """
    from ..daemon import Daemon  # lazy: the whole publishing stack, for this command only

    logger = setup_logging(log_format, level=logging.DEBUG if verbose else logging.INFO)
    try:
        code = Daemon(app.config).run()
    except SyndicateError as exc:
        if log_format == "json":  # on a terminal the error line below says it already
            if isinstance(exc, ConfigError):
                for problem in exc.problems:
                    logger.error(f"config error: {problem}",
                                 extra={"event": "config_error", "problem": problem})
            else:
                event = "locked_out" if isinstance(exc, LockedError) else "run_failed"
                logger.error(f"refusing to start: {exc}", extra={"event": event})
        raise
    sys.exit(code)
