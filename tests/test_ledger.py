"""The ledger on real SQLite files: schema, editions, deliveries, subscribers, locks.

The behaviour tests get their ledger from :func:`syndicate.ledger.open_ledger`, once per
form of location it accepts (:data:`LOCATIONS`: a plain path, a ``sqlite:///`` URL); a
new storage adds its form there and runs them all. The schema tests are SQLite's own.
Tests marked ``slow`` start real processes (claim races, a SIGKILL during
marking, a publisher lock held by another process). The cost of a mark is measured by
``python -m bench.ledger``, not here.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from syndicate.errors import (
    AlreadyPublished,
    InvalidAddress,
    LedgerError,
    LockedError,
    SlotTaken,
    SubscriberExists,
)
from syndicate.ledger import (
    MIGRATIONS,
    SCHEMA_VERSION,
    DeliveryEvent,
    Edition,
    LedgerPort,
    SqliteLedger,
    lock_path,
    normalize_email,
    open_ledger,
)
from syndicate.ledger._schema import connect, migrate

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)


class Clock:
    def __init__(self, start: datetime = T0) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


#: Each form of location ``open_ledger`` accepts, as ``kind -> (tmp folder -> location)``.
#: A relative ``sqlite:///`` URL is relative to the working directory (the tests chdir).
#: ``postgresql`` is a fresh database of the session's test cluster (tests/_postgres_support).
LOCATIONS: dict[str, Callable[[Path], str] | None] = {
    "path": lambda folder: str(folder / "var" / "syndicate.db"),
    "sqlite-url": lambda folder: "sqlite:///var/syndicate.db",
    "postgresql": None,
}


@pytest.fixture(params=sorted(LOCATIONS))
def location(request: pytest.FixtureRequest, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> str:
    """Where a fresh ledger is, in each form :func:`open_ledger` accepts."""
    monkeypatch.chdir(tmp_path)
    make = LOCATIONS[request.param]
    if make is None:
        return str(request.getfixturevalue("pg_url"))
    return make(tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    """``name -> location`` of a new ledger not created yet, per backend (process tests)."""
    if request.param == "postgresql":
        cluster = request.getfixturevalue("pg_cluster")
        return lambda name: str(cluster.empty())
    return lambda name: str(tmp_path / f"{name}.db")


@pytest.fixture
def ledger(location: str, clock: Clock) -> Iterator[LedgerPort]:
    with open_ledger(location, now=clock) as led:
        yield led


def claim(led: LedgerPort, n: int) -> Edition:
    return led.claim_edition(slot=f"2026-W{n:02d}", slug=f"case-{n}", title=f"Cas {n}",
                             url=f"https://ex.fr/case-{n}/")


def run_python(code: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


# -- schema ---------------------------------------------------------------


def test_fresh_database_is_migrated_with_the_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "folder" / "ledger.db"
    with SqliteLedger(path) as led:
        conn = led._db
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 10_000
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type='table'")}
        assert {"editions", "artefacts", "deliveries", "subscribers", "meta"} <= tables
    assert path.is_file()


def test_reopening_is_idempotent_and_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    with SqliteLedger(path) as led:
        claim(led, 1)
        led.set_meta("k", "v")
    for _ in range(2):
        with SqliteLedger(path) as led:
            assert led._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
            assert led.published_slugs() == {"case-1"}
            assert led.get_meta("k") == "v"


def test_older_database_gets_only_the_missing_steps(tmp_path: Path) -> None:
    steps = ["CREATE TABLE a (x INTEGER);",
             "CREATE TABLE b (y INTEGER);\nINSERT INTO a VALUES (1);"]
    conn = connect(tmp_path / "old.db", timeout=1)
    assert migrate(conn, tmp_path / "old.db", steps[:1]) == 0
    conn.execute("INSERT INTO a VALUES (0)")
    assert migrate(conn, tmp_path / "old.db", steps) == 1  # found version 1, applied step 2
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    assert [r[0] for r in conn.execute("SELECT x FROM a ORDER BY x")] == [0, 1]
    assert migrate(conn, tmp_path / "old.db", steps) == 2  # nothing left to do
    assert conn.execute("SELECT COUNT(*) FROM a").fetchone()[0] == 2


def test_a_failing_step_is_rolled_back_whole(tmp_path: Path) -> None:
    conn = connect(tmp_path / "bad.db", timeout=1)
    steps = ["CREATE TABLE a (x);", "CREATE TABLE b (y);\nCREATE TABLE a (z);"]
    with pytest.raises(LedgerError, match=r"migration to schema version 2 failed.*version 1"):
        migrate(conn, tmp_path / "bad.db", steps)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert conn.execute("SELECT name FROM sqlite_schema WHERE name = 'b'").fetchone() is None


def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    open_ledger(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    with pytest.raises(LedgerError, match=rf"schema version {SCHEMA_VERSION + 5}.*newer syndicate"):
        open_ledger(path)


def test_someone_elses_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id)")
    with pytest.raises(LedgerError, match="not a syndicate ledger"):
        open_ledger(path)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(LedgerError, match="not a usable SQLite database"):
        open_ledger(f"sqlite:///{junk}")


def _plans(led: SqliteLedger, call: Callable[[], object]) -> list[str]:
    """The query plan of each statement ``call`` runs on ``led``'s connection."""
    statements: list[str] = []
    led._db.set_trace_callback(statements.append)
    try:
        call()
    finally:
        led._db.set_trace_callback(None)
    plans = []
    for sql in statements:
        # The trace shows the values bound: plan the statement as run.
        plans.append(" | ".join(row[3] for row in led._db.execute(f"EXPLAIN QUERY PLAN {sql}")))
    return plans


def test_artefacts_by_name_are_found_through_an_index(tmp_path: Path) -> None:
    """``artefacts_named`` reads the digests of every edition's snapshot from an index alone
    (the content of a snapshot spills into overflow pages, and ``sha256`` is stored after
    it: a table scan walks them all) and finds a small artefact's content without scanning
    the table (``status`` at 5,000 editions)."""
    with SqliteLedger(tmp_path / "l.db") as led:
        editions = [claim(led, n) for n in (1, 2)]
        for edition in editions:
            led.store_artefacts(edition.id, {"case.json": "x" * 9000, "small": "s"})
        assert _plans(led, lambda: led.artefacts_named("case.json", digests=True)) == [
            "SEARCH artefacts USING COVERING INDEX artefacts_by_name (name=?)"]
        assert _plans(led, lambda: led.artefacts_named("small")) == [
            "SEARCH artefacts USING INDEX artefacts_by_name (name=?)"]
        # Of some editions: either index finds each (a lookup per id), no scan.
        plans = _plans(led, lambda: led.artefacts_named(
            "case.json", [e.id for e in editions], digests=True))
        assert len(plans) == 1 and plans[0].startswith("SEARCH artefacts USING ")


