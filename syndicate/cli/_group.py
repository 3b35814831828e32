"""The ``syndicate`` click group and the context its commands receive.

Apart from :mod:`syndicate.cli`'s ``__init__`` so that the command modules can import it
without importing the package that imports them (no cycle): each command module adds its
commands to :data:`cli` when imported. The group imports a command's module only when that
command is invoked (click's lazy-group pattern): ``syndicate queue`` does not import the web
app, the renderers or the DNS checks, and ``syndicate --help`` lists the commands from
:data:`COMMANDS` without importing any of them.
"""

from __future__ import annotations

import gc
import inspect
import os
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import import_module
from typing import TYPE_CHECKING

import click
from click.utils import make_default_short_help

from ..errors import SyndicateError

if TYPE_CHECKING:
    from ..config import Config
    from ..config_snapshot import ConfigSnapshot

# name -> (module under syndicate.cli that registers it, the first paragraph of its help).
# The help is what ``syndicate --help`` shows without importing the module; a test checks
# it against the command's own docstring.
COMMANDS: dict[str, tuple[str, str]] = {
    "admin": ("admin", "The operator console under /admin/ of `syndicate serve` "
                       "(docs/admin.md)."),
    "bounces": ("bounces", "Bounces and complaints that arrive by mail after the send."),
    "config": ("config", "The configuration file: check it, show it, document it."),
    "corpus": ("corpus", "The case studies: list, check, import scraped pages."),
    "deliveries": ("deliveries", "Per-channel counts (sent, failed, bounced, skipped, "
                                 "pending) and the failures."),
    "doctor": ("doctor", "Check SPF, DKIM, DMARC, one-click unsubscribe, list headers and "
                         "size; exit 1 on a fail."),
    "edition": ("deliveries", "One edition's sending: resume it after the circuit breaker "
                              "paused it."),
    "init": ("init", "Create a new publication in DIRECTORY: a commented config, a corpus "
                     "folder."),
    "ledger": ("ledger", "Operate on the ledger itself (moving it to PostgreSQL)."),
    "preview": ("publish", "Render a case study (default: the next one) without publishing "
                           "it."),
    "publish-next": ("publish", "Publish the next case study through every configured "
                                "channel."),
    "queue": ("overview", "List the case studies still to publish, in the order they will go "
                         "out."),
    "republish": ("republish", "Take the corpus file's current text (a typo fix) for the "
                               "published edition SLUG."),
    "resume": ("publish", "Finish unfinished editions only (nothing new is published)."),
    "retry-failed": ("deliveries", "Send the failed deliveries again (of EDITION, or of "
                                   "every edition)."),
    "run": ("run", "Publish on the schedule until stopped (SIGTERM or Ctrl-C); reload "
                        "the config on change."),
    "schedule": ("schedule", "List the next slots and the case study each will publish."),
    "serve": ("serve", "Serve the archive and feeds, one-click unsubscribe and the subscribe "
                       "form."),
    "status": ("overview", "Last editions, what is next, totals; warnings about published "
                          "files gone or changed."),
    "subscribers": ("subscribers", "The subscriber list: add, import, list, remove, export."),
    "worker": ("worker", "Claim and send the delivery rows handed to the workers, on any "
                         "machine sharing the ledger: batches under a lease renewed by a "
                         "heartbeat; a killed worker's rows are taken over by the others. "
                         "SIGTERM finishes the messages in flight and exits 0."),
}


def first_paragraph(command: click.Command) -> str:
    """The text ``--help`` shortens into a command's line (click's own rule)."""
    return " ".join(inspect.cleandoc(command.help or "").split("\n\n")[0].split())


class AppContext:
    """Carried on the click context: the config path, loaded lazily (not every command needs
    it): :attr:`config` validates the whole file; :attr:`settings` is what the light
    commands read, from the validated-config snapshot while the file is unchanged."""

    def __init__(self, path: str | None) -> None:
        from ..config_snapshot import config_path  # not syndicate.config: no pydantic here

        self.path = config_path(path)
        self._config: Config | None = None
        self._settings: ConfigSnapshot | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            from ..app import load_config  # the channels and the ledger: not for --help

            self._config = load_config(self.path)
        return self._config

    @property
    def settings(self) -> ConfigSnapshot:
        """The settings of ``queue``, ``status``, ``schedule``, ``corpus``: the snapshot of
        the last validation of these very bytes (no pydantic, no channels), else the
        validated :attr:`config` (same errors as every command), whose snapshot is then
        kept for the next runs (syndicate.config_snapshot; a cache never fails a command)."""
        if self._settings is None:
            self._settings = self._load_settings()
        return self._settings

    def _load_settings(self) -> ConfigSnapshot:
        from .. import config_snapshot

        raw: bytes | None = None
        if self._config is None:
            try:
                raw = self.path.read_bytes()
            except OSError:
                pass  # the validation below says what is wrong, as every command does
            else:
                snapshot = config_snapshot.load_snapshot(self.path, raw)
                if snapshot is not None:
                    return snapshot
        from ..config import snapshot_of  # validated below: pydantic is loaded by then

        snapshot = snapshot_of(self.config)
        if raw is not None:
            config_snapshot.save_snapshot(self.path, raw, snapshot)
        return snapshot


class _Group(click.Group):
    """Turns library errors into one line on stderr and exit status 1; loads the top-level
    commands from :data:`COMMANDS` on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            # The module registers its commands on this group when imported.
            import_module(f"{__package__}.{COMMANDS[cmd_name][0]}")
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's listing, with the help of commands not yet imported from the table."""
        names = [name for name in self.list_commands(ctx)
                 if name not in self.commands or not self.commands[name].hidden]
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            loaded = self.commands.get(name)
            text = (loaded.get_short_help_str(limit) if loaded is not None
                    else make_default_short_help(COMMANDS[name][1], limit))
            rows.append((name, text))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

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


@contextmanager
def short_lived() -> Iterator[None]:
    """The body of a read-only command that runs for a fraction of a second (``queue``,
    ``status``, ``schedule``, ``corpus list``/``check``), without the cyclic garbage
    collector: such a command builds its objects once (the columns of a 10,000-row corpus
    index) and holds them until it exits, so the collector's passes over them (about 40,
    4 ms at 10,000 case studies) free nothing. Reference counting frees the rest as
    always; the collector is turned back on after (a test runs commands in its process)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


__all__ = ["AppContext", "cli", "pass_app", "short_lived"]
