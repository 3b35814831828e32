"""The ledger as a port: opened in one place from a path or URL, behind a Protocol.

Where a ledger is (a plain path, ``sqlite:///relative``, ``sqlite:////absolute``), what is
refused (other schemes, in one line, naming the config's file and key), that the SQLite
class implements the whole port (at run time and for mypy), that nothing outside
``syndicate/ledger`` builds a ledger or reaches into its private modules, and that an
existing installation (a plain-path config) keeps its ledger, lock file and cache folder.
"""

from __future__ import annotations

import ast
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Clock, Project

from syndicate import related
from syndicate.app import App
from syndicate.errors import ConfigError, LedgerError, LedgerURLError
from syndicate.ledger import (
    ConfirmationOutbox,
    DeliveryStore,
    EditionStore,
    LedgerPort,
    RateLimitCounters,
    SubscriberStore,
    ledger_exists,
    lock_path,
    open_ledger,
    parse_ledger_url,
)
from syndicate.pipeline import publish, resume

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "syndicate"


# -- where a ledger is ----------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "path"),
    [
        ("var/syndicate.db", Path("var/syndicate.db")),
        ("/srv/news/syndicate.db", Path("/srv/news/syndicate.db")),
        ("sqlite:///var/syndicate.db", Path("var/syndicate.db")),  # three slashes: relative
        ("sqlite:////srv/news/syndicate.db", Path("/srv/news/syndicate.db")),  # four: absolute
        ("SQLite:///var/x.db", Path("var/x.db")),  # schemes are case-insensitive
        (Path("var/syndicate.db"), Path("var/syndicate.db")),
    ],
)
def test_paths_and_sqlite_urls_name_a_file(location: str | Path, path: Path) -> None:
    where = parse_ledger_url(location)
    assert (where.scheme, where.path) == ("sqlite", path)


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("mysql://syndicate:hunter2@db.example.org/news",
         "ledger URL 'mysql://syndicate:***@db.example.org/news': unsupported scheme "
         "'mysql' (supported: sqlite, postgresql, or a file path)"),
        ("postgresql://syndicate:hunter2@db.example.org",
         "ledger URL 'postgresql://syndicate:***@db.example.org': expected "
         "postgresql://user@host:port/database (the database name is missing)"),
        ("sqlite://db.example.org/news.db",
         "ledger URL 'sqlite://db.example.org/news.db': a SQLite URL has no host (expected "
         "sqlite:///relative/path or sqlite:////absolute/path)"),
        ("sqlite:///var/x.db?mode=ro",
         "ledger URL 'sqlite:///var/x.db?mode=ro': query parameters are not supported "
         "(the ledger sets its own SQLite options)"),
        ("sqlite://", "ledger URL 'sqlite://': expected a database file"),
        ("sqlite:///:memory:", "ledger URL 'sqlite:///:memory:': expected a database file"),
        ("", "ledger URL '': empty"),
    ],
)
def test_other_locations_are_refused_in_one_line(
    location: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for attempt in (open_ledger, ledger_exists):
        with pytest.raises(LedgerURLError) as refused:
            attempt(location)
        assert str(refused.value).startswith(message)
        assert "\n" not in str(refused.value) and "hunter2" not in str(refused.value)
        assert isinstance(refused.value, LedgerError)  # the CLI prints it as one line
    assert list(tmp_path.iterdir()) == []  # nothing created, no file named "mysql:"


def test_relative_url_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert not ledger_exists("sqlite:///var/rel.db")
    with open_ledger("sqlite:///var/rel.db") as ledger:  # SQLAlchemy's convention
        ledger.set_meta("k", "relative")
    assert (tmp_path / "var" / "rel.db").is_file() and ledger_exists("sqlite:///var/rel.db")
    absolute = tmp_path / "abs" / "ledger.db"
    with open_ledger(f"sqlite:///{absolute}") as ledger:  # sqlite:////tmp/...
        ledger.set_meta("k", "absolute")
    with open_ledger(absolute) as again, open_ledger(tmp_path / "var" / "rel.db") as rel:
        assert again.get_meta("k") == "absolute" and rel.get_meta("k") == "relative"


# -- the port -------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_each_ledger_implements_the_whole_port(tmp_path: Path, backend: str,
                                               request: pytest.FixtureRequest) -> None:
    location = (str(request.getfixturevalue("pg_url")) if backend == "postgresql"
                else str(tmp_path / "l.db"))
    with open_ledger(location) as ledger:
        for port in (LedgerPort, EditionStore, DeliveryStore, SubscriberStore,
                     ConfirmationOutbox, RateLimitCounters):
            assert isinstance(ledger, port), port
        implementation = type(ledger)
    assert implementation.__name__ == {"sqlite": "SqliteLedger",
                                       "postgresql": "PostgresLedger"}[backend]
    # Everything public on the class is in the port: code typed with the port
    # can use all of it, and a second implementation knows what it must provide.
    public = {name for name, _ in inspect.getmembers(implementation)
              if not name.startswith("_")}
    listed = {name for name in dir(LedgerPort) if not name.startswith("_")}
    assert public - listed == set()
    assert listed - public == set()


@pytest.mark.slow
def test_mypy_checks_that_an_implementation_conforms(tmp_path: Path) -> None:
    """``type[LedgerPort] = SqliteLedger`` is checked by mypy (the same assertion is in
    ``ledger/_ledger.py``); a class missing part of the port is refused."""
    snippet = tmp_path / "conformance.py"
    snippet.write_text(
        "from syndicate.ledger import LedgerPort, SqliteLedger\n\n"
        "good: type[LedgerPort] = SqliteLedger\n\n\n"
        "class Partial:\n"
        "    def close(self) -> None: ...\n\n\n"
        "bad: type[LedgerPort] = Partial\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary",
         "--cache-dir", str(tmp_path / "cache"), str(snippet)],
        capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, result.stdout + result.stderr
    assert "conformance.py:10:" in errors[0] and "type[Partial]" in errors[0]