def test_an_existing_ledger_gets_the_artefact_index(tmp_path: Path) -> None:
    """A ledger of the schema before the index (version 6) gets it on opening, data kept."""
    path = tmp_path / "old.db"
    conn = connect(path, timeout=1)
    migrate(conn, path, MIGRATIONS[:6])
    conn.execute("INSERT INTO editions (number, slot, slug, title, url, status, claimed_at,"
                 " published_at) VALUES (1, 's', 'case-1', 'T', 'u', 'done', ?, ?)",
                 (T0.isoformat(), T0.isoformat()))
    conn.execute("INSERT INTO artefacts (edition_id, name, content, sha256, created_at)"
                 " VALUES (1, 'case.json', 'text', 'digest', ?)", (T0.isoformat(),))
    conn.close()
    with SqliteLedger(path) as led:
        assert led._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        indexes = {r[0] for r in led._db.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'artefacts'")}
        assert "artefacts_by_name" in indexes
        assert led.artefacts_named("case.json", digests=True) == {1: "digest"}
        assert led.edition_keys() == [(1, 1, "case-1")]


def test_the_real_migrations_are_well_formed() -> None:
    assert SCHEMA_VERSION == len(MIGRATIONS) >= 1


# -- editions -------------------------------------------------------------


def test_claim_numbers_editions_and_enforces_slot_and_slug(ledger: LedgerPort,
                                                           clock: Clock) -> None:
    first = claim(ledger, 1)
    clock.advance(days=7)
    second = claim(ledger, 2)
    assert (first.number, second.number) == (1, 2)
    assert first.status == "claimed" and first.claimed_at == T0 == first.published_at
    assert second.claimed_at == T0 + timedelta(days=7)
    assert first.claimed_at.tzinfo is not None

    with pytest.raises(SlotTaken) as taken:
        ledger.claim_edition(slot="2026-W01", slug="case-9", title="x", url="u")
    assert (taken.value.slot, taken.value.slug) == ("2026-W01", "case-1")
    with pytest.raises(AlreadyPublished) as again:
        ledger.claim_edition(slot="2026-W09", slug="case-2", title="x", url="u")
    assert again.value.slug == "case-2"
    # Refused claims leave nothing behind and do not burn a number.
    third = claim(ledger, 3)
    assert third.number == 3
    assert ledger.published_slugs() == {"case-1", "case-2", "case-3"}


def test_edition_queries_and_status(ledger: LedgerPort, clock: Clock) -> None:
    editions = [claim(ledger, n) for n in (1, 2, 3)]
    paris = timezone(timedelta(hours=1))
    pinned = ledger.claim_edition(slot="s", slug="pinned", title="P", url="u",
                                  published_at=datetime(2026, 1, 1, 9, tzinfo=paris))
    assert pinned.published_at == datetime(2026, 1, 1, 8, tzinfo=UTC)
    assert ledger.get_edition(editions[1].id) == editions[1]
    assert ledger.get_edition("case-3") == editions[2]
    assert ledger.get_edition("nope") is None and ledger.get_edition(999) is None
    assert ledger.edition_for_slot("2026-W02") == editions[1]

    clock.advance(hours=1)
    ledger.set_edition_status(editions[0].id, "delivering")
    done = ledger.set_edition_status(editions[0].id, "done")
    assert done.status == "done" and done.done_at == T0 + timedelta(hours=1)
    ledger.set_edition_status(editions[1].id, "done")
    assert [e.slug for e in ledger.editions()] == ["case-2", "case-1"]  # newest first
    assert [e.slug for e in ledger.editions(limit=1)] == ["case-2"]
    assert [e.number for e in ledger.editions(status=None)] == [4, 3, 2, 1]
    assert [e.slug for e in ledger.unfinished_editions()] == ["case-3", "pinned"]  # oldest first
    with pytest.raises(LedgerError, match="unknown edition status"):
        ledger.set_edition_status(editions[2].id, "published")
    with pytest.raises(LedgerError, match="no edition with id 999"):
        ledger.set_edition_status(999, "done")


def test_edition_keys_are_every_edition_oldest_first(ledger: LedgerPort) -> None:
    """``(id, number, slug)`` of every edition, finished or not: what a check of the whole
    history needs (``status``'s drift check), no record built."""
    assert ledger.edition_keys() == []
    editions = [claim(ledger, n) for n in (1, 2, 3)]
    ledger.set_edition_status(editions[1].id, "done")
    assert ledger.edition_keys() == [(e.id, e.number, e.slug) for e in editions]
    keys = ledger.edition_keys()
    assert all(type(part) is kind for key in keys  # plain values, as the records hold them
               for part, kind in zip(key, (int, int, str), strict=True))


def test_artefacts_by_name_of_every_edition(ledger: LedgerPort) -> None:
    """One artefact of every edition (or of some), by content or by digest."""
    import hashlib

    editions = [claim(ledger, n) for n in (1, 2, 3)]
    for edition in editions[:2]:
        ledger.store_artefacts(edition.id, {"case.json": "x" * 9000 + edition.slug,
                                            "small": edition.slug})
    ledger.store_artefacts(editions[2].id, {"other": "o"})
    big = {e.id: "x" * 9000 + e.slug for e in editions[:2]}
    assert ledger.artefacts_named("case.json") == big
    assert ledger.artefacts_named("case.json", digests=True) == {
        i: hashlib.sha256(text.encode()).hexdigest() for i, text in big.items()}
    assert ledger.artefacts_named("small", [editions[1].id, editions[2].id, 999]) == {
        editions[1].id: editions[1].slug}
    assert ledger.artefacts_named("small", [editions[0].id], digests=True) == {
        editions[0].id: hashlib.sha256(editions[0].slug.encode()).hexdigest()}
    assert ledger.artefacts_named("missing") == {}


def test_naive_clock_is_refused(location: str) -> None:
    with open_ledger(location, now=lambda: datetime(2026, 1, 1)) as led, \
            pytest.raises(ValueError, match="aware"):
        claim(led, 1)


def test_artefacts_are_kept_as_first_rendered(ledger: LedgerPort) -> None:
    edition = claim(ledger, 1)
    html = "<p>Café « crème » à 3\u202f€</p>"
    ledger.store_artefacts(edition.id, {"email.html": html, "email.txt": "Café"})
    assert ledger.artefact(edition.id, "email.html") == html
    assert ledger.artefact(edition.id, "missing") is None
    import hashlib

    assert ledger.artefact_hashes(edition.id)["email.html"] == hashlib.sha256(
        html.encode()).hexdigest()
    ledger.store_artefacts(edition.id, {"email.html": html})  # same text: fine
    with pytest.raises(LedgerError, match=r"already has a different artefact 'email\.html'"):
        ledger.store_artefacts(edition.id, {"feed.xml": "<rss/>", "email.html": "other"})
    assert ledger.artefact(edition.id, "feed.xml") is None  # the whole call was rolled back
    ledger.store_artefacts(edition.id, {"email.html": "other"}, replace=True)
    assert ledger.artefact(edition.id, "email.html") == "other"
    with pytest.raises(LedgerError, match="no edition with id 42"):
        ledger.store_artefacts(42, {"a": "b"})


CLAIM_RACER = """
    import json, os, sys, time
    from pathlib import Path
    from syndicate.errors import AlreadyPublished, SlotTaken
    from syndicate.ledger import open_ledger
    db, go, slot, slug = sys.argv[1:5]
    print("ready", flush=True)
    deadline = time.monotonic() + 20
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.001)
    try:
        with open_ledger(db) as led:  # fresh file: the migration races too
            e = led.claim_edition(slot=slot, slug=slug, title=slug, url="u")
        print(json.dumps({"won": e.slug, "number": e.number}))
    except (SlotTaken, AlreadyPublished) as exc:
        print(json.dumps({"lost": type(exc).__name__}))
"""


def race(tmp_path: Path, db: str, name: str,
         claims: list[tuple[str, str]]) -> list[dict[str, object]]:
    go = tmp_path / f"{name}.go"
    procs = [run_python(CLAIM_RACER, str(db), str(go), slot, slug) for slot, slug in claims]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    go.touch()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    return results


@pytest.mark.slow
def test_processes_racing_for_one_slot_exactly_one_wins(
        tmp_path: Path, fresh: Callable[[str], str]) -> None:
    for round_ in range(3):
        db = fresh(f"slot{round_}")
        results = race(tmp_path, db, f"slot{round_}", [("2026-04-05T10:00+02:00", f"case-{i}")
                                                   for i in range(3)])
        winners = [r for r in results if "won" in r]
        assert len(winners) == 1, results
        assert winners[0]["number"] == 1
        assert sorted(r.get("lost", "") for r in results) == ["", *["SlotTaken"] * 2]
        with open_ledger(db) as led:
            assert led.published_slugs() == {winners[0]["won"]}


@pytest.mark.slow
def test_processes_racing_for_one_case_study_exactly_one_wins(
        tmp_path: Path, fresh: Callable[[str], str]) -> None:
    results = race(tmp_path, fresh("slug"), "slug", [(f"slot-{i}", "same-case") for i in range(3)])
    assert sum("won" in r for r in results) == 1
    assert sorted(r.get("lost", "") for r in results) == ["", *["AlreadyPublished"] * 2]


# -- deliveries -------------------------------------------------------------


def test_delivery_lifecycle_and_counts(ledger: LedgerPort, clock: Clock) -> None:
    edition = claim(ledger, 1)
    feed = ledger.ensure_delivery(edition.id, "feed")
    assert (feed.recipient, feed.status, feed.attempts, feed.code) == ("", "pending", 0, None)
    assert ledger.ensure_delivery(edition.id, "feed") == feed  # idempotent
    added = ledger.ensure_deliveries(edition.id, "smtp", ["a@x.fr", "b@x.fr", "a@x.fr", "c@x.fr"])
    assert added == 3
    assert ledger.ensure_deliveries(edition.id, "smtp", ["a@x.fr", "d@x.fr"]) == 1

    clock.advance(seconds=5)
    ledger.mark_sent(feed.id, "written")
    sent = ledger.get_delivery(feed.id)
    assert sent is not None
    assert (sent.status, sent.attempts, sent.response) == ("sent", 1, "written")
    assert sent.updated_at == T0 + timedelta(seconds=5)

    rows = {d.recipient: d for d in ledger.pending_deliveries(edition.id, "smtp")}
    assert list(rows) == ["a@x.fr", "b@x.fr", "c@x.fr", "d@x.fr"]
    ledger.mark_sent(rows["a@x.fr"].id, "250 2.0.0 Ok: queued as 1A", code=250)
    ledger.mark_failed(rows["b@x.fr"].id, 550, "5.1.1 no such user")
    ledger.mark_failed(rows["c@x.fr"].id, 421, "try later", permanent=False)
    temp = ledger.get_delivery(rows["c@x.fr"].id)
    assert temp is not None
    assert (temp.status, temp.attempts, temp.code, temp.response) == ("pending", 1, 421,
                                                                      "try later")
    assert [d.recipient for d in ledger.pending_deliveries(edition.id, "smtp")] == [
        "c@x.fr", "d@x.fr"]
    assert ledger.delivery_counts(edition.id) == {
        "feed": {"sent": 1, "failed": 0, "pending": 0},
        "smtp": {"sent": 1, "failed": 1, "pending": 2},
    }
    failed = ledger.failed_deliveries(edition.id)
    assert [(d.recipient, d.code, d.response) for d in failed] == [
        ("b@x.fr", 550, "5.1.1 no such user")]
    assert ledger.failed_deliveries() == failed

    # A late failure report never turns a sent row back into something to resend.
    ledger.mark_failed(rows["a@x.fr"].id, 451, "timeout after data")
    still = ledger.get_delivery(rows["a@x.fr"].id)
    assert still is not None and still.status == "sent"
    with pytest.raises(LedgerError, match="no delivery with id 999"):
        ledger.mark_sent(999)
    with pytest.raises(LedgerError, match="no delivery with id 999"):
        ledger.mark_failed(999, 550, "x")
    with pytest.raises(LedgerError, match="no edition with id 77"):
        ledger.ensure_deliveries(77, "smtp", ["a@x.fr"])


def test_reset_failed_is_scoped_and_reopens_the_edition(ledger: LedgerPort) -> None:
    one, two = claim(ledger, 1), claim(ledger, 2)
    for edition in (one, two):
        ledger.ensure_deliveries(edition.id, "smtp", ["a@x.fr", "b@x.fr"])
        ledger.ensure_delivery(edition.id, "hook")
        for d in [*ledger.pending_deliveries(edition.id, "smtp"),
                  *ledger.pending_deliveries(edition.id, "hook")]:
            ledger.mark_failed(d.id, 500, "boom")
        ledger.set_edition_status(edition.id, "done")

    assert ledger.reset_failed(one.id, "smtp") == 2
    assert ledger.delivery_counts(one.id)["smtp"] == {"sent": 0, "failed": 0, "pending": 2}
    assert ledger.delivery_counts(one.id)["hook"]["failed"] == 1
    assert ledger.get_edition(one.id).status == "delivering"  # type: ignore[union-attr]
    assert ledger.get_edition(two.id).status == "done"  # type: ignore[union-attr]
    assert ledger.reset_failed(channel="hook") == 2
    assert ledger.get_edition(two.id).status == "delivering"  # type: ignore[union-attr]
    assert ledger.reset_failed() == 2  # what is left: edition two's smtp rows
    assert ledger.failed_deliveries() == []
    assert ledger.reset_failed() == 0


N = 100_000


def test_100k_deliveries_stream_in_flat_memory(ledger: LedgerPort, location: str) -> None:
    edition = claim(ledger, 1)
    committed_when_60k_consumed: list[int] = []

    def recipients():
        for i in range(N):
            if i == 60_000:  # ensure_deliveries must have written earlier chunks by now
                with open_ledger(location) as other:  # another connection sees commits only
                    committed_when_60k_consumed.append(
                        other.delivery_counts(edition.id)["smtp"]["pending"])
            yield f"subscriber-{i:06d}@example.com"

    started = time.perf_counter()
    assert ledger.ensure_deliveries(edition.id, "smtp", recipients()) == N
    ensure_s = time.perf_counter() - started
    assert 50_000 <= committed_when_60k_consumed[0] <= 60_000  # streamed in chunks

    tracemalloc.start()
    try:
        count = 0
        for delivery in ledger.pending_deliveries(edition.id, "smtp"):
            count += delivery.id > 0
        _, stream_peak = tracemalloc.get_traced_memory()

        tracemalloc.reset_peak()
        # What a fetchall would cost: the same rows fetched as one single page.
        everything = sum(1 for _ in ledger.pending_deliveries(edition.id, "smtp", chunk=N + 1))
        _, fetchall_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == everything == N
    print(f"\nensure_deliveries {N}: {ensure_s:.2f} s; pending_deliveries peak"
          f" {stream_peak / 1e6:.2f} MB; fetchall peak {fetchall_peak / 1e6:.2f} MB")
    assert stream_peak * 10 < fetchall_peak


def test_marking_while_iterating(ledger: LedgerPort) -> None:
    """Rows marked sent while the keyset scan is under way are neither skipped nor seen
    twice. What a mark costs is ``python -m bench.ledger`` (µs per mark vs plain sqlite3)."""
    edition = claim(ledger, 1)
    ledger.ensure_deliveries(edition.id, "smtp", (f"u{i}@x.fr" for i in range(6000)))
    pending = ledger.pending_deliveries(edition.id, "smtp", chunk=500)
    seen = []
    for _ in range(3):  # marks land between pages, and inside one
        batch = [next(pending) for _ in range(2000)]
        for d in batch:
            ledger.mark_sent(d.id, "250 ok", code=250)
        seen += [d.id for d in batch]
    assert next(pending, None) is None
    assert len(seen) == len(set(seen)) == 6000
    assert ledger.delivery_counts(edition.id)["smtp"] == {"sent": 6000, "failed": 0,
                                                          "pending": 0}


def test_one_ledger_shared_by_threads(ledger: LedgerPort) -> None:
    edition = claim(ledger, 1)
    ledger.ensure_deliveries(edition.id, "smtp", (f"u{i}@x.fr" for i in range(4000)))
    ids = [d.id for d in ledger.pending_deliveries(edition.id, "smtp")]
    errors: list[BaseException] = []

    def worker(part: list[int]) -> None:
        try:
            for i in part:
                if i % 7:
                    ledger.mark_sent(i, "ok")
                else:
                    ledger.mark_failed(i, 550, "no")
                ledger.delivery_counts(edition.id) if i % 500 == 0 else None
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def adder() -> None:  # writes to the same connection from yet another thread
        try:
            ledger.ensure_deliveries(edition.id, "hook", (f"h{i}" for i in range(2000)), chunk=100)
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(ids[k::6],)) for k in range(6)]
    threads.append(threading.Thread(target=adder))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    failed = sum(1 for i in ids if i % 7 == 0)
    assert ledger.delivery_counts(edition.id) == {
        "hook": {"sent": 0, "failed": 0, "pending": 2000},
        "smtp": {"sent": 4000 - failed, "failed": failed, "pending": 0},
    }


