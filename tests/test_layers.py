"""The shape of the package is kept by the tools: the import-linter contracts of
pyproject.toml (layers, channels below the pipeline, no cycle, no private import across
packages) hold, and loading the config stays light."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept() -> None:
    lint = shutil.which("lint-imports")
    if lint is None:  # installed with the test extra
        pytest.fail("lint-imports not found: pip install -e '.[test]'")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([lint, "--no-cache"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def _modules_after(code: str) -> list[str]:
    script = (f"import sys\n{code}\n"
              "print('\\n'.join(sorted(m for m in sys.modules "
              "if m.split('.')[0] in {'feedgen', 'mjml', 'requests', 'jinja2'} "
              "or m.startswith('syndicate.'))))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True, timeout=120)
    return out.stdout.split()


def test_the_config_imports_no_channel() -> None:
    loaded = _modules_after("import syndicate.config")
    assert not [m for m in loaded if m.startswith(("syndicate.channels", "syndicate.render"))]


def test_loading_the_config_loads_no_renderer_nor_http_library() -> None:
    """Validating a config imports the channel types it names, not what they send with."""
    loaded = _modules_after("import syndicate.app as app\n"
                            "app.load_config('config/syndicate.toml')")
    heavy = [m for m in loaded if m.split(".")[0] in {"feedgen", "mjml", "requests", "jinja2"}]
    assert heavy == []
    assert "syndicate.channels.feed" in loaded  # named by the shipped config
    assert "syndicate.channels.webhook" not in loaded  # not named: not imported
