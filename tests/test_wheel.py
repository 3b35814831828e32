"""The built wheel works anywhere: installed in a fresh venv outside the checkout, it
scaffolds a publication (``init --example``) that publishes, serves and runs.

Dependencies come from the current environment (``--system-site-packages``) so nothing is
downloaded; ``PYTHONPATH`` is unset and the working folder is outside the repository, so
the only ``syndicate`` importable is the one the wheel installed (the editable install of
the surrounding environment comes after it on the import path).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
from conftest import EXAMPLE_CORPUS, ROOT

pytestmark = pytest.mark.slow

PACKAGE_TEMPLATES = ROOT / "syndicate" / "templates"
#: What the wheel is built from: the package and its metadata, nothing the tests leave.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", "build", "dist", "*.egg-info", "node_modules", ".venv", "__pycache__", ".*_cache",
    ".hypothesis", ".benchmarks", "tests", "bench", "var", "public", "preview",
)


def _run(command: list[str], cwd: Path, env: dict[str, str], timeout: float = 120,
         ) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert done.returncode == 0, f"{command}: exit {done.returncode}\n{done.stdout}{done.stderr}"
    return done


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as response:
        return int(response.status)


def _wait_for_line(log: Path, proc: subprocess.Popen[bytes], wanted: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8", errors="replace")
        if wanted in text:
            return text
        assert proc.poll() is None, f"exited ({proc.returncode}) before {wanted!r}:\n{text}"
        time.sleep(0.1)
    raise AssertionError(f"no {wanted!r} after {timeout}s:\n{log.read_text()}")


def _stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def test_wheel_installed_in_a_fresh_venv_runs_init_publish_serve_and_run(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "SYNDICATE_CONFIG", "PYTHONHOME", "VIRTUAL_ENV"}}
    env["SYNDICATE_SECRET"] = "wheel-test-secret-0123456789abcdef"
    env["PYTHONUNBUFFERED"] = "1"

    # Build from a copy of the sources: a build in the checkout would leave build/ there
    # (and a stale build/lib could hide a file missing from the package data).
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=_NOT_SOURCE)
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
          "-w", str(dist), str(source)], cwd=tmp_path, env=env)
    (wheel,) = dist.glob("syndicate-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = sorted(PACKAGE_TEMPLATES.rglob("*.j2"))
    assert len(shipped) >= 15
    assert sorted(n for n in names if n.startswith("syndicate/templates/")) == [
        f"syndicate/templates/{path.relative_to(PACKAGE_TEMPLATES)}" for path in shipped]
    for path in EXAMPLE_CORPUS.glob("*.md"):
        assert f"syndicate/examples/corpus/{path.name}" in names
    assert "syndicate/render/precompiled.json" in names  # the shipped templates, compiled

    # A venv outside the checkout; pip and the dependencies come from the system site.
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
         cwd=tmp_path, env=env)
    python = venv / "bin" / "python"
    # --ignore-installed: never touch the surrounding environment's (editable) install.
    _run([str(python), "-m", "pip", "install", "--no-deps", "--ignore-installed", "-q",
          str(wheel)], cwd=tmp_path, env=env)
    work = tmp_path / "work"
    work.mkdir()
    where = _run([str(python), "-c", "import syndicate; print(syndicate.__file__)"],
                 cwd=work, env=env).stdout.strip()
    assert Path(where).is_relative_to(venv), where
    assert not Path(where).is_relative_to(ROOT)

    made = _run([str(python), "-m", "syndicate", "init", "site", "--example"], cwd=work, env=env)
    assert "cd site" in made.stdout
    site = work / "site"
    assert len(list((site / "corpus").glob("*.md"))) == 10
    assert not (site / "templates").exists()

    # The console script, from inside the folder, with no --config.
    syndicate = str(venv / "bin" / "syndicate")
    published = _run([syndicate, "publish-next"], cwd=site, env=env)
    assert published.stdout.startswith("complete: published edition #1"), published.stdout
    assert list((site / "var" / "outbox" / "new").iterdir())
    assert (site / "public" / "feed.xml").is_file()
    assert list((site / "var" / "cache" / "templates").glob("*.cache"))  # kept for the next

    port = _free_port()
    log = tmp_path / "serve.log"
    server = subprocess.Popen([syndicate, "serve", "--port", str(port)], cwd=site, env=env,
                              stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    try:
        _wait_for_line(log, server, "serving http://127.0.0.1:", 30)
        assert _get(f"http://127.0.0.1:{port}/") == 200
        assert _get(f"http://127.0.0.1:{port}/feed.xml") == 200
    finally:
        assert _stop(server) == 0, log.read_text()

    slots = _run([syndicate, "schedule", "--count", "3"], cwd=site, env=env)
    assert len([line for line in slots.stdout.splitlines() if line.strip()]) >= 3

    log = tmp_path / "run.log"
    daemon = subprocess.Popen([syndicate, "run", "--log-format", "json"], cwd=site, env=env,
                              stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    try:
        _wait_for_line(log, daemon, '"event": "scheduled"', 30)
    finally:
        assert _stop(daemon) == 0, log.read_text()
    events = [json.loads(line)["event"] for line in log.read_text().splitlines()
              if line.startswith("{")]
    assert events[-1] == "stopped", events
