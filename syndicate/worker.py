"""``syndicate worker``: send the delivery rows the publisher handed to the workers.

With ``[delivery] senders = "workers"`` the publisher (``run``, ``publish-next``) creates
one pending delivery row per subscriber for each smtp channel, as always, and *hands the
channel off* instead of sending (:meth:`syndicate.ledger.LedgerPort.hand_off`). Any
number of workers, on any machines reaching the same ledger, then share the rows:

1. A worker looks for handed-off (edition, channel) pairs (``handoffs``) and, for each,
   runs the channel's own ``deliver`` — the smtp channel's threads, reused connections,
   retry policy, bounce handling and :class:`~syndicate.channels._mailing.Mailing` —
   with a bookkeeping whose rows are *claimed* ``[delivery] batch`` at a time under a
   lease (:class:`ClaimedRun`) instead of read from a scan. No second SMTP client.
2. A heartbeat thread renews the lease of the claims in progress every third of it; a
   worker that has not renewed within the lease stops taking rows from its batch (they
   may already be another's). A killed worker's claims run out and the others take the
   rows: at most its messages in flight are sent twice.
3. Each row is marked as today (``mark_sent`` / ``mark_failed``, which end the claim);
   whoever marks the last pending row of an edition closes it (``finish_edition``).
4. SIGTERM finishes the messages in flight, gives the unsent claims back
   (``release_claims``) and exits 0. ``--once`` drains: it exits once no handed-off row
   is pending (waiting for claims of others that may come back), for tests and cron.

Why the delivery row is the queue (``FOR UPDATE SKIP LOCKED``) rather than a queue
library: docs/deployment.md, "Workers".
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from .channels import (
    Bookkeeping,
    DeliveryJob,
    DeliveryReport,
    DeliveryRun,
    build_channel,
    pause_reason,
)
from .clock import utcnow
from .config import ChannelSettings, Config
from .corpus import CaseStudy
from .errors import LedgerError, LedgerUnavailable
from .ledger import Delivery, Edition, LedgerPort, LedgerSource, using_ledger
from .pipeline import EMAIL_ARTEFACT
from .render.email import RenderedEmail
from .render.model import EditionView
from .transport import reconnect_delay

log = logging.getLogger("syndicate.worker")

#: Passes over the hand-offs before a ``--once`` worker gives up waiting (each at most
#: ``poll`` apart): bounds a drain whose rows another, live, worker keeps.
MAX_IDLE_PASSES = 10_000
#: Batches one channel run may claim (a bound; a run normally ends when none is left).
MAX_BATCHES = 1_000_000


def worker_name() -> str:
    """This worker's claim owner: host, pid and a random part (a pid can be reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Claims:
    """This worker's view of its lease: when it was last confirmed by the ledger.

    ``fresh()`` says whether the claims can still be trusted to be ours: the last claim
    or renewal started less than ``lease`` minus a margin ago (monotonic time, so the
    local clock jumping does not matter). Thread-safe (the heartbeat renews it)."""

    def __init__(self, lease: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.lease = lease
        self.margin = max(0.5, lease / 6)
        self.clock = clock
        self._until = 0.0
        self._lock = threading.Lock()

    def confirmed(self, started: float) -> None:
        with self._lock:
            self._until = max(self._until, started + self.lease - self.margin)

    def fresh(self) -> bool:
        with self._lock:
            return self.clock() < self._until


class ClaimedRun(DeliveryRun):
    """A channel's rows of one edition as a worker sees them: claimed batch by batch.

    The channel drives it exactly like the publisher's run (``create_for_subscribers``,
    ``pending``, the marks); only where the rows come from differs."""

    def __init__(self, book: ClaimingBookkeeping, channel: str) -> None:
        super().__init__(book, channel)
        self.claiming = book
        self.claimed = 0

    def create_for_subscribers(self) -> int:
        """The rows exist (the publisher made them before handing off): just count."""
        return self.pending_count()

    def pending(self) -> Iterator[Delivery]:
        book = self.claiming
        for _ in range(MAX_BATCHES):
            if book.stop.is_set():
                return
            started = book.claims.clock()
            batch = book.ledger.claim_deliveries(self.edition.id, self.channel, book.owner,
                                                 book.claims.lease, book.batch)
            if not batch:
                return
            book.claims.confirmed(started)
            self.claimed += len(batch)
            for delivery in batch:
                if not book.claims.fresh():
                    # No news from the ledger for a lease: the rest of the batch may be
                    # another worker's by now. Leave it; its lease returns it.
                    log.warning("worker %s: lease not renewed in time; leaving the rest "
                                "of the batch", book.owner)
                    return
                yield delivery


class ClaimingBookkeeping(Bookkeeping):
    """The bookkeeping a worker gives a channel: rows come from claims (see ClaimedRun)."""

    def __init__(self, ledger: LedgerPort, edition: Edition, *, owner: str, claims: Claims,
                 batch: int, stop: threading.Event, log: logging.Logger,
                 now: Callable[[], datetime]) -> None:
        super().__init__(ledger, edition, log=log, now=now)
        self.ledger = ledger
        self.owner = owner
        self.claims = claims
        self.batch = batch
        self.stop = stop
        self.runs: list[ClaimedRun] = []

    def run(self, channel: str) -> ClaimedRun:
        found = ClaimedRun(self, channel)
        self.runs.append(found)
        return found

    def limiter(self, channel: str, rate: float) -> SharedRate | None:
        return SharedRate(self.ledger, channel, rate, self.now) if rate > 0 else None


class SharedRate:
    """A channel's ``rate`` over every worker together: each send reserves the next free
    slot in the ledger (``reserve_send``, one atomic update) and sleeps until it."""

    def __init__(self, ledger: LedgerPort, channel: str, rate: float,
                 now: Callable[[], datetime]) -> None:
        self.ledger = ledger
        self.channel = channel
        self.interval = 1.0 / rate
        self.now = now

    def wait(self, stop: threading.Event) -> bool:
        slot = self.ledger.reserve_send(self.channel, self.interval)
        delay = min(slot - self.now().timestamp(), 3600.0)  # bounded, whatever the clock
        return not stop.wait(delay) if delay > 0 else not stop.is_set()


@dataclass
class WorkerTotals:
    """What a worker did, for its last log line."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    bounced: int = 0
    skipped: int = 0
    editions_done: list[int] = field(default_factory=list)

    def add(self, report: DeliveryReport) -> None:
        self.sent += report.sent
        self.failed += report.failed
        self.bounced += report.bounced
        self.skipped += report.skipped


def _header_view(edition: Edition) -> EditionView:
    """The edition as the job's ``view``: its number, title, URL and date. The mail
    channels read the email stored with the edition, never the view's text, so a worker
    needs no corpus (it may run on a machine that has none)."""
    case = CaseStudy(slug=edition.slug, title=edition.title, lede="", sections=(), position=0)
    return EditionView(edition.number, case, edition.url, edition.published_at)


class Worker:
    """One ``syndicate worker`` process: passes over the hand-offs until stopped."""

    def __init__(self, config: Config, *, ledger: LedgerSource | None = None,
                 owner: str | None = None, stop: threading.Event | None = None,
                 now: Callable[[], datetime] = utcnow, logger: logging.Logger | None = None,
                 ) -> None:
        self.config = config
        self.ledger_source = ledger
        self.owner = owner or worker_name()
        self.stop = stop or threading.Event()
        self.now = now
        self.log = logger or log
        settings = config.delivery
        self.claims = Claims(float(settings.lease))
        self.totals = WorkerTotals()
        self._warned: set[str] = set()
        self._paused: set[int] = set()  # editions whose pause was logged (once each)

    # -- the loop ---------------------------------------------------------------------

    def run(self, *, once: bool = False) -> WorkerTotals:
        """Send handed-off rows until ``stop`` (or, ``once``, until none is pending).

        The ledger may go away under it (a database server restarted, a network cut):
        the channel stops between messages (the rows not marked stay claimed and run out
        with the lease; at most the messages in flight are sent again), and the worker
        opens the ledger again after a growing pause (:func:`reconnect_delay`), logging
        one line when the outage starts and one when it ends — not one per message."""
        poll = float(self.config.delivery.poll)
        self.log.info("worker %s: started (batch %d, lease %ss)", self.owner,
                      self.config.delivery.batch, self.config.delivery.lease)
        idle = 0
        outage: float | None = None  # monotonic start of the current outage
        attempts = 0
        while not self.stop.is_set() and idle < MAX_IDLE_PASSES:
            try:
                with using_ledger(self.ledger_source, self.config.ledger_url,
                                  now=self.now) as ledger:
                    if outage is not None:
                        self.log.info("worker %s: ledger back after %.1fs (%d attempt(s))",
                                      self.owner, time.monotonic() - outage, attempts)
                        outage, attempts = None, 0
                    idle = self._serve(ledger, once=once, poll=poll)
                    if once:
                        break
            except LedgerError as exc:  # the ledger went away: wait, open it again
                if outage is None:
                    outage = time.monotonic()
                    self.log.error("worker %s: ledger unavailable: %s; reconnecting with "
                                   "backoff (at most %ss apart); unsent claims run out with "
                                   "the lease", self.owner, exc, reconnect_delay(99, poll))
                attempts += 1
                idle += 1
                self.stop.wait(reconnect_delay(attempts, poll))
        t = self.totals
        self.log.info("worker %s: stopped: %d claimed, %d sent, %d failed, %d bounced, "
                      "%d skipped; editions done: %s", self.owner, t.claimed, t.sent,
                      t.failed, t.bounced, t.skipped,
                      ", ".join(f"#{n}" for n in t.editions_done) or "none")
        return self.totals

    def _serve(self, ledger: LedgerPort, *, once: bool, poll: float) -> int:
        """Passes on one open ledger, the heartbeat running; return the idle passes."""
        beating = threading.Event()
        heart = threading.Thread(target=self._heartbeat, args=(ledger, beating),
                                 name="worker-heartbeat", daemon=True)
        heart.start()
        idle = 0
        try:
            while not self.stop.is_set() and idle < MAX_IDLE_PASSES:
                claimed, waiting = self._pass(ledger)
                if claimed:
                    idle = 0
                    continue
                if once and not waiting:
                    break
                idle += 1
                self.stop.wait(poll)
        finally:
            beating.set()
            heart.join(10)
            try:
                given = ledger.release_claims(self.owner)
            except LedgerUnavailable:
                pass  # the outage is logged once by run(); the claims run out with the lease
            except LedgerError as exc:
                self.log.warning("worker %s: cannot give back its claims (%s); they run "
                                 "out with the lease", self.owner, exc)
            else:
                if given:
                    self.log.info("worker %s: %d unsent claim(s) given back", self.owner,
                                  given)
        return idle

    def _heartbeat(self, ledger: LedgerPort, done: threading.Event) -> None:
        interval = self.claims.lease / 3
        while not done.wait(interval):
            started = self.claims.clock()
            try:
                ledger.renew_claims(self.owner, self.claims.lease)
            except LedgerUnavailable:
                continue  # logged once by run() when the channel meets it too
            except LedgerError as exc:
                self.log.warning("worker %s: heartbeat failed: %s", self.owner, exc)
                continue
            self.claims.confirmed(started)

    # -- one pass ---------------------------------------------------------------------

    def _channel(self, name: str) -> ChannelSettings | None:
        for settings in self.config.channels:
            if settings.name == name and settings.enabled and self.config.by_workers(settings):
                return settings
        if name not in self._warned:
            self._warned.add(name)
            self.log.warning("worker %s: channel %r was handed to the workers but this "
                             "worker's config has no enabled smtp channel of that name with "
                             "[delivery] senders = \"workers\"; skipped", self.owner, name)
        return None

    def _pass(self, ledger: LedgerPort) -> tuple[int, bool]:
        """Work through every handed-off (edition, channel) once. Returns the rows marked
        (sent, failed, bounced, skipped: progress, so no pause before the next pass) and
        whether handed-off rows are still pending (held by other workers, or left)."""
        claimed, waiting = 0, False
        for edition_id, name in ledger.handoffs():
            if self.stop.is_set():
                break
            settings = self._channel(name)
            edition = ledger.get_edition(edition_id)
            if settings is None or edition is None:
                continue
            why = pause_reason(ledger, edition.id)
            if why:  # the circuit breaker: no row taken until the operator resumes it
                if edition.id not in self._paused:
                    self._paused.add(edition.id)
                    self.log.warning("worker %s: edition #%s is paused (%s): skipped until "
                                     "`syndicate edition resume`", self.owner,
                                     edition.number, why)
                continue  # and not waited for: --once ends
            self._paused.discard(edition.id)
            claimed += self._deliver(ledger, edition, settings)
            # What it claimed and did not mark (a stop, a server it could not use, a lease
            # not renewed in time) goes back to the others at once, not after the lease.
            given = ledger.release_claims(self.owner)
            if given:
                self.log.info("worker %s: %d unsent claim(s) given back", self.owner, given)
            if ledger.finish_edition(edition.id):
                self.totals.editions_done.append(edition.number)
                self.log.info("worker %s: edition #%s done (the last pending row was sent)",
                              self.owner, edition.number)
            left = ledger.delivery_counts(edition.id).get(name, {}).get("pending", 0)
            waiting = waiting or left > 0
        return claimed, waiting

    def _deliver(self, ledger: LedgerPort, edition: Edition, settings: ChannelSettings) -> int:
        """Run the channel over the rows this worker can claim; return how many it marked."""
        raw = ledger.artefact(edition.id, EMAIL_ARTEFACT)
        if raw is None:  # handed off before rendering: cannot happen (rendered first)
            self.log.error("worker %s: edition #%s has no stored email; skipped",
                           self.owner, edition.number)
            return 0
        book = ClaimingBookkeeping(ledger, edition, owner=self.owner, claims=self.claims,
                                   batch=self.config.delivery.batch, stop=self.stop,
                                   log=self.log, now=self.now)
        view = _header_view(edition)
        job = DeliveryJob(edition, view, (view,), RenderedEmail.from_json(raw), book,
                          self.stop, self.log, self.now)
        report = build_channel(settings, self.config).deliver(job)
        claimed = sum(run.claimed for run in book.runs)
        self.totals.claimed += claimed
        self.totals.add(report)
        marked = report.sent + report.failed + report.bounced + report.skipped
        if claimed:
            self.log.info("worker %s: edition #%s, %s: %d claimed, %d sent, %d failed, "
                          "%d bounced, %d skipped%s", self.owner, edition.number,
                          settings.name, claimed, report.sent, report.failed, report.bounced,
                          report.skipped, f" ({report.detail})" if report.detail else "")
        return marked


__all__ = [
    "ClaimedRun",
    "ClaimingBookkeeping",
    "Claims",
    "Worker",
    "WorkerTotals",
    "reconnect_delay",
    "worker_name",
]