MARKER = """
    import sys
    from syndicate.ledger import open_ledger
    led = open_ledger(sys.argv[1])
    for d in led.pending_deliveries(1, "smtp"):
        led.mark_sent(d.id, "250 ok")
        print(d.id, flush=True)
"""


ROWS = 30_000


@pytest.mark.slow
def test_marks_survive_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    with open_ledger(db) as led:
        edition = claim(led, 1)
        assert edition.id == 1
        # More rows than the child can mark before the kill: it blocks on the pipe
        # (64 KiB) once we stop reading, so it runs at most ~10,000 marks ahead.
        led.ensure_deliveries(edition.id, "smtp", (f"u{i}@x.fr" for i in range(ROWS)))
    proc = run_python(MARKER, str(db))
    assert proc.stdout is not None
    reported = [int(proc.stdout.readline()) for _ in range(3000)]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    with open_ledger(db) as led:
        sent = {d.id for d in led.pending_deliveries(1, "smtp")} ^ set(range(1, ROWS + 1))
        counts = led.delivery_counts(1)["smtp"]
    # Everything reported sent is recorded sent; the rest (killed mid-way) is pending.
    assert set(reported) <= sent
    assert counts["pending"] == ROWS - len(sent) > 0
    assert len(sent) >= len(reported)