def _modules_outside_the_ledger() -> list[tuple[Path, ast.Module]]:
    # syndicate/__init__.py re-exports the public API (``syndicate.Ledger`` included).
    return [(path, ast.parse(path.read_text(encoding="utf-8")))
            for path in sorted(PACKAGE.rglob("*.py"))
            if PACKAGE / "ledger" not in path.parents and path != PACKAGE / "__init__.py"]


def test_nothing_outside_the_ledger_builds_one_or_reaches_inside() -> None:
    problems = []
    for path, tree in _modules_outside_the_ledger():
        where = path.relative_to(ROOT)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                module = node.module
                if "ledger._" in module or (module.endswith("ledger") and any(
                        alias.name.startswith("_") or alias.name in {"Ledger", "SqliteLedger"}
                        for alias in node.names)):
                    problems.append(f"{where}:{node.lineno}: imports {module} "
                                    f"{[a.name for a in node.names]}")
            elif isinstance(node, ast.Attribute) and node.attr == "database":
                # The ledger's location is config.ledger_url, given to open_ledger;
                # only the config itself (and messages quoting the key) read the field.
                owner = node.value
                if not (isinstance(owner, ast.Attribute) and owner.attr == "storage"):
                    problems.append(f"{where}:{node.lineno}: reads .database (a file path)")
    assert problems == []


# -- the configured ledger ------------------------------------------------------


def test_config_resolves_relative_sqlite_urls_against_its_folder(project: Project) -> None:
    project.write_config(storage={"database": "sqlite:///../data/ledger.db"})
    config = project.config()
    expected = (project.root / "data" / "ledger.db").resolve()
    assert config.ledger_url == f"sqlite:///{expected}"  # sqlite:////abs
    assert config.database == expected
    project.write_config(storage={"database": f"sqlite:///{expected}"})
    assert project.config().ledger_url == f"sqlite:///{expected}"
    with App(project.config()).open_ledger() as ledger:
        ledger.set_meta("k", "v")
    assert expected.is_file()


def test_an_unsupported_scheme_is_a_config_error_naming_file_and_key(
    project: Project,
) -> None:
    path = project.write_config(storage={"database": "mysql://news:hunter2@db/news"})
    config = project.config()  # the scheme is the ledger's business: checked on opening
    app = App(config)
    expected = (f"{path.absolute()}: storage.database = 'mysql://news:***@db/news': "
                "unsupported scheme 'mysql' (supported: sqlite, postgresql, or a file path)")
    for attempt in (app.open_ledger, app.ledger_exists):
        with pytest.raises(ConfigError) as refused:
            attempt()
        assert str(refused.value) == expected
    assert app.ledger_problems() == [expected]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "syndicate", "--config", str(path), "status"],
        capture_output=True, text=True, env=env, timeout=120, cwd=project.root)
    assert result.returncode == 1
    assert result.stderr == f"error: {expected}\n"
    check = subprocess.run(
        [sys.executable, "-m", "syndicate", "--config", str(path), "config", "check"],
        capture_output=True, text=True, env=env, timeout=120, cwd=project.root)
    assert check.returncode == 1 and check.stdout.splitlines()[0] == expected
    assert not (project.root / "var").exists()


def test_a_plain_path_config_keeps_its_ledger_lock_and_cache(
    project: Project, clock: Clock
) -> None:
    """Existing installations: the same file, ``<database>.lock`` beside it and the
    relatedness cache in ``cache/`` beside it, as before the port."""
    config = project.config()
    var = project.root / "var"
    app = App(config, clock)
    assert not app.ledger_exists()
    with app.open_ledger() as ledger:
        assert ledger.cache_dir() == var / "cache"
        with ledger.publisher_lock("test"):
            assert lock_path(var / "syndicate.db") == var / "syndicate.db.lock"
            assert (var / "syndicate.db.lock").read_text().split("\t")[1] == "test"
    assert app.ledger_exists() and (var / "syndicate.db").is_file()
    related.clear_memory_cache()  # else an index fitted by an earlier test is reused
    publish(config, now=clock, ledger=app.open_ledger)
    assert list((var / "cache").glob("related-*.rel"))
    files = {p.name for p in var.glob("syndicate.db*")} - {"syndicate.db-wal", "syndicate.db-shm"}
    assert files == {"syndicate.db", "syndicate.db.lock"}


def test_library_calls_take_an_open_ledger_or_a_factory(
    project: Project, clock: Clock
) -> None:
    config = project.config()
    with App(config, clock).open_ledger() as ledger:
        result = publish(config, now=clock, ledger=ledger)  # used, left open
        assert ledger.get_edition(result.view.slug) is not None
        assert resume(config, now=clock, ledger=ledger) == []
    opened: list[LedgerPort] = []

    def factory() -> LedgerPort:
        opened.append(open_ledger(config.ledger_url, now=clock))
        return opened[-1]

    clock.advance(days=7)
    second = publish(config, now=clock, ledger=factory)
    assert second.edition is not None and second.edition.number == 2
    assert len(opened) == 1
    with pytest.raises(LedgerError, match="is closed"):  # closed by the call that opened it
        opened[0].editions()
