"""``syndicate ledger migrate --to URL``: copy the SQLite ledger into PostgreSQL.

The source is the configured ``[storage] database`` (a SQLite file, never written); the
target a ``postgresql://`` URL. The copy is one transaction, verified by counts and
checksums before it commits (:mod:`syndicate.ledger._copy`); running it again on a target
that already holds the same rows says so and changes nothing.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import click

from ..ledger import copy_ledger
from ._group import AppContext, cli, pass_app


@cli.group("ledger")
def ledger_group() -> None:
    """Operate on the ledger itself (moving it to PostgreSQL)."""


def with_password_env(url: str, name: str | None) -> str:
    """``url`` with ``password_env=NAME`` added (the variable holding the password)."""
    if not name:
        return url
    joiner = "&" if urlsplit(url).query else "?"
    return f"{url}{joiner}password_env={name}"


@ledger_group.command("migrate")
@click.option("--to", "target", required=True, metavar="URL",
              help="The PostgreSQL ledger to fill: postgresql://user@host:port/database.")
@click.option("--force", is_flag=True,
              help="Replace the rows of a target that already holds a different ledger "
                   "(they are deleted, in the same transaction as the copy).")
@click.option("--password-env", metavar="NAME", default=None,
              help="The environment variable holding the target's password (else libpq's "
                   "PGPASSWORD or ~/.pgpass).")
@pass_app
def migrate_cmd(app: AppContext, target: str, force: bool, password_env: str | None) -> None:
    """Copy the configured SQLite ledger ([storage] database) into PostgreSQL.

    Copies editions, artefacts, deliveries, subscribers, confirmations and meta with
    their ids (not the web form's rate-limit counters), in one transaction, then checks
    row counts and checksums on both sides before committing: a failure leaves the target
    as it was. Safe to run twice: a target already holding the same rows is reported
    and left alone. A target holding other rows is refused unless --force. Stop `run`
    and `serve` first; afterwards point [storage] database at the URL.
    """
    report = copy_ledger(app.config.ledger_url, with_password_env(target, password_env),
                         force=force)
    if report.already:
        for table in report.tables:
            click.echo(f"{table.name}: {table.rows} rows, checksum ok")
        click.echo(f"already migrated, verified: {report.target} holds the same rows as "
                   f"{report.source}; nothing written")
        return
    if report.replaced:
        held = ", ".join(f"{n} {name}" for name, n in report.replaced.items())
        click.echo(f"replaced the target's rows (--force): {held}")
    for table in report.tables:
        click.echo(f"{table.name}: {table.rows} copied, checksum ok")
    total = sum(t.rows for t in report.tables)
    click.echo(f"migrated {total} rows from {report.source} to {report.target}, verified "
               f"(not copied: {', '.join(report.skipped)}); now set [storage] database to "
               "the URL")
