"""``syndicate bounces fetch``: read the bounce mailbox once (docs/deliverability.md).

Prints one summary line; each message that could not be used (unreadable, not a
report, attributed to nobody, a forged token, too large) gets one log line on stderr
and is moved to the mailbox's ``unparsed`` folder (a Maildir's ``.unparsed``). ``run``
does the same every ``[bounces] poll_interval``.
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
    """Process the bounce mailbox (Maildir or IMAP) once; one summary line.

    Exit status 1 when the connection dropped mid-pass (what was recorded stays
    recorded; the rest waits in the inbox for the next pass).
    """
    from pathlib import Path

    from ..bounces.poller import process_configured
    from ..logs import setup_logging

    setup_logging()
    config = app.config
    settings = config.bounces
    if maildir is None and not (settings.maildir or settings.imap_host):
        raise SyndicateError("[bounces] has no mailbox: set maildir or imap_host (where the "
                             "bounce address is delivered; see docs/deliverability.md)")
    secret = secret_from_env(required=True)
    log = logging.getLogger("syndicate.bounces")
    with App(config).open_ledger() as ledger:
        summary = process_configured(
            config, ledger, secret, maildir=Path(maildir) if maildir else None, logger=log,
            unsubscribed=lambda who: log.info("unsubscribed %s (mailto)", who))
    click.echo(summary.line())
    if summary.lost:
        raise click.exceptions.Exit(1)
