"""Slots, slot keys, DST and the catch-up plan (pure; cron's rules through cronsim, checked
against APScheduler 3.11 where both agree)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from conftest import Project

from syndicate.app import parse_config
from syndicate.cron import parse_cron
from syndicate.daemon import SlotTrigger
from syndicate.schedule import (
    describe,
    iter_slots,
    next_slots,
    plan_catch_up,
    slot_key,
    slots_between,
)

PARIS = ZoneInfo("Europe/Paris")


def paris(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=PARIS, fold=fold)  # type: ignore[misc]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def aps_trigger(expression: str) -> CronTrigger:
    """APScheduler's own cron trigger for a crontab line (its weekdays count from Monday = 0,
    so crontab's numbers are given as names)."""
    minute, hour, day, month, weekday = expression.split()
    names = ["sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    weekday = re.sub(r"\d", lambda m: names[int(m.group())], weekday)
    return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=weekday,
                       timezone=PARIS)


def aps_fire_times(expression: str, start: datetime, end: datetime) -> list[datetime]:
    """What APScheduler's trigger would fire, in order, the way its scheduler walks it."""
    trigger = aps_trigger(expression)
    out: list[datetime] = []
    previous, now = None, start
    for _ in range(100_000):  # bounded
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None or fire > end:
            return out
        out.append(fire)
        previous = now = fire
    raise AssertionError("too many fire times")


def hours(slots: list[datetime]) -> list[str]:
    return [s.strftime("%H:%M%z") for s in slots]


def day_slots(expression: str, *day: int) -> list[datetime]:
    start = paris(*day)
    return slots_between(parse_cron(expression), PARIS, start, start + timedelta(days=1))


SPRING, FALL = (2026, 3, 29), (2026, 10, 25)  # Europe/Paris's DST days in 2026


# ------------------------------------------------------------------ DST: cron's rules (cronsim)


def test_spring_forward_a_fixed_time_in_the_gap_runs_right_after_the_jump() -> None:
    # 02:30 does not exist: cron (Vixie, cronie) runs the job at 03:00, when clocks jump.
    (slot,) = day_slots("30 2 * * 0", *SPRING)
    assert slot.isoformat() == "2026-03-29T03:00:00+02:00"
    assert slot_key(slot, PARIS) == "cron:2026-03-29T03:00 Europe/Paris"
    # Several fixed times in the gap run together right after it: one slot.
    assert hours(day_slots("0,30 2 * * *", *SPRING)) == ["03:00+0200"]
    # A skipped time joins the times that exist, each its own slot.
    assert hours(day_slots("15 1-4 * * 0", *SPRING)) == [
        "01:15+0100", "03:00+0200", "03:15+0200", "04:15+0200"]
    # APScheduler instead moves 02:30 by the gap, to 03:30 (what we did before cronsim).
    (fire,) = aps_fire_times("30 2 * * 0", paris(2026, 3, 28), paris(2026, 3, 30))
    assert slot_key(fire, PARIS) == "cron:2026-03-29T03:30 Europe/Paris"


def test_spring_forward_a_wildcard_job_runs_at_the_times_that_exist() -> None:
    # For cron a minute or hour field starting with '*' is a "wildcard job": the hour that
    # does not exist has none of its runs.
    assert day_slots("*/20 2 * * *", *SPRING) == []
    assert hours(day_slots("*/30 2,3 * * *", *SPRING)) == ["03:00+0200", "03:30+0200"]
    assert len(day_slots("* * * * *", *SPRING)) == 23 * 60


