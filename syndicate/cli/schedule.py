"""``schedule``, ``run`` and ``config check|show|docs``: the operator's commands."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from ..app import App
from ..config import Config, load_config, reference_markdown, secret_problems
from ..errors import ConfigError, LockedError, SyndicateError
from . import AppContext, cli, pass_app

DOCS_PATH = Path("docs/configuration.md")
MASK = "********"
_SECRET_NAMES = ("password", "secret", "token")


# --------------------------------------------------------------------------- schedule


def _queue(config: Config) -> list[Any]:
    """Case studies still to publish, in order (the ledger is read only if it exists)."""
    from .. import pipeline
    from ..corpus import load

    corpus = load(config.corpus_dir)
    published: set[str] = set()
    app = App(config)
    if app.ledger_exists():  # listing the schedule must not create a ledger
        with app.open_ledger() as ledger:
            published = ledger.published_slugs()
    return pipeline.queue(corpus, published)


@cli.command("schedule")
@click.option("--count", "-n", default=5, show_default=True, type=click.IntRange(1, 1000),
              help="How many slots to list.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of {slot, slug, ...}.")
@click.option("--iso", is_flag=True, help="Show dates as ISO 8601 instead of French.")
@click.option("--after", metavar="DATETIME", default=None,
              help="List slots after this ISO 8601 moment instead of now (e.g. 2026-12-01T00:00"
                   "+01:00; without an offset, in the schedule's time zone).")
@pass_app
def schedule_cmd(app: AppContext, count: int, as_json: bool, iso: bool, after: str | None) -> None:
    """List the next slots and the case study each will publish."""
    from ..schedule import describe, next_slots, slot_key, zone

    config = app.config
    tz = zone(config.schedule.timezone)
    if after:
        try:
            start = datetime.fromisoformat(after)
        except ValueError:
            raise click.BadParameter(f"{after!r} is not an ISO 8601 date/time",
                                     param_hint="--after") from None
        if start.tzinfo is None:
            start = start.replace(tzinfo=tz)
    else:
        start = datetime.now(UTC)
    slots = next_slots(config, start, count)
    queue = _queue(config)
    rows = []
    for index, slot in enumerate(slots):
        case = queue[index] if index < len(queue) else None
        local = slot.astimezone(UTC).astimezone(tz)
        rows.append({
            "slot": local.isoformat(),
            "key": slot_key(slot, tz),
            "local": describe(slot, tz),
            "slug": case.slug if case else None,
            "title": case.title if case else None,
        })
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    click.echo(f"cron {config.schedule.cron!r} in {config.schedule.timezone}; "
               f"{len(queue)} case stud{'y' if len(queue) == 1 else 'ies'} in the queue")
    for row, slot in zip(rows, slots, strict=True):
        when = describe(slot, tz, "iso" if iso else "fr")
        what = f"{row['slug']}  {row['title']}" if row["slug"] else "(queue empty)"
        click.echo(f"  {when}  {what}")


# --------------------------------------------------------------------------- run


@cli.command("run")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Log lines for people (text) or machines (json).")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@pass_app
def run_cmd(app: AppContext, log_format: str, verbose: bool) -> None:
    """Publish on the schedule until stopped (SIGTERM or Ctrl-C); reload the config on change.

    One daemon per ledger. On start it finishes unfinished editions and catches up
    at most one missed slot (within [schedule] misfire_grace).
    """
    import logging

    from ..daemon import Daemon
    from ..logs import setup_logging

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


# --------------------------------------------------------------------------- config


@cli.group("config")
def config_group() -> None:
    """The configuration file: check it, show it, document it."""


def config_problems(path: Path) -> tuple[Config | None, list[str]]:
    """Every problem with the config at ``path``: schema errors, then missing secrets."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        return None, exc.problems + secret_problems(path, getattr(exc, "channels", ()))
    return config, App(config).ledger_problems() + secret_problems(path, enumerate(config.channels))


