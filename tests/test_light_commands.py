"""The light commands (queue, status, schedule, corpus) read the validated-config snapshot
instead of validating the config file on every run (issue 13): same output, same errors,
no pydantic and no channels on a warm run. Real files, real subprocesses."""

from __future__ import annotations

import json
import marshal
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, Project

from syndicate.app import load_config, parse_config
from syndicate.config import snapshot_of
from syndicate.config_snapshot import (
    FORMAT,
    SUFFIX,
    ConfigSnapshot,
    load_snapshot,
    save_snapshot,
    snapshot_file,
)
from syndicate.errors import ConfigError

pytestmark = pytest.mark.slow

AFTER = ["--after", "2026-12-01T00:00"]
#: Each light command, as an operator types it.
COMMANDS = [["queue"], ["queue", "--json"], ["status"], ["status", "--json"],
            ["schedule", "-n", "3", *AFTER], ["schedule", "-n", "3", "--json", *AFTER],
            ["corpus", "list", "--json"], ["corpus", "check"]]
#: What a warm light command must not import (the config models, the channel stack, the
#: bounce parsers, the publishing stack, APScheduler).
HEAVY = ("pydantic", "syndicate.config", "syndicate.channels._base",
         "syndicate.channels._registry", "syndicate.channels._bookkeeping", "syndicate.bounces",
         "syndicate.pipeline", "numpy", "jinja2", "apscheduler", "email_validator")

# Runs ``python -m syndicate ARGS`` in this process, then prints the heavy modules it
# imported on stderr (after the command's own output).
_PROBE = """
import runpy, sys
heavy = tuple(sys.argv[1].split(","))  # no json here: the probe watches it
sys.argv = ["syndicate", *sys.argv[2:]]
try:
    runpy.run_module("syndicate", run_name="__main__")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
loaded = sorted(m for m in sys.modules if m in heavy or m.startswith(tuple(h + "." for h in heavy)))
print("HEAVY " + ",".join(loaded), file=sys.stderr)
sys.exit(code)
"""


def _env(xdg: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(xdg),
            "COLUMNS": "120"}


def run(config: Path, args: list[str], xdg: Path,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "syndicate", "--config", str(config), *args],
                          capture_output=True, text=True, env=_env(xdg), cwd=cwd, check=False)


def probe(config: Path, args: list[str], xdg: Path,
          watched: tuple[str, ...] = HEAVY) -> tuple[str, list[str]]:
    """The command's stdout and the ``watched`` modules (default: the heavy ones) it
    imported."""
    done = subprocess.run([sys.executable, "-c", _PROBE, ",".join(watched), "--config",
                           str(config), *args],
                          capture_output=True, text=True, env=_env(xdg), check=False)
    assert done.returncode == 0, done.stderr
    line = [x for x in done.stderr.splitlines() if x.startswith("HEAVY ")][-1]
    return done.stdout, [name for name in line.removeprefix("HEAVY ").split(",") if name]


