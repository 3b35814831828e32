"""``syndicate bounces fetch``: read the bounce mailbox once (docs/deliverability.md).

Prints one summary line; each message that could not be used (unreadable, not a
report, attributed to nobody, a forged token, too large) gets one log line on stderr
and is moved to the Maildir's ``.unparsed`` folder. ``run`` does the same every
``[bounces] poll_interval``.
"""

from __future__ import annotations

import logging

import click

from ..app import App
from ..errors import SyndicateError
from ..tokens import secret_from_env
from ._group import AppContext, cli, pass_app


@cli.group("bounces")
def bounces_group() -> None:
    """Bounces and complaints that arrive by mail after the send."""


@bounces_group.command("fetch")
@click.option("--maildir", type=click.Path(file_okay=False), default=None,
              help="Read this Maildir instead of [bounces] maildir.")
@pass_app
def fetch_cmd(app: AppContext, maildir: str | None) -> None:
    """Process every message of the bounce Maildir once; one summary line."""
    from pathlib import Path

    from ..bounces import process_maildir
    from ..logs import setup_logging

    setup_logging()
    config = app.config
    settings = config.bounces
    if maildir is None and not settings.maildir:
        raise SyndicateError("[bounces] maildir is not set (the Maildir the bounce address "
                             "is delivered to; see docs/deliverability.md)")
    path = Path(maildir) if maildir is not None else config.resolve(Path(settings.maildir))
    secret = secret_from_env(required=True)
    log = logging.getLogger("syndicate.bounces")
    with App(config).open_ledger() as ledger:
        summary = process_maildir(ledger, settings, path, secret, logger=log,
                                  unsubscribed=lambda who: log.info(
                                      "unsubscribed %s (mailto)", who))
    click.echo(summary.line())
