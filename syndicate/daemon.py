"""``syndicate run``: publish on the schedule until stopped.

One process per ledger holds the publisher lock (``Ledger.publisher_lock``). On a
SQLite ledger (one machine) a second ``run`` refuses to start and names the holder.
On a PostgreSQL ledger (``supports_standby``) any number of ``run`` daemons, on any
machines, may share the database: one leads, the others log ``standby`` and poll for
the lock every sixth of ``[schedule] failover`` (the lease); the one that takes it
logs ``leader`` and starts exactly as a fresh daemon does (resume, catch-up, schedule).
The leader checks its lock is still held before each slot and every poll; if it lost
it (network partition, session terminated, the database server restarted) it *steps
down*: it stops as on SIGTERM — the channels stop between messages, so that it never
publishes beside a new leader — closes its ledger, and contends again as a standby,
opening the ledger with a bounded backoff while the server is unreachable. Whoever
leads next (it, or another daemon) resumes the unfinished edition.

On start it finishes unfinished editions (``pipeline.resume``), then decides
about the slots missed while it was down (:func:`~syndicate.schedule.plan_catch_up`:
at most one catch-up edition, only within ``misfire_grace``), then hands the
schedule to an APScheduler ``BlockingScheduler`` (memory job store: a job store
is never shared by two processes; the ledger is the only shared state).

The job fires at exactly the slots of :mod:`syndicate.schedule` (a
:class:`SlotTrigger`). What a fire publishes is decided from
the clock and the ledger, not from the scheduler's bookkeeping: every fire, like
every start, considers the slots in ``(last slot considered, now]`` (that
instant lives in the ledger's meta table) and publishes the latest one under its
slot key; the ledger refuses a key twice (``SlotTaken``), whatever fires.

The config file is watched (mtime, size and inode polled every second; a change
is read once the file has stayed the same for a poll) and re-read on SIGHUP: a
valid edit reschedules at once and logs the next slot; an invalid one logs the
precise errors and the daemon keeps the last good config. SIGTERM or
Ctrl-C stops it after the work in flight (channels see the stop event and finish
the messages they are sending), then it logs what it did and exits 0.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger

from . import confirmations, pipeline
from .app import App, load_config
from .bounces.poller import polling
from .clock import utcnow
from .config import Config
from .cron import CronSpec, parse_cron
from .errors import (
    AlreadyPublished,
    ConfigError,
    LedgerError,
    LockedError,
    NothingToPublish,
    SlotTaken,
    SyndicateError,
)
from .ledger import shown_url
from .schedule import (
    describe,
    iter_slots,
    next_slots,
    plan_catch_up,
    slot_key,
    slots_between,
    zone_name,
)
from .tokens import secret_from_env
from .transport import reconnect_delay

if TYPE_CHECKING:
    from .pipeline import PublishResult

log = logging.getLogger("syndicate.daemon")

JOB_ID = "syndicate-publish"
META_LAST_SLOT = "schedule.last_slot"
WATCH_INTERVAL = 1.0
#: Bounds the lead / step down / contend rounds of one process (and the reconnection
#: attempts of one step-down): far beyond any real run.
MAX_STEP_DOWNS = 100_000
# A fire runs a little after its slot (thread start-up, a busy executor): the
# slot it stands for is still published even when misfire_grace is 0.
FIRE_TOLERANCE = timedelta(seconds=60)
SKIPPED_LINES = 10  # one log line per skipped slot up to this, then one summary line



class SlotTrigger(BaseTrigger):
    """An APScheduler trigger that fires exactly at :func:`iter_slots`' slots.

    Used by the daemon instead of APScheduler 3.11's ``CronTrigger``, which (1)
    fires twice in the repeated hour when clocks go back, (2) walks days by
    adding 24 hours, so after the spring-forward night it skips the next slot
    in the first hour of a day (a daily ``0 0 * * *`` never fires on
    2026-03-30 in Europe/Paris; a monthly ``0 0 1 * *`` misses 1 April), and (3)
    ANDs a day-of-month with a weekday where cron ORs them. (1) and (2) are
    checked in the tests. With this trigger ``syndicate schedule`` shows exactly
    what the daemon will do.
    """

    __slots__ = ("spec", "timezone")

    def __init__(self, spec: CronSpec, timezone: tzinfo) -> None:
        self.spec = spec
        self.timezone = timezone

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        # Like CronTrigger: after a fire, the next slot even if it is already past
        # (APScheduler collects missed runs that way, then coalesces them); for a
        # new job, the first slot at or after now.
        after = previous_fire_time or now - timedelta(microseconds=1)
        return next(iter_slots(self.spec, self.timezone, after), None)

    def __getstate__(self) -> dict[str, Any]:
        return {"version": 1, "expression": self.spec.expression, "timezone": str(self.timezone)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.spec = parse_cron(state["expression"])
        self.timezone = ZoneInfo(state["timezone"])

    def __str__(self) -> str:
        return f"slots[{self.spec.expression!r} in {zone_name(self.timezone)}]"

    def __repr__(self) -> str:
        return f"<SlotTrigger ({self.spec.expression!r}, timezone={zone_name(self.timezone)!r})>"


@contextmanager
def _confirmation_sender(config: Config, now: Callable[[], datetime]) -> Iterator[object]:
    """The web app's confirmation outbox is also sent from here (see syndicate.confirmations)."""
    with confirmations.running(config, secret_from_env(required=False), now=now) as sender:
        yield sender