@config_group.command("check")
@pass_app
def check_cmd(app: AppContext) -> None:
    """Validate the config file and its secrets; print every problem; exit 1 if any."""
    config, problems = config_problems(app.path)
    if problems:
        for problem in problems:
            click.echo(problem)
        click.echo(f"{len(problems)} problem(s) in {app.path}", err=True)
        raise click.exceptions.Exit(1)
    assert config is not None
    from ..schedule import describe, next_slots, zone

    slots = next_slots(config, datetime.now(UTC), 1)
    nxt = describe(slots[0], zone(config.schedule.timezone)) if slots else "never"
    names = ", ".join(c.name for c in config.channels) or "none"
    click.echo(f"{app.path}: OK ({len(config.channels)} channel(s): {names}; next slot {nxt})")


def _is_secret(key: str) -> bool:
    # *_env keys hold the NAME of a variable (fine to show); a key that would hold
    # the secret itself is masked whatever it holds.
    if key.endswith("_env"):
        return False
    return key in _SECRET_NAMES or key.endswith(tuple(f"_{n}" for n in _SECRET_NAMES))


def _mask(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: (MASK if _is_secret(k) and v else _mask(v)) for k, v in data.items()}
    if isinstance(data, list):
        return [_mask(v) for v in data]
    return data


def _plain(value: Any, config: Config) -> Any:
    if isinstance(value, Path):
        return str(config.resolve(value))
    if isinstance(value, dict):
        return {k: _plain(v, config) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, config) for v in value]
    return value


def effective_config(config: Config) -> dict[str, Any]:
    """The config with defaults filled in, paths resolved and secrets masked."""
    from ..config import SECTIONS

    data: dict[str, Any] = {}
    for name in SECTIONS:
        data[name] = _plain(getattr(config, name).model_dump(by_alias=True), config)
    data["channels"] = [_plain(c.model_dump(by_alias=True), config) for c in config.channels]
    return _mask(data)  # type: ignore[no-any-return]


def _toml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_scalar(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a valid TOML basic string


def to_toml(data: dict[str, Any]) -> str:
    """A small TOML writer for the config's shape (tables, arrays of tables, scalars)."""
    lines: list[str] = []

    def table(prefix: str, values: dict[str, Any], header: str | None) -> None:
        if header is not None:
            if lines:
                lines.append("")
            lines.append(header)
        for key, value in values.items():
            if value is None:
                lines.append(f"# {key} is not set")
            elif not isinstance(value, dict) and not _is_table_array(value):
                lines.append(f"{key} = {_toml_scalar(value)}")
        for key, value in values.items():
            name = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict):
                table(name, value, f"[{name}]")
            elif _is_table_array(value):
                for item in value:
                    table(name, item, f"[[{name}]]")

    table("", data, None)
    return "\n".join(lines) + "\n"


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


@config_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of TOML.")
@pass_app
def show_cmd(app: AppContext, as_json: bool) -> None:
    """Print the effective config: defaults filled in, paths resolved, secrets masked."""
    data = effective_config(app.config)
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        click.echo(f"# effective configuration of {app.config.path}", nl=True)
        click.echo(to_toml(data), nl=False)


@config_group.command("docs")
@click.option("--check", is_flag=True, help="Exit 1 if the file is out of date; write nothing.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              default=DOCS_PATH, show_default=True, help="Where the reference goes.")
def docs_cmd(check: bool, output: Path) -> None:
    """Generate the reference of every config key (docs/configuration.md) from the code."""
    from ..corpus import write_atomic

    text = reference_markdown()
    current = output.read_text(encoding="utf-8") if output.exists() else None
    if check:
        if current != text:
            click.echo(f"{output} is out of date: run `syndicate config docs`", err=True)
            raise click.exceptions.Exit(1)
        click.echo(f"{output} is up to date")
        return
    if current == text:
        click.echo(f"{output} is up to date")
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(output, text)
    click.echo(f"wrote {output}")
