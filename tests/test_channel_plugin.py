"""Channel types come from the ``syndicate.channels`` entry points: a package installed
next to syndicate adds one without touching this repository (docs/channels.md), and the
built-ins are found the same way."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT, Project

from syndicate.channels import channel_registry
from syndicate.channels._registry import BUILTINS, ChannelRegistry, Source
from syndicate.errors import PluginError

ECHO_MODULE = '''
"""A tiny third-party channel: writes the edition's slug to a file, once per edition."""

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from syndicate.channels import ChannelSettings, DeliveryJob, DeliveryReport


class EchoSettings(ChannelSettings):
    """``type = "echo"``: one line per edition in a file."""

    path: str = Field("echo.txt", description="File the slugs are appended to.")


class EchoChannel:
    type_name: ClassVar[str] = "echo"
    Settings: ClassVar[type[ChannelSettings]] = EchoSettings

    def __init__(self, settings: EchoSettings, config) -> None:
        self.settings = settings
        self.config = config

    def deliver(self, job: DeliveryJob) -> DeliveryReport:
        run = job.book.run(self.settings.name)
        row = run.row()
        done = run.settled(row, "already echoed")
        if done is not None:
            return done
        path = self.config.resolve(Path(self.settings.path))
        with path.open("a", encoding="utf-8") as out:
            out.write(f"#{job.edition.number} {job.view.slug}\\n")
        run.sent(row, f"appended to {path.name}")
        return run.report(f"appended to {path}")
'''

ECHO_PYPROJECT = '''
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "syndicate-echo"
version = "0.1"

[project.entry-points."syndicate.channels"]
echo = "syndicate_echo:EchoChannel"
broken = "syndicate_echo_missing:Nope"

[tool.setuptools]
py-modules = ["syndicate_echo"]
'''


@pytest.fixture(scope="module")
def echo_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a venv (seeing this machine's packages) with the echo package."""
    root = tmp_path_factory.mktemp("plugin")
    package = root / "syndicate-echo"
    package.mkdir()
    (package / "pyproject.toml").write_text(textwrap.dedent(ECHO_PYPROJECT), encoding="utf-8")
    (package / "syndicate_echo.py").write_text(textwrap.dedent(ECHO_MODULE), encoding="utf-8")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--no-index", str(package)],
                   check=True, timeout=300, capture_output=True)
    return python


def _run(python: Path, project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SYNDICATE_CONFIG": str(project.config_path)}
    env.pop("SYNDICATE_SECRET", None)
    return subprocess.run([str(python), "-m", "syndicate", *args], capture_output=True,
                          text=True, env=env, cwd=project.root, timeout=300)


@pytest.mark.slow
def test_an_installed_package_adds_a_channel_type(echo_python: Path, project: Project) -> None:
    project.write_config(channels=[{"type": "feed"}, {"type": "echo", "path": "../var/echo.txt"}])
    check = _run(echo_python, project, "config", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "2 channel(s): feed, echo;" in check.stdout

    first = _run(echo_python, project, "publish-next")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "echo: 1 sent" in first.stdout
    echoed = (project.var / "echo.txt").read_text(encoding="utf-8").splitlines()
    assert len(echoed) == 1 and echoed[0].startswith("#1 ")
    second = _run(echo_python, project, "publish-next")
    assert second.returncode == 0, second.stdout + second.stderr
    assert [line.split()[0] for line in
            (project.var / "echo.txt").read_text(encoding="utf-8").splitlines()] == ["#1", "#2"]



@pytest.mark.slow
def test_a_broken_plugin_is_one_line_naming_its_package(echo_python: Path,
                                                       project: Project) -> None:
    project.write_config(channels=[{"type": "broken"}])
    result = _run(echo_python, project, "config", "check")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "error: channel type 'broken' (syndicate_echo_missing:Nope, from the package "
        "syndicate-echo) cannot be loaded: ModuleNotFoundError: No module named "
        "'syndicate_echo_missing'"
    ], result.stderr
    # Installed but unused, it is never imported: other configs load as usual.
    project.write_config(channels=[{"type": "feed"}])
    assert _run(echo_python, project, "config", "check").returncode == 0
    # The reference documents every installed type: it cannot skip a broken one.
    docs = _run(echo_python, project, "config", "docs", "-o", str(project.root / "ref.md"))
    assert docs.returncode == 1 and docs.stderr.strip() == lines[0]


def test_the_builtins_are_registered_like_plugins() -> None:
    registry = channel_registry()
    assert set(BUILTINS) <= set(registry.types())
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    import tomllib

    declared = tomllib.loads(text)["project"]["entry-points"]["syndicate.channels"]
    assert declared == dict(BUILTINS)
    for name in BUILTINS:
        assert registry.channel_class(name).type_name == name


def test_a_class_that_is_not_a_channel_is_refused() -> None:
    registry = ChannelRegistry({"odd": Source("odd", "pathlib:Path", "odd-package")})
    assert registry.types() == ["odd"]  # listed without importing anything
    with pytest.raises(PluginError, match=r"'odd' \(pathlib:Path, from the package "
                                          r"odd-package\) is not a channel"):
        registry.channel_class("odd")
    mismatch = ChannelRegistry({"rss": Source("rss", BUILTINS["feed"], "x")})
    with pytest.raises(PluginError, match="declares type_name = 'feed': expected 'rss'"):
        mismatch.settings_models()["rss"]
