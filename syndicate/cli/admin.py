"""``syndicate admin passwd``: the argon2id hash of an operator's password for ``[admin]``."""

from __future__ import annotations

import sys

import click

from ._group import cli


@cli.group("admin")
def admin_group() -> None:
    """The operator console under /admin/ of `syndicate serve` (docs/admin.md)."""


@admin_group.command("passwd")
def passwd() -> None:
    """Print the argon2id hash of a password, for [admin] operators.

    The password is read from a prompt on a terminal (typed twice, not echoed), else
    from the first line of stdin; never from the command line (it would stay in the
    shell history and be visible to every user in the process list).
    """
    from ..web.admin.auth import MIN_PASSWORD, hash_password  # argon2: this command only

    if sys.stdin.isatty():
        password = click.prompt("Mot de passe", hide_input=True, confirmation_prompt=True,
                                err=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD:
        raise click.ClickException(f"password too short: at least {MIN_PASSWORD} characters")
    click.echo(hash_password(password))