# -- subscribers ------------------------------------------------------------


def test_subscriber_normalisation_and_uniqueness(ledger: LedgerPort, clock: Clock) -> None:
    alice = ledger.add_subscriber("  Alice.Martin@EXEMPLE.FR \n", name="Alice")
    assert alice.email == "Alice.Martin@exemple.fr"
    assert (alice.name, alice.status, alice.source) == ("Alice", "active", "cli")
    assert alice.created_at == alice.updated_at == alice.confirmed_at == T0
    assert normalize_email("élise@ÉCOLE.fr") == "élise@école.fr"
    with pytest.raises(SubscriberExists) as exists:
        ledger.add_subscriber("alice.martin@exemple.fr", source="web")
    assert exists.value.subscriber == alice
    assert ledger.add_subscriber("ALICE.MARTIN@exemple.fr", exist_ok=True) == alice
    assert ledger.get_subscriber("alice.MARTIN@Exemple.Fr") == alice
    assert ledger.get_subscriber("not an address") is None
    for bad in ("", "   ", "alice", "alice@", "a b@x.fr", "alice@@x.fr", "@x.fr"):
        with pytest.raises(InvalidAddress, match="invalid email address"):
            ledger.add_subscriber(bad)
    assert ledger.count_subscribers() == 1


def test_subscriber_statuses_and_removal(ledger: LedgerPort, clock: Clock) -> None:
    bob = ledger.add_subscriber("bob@x.fr", status="pending", source="web")
    assert bob.confirmed_at is None
    clock.advance(minutes=10)
    bob = ledger.set_subscriber_status("BOB@x.fr", "active")
    assert bob.status == "active" and bob.confirmed_at == T0 + timedelta(minutes=10)
    clock.advance(days=1)
    bob = ledger.set_subscriber_status("bob@x.fr", "unsubscribed")
    assert bob.unsubscribed_at == bob.updated_at == T0 + timedelta(days=1, minutes=10)
    assert bob.created_at == T0
    with pytest.raises(LedgerError, match="unknown subscriber status 'gone'"):
        ledger.set_subscriber_status("bob@x.fr", "gone")
    with pytest.raises(LedgerError, match=r"nobody@x\.fr is not a subscriber"):
        ledger.set_subscriber_status("nobody@x.fr", "active")
    assert ledger.remove_subscriber("Bob@X.fr") is True
    assert ledger.remove_subscriber("bob@x.fr") is False
    assert ledger.count_subscribers() == 0


