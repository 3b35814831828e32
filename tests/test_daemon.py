"""The ``syndicate run`` daemon: a simulated year (injected clock, real ledger, real
pipeline), hot reload, the publisher lock, and a real daemon process (slow)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from conftest import ROOT, Clock, Project

from syndicate import corpus as corpus_mod
from syndicate.corpus import CaseStudy, Section
from syndicate.cron import parse_cron
from syndicate.daemon import META_LAST_SLOT, Daemon, SlotTrigger
from syndicate.errors import LockedError, SlotTaken
from syndicate.ledger import Ledger
from syndicate.logs import setup_logging
from syndicate.schedule import next_slots, slot_key

PARIS = ZoneInfo("Europe/Paris")
WORDS = [
    "marge", "trésorerie", "embauche", "levée", "fonds", "clients", "prix", "export", "usine",
    "logiciel", "banque", "assurance", "énergie", "recrutement", "croissance", "rachat",
    "fusion", "abonnement", "logistique", "franchise", "réseau",
]


def paris(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=PARIS, fold=fold)  # type: ignore[misc]


def fill_corpus(project: Project, count: int) -> None:
    """Enough case studies for a year of weekly editions (after the repo's own)."""
    folder = project.root / "corpus"
    start = corpus_mod.next_position(folder)
    for i in range(count):
        words = [WORDS[(i * 3 + k) % len(WORDS)] for k in range(6)]
        title = f"Étude {i + 1} : {words[0]} et {words[1]}"
        case = CaseStudy(
            slug=f"etude-simulee-{i + 1:02d}",
            title=title,
            lede=f"Une entreprise revoit sa {words[0]} et sa {words[2]} en {2020 + i % 6}.",
            sections=(
                Section("Le contexte", (f"La {words[3]} pèse sur la {words[4]} ; "
                                        f"la direction choisit la {words[5]}.",)),
                Section("La décision", (f"Elle mise sur la {words[1]} et la {words[0]}.",)),
            ),
            position=start + i,
            companies=(f"Société {chr(65 + i % 20)}",),
            themes=(words[0],),
        )
        corpus_mod.save(case, folder)


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    setup_logging("json", stream=stream)
    yield stream
    setup_logging("text")


def events(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


# --------------------------------------------------------------------------- a simulated year


def sundays_2026() -> list[date]:
    day = date(2026, 1, 4)  # the first Sunday
    out = []
    while day.year == 2026:
        out.append(day)
        day += timedelta(days=7)
    return out


def expected_key(day: date) -> str:
    # 02:30 does not exist on spring-forward day: as cron, the slot is right after the jump.
    hhmm = "03:00" if day == date(2026, 3, 29) else "02:30"
    return f"cron:{day.isoformat()}T{hhmm} Europe/Paris"


def test_a_year_of_weekly_editions_across_dst_restarts_and_outages(
    project: Project, clock: Clock, captured: io.StringIO
) -> None:
    fill_corpus(project, 46)
    project.write_config(
        site={"base_url": "https://cas.example.org/"},
        schedule={"cron": "30 2 * * 0", "timezone": "Europe/Paris", "misfire_grace": "6h",
                  "catch_up": "latest"},
    )
    config = project.config()
    trigger = SlotTrigger(parse_cron(config.schedule.cron), PARIS)
    down_slots: list[str] = []

    def up(start: datetime, stop: datetime, extra_fires: tuple[datetime, ...] = ()) -> None:
        """One run of the daemon: start-up at ``start``, every fire until ``stop``."""
        clock.current = start.astimezone(UTC)
        daemon = Daemon(config, now=clock)
        with daemon.session("simulated daemon"):
            daemon.start_up()
            fires = []
            fire = trigger.get_next_fire_time(None, start)
            while fire is not None and fire <= stop:
                fires.append(fire)
                fire = trigger.get_next_fire_time(fire, stop)
            for moment in sorted([*fires, *extra_fires]):
                clock.current = moment.astimezone(UTC) + timedelta(seconds=2)
                daemon.fire()
            # Another process cannot publish meanwhile: the lock is held.
            with pytest.raises(LockedError), Ledger(config.database) as other, \
                    other.publisher_lock("second daemon"):
                pass

    up(paris(2026, 1, 1, 12), paris(2026, 2, 10, 10))
    # A quick restart, no slot missed.
    up(paris(2026, 2, 10, 10, 5), paris(2026, 3, 7, 20))
    # Down across the 8 March slot, back 2 h 30 later (within 6 h): caught up at 05:00.
    up(paris(2026, 3, 8, 5), paris(2026, 5, 2, 20))
    # Down across the 3 May slot, back 9 h 30 later: too old, skipped.
    down_slots.append(expected_key(date(2026, 5, 3)))
    up(paris(2026, 5, 3, 12), paris(2026, 7, 3, 18))
    # Three weeks down (5, 12, 19, 26 July), back at 04:00 on the 26th: one catch-up.
    down_slots += [expected_key(date(2026, 7, d)) for d in (5, 12, 19)]
    up(paris(2026, 7, 26, 4), paris(2026, 8, 21, 18))
    # Three weeks down (23, 30 August, 6 September), back on Monday: nothing caught up.
    down_slots += [expected_key(date(2026, m, d)) for m, d in ((8, 23), (8, 30), (9, 6))]
    # Across the fall-back night: a CronTrigger would fire again at 02:30+01:00,
    # and the daemon is restarted inside the repeated hour (02:50 CEST -> 02:40 CET).
    up(paris(2026, 9, 7, 9), paris(2026, 10, 25, 2, 50),
       extra_fires=(paris(2026, 10, 25, 2, 30, fold=1),))
    up(paris(2026, 10, 25, 2, 40, fold=1), paris(2026, 12, 31, 23, 59))

    expected = [expected_key(d) for d in sundays_2026()]
    expected = [key for key in expected if key not in down_slots]
    with Ledger(config.database) as ledger:
        editions = sorted(ledger.editions(status=None), key=lambda e: e.number)
        assert [e.slot for e in editions] == expected
        assert len(editions) == 52 - 7 == 45
        assert [e.number for e in editions] == list(range(1, 46))
        assert all(e.status == "done" for e in editions)
        queue = [c.slug for c in corpus_mod.load(config.corpus_dir) if not c.is_draft]
        assert [e.slug for e in editions] == queue[:45]  # queue order, none twice
        # The ledger refuses the fall-back slot a second time, whatever fires.
        with pytest.raises(SlotTaken):
            ledger.claim_edition(slot=expected_key(date(2026, 10, 25)), slug="x", title="x",
                                 url="x")
        last = datetime.fromisoformat(ledger.get_meta(META_LAST_SLOT) or "")
        assert last == datetime(2026, 12, 27, 1, 30, 2, tzinfo=UTC)

    log = events(captured)
    published = [e for e in log if e.get("event") == "published"]
    assert [e["slot"] for e in published] == expected
    assert all(set(e["counts"]) == {"feed", "archive", "outbox"} for e in published)
    catch_ups = [e["slot"] for e in log if e.get("event") == "catch_up"]
    assert catch_ups == [expected_key(date(2026, 3, 8)), expected_key(date(2026, 7, 26))]
    skipped = [e["slot"] for e in log if e.get("event") == "slot_skipped"]
    assert skipped == down_slots
    repeats = [e for e in log if e.get("event") == "slot_repeat"]
    assert [e["slot"] for e in repeats] == [expected_key(date(2026, 10, 25))]
    # 52 Sundays: 45 published, 7 skipped, nothing else happened to any slot.
    assert not [e for e in log if e.get("event") in {"publish_failed", "slot_taken"}]


# --------------------------------------------------------------------------- fires, reload


def test_a_fire_with_nothing_left_to_publish_says_so(
    project: Project, clock: Clock, captured: io.StringIO
) -> None:
    corpus = project.root / "corpus"
    for path in corpus.glob("*.md"):
        path.unlink()
    fill_corpus(project, 1)
    project.write_config(schedule={"cron": "0 8 * * *"})
    config = project.config()
    clock.current = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
    daemon = Daemon(config, now=clock)
    with daemon.session():
        daemon.start_up()
        clock.current = datetime(2026, 11, 24, 7, 0, 1, tzinfo=UTC)  # 08:00:01 in Paris
        daemon.fire()
        clock.advance(days=1)
        daemon.fire()
    outcomes = [(a.slot, a.outcome) for a in daemon.attempts]
    assert outcomes == [("cron:2026-11-24T08:00 Europe/Paris", "published"),
                        ("cron:2026-11-25T08:00 Europe/Paris", "nothing")]
    nothing = [e for e in events(captured) if e.get("event") == "nothing_to_publish"]
    assert nothing and nothing[0]["level"] == "warning"


def test_catch_up_none_skips_even_within_grace(
    project: Project, clock: Clock, captured: io.StringIO
) -> None:
    project.write_config(schedule={"cron": "0 8 * * *", "catch_up": "none"})
    config = project.config()
    clock.current = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
    with Daemon(config, now=clock).session() as daemon:
        daemon.start_up()
    clock.current = datetime(2026, 11, 24, 7, 30, tzinfo=UTC)  # 30 min after 08:00 Paris
    with Daemon(config, now=clock).session() as daemon:
        daemon.start_up()
    assert [(a.slot, a.outcome) for a in daemon.attempts] == [
        ("cron:2026-11-24T08:00 Europe/Paris", "skipped")
    ]
    skipped = [e for e in events(captured) if e.get("event") == "slot_skipped"]
    assert skipped[0]["message"] == (
        'skipped missed slot cron:2026-11-24T08:00 Europe/Paris (30m ago): catch_up = "none"'
    )
    with Ledger(config.database) as ledger:
        assert ledger.editions(status=None) == []


def test_three_weeks_down_with_an_every_minute_cron_is_one_edition_and_few_lines(
    project: Project, clock: Clock, captured: io.StringIO
) -> None:
    fill_corpus(project, 1)
    project.write_config(schedule={"cron": "* * * * *", "misfire_grace": "30s"})
    config = project.config()
    clock.current = datetime(2026, 11, 1, 12, 0, 30, tzinfo=UTC)
    with Daemon(config, now=clock).session() as daemon:
        daemon.start_up()
    clock.current = datetime(2026, 11, 22, 12, 0, 10, tzinfo=UTC)
    with Daemon(config, now=clock).session() as daemon:
        daemon.start_up()
    log = events(captured)
    missed = [e["count"] for e in log if e.get("event") == "missed_slots"]
    assert missed == [21 * 24 * 60]
    assert [a.outcome for a in daemon.attempts].count("published") == 1
    assert [a.slot for a in daemon.attempts if a.outcome == "published"] == [
        "cron:2026-11-22T13:00 Europe/Paris"
    ]
    lines = [e["event"] for e in log if e.get("event") in {"slot_skipped", "slots_skipped"}]
    assert lines == ["slots_skipped"] + ["slot_skipped"] * 10
    summary = next(e for e in log if e.get("event") == "slots_skipped")
    assert summary["count"] == 21 * 24 * 60 - 1 - 10
    assert summary["message"].startswith(
        f"skipped {summary['count']} older missed slots, from cron:2026-11-01T13:01 Europe/Paris "
    )


def test_reload_valid_invalid_unchanged_missing(
    project: Project, clock: Clock, captured: io.StringIO
) -> None:
    project.write_config(schedule={"cron": "0 8 * * 2"})
    config = project.config()
    clock.current = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    daemon = Daemon(config, now=clock)
    assert daemon.check_config() is None  # unchanged

    project.write_config(schedule={"cron": "15 9 * * 4"})
    assert daemon.check_config() is True
    assert daemon.config.schedule.cron == "15 9 * * 4"
    reloaded = [e for e in events(captured) if e.get("event") == "config_reloaded"][-1]
    assert reloaded["slot"] == "cron:2026-11-26T09:15 Europe/Paris"
    assert reloaded["next_slot"] == "2026-11-26T09:15:00+01:00"

    project.write_config(schedule={"cron": "15 9 * * 9", "timezone": "Europe/Pariss"})
    assert daemon.check_config() is False
    assert daemon.config.schedule.cron == "15 9 * * 4"  # the last good config
    errors = [e["problem"] for e in events(captured) if e.get("event") == "config_error"]
    path = project.config_path
    assert errors == [
        f"{path}: schedule.cron = '15 9 * * 9': expected day_of_week field: 9 is outside 0-7",
        f"{path}: schedule.timezone = 'Europe/Pariss': expected an IANA time zone such as "
        "'Europe/Paris' (did you mean 'Europe/Paris'?)",
    ]

    project.write_config(storage={"database": "../elsewhere.db"})
    assert daemon.check_config() is False
    assert "restart the daemon to switch ledgers" in events(captured)[-2]["problem"]

    project.config_path.unlink()
    assert daemon.check_config() is False
    assert daemon.check_config() is False
    missing = [e for e in events(captured) if "config file not found" in e["message"]]
    assert len(missing) == 1  # said once, not every second
    project.write_config(schedule={"cron": "0 7 * * 1"})
    assert daemon.check_config() is True and daemon.config.schedule.cron == "0 7 * * 1"


def test_text_logs_are_one_line_per_event(project: Project, clock: Clock) -> None:
    stream = io.StringIO()
    setup_logging("text", stream=stream)
    try:
        daemon = Daemon(project.config(), now=clock)
        project.write_config(schedule={"cron": "0 8 * * 9"})
        daemon.check_config()
    finally:
        setup_logging("text")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert " ERROR " in lines[0] and "schedule.cron = '0 8 * * 9'" in lines[0]
    assert "still running on the last good configuration" in lines[1]


# --------------------------------------------------------------------------- real processes


def start_daemon(project: Project, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    env.pop("SYNDICATE_CONFIG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "syndicate", "--config", str(project.config_path), "run",
         "--log-format", "json", *extra],
        stdout=subprocess.DEVNULL, stderr=log.open("wb"), env=env, cwd=project.root,
    )


def read_events(log: Path) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            out.append({"event": "raw", "message": line})
    return out


def wait_for(log: Path, proc: subprocess.Popen[bytes], predicate: Any, timeout: float,
             after: int = 0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in read_events(log)[after:]:
            if predicate(event):
                return event
        if proc.poll() is not None and not any(predicate(e) for e in read_events(log)[after:]):
            raise AssertionError(f"daemon exited ({proc.returncode}):\n{log.read_text()}")
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s; log:\n{log.read_text()}")


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def test_two_daemons_on_one_ledger_the_second_refuses(project: Project, tmp_path: Path) -> None:
    project.write_config(schedule={"cron": "0 8 1 1 *"})
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first = start_daemon(project, first_log)
    try:
        wait_for(first_log, first, lambda e: e.get("event") == "scheduled", 30)
        began = time.monotonic()
        second = start_daemon(project, second_log)
        assert second.wait(30) == 1
        assert time.monotonic() - began < 15
        refused = [e for e in read_events(second_log) if e.get("event") == "locked_out"]
        assert refused, second_log.read_text()
        assert f"locked by pid {first.pid} (syndicate run --config " in refused[0]["message"]
        # Nor can a manual publish-next publish under a running daemon.
        manual = subprocess.run(
            [sys.executable, "-m", "syndicate", "--config", str(project.config_path),
             "publish-next"], capture_output=True, text=True, timeout=60, cwd=project.root,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert manual.returncode == 1, manual.stdout + manual.stderr
        assert f"locked by pid {first.pid}" in manual.stderr
        assert first.poll() is None  # the first one is unaffected
    finally:
        assert stop(first) == 0
    assert read_events(first_log)[-1]["event"] == "stopped"


@pytest.mark.slow
def test_real_daemon_publishes_reloads_and_stops_cleanly(
    project: Project, tmp_path: Path
) -> None:
    fill_corpus(project, 3)
    project.write_config(schedule={"cron": "* * * * *", "timezone": "Europe/Paris"})
    log = tmp_path / "daemon.log"
    proc = start_daemon(project, log)
    try:
        wait_for(log, proc, lambda e: e.get("event") == "scheduled", 30)
        published = wait_for(log, proc, lambda e: e.get("event") == "published", 75)
        assert published["slot"].startswith("cron:") and published["edition"] == 1
        assert set(published["counts"]) == {"feed", "archive", "outbox"}

        # A valid edit: rescheduled at once, the log names the new next slot.
        seen = len(read_events(log))
        project.write_config(schedule={"cron": "0 8 * * 2", "timezone": "America/New_York"})
        reloaded = wait_for(log, proc, lambda e: e.get("event") == "config_reloaded", 10, seen)
        expected = next_slots(project.config(), datetime.now(UTC), 1)[0]
        assert reloaded["next_slot"] == expected.isoformat()
        assert reloaded["slot"] == slot_key(expected, ZoneInfo("America/New_York"))

        # An invalid edit: the precise error is logged and the daemon keeps running.
        seen = len(read_events(log))
        project.write_config(schedule={"cron": "0 8 * * 9"})
        error = wait_for(log, proc, lambda e: e.get("event") == "config_error", 10, seen)
        assert error["problem"] == (f"{project.config_path}: schedule.cron = '0 8 * * 9': "
                                    "expected day_of_week field: 9 is outside 0-7")
        wait_for(log, proc, lambda e: e.get("event") == "config_invalid", 10, seen)
        # SIGHUP re-reads it (still invalid, still running).
        seen = len(read_events(log))
        proc.send_signal(signal.SIGHUP)
        wait_for(log, proc, lambda e: e.get("event") == "config_invalid", 10, seen)
        time.sleep(0.5)
        assert proc.poll() is None
    finally:
        code = stop(proc)
    assert code == 0, log.read_text()
    tail = read_events(log)
    assert [e["event"] for e in tail[-2:]] == ["stopping", "stopped"]
    assert tail[-2]["signal"] == "SIGTERM"
    assert tail[-1]["published"] >= 1
    with Ledger(project.root / "var" / "syndicate.db") as ledger:
        editions = ledger.editions(status=None)
        assert editions and all(e.status == "done" for e in editions)
        assert all(e.slot.endswith(" Europe/Paris") for e in editions)
        assert len({e.slot for e in editions}) == len(editions)


@pytest.mark.parametrize("window", ["_schedule", "_log_next"])
def test_a_sigterm_before_the_scheduler_blocks_still_stops_the_daemon(
    project: Project, monkeypatch: pytest.MonkeyPatch, window: str
) -> None:
    """SIGTERM between the start-up work and ``scheduler.start()`` (the handler cannot
    raise there yet) must not leave the daemon waiting in the scheduler for ever."""
    project.write_config(schedule={"cron": "0 8 1 1 *"})  # no slot in the meantime
    daemon = Daemon(project.config())
    original = getattr(Daemon, window)

    def then_terminate(self: Daemon, *args: Any) -> Any:
        result = original(self, *args)
        os.kill(os.getpid(), signal.SIGTERM)  # handled in this (the main) thread, right now
        return result

    monkeypatch.setattr(Daemon, window, then_terminate)
    rescued = threading.Event()

    def rescue() -> None:  # the old bug blocked for ever: unblock it and say so
        if not finished.wait(20) and daemon._scheduler is not None:
            rescued.set()
            daemon._scheduler.shutdown(wait=False)

    finished = threading.Event()
    threading.Thread(target=rescue, daemon=True).start()
    try:
        code = daemon.run()
    finally:
        finished.set()
    assert not rescued.is_set(), "the SIGTERM was lost: scheduler.start() blocked"
    assert code == 0
    assert daemon._stopping == "SIGTERM"
