"""What only the PostgreSQL ledger has: its URL, connection errors, password sources,
its own schema migrations, cache folder, and the commands end to end on it.

The behaviour it shares with SQLite is tested once for both, in tests/test_ledger.py
(its ``location`` fixture includes a fresh database of the session's test cluster,
:mod:`_postgres_support`). Tests that need a server skip without Debian's
``postgresql`` package, except under CI.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from _postgres_support import PASSWORD, PASSWORD_ROLE, Cluster
from conftest import Project

from syndicate.errors import LedgerError, LedgerURLError
from syndicate.ledger import SCHEMA_VERSION, ledger_exists, open_ledger, parse_ledger_url
from syndicate.ledger._pg_schema import MIGRATIONS as PG_MIGRATIONS
from syndicate.ledger._pg_schema import migrate

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _sql(url: str, statement: str) -> list[tuple[object, ...]]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(statement)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


# -- the URL (no server needed) -------------------------------------------------------


def test_postgresql_urls_are_parsed_and_shown_without_password() -> None:
    where = parse_ledger_url("postgresql://news:hunter2@db.internal:5433/news?sslmode=require"
                             "&password_env=NEWS_DB_PASSWORD")
    assert (where.scheme, where.path, where.password_env) == ("postgresql", None,
                                                              "NEWS_DB_PASSWORD")
    assert where.conninfo == "postgresql://news:hunter2@db.internal:5433/news?sslmode=require"
    assert "hunter2" not in where.shown
    assert parse_ledger_url("postgres://u@h/db").scheme == "postgresql"  # libpq's alias


@pytest.mark.parametrize(("url", "reason"), [
    ("postgresql://news:hunter2@db:5432/", "the database name is missing"),
    ("postgresql://news@db:port/news", "not a valid PostgreSQL URL"),
    ("postgresql://news@db/news?password_env=1BAD", "is not an environment variable name"),
])
def test_bad_postgresql_urls_are_one_line(url: str, reason: str) -> None:
    for attempt in (open_ledger, ledger_exists):
        with pytest.raises(LedgerURLError) as refused:
            attempt(url)
        assert reason in str(refused.value) and "\n" not in str(refused.value)
        assert "hunter2" not in str(refused.value)


def test_an_unreachable_server_is_one_line_naming_host_and_database() -> None:
    port = _free_port()  # nothing listens there
    for attempt in (open_ledger, ledger_exists):
        with pytest.raises(LedgerError) as refused:
            attempt(f"postgresql://news:hunter2@127.0.0.1:{port}/newsletter")
        message = str(refused.value)
        assert message.startswith(
            f"cannot connect to the ledger postgresql://news@127.0.0.1:{port}/newsletter: ")
        assert "refused" in message.lower()
        assert "\n" not in message and "hunter2" not in message


def test_the_cli_prints_a_connection_error_as_one_line(project: Project) -> None:
    port = _free_port()
    path = project.write_config(storage={"database": f"postgresql://news@127.0.0.1:{port}/n"})
    result = subprocess.run(
        [sys.executable, "-m", "syndicate", "--config", str(path), "status"],
        capture_output=True, text=True, timeout=120, cwd=project.root,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"error: cannot connect to the ledger postgresql://news@127.0.0.1:{port}/n: ")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_without_psycopg_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if not installed
    with pytest.raises(LedgerError) as missing:
        open_ledger("postgresql://news@127.0.0.1:5432/news")
    assert str(missing.value) == ("a PostgreSQL ledger needs psycopg, which is not installed: "
                                  "pip install 'syndicate[postgresql]'")


def test_config_names_the_password_variable_never_the_password(project: Project) -> None:
    project.write_config(storage={"database": "postgresql://news@db:5432/news",
                                  "database_password_env": "NEWS_DB_PASSWORD"})
    config = project.config()
    assert config.ledger_url == "postgresql://news@db:5432/news?password_env=NEWS_DB_PASSWORD"
    assert parse_ledger_url(config.ledger_url).password_env == "NEWS_DB_PASSWORD"
    project.write_config(storage={"database": "postgresql://news@db/news?sslmode=require",
                                  "database_password_env": "PW"})
    assert project.config().ledger_url.endswith("?sslmode=require&password_env=PW")


# -- against the test cluster -----------------------------------------------------------


def test_the_schema_is_created_once_and_reported(pg_url: str) -> None:
    assert not ledger_exists(pg_url)  # and asking did not create it
    assert _sql(pg_url, "SELECT to_regnamespace('syndicate') IS NULL") == [(True,)]
    with open_ledger(pg_url) as ledger:
        ledger.set_meta("k", "v")
    assert ledger_exists(pg_url)
    assert _sql(pg_url, "SELECT version FROM syndicate.schema_version") == [(SCHEMA_VERSION,)]
    assert len(PG_MIGRATIONS) == SCHEMA_VERSION  # a version means the same in both backends
    with open_ledger(pg_url) as again:  # reopening migrates nothing and keeps the data
        assert again.get_meta("k") == "v"
    tables = {r[0] for r in _sql(pg_url, "SELECT tablename FROM pg_tables"
                                         " WHERE schemaname = 'syndicate'")}
    assert {"editions", "artefacts", "deliveries", "subscribers", "meta", "confirmations",
            "rate_limits", "schema_version", "publisher", "handoffs",
            "send_rates", "delivery_events", "link_counts", "delivery_hits"} == tables
    types = dict(_sql(pg_url, "SELECT column_name, data_type FROM information_schema.columns"
                              " WHERE table_schema = 'syndicate' AND table_name = 'editions'"))
    assert types["claimed_at"] == "timestamp with time zone"


def test_artefacts_by_name_are_read_from_an_index(pg_url: str) -> None:
    """As in SQLite (tests/test_ledger.py): the digests of one artefact of every edition
    come from the index on (name, edition_id, sha256), not from the table's rows."""
    import psycopg

    with open_ledger(pg_url) as ledger:
        for n in range(3):
            edition = ledger.claim_edition(slot=f"s{n}", slug=f"case-{n}", title="T", url="u")
            ledger.store_artefacts(edition.id, {"case.json": "x" * 9000, "small": "s"})
    with psycopg.connect(pg_url, autocommit=True,
                         options="-c search_path=syndicate") as conn:
        conn.execute("VACUUM ANALYZE artefacts")  # the visibility map an index-only scan reads
        conn.execute("SET enable_seqscan = off")  # three rows: the plan a large table gets
        plan = "\n".join(str(r[0]) for r in conn.execute(
            "EXPLAIN SELECT edition_id, sha256 FROM artefacts WHERE name = 'case.json'"))
    assert "Index Only Scan using artefacts_by_name" in plan