def test_delivery_events_recorded_once_counted_per_edition(ledger: LedgerPort,
                                                            clock: Clock) -> None:
    """Bounces and complaints reported after the send (migration 4): one row per event
    id, counted per recipient within a window and per edition; 'complained' is a status."""
    ledger.add_subscriber("Zoe@x.fr")
    first, second = claim(ledger, 1), claim(ledger, 2)
    d1 = ledger.ensure_delivery(first.id, "smtp", "Zoe@x.fr")
    d2 = ledger.ensure_delivery(second.id, "smtp", "Zoe@x.fr")
    ledger.ensure_delivery(first.id, "feed")
    ledger.mark_sent(d1.id, "250 ok", 250)
    soft = DeliveryEvent("<r1@mx>", d1.id, "soft", "4.2.2", "mailbox full", "maildir")
    assert ledger.add_delivery_event(soft) is True
    assert ledger.add_delivery_event(soft) is False  # replayed: stored once
    clock.advance(days=3)
    assert ledger.add_delivery_event(DeliveryEvent("<r2@mx>", d2.id, "soft", "4.4.1", "t"))
    assert ledger.add_delivery_event(DeliveryEvent("<r3@mx>", d1.id, "complaint", "", "abuse",
                                                   "maildir", T0 + timedelta(hours=1)))
    assert ledger.count_recipient_events("zoe@X.fr", "soft", T0) == 2
    assert ledger.count_recipient_events("zoe@x.fr", "soft", T0 + timedelta(days=1)) == 1
    assert ledger.delivery_event_counts(first.id) == {
        "hard": 0, "soft": 1, "complaint": 1, "bounced": 1, "sent": 1}
    events = ledger.delivery_events(d1.id)
    assert [(e.event_id, e.kind, e.status) for e in events] == [
        ("<r1@mx>", "soft", "4.2.2"), ("<r3@mx>", "complaint", "")]
    assert events[0].occurred_at == T0 and events[1].occurred_at == T0 + timedelta(hours=1)
    found = ledger.find_delivery(first.id, "zoe@x.FR")
    assert found is not None and found.id == d1.id
    assert ledger.find_delivery(first.id, "nobody@x.fr") is None
    with pytest.raises(LedgerError, match="no delivery with id 999"):
        ledger.add_delivery_event(DeliveryEvent("<r4@mx>", 999, "hard"))
    with pytest.raises(LedgerError, match="unknown event kind"):
        ledger.add_delivery_event(DeliveryEvent("<r5@mx>", d1.id, "odd"))  # type: ignore[arg-type]
    assert ledger.set_subscriber_status("zoe@x.fr", "complained").status == "complained"
    assert ledger.count_subscribers("complained") == 1


def test_iter_subscribers_streams_by_status(ledger: LedgerPort) -> None:
    result = ledger.add_subscribers(
        [(f"user{i}@x.fr", f"User {i}") for i in range(25)] + ["USER3@x.fr", "bad@", "z@y.fr"],
        chunk=7,
    )
    assert (result.added, result.present) == (26, 1)
    assert result.invalid and result.invalid[0][:2] == (26, "bad@")
    for i in range(0, 25, 5):
        ledger.set_subscriber_status(f"user{i}@x.fr", "bounced")
    active = list(ledger.iter_subscribers(chunk=4))
    assert len(active) == ledger.count_subscribers("active") == 21
    assert [s.id for s in active] == sorted(s.id for s in active)
    assert active[0].email == "user1@x.fr" and active[0].name == "User 1"
    assert [s.email for s in ledger.iter_subscribers("bounced", chunk=2)] == [
        f"user{i}@x.fr" for i in range(0, 25, 5)]
    assert len(list(ledger.iter_subscribers(None, chunk=3))) == ledger.count_subscribers() == 26
    with pytest.raises(LedgerError, match="unknown subscriber status"):
        list(ledger.iter_subscribers("everyone"))


def test_search_subscribers_pages_newest_first(ledger: LedgerPort) -> None:
    ledger.add_subscribers([(f"user{i}@x.fr", f"User {i}") for i in range(12)]
                           + [("ann_e@y.fr", "Anne 100%"), ("Zoe@Y.fr", "Zoé")])
    ledger.set_subscriber_status("user3@x.fr", "unsubscribed")
    first = ledger.search_subscribers(limit=5)
    assert [s.email for s in first] == ["Zoe@y.fr", "ann_e@y.fr", "user11@x.fr",
                                        "user10@x.fr", "user9@x.fr"]
    second = ledger.search_subscribers(limit=5, before_id=first[-1].id)
    assert [s.email for s in second] == [f"user{i}@x.fr" for i in (8, 7, 6, 5, 4)]
    everyone = ledger.search_subscribers(limit=1000)
    assert len(everyone) == 14
    # Case folded, on the address or the name; LIKE's own wildcards are literal.
    assert [s.email for s in ledger.search_subscribers("ZOE")] == ["Zoe@y.fr"]
    assert [s.email for s in ledger.search_subscribers("zoé")] == ["Zoe@y.fr"]
    assert [s.email for s in ledger.search_subscribers("n_e")] == ["ann_e@y.fr"]
    assert [s.email for s in ledger.search_subscribers("100%")] == ["ann_e@y.fr"]
    assert ledger.search_subscribers("_") == [everyone[1]]
    assert ledger.search_subscribers("%") == [everyone[1]]
    assert [s.email for s in ledger.search_subscribers("user1", limit=2)] == [
        "user11@x.fr", "user10@x.fr"]
    assert [s.email for s in ledger.search_subscribers("user", "unsubscribed")] == ["user3@x.fr"]
    assert ledger.search_subscribers("nobody") == []
    with pytest.raises(LedgerError, match="unknown subscriber status"):
        ledger.search_subscribers(status="everyone")


