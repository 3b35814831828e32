"""The ``syndicate`` click group and the context its commands receive.

Apart from :mod:`syndicate.cli`'s ``__init__`` so that the command modules can import it
without importing the package that imports them (no cycle): each command module adds its
commands to :data:`cli`, and ``syndicate/cli/__init__.py`` imports every command module.
"""

from __future__ import annotations

import os

import click

from ..app import load_config
from ..config import Config, config_path
from ..errors import SyndicateError


class AppContext:
    """Carried on the click context: the config path, loaded lazily (not every command needs it)."""

    def __init__(self, path: str | None) -> None:
        self.path = config_path(path)
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.path)
        return self._config


class _Group(click.Group):
    """Turns library errors into one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except SyndicateError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            # A bug, not a user error: still one line, the traceback on request.
            if os.environ.get("SYNDICATE_DEBUG"):
                raise
            click.echo(
                f"internal error: {type(exc).__name__}: {exc} "
                "(set SYNDICATE_DEBUG=1 for the traceback)",
                err=True,
            )
            ctx.exit(70)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_file",
    metavar="PATH",
    envvar="SYNDICATE_CONFIG",
    default=None,
    help="Config file (default: config/syndicate.toml; env SYNDICATE_CONFIG).",
)
@click.version_option(package_name="syndicate")
@click.pass_context
def cli(ctx: click.Context, config_file: str | None) -> None:
    """syndicate: publish a corpus of case studies as feeds, emails and webhooks."""
    ctx.obj = AppContext(config_file)


pass_app = click.make_pass_decorator(AppContext)


__all__ = ["AppContext", "cli", "pass_app"]