def test_a_newer_database_is_refused(pg_url: str) -> None:
    with open_ledger(pg_url):
        pass
    _sql(pg_url, "UPDATE syndicate.schema_version SET version = 99")
    with pytest.raises(LedgerError) as refused:
        open_ledger(pg_url)
    shown = pg_url.removeprefix("postgresql://")
    assert str(refused.value) == (
        f"ledger postgresql://{shown} has schema version 99 but this syndicate only knows "
        f"versions up to {SCHEMA_VERSION}: it was written by a newer syndicate; upgrade "
        "syndicate (or point [storage] database at another database)")


def test_a_failing_step_is_rolled_back_whole(pg_url: str) -> None:
    import psycopg

    with psycopg.connect(pg_url, autocommit=True,
                         options="-c search_path=syndicate") as conn:
        migrate(conn, "db", PG_MIGRATIONS[:1])
        with pytest.raises(LedgerError, match=r"migration to schema version 2 failed "
                           r"\(database left at version 1\): division by zero"):
            migrate(conn, "db", (PG_MIGRATIONS[0], "CREATE TABLE b (x int); SELECT 1/0;"))
    assert _sql(pg_url, "SELECT version FROM syndicate.schema_version") == [(1,)]
    assert _sql(pg_url, "SELECT to_regclass('syndicate.b') IS NULL") == [(True,)]