def test_subscriber_timeline_counts_per_day(ledger: LedgerPort, clock: Clock) -> None:
    ledger.add_subscribers(["a@x.fr", "b@x.fr"])
    clock.advance(days=1)
    ledger.add_subscriber("c@x.fr")
    ledger.set_subscriber_status("a@x.fr", "unsubscribed")
    clock.advance(days=2)
    ledger.set_subscriber_status("b@x.fr", "bounced")
    assert ledger.subscriber_timeline() == [
        ("2026-03-29", 2, 0, 0), ("2026-03-30", 1, 1, 0), ("2026-04-01", 0, 0, 1)]
    assert ledger.subscriber_timeline(since=T0 + timedelta(hours=1)) == [
        ("2026-03-30", 1, 1, 0), ("2026-04-01", 0, 0, 1)]


def test_delivery_counts_of_several_editions(ledger: LedgerPort) -> None:
    one, two, three = claim(ledger, 1), claim(ledger, 2), claim(ledger, 3)
    ledger.ensure_deliveries(one.id, "smtp", ["a@x.fr", "b@x.fr", "c@x.fr"])
    sent = ledger.ensure_delivery(one.id, "feed")
    ledger.mark_sent(sent.id)
    rows = list(ledger.pending_deliveries(one.id, "smtp"))
    ledger.mark_failed(rows[0].id, 550, "no such user")
    ledger.ensure_delivery(two.id, "archive")
    counts = ledger.delivery_counts_many([one.id, two.id, three.id])
    assert counts == {
        one.id: {"feed": {"sent": 1, "failed": 0, "pending": 0},
                 "smtp": {"sent": 0, "failed": 1, "pending": 2}},
        two.id: {"archive": {"sent": 0, "failed": 0, "pending": 1}},
    }
    assert counts[one.id] == ledger.delivery_counts(one.id)
    assert ledger.delivery_counts_many([]) == {}
    # Totals the caller remembers are not counted again (only pending and failed are).
    assert ledger.delivery_counts_many([one.id], known_totals={one.id: {"smtp": 3, "feed": 1}}
                                       ) == {one.id: counts[one.id]}
    assert ledger.delivery_counts_many([one.id], known_totals={one.id: {"smtp": 10}}) == {
        one.id: {"smtp": {"sent": 7, "failed": 1, "pending": 2}}}


def test_subscriber_counts_by_status(ledger: LedgerPort) -> None:
    assert ledger.subscriber_counts() == {"pending": 0, "active": 0, "unsubscribed": 0,
                                          "bounced": 0, "complained": 0}
    ledger.add_subscribers(["a@x.fr", "b@x.fr", "c@x.fr"])
    ledger.add_subscriber("d@x.fr", status="pending")
    ledger.set_subscriber_status("a@x.fr", "bounced")
    assert ledger.subscriber_counts() == {"pending": 1, "active": 2, "unsubscribed": 0,
                                          "bounced": 1, "complained": 0}


# -- confirmation outbox ----------------------------------------------------------


def test_enqueue_confirmation_is_idempotent_per_address(location: str, clock: Clock) -> None:
    with open_ledger(location, now=clock) as ledger:
        assert ledger.enqueue_confirmation("Anne@Example.org", window=300)
        assert not ledger.enqueue_confirmation("anne@example.org", window=300)  # pending
        (row,) = ledger.confirmations()
        assert row.email == "Anne@example.org" and row.requested_at == clock()
        claimed = ledger.claim_confirmation("me", lease=60)
        assert claimed is not None and claimed.id == row.id and claimed.attempts == 1
        assert ledger.mark_confirmation_sent(row.id, "me", 250, "250 ok")
        clock.advance(seconds=200)
        assert not ledger.enqueue_confirmation("ANNE@example.org", window=300)  # too soon
        clock.advance(seconds=101)
        assert ledger.enqueue_confirmation("anne@example.org", window=300)
        assert [r.status for r in ledger.confirmations(None)] == ["sent", "pending"]


def test_confirmation_claims_are_exclusive_across_connections(location: str) -> None:
    """Four senders (one connection each, as four processes would) take 40 rows:
    every row is taken exactly once."""
    with open_ledger(location) as ledger:
        for n in range(40):
            ledger.enqueue_confirmation(f"u{n}@example.org")
    taken: list[list[int]] = [[] for _ in range(4)]

    def sender(index: int) -> None:
        with open_ledger(location) as mine:
            for _ in range(100):
                row = mine.claim_confirmation(f"sender {index}", lease=60)
                if row is None:
                    return
                taken[index].append(row.id)
                mine.mark_confirmation_sent(row.id, f"sender {index}", 250, "ok")

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    ids = [i for found in taken for i in found]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 40


def test_a_confirmation_lease_that_ran_out_passes_the_row_on(location: str,
                                                             clock: Clock) -> None:
    with open_ledger(location, now=clock) as ledger:
        ledger.enqueue_confirmation("lent@example.org")
        first = ledger.claim_confirmation("first", lease=60)
        assert first is not None
        assert ledger.claim_confirmation("second", lease=60) is None  # leased
        clock.advance(seconds=61)
        second = ledger.claim_confirmation("second", lease=60)
        assert second is not None and second.id == first.id and second.attempts == 2
        # The first sender comes back late: it cannot overwrite what the second records.
        assert not ledger.mark_confirmation_failed(first.id, "first", 550, "late")
        assert ledger.mark_confirmation_sent(second.id, "second", 250, "250 ok")
        assert ledger.get_confirmation(first.id).status == "sent"  # type: ignore[union-attr]