def test_fall_back_a_repeated_time_is_one_slot_at_its_first_instant() -> None:
    fires = aps_fire_times("30 2 * * 0", paris(2026, 10, 24), paris(2026, 10, 26))
    assert [f.isoformat() for f in fires] == [
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:30:00+01:00",  # APScheduler: the same wall-clock time an hour later
    ]
    assert {slot_key(f, PARIS) for f in fires} == {"cron:2026-10-25T02:30 Europe/Paris"}
    assert [s.isoformat() for s in day_slots("30 2 * * 0", *FALL)] == [
        "2026-10-25T02:30:00+02:00"]
    # cron runs a wildcard job in both passes of the repeated hour; a slot key names one
    # wall-clock time, so each is one slot, at its first instant.
    assert hours(day_slots("*/30 2,3 * * *", *FALL)) == [
        "02:00+0200", "02:30+0200", "03:00+0100", "03:30+0100"]
    assert len(day_slots("* * * * *", *FALL)) == 24 * 60


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [("30 2 * * *", paris(2026, 10, 25, 2, 15, fold=1), "2026-10-26T02:30:00+01:00"),
     ("*/30 2,3 * * *", paris(2026, 10, 25, 2, 10, fold=1), "2026-10-25T03:00:00+01:00"),
     ("*/30 2,3 * * *", paris(2026, 10, 25, 2, 40), "2026-10-25T03:00:00+01:00")],
)
def test_started_inside_the_repeated_hour_the_next_slot_is_after_it(
    expression: str, after: datetime, expected: str
) -> None:
    # cronsim ignores the start's fold (it would hand out 02:30+02:00, an hour before
    # 02:15+01:00): a daemon restarted in the repeated hour must not see a past slot.
    assert next(iter_slots(parse_cron(expression), PARIS, after)).isoformat() == expected


@pytest.mark.parametrize(
    "expression",
    ["30 2 * * 0", "30 2 * * *", "0 2 * * *", "*/30 2,3 * * *", "15 1-4 * * 0", "0 8 * * 2",
     "*/20 * 24-26 3,10 *", "0 8 1 * *", "0 1 * * *", "0 23 * * *", "*/20 2 * * *"],
)
def test_slot_keys_match_apscheduler_over_a_year_but_on_spring_forward_day(
    expression: str
) -> None:
    # An independent implementation agrees on every day but the one where cron and
    # APScheduler read the skipped hour differently (see above).
    start, end = utc(2025, 12, 31, 23), utc(2027, 1, 1)
    ours = slots_between(parse_cron(expression), PARIS, start, end)
    fires = aps_fire_times(expression, start + timedelta(microseconds=1), end)

    def keys(moments: list[datetime]) -> set[str]:
        return {slot_key(m, PARIS) for m in moments} - {
            slot_key(m, PARIS) for m in moments if m.astimezone(PARIS).date() == date(*SPRING)}

    assert keys(ours) == keys(fires)
    assert len({slot_key(s, PARIS) for s in ours}) == len(ours)  # one slot per key
    # APScheduler's extra fires are exactly the repeated hour of the fall-back day.
    extra = {f.astimezone(UTC) for f in fires} - {s.astimezone(UTC) for s in ours}
    for instant in extra:
        local = instant.astimezone(PARIS)
        if local.date() != date(*SPRING):
            assert local.fold == 1 and local.date() == date(*FALL), local
            assert slot_key(local, PARIS) in {slot_key(s, PARIS) for s in ours}
    assert [s.astimezone(UTC) for s in ours] == sorted(s.astimezone(UTC) for s in ours)


@pytest.mark.xfail(strict=True, reason="cronsim 2.x assumes one-hour DST changes: "
                                       "Lord Howe Island's are 30 minutes")
def test_a_half_hour_dst_change_keeps_every_time_that_exists() -> None:
    # Known limit of cronsim (the only such zone in use, ~400 people): on spring-forward
    # day (02:00 -> 02:30) it skips 02:30, on fall-back day (02:00 -> 01:30) it skips
    # 02:00 and 02:20. strict: this test fails loudly once cronsim handles them.
    howe = ZoneInfo("Australia/Lord_Howe")
    spring = datetime(2026, 10, 4, tzinfo=howe)
    assert "02:30" in {s.strftime("%H:%M") for s in slots_between(
        parse_cron("30 * * * *"), howe, spring, spring + timedelta(days=1))}
    fall = datetime(2026, 4, 5, tzinfo=howe)
    assert [s.strftime("%H:%M") for s in slots_between(
        parse_cron("*/20 2 * * *"), howe, fall, fall + timedelta(days=1))] == [
        "02:00", "02:20", "02:40"]