class _Shutdown(BaseException):
    """Raised in the main thread by SIGTERM/SIGINT to leave ``scheduler.start()``."""


@dataclass(frozen=True)
class Attempt:
    """What one slot came to: ``published``, ``taken`` (the ledger already has
    it), ``nothing`` (queue empty), ``failed``, or ``skipped``."""

    slot: str
    outcome: str
    edition: int | None = None
    slug: str | None = None
    detail: str = ""


def _fmt_delta(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "",
             f"{minutes}m" if minutes else "", f"{seconds}s" if seconds and not days else ""]
    return "".join(parts) or "0s"


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class Daemon:
    """The schedule's logic (start-up, fires, reloads) plus :meth:`run`, the process.

    Everything but :meth:`run` is usable without APScheduler or signals, with an
    injected clock: the tests drive a year of fires through it.
    """

    def __init__(
        self,
        config: Config,
        *,
        now: Callable[[], datetime] = utcnow,
        logger: logging.Logger | None = None,
    ) -> None:
        self.config = config
        self.path = config.path
        self.now = now
        self.log = logger or log
        self.stop = threading.Event()  # handed to the pipeline: channels stop between messages
        self.ledger: Any = None  # a syndicate.ledger.LedgerPort while a session is open
        self.attempts: list[Attempt] = []
        self._meta_lock = threading.Lock()
        self._signature = _signature(self.path)
        self._missing_logged = False
        self._hup = False
        self._wake = threading.Event()
        self._quit = threading.Event()
        self._scheduler: Any = None
        self._stopping: str | None = None
        self._in_scheduler = False
        self._lost = False  # the publisher lock was lost while leading
        self._lose_pending = False  # the SIGTERM the lock guard sends itself is in flight
        self._terminated = False  # SIGTERM/SIGINT from outside: do not contend again
        self.step_downs = 0  # times this daemon lost the lock and contended again
        self.takeover: float | None = None  # seconds waited as a standby, if any

    # ------------------------------------------------------------------ helpers

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.config.schedule.timezone)

    @property
    def grace(self) -> timedelta:
        return timedelta(seconds=self.config.schedule.misfire_grace)

    def _event(self, level: int, message: str, event: str, **fields: Any) -> None:
        self.log.log(level, message, extra={"event": event, **fields})

    def next_slot(self) -> datetime | None:
        found = next_slots(self.config, self.now(), 1)
        return found[0] if found else None

    def _log_next(self, event: str, head: str) -> None:
        slot = self.next_slot()
        if slot is None:  # pragma: no cover - the config refuses crons that never fire
            self._event(logging.WARNING, f"{head}; the schedule never fires", event)
            return
        self._event(
            logging.INFO,
            f"{head}; next slot {describe(slot, self.tz)} ({slot_key(slot, self.tz)})",
            event,
            next_slot=slot.isoformat(),
            slot=slot_key(slot, self.tz),
        )

    # ------------------------------------------------------------------ ledger session

    @property
    def lease(self) -> float:
        return float(self.config.schedule.failover)

    @property
    def poll(self) -> float:
        """How often a standby tries the lock and a leader checks it still holds it."""
        return max(1.0, self.lease / 6)

    @contextmanager
    def session(self, owner: str | None = None) -> Iterator[Daemon]:
        """Open the ledger and hold the publisher lock: ``LockedError`` if taken, or, on
        a ledger that supports standbys, wait for it until :attr:`stop` is set (then
        ``self.ledger`` stays None: nothing to do)."""
        owner = owner or f"syndicate run --config {self.path}"
        with App(self.config, self.now).open_ledger() as ledger, ExitStack() as stack:
            if self._take_lock(ledger, owner, stack):
                self.ledger = ledger
            try:
                yield self
            finally:
                self.ledger = None

    def _take_lock(self, ledger: Any, owner: str, stack: ExitStack) -> bool:
        """Enter the publisher lock into ``stack``. True when held, False if stopped first."""
        if not getattr(ledger, "supports_standby", False):
            stack.enter_context(ledger.publisher_lock(owner, lease=self.lease))
            return True
        since: float | None = None
        last_error = ""
        while True:  # bounded by self.stop (SIGTERM/SIGINT): a standby waits until told
            try:
                stack.enter_context(ledger.publisher_lock(owner, lease=self.lease))
            except LockedError as exc:
                if since is None:
                    since = time.monotonic()
                    holder = getattr(exc, "holder", None)
                    who = ("another process" if holder is None else
                           f"pid {holder.pid} ({holder.owner}, since {holder.since})")
                    self._event(logging.INFO, f"standby: publisher lock held by {who}; "
                                f"waiting (trying every {_fmt_delta(timedelta(seconds=self.poll))}"
                                f", failover {_fmt_delta(timedelta(seconds=self.lease))})",
                                "standby", holder=who, poll=self.poll, lease=self.lease)
            except LedgerError as exc:  # the database is unreachable: keep waiting
                if since is None:
                    since = time.monotonic()
                if str(exc) != last_error:
                    last_error = str(exc)
                    self._event(logging.WARNING, f"standby: {exc}; still waiting",
                                "standby_error")
            else:
                waited = None if since is None else time.monotonic() - since
                self.takeover = waited
                how = "" if waited is None else f" after {waited:.1f}s as a standby"
                self._event(logging.INFO, f"leader: publisher lock taken{how}", "leader",
                            waited=waited)
                return True
            if self.stop.wait(self.poll):
                return False

    def leading(self) -> bool:
        """Whether this daemon still holds the publisher lock; on losing it, stop (once)."""
        if self.ledger is None:
            return False
        if self._lost:
            return False
        if self.ledger.publisher_lock_alive():
            return True
        self._lose()
        return False

    def _lose(self) -> None:
        self._lost = True
        self.stop.set()  # channels stop between messages
        self._event(logging.ERROR, "publisher lock lost (connection to the ledger gone or "
                    "terminated): stepping down after the work in flight, then contending "
                    "again as a standby", "lock_lost")
        # Leave scheduler.start() in the main thread exactly as SIGTERM does; the handler
        # knows this one is ours (_lose_pending), not an operator's.
        self._lose_pending = True
        with contextlib.suppress(Exception):
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGTERM)

    def _guard(self) -> None:
        """A leader's check of its lock between slots (fires check it too)."""
        while not self._quit.wait(self.poll):
            if self.stop.is_set():
                return
            try:
                if not self.leading():
                    return
            except Exception:  # the guard must outlive any surprise
                self.log.exception("lock check failed", extra={"event": "watch_failed"})

    def last_considered(self) -> datetime | None:
        raw = self.ledger.get_meta(META_LAST_SLOT)
        try:
            return datetime.fromisoformat(raw) if raw else None
        except ValueError:
            self._event(logging.WARNING, f"ignoring unreadable {META_LAST_SLOT} = {raw!r}",
                        "meta_unreadable")
            return None

    def _advance(self, moment: datetime) -> None:
        """Record that every slot up to ``moment`` was considered (only ever forward)."""
        with self._meta_lock:
            last = self.last_considered()
            if last is None or moment > last:
                self.ledger.set_meta(META_LAST_SLOT, moment.astimezone(UTC).isoformat())

    # ------------------------------------------------------------------ publishing

    def publish_slot(self, slot: datetime, reason: str) -> Attempt:
        """Publish the next case study for ``slot``; log the outcome; never raise."""
        key = slot_key(slot, self.tz)
        try:
            result = pipeline.publish(self.config, slot=key, now=self.now, stop=self.stop,
                                      lock=False)  # this daemon holds the publisher lock
        except SlotTaken as exc:
            attempt = Attempt(key, "taken", slug=exc.slug)
            self._event(logging.INFO, f"slot {key} already has an edition ({exc.slug}): "
                        "already done", "slot_taken", slot=key, slug=exc.slug)
        except NothingToPublish as exc:
            attempt = Attempt(key, "nothing", detail=str(exc))
            self._event(logging.WARNING, f"slot {key}: {exc}", "nothing_to_publish", slot=key)
        except AlreadyPublished as exc:  # a concurrent publisher took the same case study
            attempt = Attempt(key, "failed", slug=exc.slug, detail=str(exc))
            self._event(logging.ERROR, f"slot {key}: {exc}", "publish_failed", slot=key)
        except SyndicateError as exc:
            attempt = Attempt(key, "failed", detail=str(exc))
            self._event(logging.ERROR, f"slot {key}: publishing failed: {exc}",
                        "publish_failed", slot=key)
        except Exception as exc:  # a bug must not kill the daemon: log it, keep the schedule
            attempt = Attempt(key, "failed", detail=f"{type(exc).__name__}: {exc}")
            self.log.exception(f"slot {key}: publishing failed: {type(exc).__name__}: {exc}",
                               extra={"event": "publish_failed", "slot": key})
        else:
            for earlier in result.earlier:  # unfinished editions finished first
                self._log_result(earlier, "resumed")
            attempt = Attempt(key, "published", result.edition.number if result.edition else None,
                              result.view.slug)
            self._log_result(result, "published", f" for slot {key} ({reason})", slot=key)
            for report in result.reports:
                if report.failed:
                    self._event(logging.WARNING, f"channel {report.channel}: {report.failed} "
                                f"failed on edition #{attempt.edition}: {report.detail}".rstrip(),
                                "delivery_failed", channel=report.channel, slot=key)
                if report.pending:
                    self._event(logging.WARNING, f"channel {report.channel}: {report.pending} "
                                f"pending on edition #{attempt.edition} (resumed later): "
                                f"{report.detail}".rstrip(" :"),
                                "delivery_pending", channel=report.channel, slot=key)
        self.attempts.append(attempt)
        return attempt

    def _log_result(self, result: PublishResult, event: str, where: str = "",
                    **fields: Any) -> None:
        """One event per edition, named and levelled by its outcome: ``published`` /
        ``resumed`` (INFO), ``…_incomplete`` (WARNING: pending, resumed by the next slot
        or start), ``…_failed`` (ERROR: failed deliveries, see `syndicate deliveries`)."""
        outcome = result.outcome
        level = {"complete": logging.INFO, "handed": logging.INFO,
                 "incomplete": logging.WARNING, "failed": logging.ERROR}[outcome]
        name = event if outcome == "complete" else f"{event}_{outcome}"
        counts = {r.channel: {"sent": r.sent, "failed": r.failed, "pending": r.pending,
                              "bounced": r.bounced, "skipped": r.skipped, "handed": r.handed}
                  for r in result.reports}
        self._event(level, f"{result.summary()}{where}", name,
                    edition=result.edition.number if result.edition else None,
                    slug=result.view.slug, counts=counts, complete=result.complete,
                    outcome=outcome, **fields)

    def _skip(self, skipped: list[datetime], now: datetime, why: str) -> None:
        tz = self.tz
        older, recent = skipped[:-SKIPPED_LINES], skipped[-SKIPPED_LINES:]
        if older:  # one line for the bulk: a long outage must not flood the log either
            self.attempts.extend(Attempt(slot_key(s, tz), "skipped", detail=why) for s in older)
            self._event(logging.WARNING, f"skipped {len(older)} older missed slots, from "
                        f"{slot_key(older[0], tz)} to {slot_key(older[-1], tz)}: {why}",
                        "slots_skipped", count=len(older))
        for slot in recent:
            key = slot_key(slot, tz)
            self.attempts.append(Attempt(key, "skipped", detail=why))
            self._event(logging.WARNING, f"skipped missed slot {key} ({_fmt_delta(now - slot)} "
                        f"ago): {why}", "slot_skipped", slot=key)

    def catch_up(self) -> Attempt | None:
        """After downtime: at most one edition, for the latest missed slot within grace."""
        now = self.now()
        last = self.last_considered()
        schedule = self.config.schedule
        if last is None:
            self._advance(now)
            self._event(logging.INFO, "first start on this ledger: no slot before now is "
                        "caught up", "first_start")
            return None
        missed = slots_between(parse_cron(schedule.cron), self.tz, last, now)
        slot, skipped = plan_catch_up(missed, now, self.grace, schedule.catch_up)
        if missed:
            self._event(logging.INFO, f"{len(missed)} slot(s) missed while stopped (since "
                        f"{last.astimezone(self.tz).isoformat(timespec='minutes')})",
                        "missed_slots", count=len(missed))
        if schedule.catch_up == "none":
            why = "catch_up = \"none\""
        elif missed and slot is None:
            why = f"older than misfire_grace ({_fmt_delta(self.grace)})"
        else:
            why = "only the latest missed slot is caught up (never a flood)"
        self._skip(skipped, now, why)
        self._advance(now)
        if slot is None:
            return None
        self._event(logging.INFO, f"catching up missed slot {slot_key(slot, self.tz)} "
                    f"({_fmt_delta(now - slot)} late, within misfire_grace "
                    f"{_fmt_delta(self.grace)})", "catch_up", slot=slot_key(slot, self.tz))
        return self.publish_slot(slot, "catch-up")

    def start_up(self) -> list[Attempt]:
        """Finish unfinished editions, then apply the catch-up plan."""
        done: list[Attempt] = []
        try:
            for result in pipeline.resume(self.config, now=self.now, stop=self.stop,
                                          lock=False):  # held by this daemon
                self._log_result(result, "resumed")
        except SyndicateError as exc:
            self._event(logging.ERROR, f"resuming unfinished editions failed: {exc}",
                        "resume_failed")
        if self.stop.is_set():
            return done
        attempt = self.catch_up()
        if attempt is not None:
            done.append(attempt)
        return done

    def fire(self) -> Attempt | None:
        """The scheduled job: publish the slot due now (the latest unconsidered one)."""
        now = self.now()
        tz = self.tz
        window = max(self.grace, FIRE_TOLERANCE)
        last = self.last_considered()
        start = now - window if last is None else last
        due = slots_between(parse_cron(self.config.schedule.cron), tz, start, now)
        slot, skipped = plan_catch_up(due, now, window, "latest")
        self._skip(skipped, now, "not fired in time (the daemon was busy or asleep)")
        self._advance(now)
        if slot is None:
            key = slot_key(now.replace(second=0, microsecond=0), tz)
            self._event(logging.INFO, f"scheduler fired at {now.astimezone(tz).isoformat()}: "
                        f"slot {key} was already considered (e.g. the repeated hour when "
                        "clocks go back); nothing to do", "slot_repeat", slot=key)
            return None
        return self.publish_slot(slot, "scheduled")

    # ------------------------------------------------------------------ config reload

    def check_config(self, force: bool = False) -> bool | None:
        """Reload the config if the file changed (or ``force``). True: reloaded;
        False: invalid (kept the last good one); None: unchanged."""
        signature = _signature(self.path)
        if signature is None:
            if not self._missing_logged:
                self._missing_logged = True
                self._event(logging.ERROR, f"{self.path}: config file not found; still "
                            "running on the last good configuration", "config_invalid")
            return False
        self._missing_logged = False
        if signature == self._signature and not force:
            return None
        self._signature = signature
        return self.reload()

    def reload(self) -> bool:
        try:
            config = load_config(self.path)
            problems = config.missing_secrets()
            if config.ledger_url != self.config.ledger_url:
                problems.append(
                    f"{self.path}: storage.database = "
                    f"{shown_url(str(config.storage.database))!r}: expected the ledger this "
                    f"daemon holds ({shown_url(self.config.ledger_url)}); "
                    "restart the daemon to switch ledgers"
                )
            if problems:
                raise ConfigError(self.path, problems)
        except ConfigError as exc:
            for problem in exc.problems:
                self._event(logging.ERROR, f"config error: {problem}", "config_error",
                            problem=problem)
            self._event(logging.ERROR, f"{self.path} is invalid ({len(exc.problems)} "
                        "problem(s)); still running on the last good configuration",
                        "config_invalid", problems=exc.problems)
            return False
        previous, self.config = self.config, config
        # Replace the job only when the schedule changed: replacing a job in the
        # very instant it is due would drop that fire (the slot would then be
        # logged as skipped at the next one). The ledger's meta is left alone:
        # slots of a new schedule that lie in the past are logged as skipped at
        # the next fire (which publishes its own, later, slot).
        if previous.schedule != config.schedule:
            self._schedule()
        self._log_next("config_reloaded", f"config reloaded from {self.path} "
                       f"(cron {config.schedule.cron!r}, {config.schedule.timezone})")
        return True

    def _watch(self) -> None:
        seen = self._signature
        while not self._quit.is_set():
            self._wake.wait(WATCH_INTERVAL)
            self._wake.clear()
            if self._quit.is_set():
                return
            force, self._hup = self._hup, False
            current = _signature(self.path)
            if current != seen and not force:
                # Changed since the last poll: an editor may be writing it right now.
                # Reload once it has stayed the same for a poll (no half-file errors).
                seen = current
                continue
            if force:
                self._event(logging.INFO, "SIGHUP: re-reading the configuration", "sighup")
            try:
                self.check_config(force=force)
            except Exception:  # the watcher must outlive any surprise
                self.log.exception("config watcher failed", extra={"event": "watch_failed"})

    # ------------------------------------------------------------------ the process

    def _schedule(self) -> None:
        if self._scheduler is None:
            return
        schedule = self.config.schedule
        self._scheduler.add_job(
            self._fire_job,
            # Our slots exactly, not CronTrigger: see SlotTrigger for why.
            trigger=SlotTrigger(parse_cron(schedule.cron), self.tz),
            id=JOB_ID,
            name="publish the next edition",
            replace_existing=True,
            # APScheduler wants a positive grace; 0 in the config means "on time only".
            misfire_grace_time=max(1, schedule.misfire_grace),
            coalesce=True,
            max_instances=1,
        )

    def _start_up_job(self) -> None:
        try:
            self.start_up()
        except Exception:  # logged; the schedule still starts
            self.log.exception("start-up failed", extra={"event": "start_up_failed"})

    def _fire_job(self) -> None:
        if self.stop.is_set() or not self.leading():
            return
        try:
            self.fire()
        except Exception:
            self.log.exception("scheduled job failed", extra={"event": "job_failed"})

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Runs in the main thread between two bytecodes: only set flags here
        # (taking a lock the interrupted code holds would deadlock).
        if signum == getattr(signal, "SIGHUP", None):
            self._hup = True
            self._wake.set()
            return
        if self._lose_pending:  # the lock guard's own signal (see _lose)
            self._lose_pending = False
            reason = "lock lost"
        else:  # an operator's: stop for good, even while stepping down
            self._terminated = True
            reason = signal.Signals(signum).name
        self.stop.set()
        if self._stopping is not None:
            return
        self._stopping = reason
        if self._in_scheduler:
            raise _Shutdown(self._stopping)

    def _install_signals(self) -> dict[int, Any]:
        previous = {}
        for name in ("SIGTERM", "SIGINT", "SIGHUP"):
            signum = getattr(signal, name, None)
            if signum is not None:
                previous[signum] = signal.signal(signum, self._on_signal)
        return previous

    def _contend(self) -> bool:
        """One session: take the lock (or wait as a standby), lead until stopped. True
        when the daemon is done (a signal, or a SQLite ledger's lock lost), False when it
        lost the lock and should contend again."""
        try:
            with self.session():  # LockedError if another publisher holds a SQLite ledger
                if self.ledger is not None:  # None: stopped while a standby
                    with (_confirmation_sender(self.config, self.now),
                          polling(self.config, lambda: self.ledger,
                                  secret_from_env(required=False))):
                        self._serve()
        except LedgerError:
            # Closing a lock whose connection died, or the first open after a step-down
            # while the server is away: only a daemon that led may get here and retry.
            if not self._lost:
                raise
        return not self._lost

    def _step_down(self) -> bool:
        """After losing the lock: fresh stop/quit events, then wait for the ledger to be
        reachable again (bounded backoff, one line) before contending as a standby.
        False when a signal came meanwhile (stop for good)."""
        self.step_downs += 1
        self.stop = threading.Event()
        self._quit = threading.Event()
        self._wake = threading.Event()
        self._lost = False
        self._stopping = None
        self._event(logging.INFO, "stepped down: contending for the publisher lock again "
                    f"in {_fmt_delta(timedelta(seconds=2 * self.poll))}", "stepped_down",
                    step_downs=self.step_downs)
        # Two polls: a standby (trying every poll) gets the first chance to lead — the
        # daemon that lost its lock may well be the one on the wrong side of a partition.
        if self.stop.wait(2 * self.poll):
            return False
        started = time.monotonic()
        for attempt in range(1, MAX_STEP_DOWNS):
            try:
                with App(self.config, self.now).open_ledger():
                    break
            except LedgerError as exc:
                if attempt == 1:
                    self._event(logging.WARNING, f"ledger unavailable: {exc}; retrying with "
                                "backoff", "ledger_unavailable")
                delay = reconnect_delay(attempt, self.poll)
                if self.stop.wait(delay):
                    return False
        waited = time.monotonic() - started
        if waited > 1:
            self._event(logging.INFO, f"ledger back after {waited:.1f}s", "ledger_back",
                        waited=waited)
        return not self._terminated

    def _serve(self) -> None:
        self._event(logging.INFO, f"publisher lock taken on {shown_url(self.config.ledger_url)}",
                    "locked")
        # Start-up work in a thread so that the main thread only waits and a
        # signal never interrupts the pipeline halfway through a statement.
        worker = threading.Thread(target=self._start_up_job, name="start-up")
        worker.start()
        while worker.is_alive():
            worker.join(0.2)
        if self._stopping is not None:
            self._event(logging.INFO, f"{self._stopping}: stopped during start-up, after the "
                        "work in flight", "stopping", signal=self._stopping)
            return
        self._scheduler = BlockingScheduler(
            timezone=self.tz,
            jobstores={"default": MemoryJobStore()},
            executors={"default": ThreadPoolExecutor(2)},
        )
        self._schedule()
        watcher = threading.Thread(target=self._watch, name="config-watch", daemon=True)
        watcher.start()
        if getattr(self.ledger, "supports_standby", False):
            threading.Thread(target=self._guard, name="lock-guard", daemon=True).start()
        self._log_next("scheduled", "scheduled")
        try:
            try:
                self._in_scheduler = True
                # A signal since the start-up check found _in_scheduler False and could
                # not raise: leave now, or start() would wait for one that already came.
                if self._stopping is not None:
                    raise _Shutdown(self._stopping)
                self._scheduler.start()  # blocks until the signal handler raises _Shutdown
            finally:
                self._in_scheduler = False
        except _Shutdown:
            pass
        self._quit.set()
        self._wake.set()
        self._event(logging.INFO, f"{self._stopping}: stopping after the work in flight",
                    "stopping", signal=self._stopping)
        # SchedulerNotRunningError if the signal came in the middle of start().
        with contextlib.suppress(Exception):
            self._scheduler.shutdown(wait=True)
        watcher.join(WATCH_INTERVAL * 3)

    def run(self) -> int:
        """The daemon process: lock, start-up work, schedule, wait for a signal. Exit code."""
        schedule = self.config.schedule
        self._event(logging.INFO, f"syndicate run starting (pid {os.getpid()})", "start",
                    pid=os.getpid(), config=str(self.path))
        problems = self.config.missing_secrets()
        if problems:
            raise ConfigError(self.path, problems)
        channels = ", ".join(c.name for c in self.config.channels if c.enabled) or "none"
        self._event(logging.INFO, f"config loaded from {self.path}: cron {schedule.cron!r} "
                    f"in {schedule.timezone}, misfire_grace {_fmt_delta(self.grace)}, "
                    f"catch_up {schedule.catch_up}; channels: {channels}; ledger "
                    f"{shown_url(self.config.ledger_url)}", "config_loaded")
        previous = self._install_signals()
        try:
            for _ in range(MAX_STEP_DOWNS):  # bounded; each round ends by a signal or a loss
                if self._contend() or self._terminated:
                    break
                if not self._step_down():
                    break
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        published = [a for a in self.attempts if a.outcome == "published"]
        numbers = ", ".join(f"#{a.edition} {a.slug}" for a in published) or "none"
        self._event(logging.INFO, f"stopped ({self._stopping or 'done'}): this run published "
                    f"{len(published)} edition(s): {numbers}", "stopped",
                    published=len(published), signal=self._stopping)
        return 1 if self._lost and not self._terminated else 0
