"""``config check|show|docs``: the configuration file, checked, shown and documented."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..app import config_problems
from ..channels import channel_settings_models
from ..config import SECTIONS, Config, reference_markdown
from ..fs import write_atomic
from ..schedule import describe, next_slots, zone
from ._group import AppContext, cli, pass_app

if TYPE_CHECKING:
    from tomlkit import TOMLDocument
    from tomlkit.items import Table

DOCS_PATH = Path("docs/configuration.md")
MASK = "********"
_SECRET_NAMES = ("password", "secret", "token")


@cli.group("config")
def config_group() -> None:
    """The configuration file: check it, show it, document it."""


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
    slots = next_slots(config, datetime.now(UTC), 1)
    nxt = describe(slots[0], zone(config.schedule.timezone)) if slots else "never"
    names = ", ".join(c.name for c in config.channels) or "none"
    click.echo(f"{app.path}: OK ({len(config.channels)} channel(s): {names}; next slot {nxt})")


# --------------------------------------------------------------------------- show


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
    data: dict[str, Any] = {}
    for name in SECTIONS:
        data[name] = _plain(getattr(config, name).model_dump(by_alias=True), config)
    data["channels"] = [_plain(c.model_dump(by_alias=True), config) for c in config.channels]
    return _mask(data)  # type: ignore[no-any-return]


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def to_toml(data: dict[str, Any], header: str = "") -> str:
    """``data`` (the config's shape: tables, arrays of tables, scalars) as TOML, by tomlkit.

    A key whose value is ``None`` (TOML has no null) becomes the comment ``# key is not set``,
    where the operator would write it; ``header`` is a comment line on top.
    """
    # Lazy: tomlkit is only needed by `config show`, and every command imports this module.
    import tomlkit

    def fill(table: TOMLDocument | Table, values: dict[str, Any]) -> None:
        # Scalars first, then sub-tables and arrays of tables: a key after a [table]
        # header would belong to that table.
        for key, value in values.items():
            if value is None:
                table.add(tomlkit.comment(f"{key} is not set"))
            elif not isinstance(value, dict) and not _is_table_array(value):
                table.add(key, value)
        for key, value in values.items():
            if isinstance(value, dict):
                sub = tomlkit.table()
                fill(sub, value)
                table.add(key, sub)
            elif _is_table_array(value):
                array = tomlkit.aot()
                for item in value:
                    entry = tomlkit.table()
                    fill(entry, item)
                    array.append(entry)
                table.add(key, array)

    document = tomlkit.document()
    fill(document, data)
    # The header goes on the line right above the first table (tomlkit would space them).
    return (f"# {header}\n" if header else "") + tomlkit.dumps(document)


@config_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of TOML.")
@pass_app
def show_cmd(app: AppContext, as_json: bool) -> None:
    """Print the effective config: defaults filled in, paths resolved, secrets masked."""
    data = effective_config(app.config)
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        click.echo(to_toml(data, f"effective configuration of {app.config.path}"), nl=False)


# --------------------------------------------------------------------------- docs


@config_group.command("docs")
@click.option("--check", is_flag=True, help="Exit 1 if the file is out of date; write nothing.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              default=DOCS_PATH, show_default=True, help="Where the reference goes.")
def docs_cmd(check: bool, output: Path) -> None:
    """Generate the reference of every config key (docs/configuration.md) from the code."""
    text = reference_markdown(channel_settings_models())
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