def test_password_from_the_named_variable_or_libpq(pg_cluster: Cluster,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    url = pg_cluster.database(owner=PASSWORD_ROLE).replace("postgres@", f"{PASSWORD_ROLE}@")
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.delenv("NEWS_DB_PASSWORD", raising=False)
    with pytest.raises(LedgerError) as unset:
        open_ledger(url + "?password_env=NEWS_DB_PASSWORD")
    assert str(unset.value).endswith(": the environment variable NEWS_DB_PASSWORD "
                                     "(storage.database_password_env) is not set")
    monkeypatch.setenv("NEWS_DB_PASSWORD", "wrong")
    with pytest.raises(LedgerError) as wrong:
        open_ledger(url + "?password_env=NEWS_DB_PASSWORD")
    assert "password authentication failed" in str(wrong.value)
    assert "\n" not in str(wrong.value) and "wrong" not in str(wrong.value).split(": ")[0]
    monkeypatch.setenv("NEWS_DB_PASSWORD", PASSWORD)
    with open_ledger(url + "?password_env=NEWS_DB_PASSWORD") as ledger:  # a role owning only
        ledger.set_meta("who", "news")  # its database creates the schema: CREATE on it is enough
    monkeypatch.delenv("NEWS_DB_PASSWORD")
    monkeypatch.setenv("PGPASSWORD", PASSWORD)  # libpq's own, when no variable is named
    with open_ledger(url) as ledger:
        assert ledger.get_meta("who") == "news"


def test_cache_folder_is_local_per_database(pg_cluster: Cluster, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    one, two = pg_cluster.database(), pg_cluster.database()
    with open_ledger(one) as a, open_ledger(one) as b, open_ledger(two) as c:
        assert a.cache_dir() == b.cache_dir() != c.cache_dir()
        assert a.cache_dir().parent == tmp_path / "xdg" / "syndicate"


# -- the commands, end to end -------------------------------------------------------------


def _cli(project: Project, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syndicate", "--config", str(project.config_path), *args],
        capture_output=True, text=True, timeout=180, cwd=project.root, env=env)


@pytest.mark.slow
def test_publish_next_and_status_on_postgresql(project: Project, pg_url: str,
                                               tmp_path: Path) -> None:
    """Real subprocesses on a PostgreSQL ledger: edition #1 through the feed, archive and
    outbox channels, ``status`` shows it, #2 next; two processes publishing at once
    publish one edition per slot and never one case study twice."""
    project.write_config(storage={"database": pg_url})
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    first = _cli(project, "publish-next", env=env)
    assert first.returncode == 0, first.stderr
    assert (project.public / "feed.xml").is_file()
    status = _cli(project, "status", env=env)
    assert status.returncode == 0, status.stderr
    assert "#1" in status.stdout
    second = _cli(project, "publish-next", env=env)
    assert second.returncode == 0, second.stderr
    with open_ledger(pg_url) as ledger:
        editions = ledger.editions()
        assert [e.number for e in editions] == [2, 1]
        counts = ledger.delivery_counts(editions[-1].id)
    assert {"feed", "archive", "outbox"} <= set(counts)
    assert all(c["pending"] == 0 and c["failed"] == 0 for c in counts.values())
    assert not list(project.var.glob("syndicate.db*"))  # nothing of the ledger on disk
    assert [p for p in (project.var / "outbox").rglob("*") if p.is_file()]

    racers = [subprocess.Popen(
        [sys.executable, "-m", "syndicate", "--config", str(project.config_path),
         "publish-next"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=project.root, env=env) for _ in range(2)]
    outcomes = [(p.wait(timeout=180), *p.communicate()) for p in racers]
    with open_ledger(pg_url) as ledger:
        editions = ledger.editions(status=None)
    slots = [e.slot for e in editions]
    slugs = [e.slug for e in editions]
    assert len(set(slots)) == len(slots) and len(set(slugs)) == len(slugs)
    assert [e.number for e in editions] == list(range(len(editions), 0, -1))
    assert 3 <= len(editions) <= 4, json.dumps([o[1:] for o in outcomes])