def test_confirmation_queries_and_pruning(ledger: LedgerPort, clock: Clock) -> None:
    assert ledger.next_confirmation_due() is None
    for name in ("a", "b", "c"):
        ledger.enqueue_confirmation(f"{name}@example.org")
        clock.advance(seconds=1)
    assert ledger.count_confirmations() == 3
    assert ledger.next_confirmation_due() == T0
    first = ledger.claim_confirmation("me", lease=60)
    assert first is not None and first.email == "a@example.org" and first.claimed_by == "me"
    assert ledger.mark_confirmation_retry(first.id, "me", T0 + timedelta(hours=1), 421,
                                          "busy", attempts=0)
    retried = ledger.get_confirmation(first.id)
    assert retried is not None and (retried.attempts, retried.code, retried.claimed_by) == (
        0, 421, None)
    assert ledger.next_confirmation_due() == T0 + timedelta(seconds=1)  # b, now first due
    second = ledger.claim_confirmation("me", lease=60)
    assert second is not None and second.email == "b@example.org"
    assert ledger.mark_confirmation_failed(second.id, "me", 550, "no such user")
    assert [c.email for c in ledger.confirmations(limit=1)] == ["a@example.org"]
    assert [c.status for c in ledger.confirmations(None)] == ["pending", "failed", "pending"]
    assert ledger.count_confirmations("failed") == 1
    with pytest.raises(LedgerError, match="unknown confirmation status"):
        ledger.confirmations("lost")
    assert ledger.prune_confirmations(T0) == 0  # requested at T0 + 1 s
    assert ledger.prune_confirmations(T0 + timedelta(minutes=1)) == 1
    assert ledger.count_confirmations("failed") == 0


# -- rate-limit counters ----------------------------------------------------------


def test_rate_limit_counters(ledger: LedgerPort, clock: Clock) -> None:
    now = T0.timestamp()
    assert ledger.limit_get("ip:1") == 0 and ledger.limit_expiry("ip:1") == now
    assert [ledger.limit_incr("ip:1", 60) for _ in range(3)] == [1, 2, 3]
    assert ledger.limit_incr("ip:1", 60, amount=5) == 8
    assert ledger.limit_get("ip:1") == 8 and ledger.limit_expiry("ip:1") == now + 60
    ledger.limit_incr("ip:2", 10)
    clock.advance(seconds=30)
    assert ledger.limit_get("ip:2") == 0 and ledger.limit_rows() == 2  # expired, kept
    assert ledger.limit_incr("ip:2", 10) == 1  # a new window (and the old row pruned)
    assert ledger.limit_expiry("ip:2") == now + 40
    ledger.limit_clear("ip:1")
    assert ledger.limit_get("ip:1") == 0
    assert ledger.limit_reset() == 1 and ledger.limit_rows() == 0