def edit_in_place(path: Path, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` (same length) and put the file's mtime back: only the
    bytes tell the edit."""
    assert len(old.encode()) == len(new.encode())
    info = path.stat()
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert path.stat().st_size == info.st_size and path.stat().st_mtime_ns == info.st_mtime_ns


def copy_config(published: Path, tmp_path: Path) -> Path:
    """A copy of ``published``'s config in a folder of its own (its corpus linked)."""
    config = tmp_path / "site" / "config" / "syndicate.toml"
    config.parent.mkdir(parents=True)
    config.write_bytes(published.read_bytes())
    (tmp_path / "site" / "corpus").symlink_to(published.parent.parent / "corpus")
    return config


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site with one published edition (so `status` has something to show); its config."""
    import shutil

    root = tmp_path_factory.mktemp("light") / "site"
    shutil.copytree(ROOT / "config", root / "config")
    shutil.copytree(ROOT / "syndicate" / "examples" / "corpus", root / "corpus")
    Project(root).write_config(site={"base_url": "https://cas.example.org/"})
    config = root / "config" / "syndicate.toml"
    done = run(config, ["publish-next"], tmp_path_factory.mktemp("xdg-publish"))
    assert done.returncode == 0, done.stderr
    return config


def test_the_light_commands_say_the_same_with_and_without_the_snapshot(
    published: Path, tmp_path: Path
) -> None:
    unwritable = tmp_path / "a-file"  # a cache folder below a file: nothing can be kept
    unwritable.write_text("", encoding="utf-8")
    xdg = tmp_path / "xdg"
    for args in COMMANDS:
        without = run(published, args, unwritable / "cache")
        first = run(published, args, xdg)  # validates, keeps the snapshot
        warm = run(published, args, xdg)  # reads it
        assert without.returncode == 0, without.stderr
        assert (first.stdout, first.stderr, first.returncode) == (
            without.stdout, without.stderr, 0), args
        assert (warm.stdout, warm.stderr, warm.returncode) == (
            without.stdout, without.stderr, 0), args
    assert json.loads(run(published, ["status", "--json"], xdg).stdout)["totals"]["published"] == 1
    kept = xdg / "syndicate" / "configs"
    assert [p.suffix for p in kept.iterdir()] == [SUFFIX]  # one config file, one snapshot


def test_a_warm_light_command_imports_neither_pydantic_nor_the_channels(
    published: Path, tmp_path: Path
) -> None:
    xdg = tmp_path / "xdg"
    _out, cold = probe(published, ["queue"], xdg)
    assert "pydantic" in cold and "syndicate.config" in cold  # the probe sees them
    for args in (["queue"], ["status"], ["schedule", "-n", "50"], ["corpus", "list", "--json"],
                 ["corpus", "check"]):
        _out, heavy = probe(published, args, xdg)
        assert heavy == [], (args, heavy)


#: What a warm ``queue``, ``schedule`` or ``status`` does not need either: the logging
#: machinery (nothing is logged), csv (subscriber imports), signal handling (publishing),
#: OpenSSL's hashes (syndicate.digest: CPython's own SHA-256), json (only for --json),
#: the ledger's Protocols and its records of sending (frozen dataclasses: about a
#: millisecond each to define). Each costs milliseconds of a command whose budget, at
#: 10,000 case studies, is twice ``--help`` (bench.scale).
UNNEEDED = ("logging", "csv", "_csv", "signal", "_hashlib", "json", "syndicate.cli.publish",
            "syndicate.logs", "syndicate.csv_cells", "syndicate.ledger._port",
            "syndicate.ledger._mail_records")


def test_the_overview_commands_import_nothing_they_do_not_use(
    published: Path, tmp_path: Path
) -> None:
    xdg = tmp_path / "xdg"
    probe(published, ["queue"], xdg)  # validates, keeps the snapshot
    _out, seen = probe(published, ["publish-next", "--dry-run"], xdg, UNNEEDED)
    assert {"logging", "signal"} <= set(seen)  # the probe sees them
    for args in (["queue"], ["schedule", "-n", "50"], ["status"]):
        _out, loaded = probe(published, args, xdg, UNNEEDED)
        assert loaded == [], (args, loaded)


def test_an_edit_of_one_byte_is_noticed_even_with_size_and_mtime_unchanged(
    published: Path, tmp_path: Path
) -> None:
    config = copy_config(published, tmp_path)
    xdg = tmp_path / "xdg"
    args = ["schedule", "-n", "1", "--iso", *AFTER]
    assert "2026-12-01T08:00+01:00" in run(config, args, xdg).stdout
    assert "2026-12-01T08:00+01:00" in run(config, args, xdg).stdout  # warm
    edit_in_place(config, 'cron = "0 8 * * 2"', 'cron = "0 9 * * 2"')
    out, heavy = probe(config, args, xdg)
    assert "2026-12-01T09:00+01:00" in out and "cron '0 9 * * 2'" in out
    assert "pydantic" in heavy  # validated again
    out, heavy = probe(config, args, xdg)
    assert "2026-12-01T09:00+01:00" in out and heavy == []  # and kept


def test_an_invalid_edit_gives_the_same_error_as_always(published: Path, tmp_path: Path) -> None:
    config = copy_config(published, tmp_path)
    xdg = tmp_path / "xdg"
    assert run(config, ["queue"], xdg).returncode == 0  # a snapshot of the valid file
    edit_in_place(config, 'timezone = "Europe/Paris"', 'timezone = "Europe/Pasir"')
    with pytest.raises(ConfigError) as error:
        load_config(config)
    expected = f"error: {error.value}\n"
    assert "schedule.timezone = 'Europe/Pasir'" in expected
    for args in (["queue"], ["status"], ["schedule"], ["corpus", "list"]):
        done = run(config, args, xdg)
        assert (done.returncode, done.stdout, done.stderr) == (1, "", expected), args
    edit_in_place(config, 'timezone = "Europe/Pasir"', 'timezone = "Europe/Paris"')
    out, heavy = probe(config, ["schedule", *AFTER], xdg)
    assert heavy == [] and "mardi 1er décembre 2026 à 08:00" in out  # its snapshot again


def test_an_unreadable_snapshot_is_a_miss_and_is_rewritten(published: Path, tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    expected = run(published, ["queue"], xdg).stdout
    (kept,) = (xdg / "syndicate" / "configs").iterdir()
    for garbage in (b"not marshal", marshal.dumps([]), marshal.dumps({"format": FORMAT,
                    "settings": 3}), marshal.dumps({"format": 1})[:-3], b"",
                    json.dumps({"format": FORMAT}).encode()):
        kept.write_bytes(garbage)
        done = run(published, ["queue"], xdg)
        assert (done.returncode, done.stdout, done.stderr) == (0, expected, "")
        assert marshal.loads(kept.read_bytes())["format"] == FORMAT


def test_a_relative_config_path_from_another_folder(published: Path, tmp_path: Path) -> None:
    """The snapshot keeps the settings, not paths resolved for one invocation: relative
    paths follow the config file as it is named this time."""
    xdg = tmp_path / "xdg"
    absolute = run(published, ["status", "--json"], xdg)
    site = published.parent.parent
    relative = run(Path("config/syndicate.toml"), ["status", "--json"], xdg, cwd=site)
    assert relative.returncode == 0, relative.stderr
    assert relative.stdout == absolute.stdout
    assert len(list((xdg / "syndicate" / "configs").iterdir())) == 1  # one file, one snapshot


# --------------------------------------------------------------------------- in process


def _config(tmp_path: Path, storage: dict[str, str]) -> Path:
    import tomllib

    import tomli_w

    data = tomllib.loads((ROOT / "config" / "syndicate.toml").read_text(encoding="utf-8"))
    data["storage"].update(storage)
    path = tmp_path / "config" / "syndicate.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize("database", [
    "../var/syndicate.db", "/srv/x/ledger.db", "sqlite:///../var/x.db", "sqlite:////abs/x.db",
    "sqlite:///:memory:", "postgresql://syndicate@127.0.0.1:5432/syndicate",
])
def test_the_snapshot_derives_the_paths_as_the_config_does(
    tmp_path: Path, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    path = _config(tmp_path, {"database": database, "database_password_env": "PGPASS"})
    config = load_config(path)
    raw = path.read_bytes()
    save_snapshot(path, raw, snapshot_of(config))
    snapshot = load_snapshot(path, raw)
    assert snapshot is not None and snapshot == snapshot_of(config)
    for name in ("ledger_url", "corpus_dir", "corpus_cache_dir", "folder"):
        assert getattr(snapshot, name) == getattr(config, name), name
    assert (snapshot.schedule.cron, snapshot.schedule.timezone) == (
        config.schedule.cron, config.schedule.timezone)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "elsewhere"))  # followed at once
    assert snapshot.corpus_cache_dir == config.corpus_cache_dir
    assert load_snapshot(path, raw) is None  # and the snapshot is kept in the user cache


def test_a_snapshot_is_for_its_bytes_its_file_and_its_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    path = _config(tmp_path, {})
    raw = path.read_bytes()
    snapshot = snapshot_of(load_config(path))
    save_snapshot(path, raw + b"\n", snapshot)  # the file changed during the validation
    assert not snapshot_file(path).exists()
    save_snapshot(path, raw, snapshot)
    assert load_snapshot(path, raw) == snapshot
    assert load_snapshot(path, raw.replace(b"0 8", b"0 9")) is None
    kept = marshal.loads(snapshot_file(path).read_bytes())
    other = tmp_path / "other.toml"
    other.write_bytes(raw)
    snapshot_file(other).write_bytes(marshal.dumps(kept))  # another file's
    assert load_snapshot(other, raw) is None
    for changed in ({"format": FORMAT + 1}, {"validator": [0]}, {"python": "cpython-27"}):
        snapshot_file(path).write_bytes(marshal.dumps({**kept, **changed}))
        assert load_snapshot(path, raw) is None, changed
    snapshot_file(path).write_bytes(marshal.dumps(kept))
    assert load_snapshot(path, raw) == snapshot


def test_old_snapshots_are_pruned_when_one_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    path = _config(tmp_path, {})
    folder = tmp_path / "xdg" / "syndicate" / "configs"
    folder.mkdir(parents=True)
    old, older, recent = (folder / "old.snapshot", folder / "format-1.json",
                          folder / "recent.snapshot")
    for file in (old, older, recent):
        file.write_bytes(b"{}")
    os.utime(old, (1, 1))
    os.utime(older, (1, 1))
    save_snapshot(path, path.read_bytes(), snapshot_of(load_config(path)))
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [snapshot_file(path).name, "recent.snapshot"])


def test_a_parsed_config_and_its_snapshot_round_trip(tmp_path: Path) -> None:
    config = parse_config({"storage": {"database": "sqlite:///db.sqlite", "corpus": "c"},
                           "schedule": {"cron": "30 7 * * 1-5", "timezone": "Europe/London"}},
                          tmp_path / "syndicate.toml")
    snapshot = snapshot_of(config)
    assert ConfigSnapshot.from_settings(config.path, snapshot.settings()) == snapshot
    assert snapshot.corpus_dir == (tmp_path / "c").resolve()


@pytest.mark.parametrize("args", [["queue"], ["status"], ["schedule", "-n", "2"],
                                  ["corpus", "list", "--json"], ["corpus", "check"]])
def test_a_light_command_runs_without_the_cyclic_collector_and_restores_it(
    published: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    """``cli._group.short_lived``: off while the command runs (its passes would free
    nothing), on again after (the command may run inside a longer process, as here)."""
    import gc

    from click.testing import CliRunner

    from syndicate import corpus
    from syndicate.cli import cli

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    seen: list[bool] = []
    for name in ("load", "checked"):
        real = getattr(corpus, name)

        def watching(*a: object, _real: object = real, **k: object) -> object:
            seen.append(gc.isenabled())
            return _real(*a, **k)  # type: ignore[operator]

        for module in ("syndicate.cli.overview", "syndicate.cli.schedule"):
            monkeypatch.setattr(f"{module}.{name}", watching, raising=False)
        monkeypatch.setattr(corpus, name, watching)
    assert gc.isenabled()
    done = CliRunner().invoke(cli, ["--config", str(published), *args])
    assert done.exit_code == 0, done.output
    assert seen and not any(seen)
    assert gc.isenabled()
