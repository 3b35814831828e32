"""``syndicate republish SLUG``: publish the correction of a published case study."""

from __future__ import annotations

import click

from ..app import App
from ._group import AppContext, cli, pass_app


@cli.command("republish")
@click.argument("slug")
@click.option("--dry-run", is_flag=True, help="Say what changed and what would be rewritten; "
              "write nothing.")
@pass_app
def republish_cmd(app: AppContext, slug: str, dry_run: bool) -> None:
    """Take the corpus file's current text (a typo fix) for the published edition SLUG.

    Rewrites its archive page, the index and company pages it appears in and the feeds;
    sends nothing. The edition keeps its number, date, URL (feed GUID) and links.
    """
    from ..republish import republish

    result = republish(app.config, slug, dry_run=dry_run, ledger=App(app.config).open_ledger)
    for line in result.lines():
        click.echo(line)