@pytest.mark.parametrize(
    ("expression", "lost"),
    [("0 0 * * *", "cron:2026-03-30T00:00 Europe/Paris"),
     ("30 0 * * 1", "cron:2026-03-30T00:30 Europe/Paris"),
     ("0 0 1 * *", "cron:2026-04-01T00:00 Europe/Paris")],
)
def test_apscheduler_cron_trigger_loses_a_slot_after_spring_forward(
    expression: str, lost: str
) -> None:
    # Why the daemon does not use CronTrigger: walking from the previous fire, it
    # adds 24 h per day and lands an hour late after the change, missing a slot.
    start, end = utc(2026, 3, 1), utc(2026, 4, 2)
    fires = aps_fire_times(expression, start, end)
    ours = slots_between(parse_cron(expression), PARIS, start, end)
    assert lost not in {slot_key(f, PARIS) for f in fires}
    assert lost in {slot_key(s, PARIS) for s in ours}


def walk_trigger(trigger: SlotTrigger, start: datetime, end: datetime) -> list[datetime]:
    """The fire times an APScheduler job with ``trigger`` gets (as Job._get_run_times walks)."""
    out: list[datetime] = []
    fire = trigger.get_next_fire_time(None, start)
    while fire is not None and fire <= end and len(out) < 100_000:
        out.append(fire)
        fire = trigger.get_next_fire_time(fire, end)
    return out


@pytest.mark.parametrize(
    "expression", ["30 2 * * 0", "0 0 * * *", "0 0 1 * *", "*/20 2 * * *", "*/30 2,3 * * *"]
)
def test_slot_trigger_fires_exactly_at_the_slots(expression: str) -> None:
    start, end = utc(2026, 1, 1), utc(2027, 1, 1)
    trigger = SlotTrigger(parse_cron(expression), PARIS)
    fires = walk_trigger(trigger, start, end)
    assert fires == slots_between(parse_cron(expression), PARIS, start - timedelta(seconds=1), end)
    keys = [slot_key(f, PARIS) for f in fires]
    assert len(keys) == len(set(keys))  # the fall-back hour fires once


def test_slot_trigger_in_a_real_scheduler_and_pickled() -> None:
    import pickle

    from apscheduler.schedulers.background import BackgroundScheduler

    trigger = SlotTrigger(parse_cron("30 2 * * 0"), PARIS)
    assert pickle.loads(pickle.dumps(trigger)).get_next_fire_time(
        None, paris(2026, 10, 24)
    ) == paris(2026, 10, 25, 2, 30)
    scheduler = BackgroundScheduler(timezone=PARIS)
    scheduler.start(paused=True)
    try:
        job = scheduler.add_job(print, trigger=trigger, id="x")
        # the next Sunday 02:30 (or 03:00 on spring-forward day) after now
        now = datetime.now(UTC)
        assert job.next_run_time == next(iter_slots(trigger.spec, PARIS, now))
    finally:
        scheduler.shutdown(wait=False)


# ------------------------------------------------------------------ crontab's meaning


def test_a_day_of_month_and_a_weekday_mean_either_as_in_crontab() -> None:
    # The 1st of the month and every Monday (APScheduler would want both at once).
    slots = slots_between(parse_cron("0 8 1 * 1"), PARIS, paris(2026, 5, 28), paris(2026, 6, 16))
    assert [s.date().isoformat() for s in slots] == [
        "2026-06-01", "2026-06-08", "2026-06-15"]  # 1 June is a Monday too: one slot
    slots = slots_between(parse_cron("0 8 3 * 1"), PARIS, paris(2026, 5, 28), paris(2026, 6, 16))
    assert [s.date().isoformat() for s in slots] == [
        "2026-06-01", "2026-06-03", "2026-06-08", "2026-06-15"]


def test_cronsim_extensions_first_weekday_and_last_day_of_the_month() -> None:
    first_tuesdays = next_n("0 8 * * 2#1", paris(2026, 1, 1), 3)
    assert [s.date().isoformat() for s in first_tuesdays] == [
        "2026-01-06", "2026-02-03", "2026-03-03"]
    last_days = next_n("0 8 L * *", paris(2026, 1, 1), 3)
    assert [s.date().isoformat() for s in last_days] == ["2026-01-31", "2026-02-28", "2026-03-31"]


