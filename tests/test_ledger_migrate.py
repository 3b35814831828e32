"""``syndicate ledger migrate``: a published SQLite ledger copied into the test cluster's
PostgreSQL, compared record by record through both ports; twice is harmless; a different
target is refused (replaced with ``--force``); a failure mid-copy leaves the target as it
was; 100k deliveries stream in batches."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from _postgres_support import Cluster
from conftest import EXAMPLE_CORPUS, Project

from syndicate.errors import LedgerError
from syndicate.ledger import LedgerPort, SqliteLedger, copy_ledger, open_ledger
from syndicate.ledger._copy import TABLES, canonical

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _sql(url: str, statement: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(statement)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


def _cli(config: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(cwd / "cache")}
    return subprocess.run([sys.executable, "-m", "syndicate", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=180, cwd=cwd, env=env)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """A project whose SQLite ledger was filled by two real ``publish-next`` runs (feed,
    archive, outbox) to three subscribers (one unsubscribed), with a pending confirmation
    and a failed delivery."""
    root = tmp_path_factory.mktemp("migrate") / "site"
    shutil.copytree(ROOT / "config", root / "config")
    shutil.copytree(EXAMPLE_CORPUS, root / "corpus")
    project = Project(root)
    project.write_config(site={"base_url": "https://cas.example.org/"})
    (root / "var").mkdir()
    with SqliteLedger(root / "var" / "syndicate.db") as ledger:
        ledger.add_subscriber("Ada@Example.org", "Ada Lovelace")
        ledger.add_subscriber("bob@example.org", None, source="import")
        ledger.add_subscriber("carol@example.org", "Carol")
        ledger.set_subscriber_status("carol@example.org", "unsubscribed")
        ledger.add_subscriber("dan@example.org", "Dan", status="pending", source="web")
        assert ledger.enqueue_confirmation("dan@example.org")
    for _ in range(2):
        run = _cli(project.config_path, "publish-next", cwd=root)
        assert run.returncode == 0, run.stderr
    with SqliteLedger(root / "var" / "syndicate.db") as ledger:
        first = ledger.editions()[-1]
        failed = ledger.ensure_delivery(first.id, "webhook", "https://hooks.example.org/x")
        ledger.mark_failed(failed.id, 503, "503 Service Unavailable", permanent=True)
    yield project


def _source(project: Project) -> Path:
    return project.var / "syndicate.db"


def _ids(path: Path, table: str) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute(f"SELECT id FROM {table} ORDER BY id")]


def _records(ledger: LedgerPort, source: Path) -> dict[str, Any]:
    """Everything the port shows of a ledger, by record (ids from the SQLite source)."""
    editions = ledger.editions(status=None)
    return {
        "editions": editions,
        "artefacts": {e.id: {name: (ledger.artefact(e.id, name), digest)
                             for name, digest in ledger.artefact_hashes(e.id).items()}
                      for e in editions},
        "deliveries": [ledger.get_delivery(i) for i in _ids(source, "deliveries")],
        "counts": {e.id: ledger.delivery_counts(e.id) for e in editions},
        "failed": ledger.failed_deliveries(),
        "subscribers": list(ledger.iter_subscribers(status=None)),
        "confirmations": ledger.confirmations(status=None),
        "meta": {k: ledger.get_meta(k) for k in _meta_keys(source)},
        "slugs": ledger.published_slugs(),
    }


def _meta_keys(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT key FROM meta ORDER BY key")]


def _snapshot(url: str) -> list[tuple[Any, ...]]:
    """Every row the copy touches on the PostgreSQL side, for 'unchanged' checks."""
    rows: list[tuple[Any, ...]] = []
    for table in TABLES:
        order = f'{table.key} COLLATE "C"' if table.key == "key" else table.key
        rows += [(table.name, *r) for r in _sql(
            url, f"SELECT * FROM syndicate.{table.name} ORDER BY {order}")]
    return rows


def test_a_published_ledger_is_copied_record_for_record(published: Project, pg_url: str,
                                                        tmp_path: Path) -> None:
    source = _source(published)
    before = source.read_bytes()
    run = _cli(published.config_path, "ledger", "migrate", "--to", pg_url, cwd=published.root)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    with SqliteLedger(source) as lite:
        expected = _records(lite, source)
    counts = {"editions": 2, "subscribers": 4, "confirmations": 1,
              "deliveries": len(expected["deliveries"])}
    for name, n in counts.items():
        assert f"{name}: {n} copied, checksum ok" in lines
    assert lines[-1].startswith("migrated ") and "not copied: rate_limits" in lines[-1]
    assert source.read_bytes() == before  # the source is never written

    with open_ledger(pg_url) as pg:
        got = _records(pg, source)
        assert got == expected  # every record, field by field (frozen dataclasses)
        assert len(expected["failed"]) == 1 and expected["failed"][0].code == 503
        assert {s.status for s in got["subscribers"]} == {"active", "unsubscribed", "pending"}
        # The identity sequences were moved past the copied ids: new rows get new ids.
        top = max(_ids(source, "deliveries"))
        assert pg.ensure_delivery(got["editions"][0].id, "webhook", "new").id == top + 1
        pg.reset_failed()

    # `status` on a config pointing at PostgreSQL shows the same editions.
    data = tomllib.loads(published.config_path.read_text(encoding="utf-8"))
    data["storage"]["database"] = pg_url
    pg_config = published.config_path.with_name("pg.toml")
    pg_config.write_text(tomli_w.dumps(data), encoding="utf-8")
    on_pg = _cli(pg_config, "status", "--json", cwd=published.root)
    on_lite = _cli(published.config_path, "status", "--json", cwd=published.root)
    assert on_pg.returncode == 0 == on_lite.returncode, on_pg.stderr + on_lite.stderr
    import json

    assert ([e["slug"] for e in json.loads(on_pg.stdout)["editions"]]
            == [e["slug"] for e in json.loads(on_lite.stdout)["editions"]])


def test_twice_is_already_migrated_and_changes_nothing(published: Project, pg_url: str) -> None:
    source = _source(published)
    first = copy_ledger(source, pg_url)
    assert not first.already and first.table("editions").rows == 2
    snapshot = _snapshot(pg_url)
    run = _cli(published.config_path, "ledger", "migrate", "--to", pg_url, cwd=published.root)
    assert run.returncode == 0, run.stderr
    assert "editions: 2 rows, checksum ok" in run.stdout
    assert run.stdout.splitlines()[-1].startswith("already migrated, verified: ")
    assert _snapshot(pg_url) == snapshot
    again = copy_ledger(source, pg_url, force=True)  # --force on the same rows: no-op too
    assert again.already and [t.checksum for t in again.tables] == [
        t.checksum for t in first.tables]


def test_a_different_target_is_refused_then_replaced_with_force(published: Project,
                                                                 pg_url: str) -> None:
    with open_ledger(pg_url) as other:
        other.claim_edition(slot="2020-01-01T07:00", slug="autre", title="Autre",
                            url="https://x.example/autre")
        other.add_subscriber("zed@example.org")
    snapshot = _snapshot(pg_url)
    run = _cli(published.config_path, "ledger", "migrate", "--to", pg_url, cwd=published.root)
    assert run.returncode == 1 and run.stdout == ""
    shown = pg_url.removeprefix("postgresql://")
    assert run.stderr == (f"error: the target postgresql://{shown} already holds a different "
                          "ledger (1 editions, 1 subscribers): nothing copied; --force "
                          "replaces its rows with the source's\n")
    assert _snapshot(pg_url) == snapshot
    forced = _cli(published.config_path, "ledger", "migrate", "--to", pg_url, "--force",
                  cwd=published.root)
    assert forced.returncode == 0, forced.stderr
    assert "replaced the target's rows (--force): 1 editions, 1 subscribers" in forced.stdout
    with open_ledger(pg_url) as pg:
        assert pg.get_edition("autre") is None and pg.get_subscriber("zed@example.org") is None
        assert len(pg.editions(status=None)) == 2


def test_a_postgresql_source_or_a_sqlite_target_is_refused(pg_url: str, tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match=r"is not a SQLite file: `ledger migrate` copies"):
        copy_ledger(pg_url, pg_url)
    SqliteLedger(tmp_path / "a.db").close()
    with pytest.raises(LedgerError, match=r"is not a postgresql:// URL"):
        copy_ledger(tmp_path / "a.db", f"sqlite:///{tmp_path}/b.db")
    with pytest.raises(LedgerError, match=r"no SQLite ledger at"):
        copy_ledger(tmp_path / "missing.db", pg_url)


def test_a_row_refused_mid_copy_rolls_everything_back(published: Project, pg_url: str) -> None:
    with open_ledger(pg_url):
        pass  # the schema, then a constraint the second subscriber breaks
    _sql(pg_url, "ALTER TABLE syndicate.subscribers ADD CONSTRAINT no_bob"
                 " CHECK (email <> 'bob@example.org')")
    with pytest.raises(LedgerError) as failed:
        copy_ledger(_source(published), pg_url, batch=1)
    message = str(failed.value)
    assert message.startswith("copy to postgresql://") and "\n" not in message
    assert "rolled back (the target is unchanged)" in message and "no_bob" in message
    assert _snapshot(pg_url) == []  # editions, artefacts, deliveries… all gone with it


def test_a_connection_lost_mid_copy_leaves_the_old_rows(published: Project, pg_url: str,
                                                        pg_cluster: Cluster) -> None:
    with open_ledger(pg_url) as other:
        other.add_subscriber("zed@example.org")
        other.set_meta("k", "v")
    snapshot = _snapshot(pg_url)
    killed: list[int] = []

    def drop_connection(table: str, number: int) -> None:
        if table == "deliveries" and number == 3:  # editions and artefacts already written
            killed.extend(r[0] for r in _sql(
                pg_cluster.url(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'syndicate ledger migrate'"))

    with pytest.raises(LedgerError, match=r"failed, rolled back \(the target is unchanged\)"):
        copy_ledger(_source(published), pg_url, force=True, batch=2,
                    write_hook=drop_connection)
    assert killed == [True]
    assert _snapshot(pg_url) == snapshot


def test_canonical_times_agree_across_backends() -> None:
    moment = datetime(2026, 3, 29, 1, 30, 5, 12, tzinfo=UTC)
    stored = moment.isoformat(timespec="microseconds")  # as SQLite holds it
    assert canonical(stored, True) == canonical(moment, True) == "2026-03-29T01:30:05.000012+00:00"
    assert canonical("2026-03-29T03:30:05.000012+02:00", True) == canonical(moment, True)
    assert canonical(None, True) is None and canonical("x", False) == "x"


def test_100k_deliveries_stream_in_batches(pg_url: str, tmp_path: Path) -> None:
    path = tmp_path / "big.db"
    with SqliteLedger(path) as ledger:
        edition = ledger.claim_edition(slot="2026-01-05T07:00", slug="big", title="Big",
                                       url="https://x.example/big")
        ledger.ensure_deliveries(edition.id, "outbox",
                                 (f"r{i}@example.org" for i in range(100_000)))
    seen: dict[str, int] = {}
    report = copy_ledger(path, pg_url, batch=4000,
                         write_hook=lambda table, n: seen.__setitem__(table, n))
    # Bounded memory: 25 batches of 4000 rows, never the table at once.
    assert report.table("deliveries").rows == 100_000
    assert report.table("deliveries").batches == 25 == seen["deliveries"]
    assert _sql(pg_url, "SELECT count(*), max(id) FROM syndicate.deliveries") == [
        (100_000, 100_000)]


def test_a_checksum_mismatch_is_one_line_and_rolled_back(published: Project,
                                                         pg_url: str) -> None:
    with open_ledger(pg_url):
        pass  # the schema, then a trigger that quietly alters one delivery on its way in
    _sql(pg_url, """
        CREATE FUNCTION syndicate.tamper() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN NEW.response := NEW.response || ' (altered)'; RETURN NEW; END $$;
        CREATE TRIGGER tamper BEFORE INSERT ON syndicate.deliveries FOR EACH ROW
            WHEN (NEW.channel = 'webhook') EXECUTE FUNCTION syndicate.tamper();
    """)
    with pytest.raises(LedgerError) as mismatch:
        copy_ledger(_source(published), pg_url)
    message = str(mismatch.value)
    assert message.startswith("copy to postgresql://") and "\n" not in message
    assert " did not verify: deliveries has " in message
    assert message.endswith("in the source; rolled back, the target is unchanged")
    assert _snapshot(pg_url) == []


def test_a_source_of_an_older_schema_is_refused_unwritten(tmp_path: Path, pg_url: str) -> None:
    path = tmp_path / "old.db"
    SqliteLedger(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 2")
    before = path.read_bytes()
    with pytest.raises(LedgerError, match=r"is at schema version 2, this syndicate at \d+: "
                       r"run `syndicate status`"):
        copy_ledger(path, pg_url)
    assert path.read_bytes() == before
