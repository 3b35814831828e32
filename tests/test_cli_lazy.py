"""The command line imports a command's module only when that command runs (issue 13)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from syndicate.cli import cli
from syndicate.cli._group import COMMANDS, first_paragraph

HEAVY = ("pydantic", "numpy", "flask", "waitress", "feedgen", "jinja2", "dns", "dkim",
         "yaml", "rich", "syndicate.config", "syndicate.corpus", "syndicate.app")


def _imported_after(code: str) -> list[str]:
    probe = (f"import sys\n{code}\nimport json\n"
             f"print(json.dumps(sorted(m for m in sys.modules "
             f"if m.split('.')[0] in {HEAVY!r} or m in {HEAVY!r})))")
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                         text=True, env={**os.environ, "COLUMNS": "100"}).stdout
    return list(json.loads(out.splitlines()[-1]))


def test_importing_the_cli_imports_nothing_heavy() -> None:
    assert _imported_after("import syndicate.cli") == []


def test_help_lists_every_command_without_importing_them() -> None:
    code = ("import contextlib, io\nfrom syndicate.cli import cli\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            "    cli.main(['--help'], prog_name='syndicate')")
    assert _imported_after(code) == []


def test_a_command_imports_only_its_module() -> None:
    code = ("import contextlib, io\nfrom syndicate.cli import cli\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            "    cli.main(['init', '--help'], prog_name='syndicate')")
    imported = _imported_after(code)
    assert "flask" not in imported and "numpy" not in imported and "feedgen" not in imported


def test_the_help_table_matches_every_command() -> None:
    ctx = click.Context(cli)
    assert cli.list_commands(ctx) == sorted(COMMANDS)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None, name
        assert first_paragraph(command) == COMMANDS[name][1], name
    # nothing registered outside the table: it would be missing from --help until loaded
    assert set(cli.commands) == set(COMMANDS)


def _help(load_first: bool) -> str:
    code = ("import sys\nfrom syndicate.cli import cli\nimport click\n"
            + ("for name in cli.list_commands(click.Context(cli)):\n"
               "    cli.get_command(click.Context(cli), name)\n" if load_first else "")
            + "cli.main(['--help'], prog_name='syndicate')")
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": "80"}).stdout


def test_help_is_the_same_before_and_after_loading() -> None:
    cold = _help(load_first=False)
    assert "publish-next  Publish the next case study" in cold
    assert cold == _help(load_first=True)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert COMMANDS[name][1].split()[0] in result.output


def test_an_unknown_command_is_still_an_error() -> None:
    result = CliRunner().invoke(cli, ["publish-nxt"])
    assert result.exit_code == 2 and "No such command" in result.output