def next_n(expression: str, after: datetime, count: int) -> list[datetime]:
    slots = iter_slots(parse_cron(expression), PARIS, after)
    return [next(slots) for _ in range(count)]


# --------------------------------------------------------------------------- slots


def test_slot_key_is_local_wall_clock_without_offset() -> None:
    assert slot_key(utc(2026, 11, 24, 7), PARIS) == "cron:2026-11-24T08:00 Europe/Paris"
    first = paris(2026, 10, 25, 2, 30)
    second = paris(2026, 10, 25, 2, 30, fold=1)
    assert first.astimezone(UTC) != second.astimezone(UTC)
    assert slot_key(first, PARIS) == slot_key(second, PARIS)
    with pytest.raises(ValueError):
        slot_key(datetime(2026, 1, 1), PARIS)


def test_crontab_weekdays_sunday_is_0_and_7_tuesday_is_2() -> None:
    start = paris(2026, 11, 22)  # a Sunday, 00:00
    for expression in ("0 8 * * 0", "0 8 * * 7", "0 8 * * sun"):
        slots = slots_between(parse_cron(expression), PARIS, start, start + timedelta(days=14))
        assert [s.date().isoformat() for s in slots] == ["2026-11-22", "2026-11-29"]
    tuesdays = slots_between(parse_cron("0 8 * * 2"), PARIS, start, start + timedelta(days=8))
    assert [s.isoformat() for s in tuesdays] == ["2026-11-24T08:00:00+01:00"]


def test_slots_between_is_start_exclusive_end_inclusive() -> None:
    spec = parse_cron("0 8 * * *")
    eight = paris(2026, 11, 24, 8)
    assert slots_between(spec, PARIS, eight, eight + timedelta(days=1)) == [
        eight + timedelta(days=1)
    ]
    assert slots_between(spec, PARIS, eight - timedelta(seconds=1), eight) == [eight]
    assert slots_between(spec, PARIS, eight, eight) == []


def test_every_minute_over_three_weeks() -> None:
    spec = parse_cron("* * * * *")
    start = utc(2026, 10, 10)
    slots = slots_between(spec, PARIS, start, start + timedelta(days=21))
    # 21 days of minutes, the fall-back day's repeated hour counted once.
    assert len(slots) == 21 * 1440 - 60
    assert len({slot_key(s, PARIS) for s in slots}) == len(slots)


def test_next_slots_reads_the_config() -> None:
    config = parse_config(
        {"schedule": {"cron": "0 8 * * 2", "timezone": "America/New_York"}, "channels": []},
        Path("/tmp/x.toml"),
    )
    slots = next_slots(config, utc(2026, 11, 24, 12), 3)
    assert [s.isoformat() for s in slots] == [
        "2026-11-24T08:00:00-05:00",  # 13:00 UTC, after 12:00 UTC
        "2026-12-01T08:00:00-05:00",
        "2026-12-08T08:00:00-05:00",
    ]
    assert next_slots(config, utc(2026, 11, 24, 12), 0) == []


def test_rare_slots_are_found_years_ahead() -> None:
    slots = list(iter_slots(parse_cron("0 0 29 2 *"), PARIS, paris(2026, 3, 1)))
    assert slots[0].isoformat() == "2028-02-29T00:00:00+01:00"
    assert slots[1].isoformat() == "2032-02-29T00:00:00+01:00"


def test_describe_in_french_and_iso() -> None:
    assert describe(utc(2026, 11, 24, 7), PARIS) == "mardi 24 novembre 2026 à 08:00 (UTC+01:00)"
    assert describe(utc(2026, 8, 1, 6), PARIS) == "samedi 1er août 2026 à 08:00 (UTC+02:00)"
    assert describe(utc(2026, 11, 24, 7), PARIS, "iso") == "2026-11-24T08:00+01:00"


# --------------------------------------------------------------------------- catch-up


def weekly(start: datetime, count: int) -> list[datetime]:
    return [start + timedelta(weeks=i) for i in range(count)]