def test_rate_limit_increments_are_never_lost_across_connections(location: str) -> None:
    with open_ledger(location):
        pass  # created (and migrated) once, before the racers

    def counter() -> None:
        with open_ledger(location) as mine:
            for _ in range(50):
                mine.limit_incr("global", 3600)

    threads = [threading.Thread(target=counter) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    with open_ledger(location) as ledger:
        assert ledger.limit_get("global") == 200


# -- meta and publisher lock --------------------------------------------------


def test_meta(ledger: LedgerPort) -> None:
    assert ledger.get_meta("scheduler.last_slot") is None
    assert ledger.get_meta("scheduler.last_slot", "none") == "none"
    ledger.set_meta("scheduler.last_slot", "2026-03-29T02:30+02:00")
    ledger.set_meta("scheduler.last_slot", "2026-04-05T02:30+02:00")
    assert ledger.get_meta("scheduler.last_slot") == "2026-04-05T02:30+02:00"
    ledger.set_meta("scheduler.last_slot", None)
    assert ledger.get_meta("scheduler.last_slot") is None


def test_publisher_lock_in_one_process(tmp_path: Path, location: str) -> None:
    with open_ledger(location) as one, open_ledger(location) as two:
        with one.publisher_lock("run") as holder:
            assert holder.pid == os.getpid()
            with pytest.raises(LockedError, match=rf"locked by pid {os.getpid()} \(run"), \
                    two.publisher_lock("publish-next"):
                pass
        with two.publisher_lock("publish-next"):  # released on exit
            pass
    if not location.startswith("postgresql:"):
        # The lock file beside the database names nobody once released.
        assert lock_path(tmp_path / "var" / "syndicate.db").read_text() == ""


HOLDER = """
    import sys, time
    from syndicate.ledger import open_ledger
    with open_ledger(sys.argv[1]).publisher_lock("syndicate run") as me:
        print(me.pid, flush=True)
        time.sleep(60)
"""


@pytest.mark.slow
def test_publisher_lock_held_by_another_process_until_it_dies(
        fresh: Callable[[str], str]) -> None:
    db = fresh("l")
    with open_ledger(db):
        pass  # created before the holder starts: the test waits for its lock, not a migration
    proc = run_python(HOLDER, db)
    try:
        assert proc.stdout is not None
        pid = int(proc.stdout.readline())
        assert pid == proc.pid
        with open_ledger(db) as led:
            with pytest.raises(LockedError) as locked, led.publisher_lock("publish-next"):
                pass
            message = str(locked.value)
            assert f"pid {pid} (syndicate run" in message
            assert db.removeprefix("postgresql://postgres@") in message
            proc.send_signal(signal.SIGKILL)  # no cleanup runs: the kernel drops the flock
            proc.wait(timeout=10)
            # PostgreSQL drops the advisory lock when it sees the session's socket close:
            # a few milliseconds after the kill, so the next taker may try a few times.
            deadline = time.monotonic() + 20
            while True:
                try:
                    with led.publisher_lock("publish-next") as me:
                        assert me.pid == os.getpid()
                    break
                except LockedError:
                    if time.monotonic() > deadline or not db.startswith("postgresql:"):
                        raise
                    time.sleep(0.01)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


# -- delivery claims (many senders: syndicate worker) --------------------------------


def _handed(led: LedgerPort, n: int = 10) -> Edition:
    edition = claim(led, 1)
    led.ensure_deliveries(edition.id, "smtp", [f"u{i}@example.org" for i in range(n)])
    led.set_edition_status(edition.id, "delivering")
    return edition


def test_claims_need_a_hand_off_and_are_exclusive(ledger: LedgerPort, clock: Clock) -> None:
    edition = _handed(ledger)
    assert ledger.claim_deliveries(edition.id, "smtp", "w1", 30, 4) == []  # not handed off
    ledger.hand_off(edition.id, "smtp")
    ledger.hand_off(edition.id, "smtp")  # idempotent
    assert ledger.handoffs() == [(edition.id, "smtp")]
    first = ledger.claim_deliveries(edition.id, "smtp", "w1", 30, 4)
    second = ledger.claim_deliveries(edition.id, "smtp", "w2", 30, 4)
    third = ledger.claim_deliveries(edition.id, "smtp", "w3", 30, 4)
    assert [len(first), len(second), len(third)] == [4, 4, 2]
    ids = [d.id for d in first + second + third]
    assert ids == sorted(set(ids))  # each row once, in id order
    assert ledger.claim_deliveries(edition.id, "smtp", "w4", 30, 4) == []
    # The self sender does not see the rows a worker holds under a live claim.
    assert list(ledger.pending_deliveries(edition.id, "smtp")) == []


def test_marks_end_a_claim_and_an_expired_claim_passes_on(ledger: LedgerPort,
                                                          clock: Clock) -> None:
    edition = _handed(ledger, 3)
    ledger.hand_off(edition.id, "smtp")
    a, b, c = ledger.claim_deliveries(edition.id, "smtp", "dead", 30, 10)
    ledger.mark_sent(a.id, "250 ok", 250)
    ledger.mark_failed(b.id, 451, "try later", permanent=False)  # still its holder's
    clock.advance(seconds=20)
    assert ledger.renew_claims("dead", 30) == 2  # b and c, a is sent
    clock.advance(seconds=29)
    assert ledger.claim_deliveries(edition.id, "smtp", "other", 30, 10) == []  # renewed
    clock.advance(seconds=2)  # the heartbeat stopped: the lease ran out
    taken = ledger.claim_deliveries(edition.id, "smtp", "other", 30, 10)
    assert [d.id for d in taken] == [b.id, c.id]
    assert ledger.renew_claims("dead", 30) == 0  # no longer its claims
    ledger.mark_failed(b.id, 550, "no such user", permanent=True)
    assert not ledger.finish_edition(edition.id)  # c is pending
    assert ledger.release_claims("other") == 1  # c, given back
    again = ledger.claim_deliveries(edition.id, "smtp", "third", 30, 10)
    assert [d.id for d in again] == [c.id]
    ledger.mark_sent(c.id)
    assert ledger.renew_claims("third", 30) == 0
    assert ledger.finish_edition(edition.id)
    assert not ledger.finish_edition(edition.id)  # once
    done = ledger.get_edition(edition.id)
    assert done is not None and done.status == "done" and done.done_at == clock()
    assert ledger.handoffs() == []  # a done edition has nothing to hand out


def test_finish_edition_is_for_handed_off_editions_only(ledger: LedgerPort) -> None:
    edition = claim(ledger, 1)
    ledger.set_edition_status(edition.id, "delivering")
    assert not ledger.finish_edition(edition.id)  # the publisher's to close
    ledger.hand_off(edition.id, "smtp")
    assert ledger.finish_edition(edition.id)


def test_claims_are_exclusive_across_connections(location: str) -> None:
    """Four claimers (one connection each, as four worker processes) drain 300 rows in
    batches of 7: every row is claimed exactly once."""
    with open_ledger(location) as ledger:
        edition = _handed(ledger, 300)
        ledger.hand_off(edition.id, "smtp")
    taken: list[list[int]] = [[] for _ in range(4)]

    def worker(index: int) -> None:
        with open_ledger(location) as mine:
            for _ in range(200):
                batch = mine.claim_deliveries(edition.id, "smtp", f"w{index}", 60, 7)
                if not batch:
                    return
                for delivery in batch:
                    taken[index].append(delivery.id)
                    mine.mark_sent(delivery.id, "250 ok", 250)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    ids = [i for found in taken for i in found]
    assert len(ids) == 300 and len(set(ids)) == 300
    with open_ledger(location) as ledger:
        assert ledger.delivery_counts(edition.id)["smtp"]["sent"] == 300
        assert ledger.finish_edition(edition.id)


def test_a_hand_off_taken_back_stops_new_claims(ledger: LedgerPort, clock: Clock) -> None:
    edition = _handed(ledger, 4)
    ledger.hand_off(edition.id, "smtp")
    (held,) = ledger.claim_deliveries(edition.id, "smtp", "w1", 30, 1)
    assert ledger.take_back(edition.id, "smtp") and not ledger.take_back(edition.id, "smtp")
    assert ledger.claim_deliveries(edition.id, "smtp", "w2", 30, 10) == []
    free = [d.id for d in ledger.pending_deliveries(edition.id, "smtp")]
    assert held.id not in free and len(free) == 3  # the held row is its holder's
    clock.advance(seconds=31)
    assert held.id in [d.id for d in ledger.pending_deliveries(edition.id, "smtp")]


def test_send_slots_are_spaced_by_the_interval(ledger: LedgerPort, clock: Clock) -> None:
    now = T0.timestamp()
    assert [ledger.reserve_send("smtp", 0.5) for _ in range(3)] == [now, now + 0.5, now + 1.0]
    assert ledger.reserve_send("other", 0.5) == now  # one bucket per channel
    clock.advance(seconds=10)  # idle: no credit saved up, the next slot is now
    assert ledger.reserve_send("smtp", 0.5) == now + 10


def test_send_slots_are_shared_across_connections(location: str) -> None:
    """Four senders (one connection each) reserving 25 slots each: 100 distinct slots,
    exactly one interval apart, whoever took them."""
    with open_ledger(location):
        pass
    slots: list[float] = []
    lock = threading.Lock()

    def sender() -> None:
        with open_ledger(location) as mine:
            for _ in range(25):
                slot = mine.reserve_send("smtp", 1.0)
                with lock:
                    slots.append(slot)

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    slots.sort()
    assert len(slots) == 100
    assert all(abs(b - a - 1.0) < 1e-6 for a, b in itertools.pairwise(slots))


def test_link_counts_one_upsert_per_hit_and_delivery_hits_only_when_given(
        ledger: LedgerPort, location: str, clock: Clock) -> None:
    """Analytics (migration 6): counts per (edition, link), concurrent-safe across
    connections; per-delivery records only when a delivery id is passed."""
    from syndicate.ledger import OPEN_LINK

    first, second = claim(ledger, 1), claim(ledger, 2)
    row = ledger.ensure_delivery(first.id, "smtp", "zoe@x.fr")
    assert ledger.hit_counts([first.id]) == {}
    others = [open_ledger(location, now=clock) for _ in range(2)]
    try:
        def bump(led: LedgerPort) -> None:
            for _ in range(50):
                led.count_hit(first.id, 3)

        threads = [threading.Thread(target=bump, args=(led,)) for led in [ledger, *others]]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        for led in others:
            led.close()
    ledger.count_hit(second.id, 0)
    ledger.count_hit(first.id, OPEN_LINK, row.id)
    assert ledger.hit_counts([first.id, second.id, 999]) == {
        first.id: {3: 150, OPEN_LINK: 1}, second.id: {0: 1}}
    assert ledger.delivery_hits(row.id) == [(OPEN_LINK, T0)]