def test_nothing_missed_nothing_to_do() -> None:
    assert plan_catch_up([], utc(2026, 1, 1), 3600) == (None, [])


def test_only_the_latest_missed_slot_within_grace_is_published() -> None:
    missed = weekly(utc(2026, 11, 3, 7), 3)  # three Tuesdays
    now = missed[-1] + timedelta(hours=2)
    slot, skipped = plan_catch_up(list(reversed(missed)), now, timedelta(hours=6))
    assert slot == missed[-1]
    assert skipped == missed[:-1]


def test_latest_missed_slot_older_than_grace_is_skipped_too() -> None:
    missed = weekly(utc(2026, 11, 3, 7), 3)
    now = missed[-1] + timedelta(hours=6, seconds=1)
    assert plan_catch_up(missed, now, timedelta(hours=6)) == (None, missed)
    # exactly at the edge of the grace period: still published
    assert plan_catch_up(missed, missed[-1] + timedelta(hours=6), 21600)[0] == missed[-1]


def test_policy_none_never_catches_up() -> None:
    missed = weekly(utc(2026, 11, 3, 7), 2)
    assert plan_catch_up(missed, missed[-1], 21600, "none") == (None, missed)


def test_a_slot_in_the_future_is_not_caught_up() -> None:
    slot = utc(2026, 11, 3, 7)
    assert plan_catch_up([slot], slot - timedelta(seconds=1), 3600) == (None, [slot])


# --------------------------------------------------------------------------- syndicate schedule


def test_schedule_command_lists_slots_and_what_each_publishes(project: Project) -> None:
    import json

    from click.testing import CliRunner
    from test_daemon import fill_corpus  # type: ignore[import-not-found]

    from syndicate.cli import cli
    from syndicate.pipeline import publish

    for path in (project.root / "corpus").glob("*.md"):
        path.unlink()
    fill_corpus(project, 3)
    project.write_config(schedule={"cron": "30 2 * * 0", "timezone": "Europe/Paris"})
    config = project.config()
    args = ["--config", str(project.config_path), "schedule"]

    result = CliRunner().invoke(cli, [*args, "-n", "2", "--json", "--after", "2026-03-20"])
    assert result.exit_code == 0, result.output
    assert not config.database.exists()  # listing never creates the ledger
    rows = json.loads(result.stdout)
    assert [(r["slot"], r["key"], r["slug"]) for r in rows] == [
        ("2026-03-22T02:30:00+01:00", "cron:2026-03-22T02:30 Europe/Paris", "etude-simulee-01"),
        ("2026-03-29T03:00:00+02:00", "cron:2026-03-29T03:00 Europe/Paris", "etude-simulee-02"),
    ]

    publish(config, slot="manual:test")  # the queue moves on: two left
    result = CliRunner().invoke(cli, [*args, "-n", "4", "--json", "--after", "2026-10-24T12:00"])
    rows = json.loads(result.stdout)
    assert [(r["slot"], r["slug"]) for r in rows] == [
        ("2026-10-25T02:30:00+02:00", "etude-simulee-02"),
        ("2026-11-01T02:30:00+01:00", "etude-simulee-03"),
        ("2026-11-08T02:30:00+01:00", None),
        ("2026-11-15T02:30:00+01:00", None),
    ]

    text = CliRunner().invoke(cli, [*args, "-n", "3", "--after", "2026-10-24T12:00"]).stdout
    assert text.splitlines() == [
        "cron '30 2 * * 0' in Europe/Paris; 2 case studies in the queue",
        "  dimanche 25 octobre 2026 à 02:30 (UTC+02:00)  etude-simulee-02  "
        "Étude 2 : levée et fonds",
        "  dimanche 1er novembre 2026 à 02:30 (UTC+01:00)  etude-simulee-03  "
        "Étude 3 : prix et export",
        "  dimanche 8 novembre 2026 à 02:30 (UTC+01:00)  (queue empty)",
    ]
    bad = CliRunner().invoke(cli, [*args, "--after", "mardi"])
    assert bad.exit_code == 2 and "is not an ISO 8601 date/time" in bad.output
