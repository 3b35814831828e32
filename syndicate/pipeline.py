"""Publishing an edition: select -> claim -> render once -> deliver -> record.

The ledger is the single source of truth. An edition is *claimed* for a slot
before anything is rendered or sent (so a retried or concurrent run cannot
publish twice), its rendered email is stored with it (so a resumed edition
resends exactly what was rendered), and it is *done* only when no delivery is
left pending. Anything unfinished is finished before anything new.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal

from .channels import Bookkeeping, Channel, DeliveryJob, DeliveryReport, build_channel
from .clock import utcnow
from .config import ChannelSettings, Config
from .corpus import CaseStudy, Corpus, load
from .corpus import queue as queue  # re-exported: it lives with the corpus (light commands)
from .errors import LedgerError, NothingToPublish, SyndicateError
from .ledger import Edition, LedgerPort, LedgerSource, using_ledger
from .render.archive import render_edition_page
from .render.email import RenderedEmail, render_email
from .render.feeds import render_feeds
from .render.links import TRACKED_LINKS_ARTEFACT, links_json, tracked_links
from .render.model import EditionView
from .render.urls import edition_url, unsubscribe_url
from .snapshots import LedgerTexts
from .views import LINKS_ARTEFACT, Links, ViewBuilder

log = logging.getLogger("syndicate.pipeline")

EMAIL_ARTEFACT = "email.json"



# --------------------------------------------------------------------------- pure decisions


def select_next(cases: Iterable[CaseStudy], published: Iterable[str]) -> CaseStudy | None:
    """The unpublished, non-draft case study with the lowest queue position (ties: slug)."""
    pending = queue(cases, published)
    return pending[0] if pending else None


def manual_slot(now: datetime) -> str:
    """A fresh slot for a manual ``publish-next`` (unique: time plus random suffix)."""
    return f"manual:{now.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}:{secrets.token_hex(4)}"


# --------------------------------------------------------------------------- delivery


@dataclass(frozen=True)
class _Delivering:
    """One edition on its way out: what each channel's :class:`DeliveryJob` is made of."""

    config: Config
    ledger: LedgerPort
    edition: Edition
    view: EditionView
    history: Sequence[EditionView]
    email: RenderedEmail
    now: Callable[[], datetime] = utcnow
    stop: threading.Event = field(default_factory=threading.Event)
    log: logging.Logger = log
    # Completes a light view of ``history`` (see ViewBuilder.history) for a page that needs it.
    expand: Callable[[EditionView], EditionView] = lambda view: view
    # The same for a batch, read in one go and not kept (a rebuild of thousands of pages).
    expand_many: Callable[[Sequence[EditionView]], Sequence[EditionView]] | None = None

    def job(self, stop: threading.Event) -> DeliveryJob:
        """The job of one channel: the edition, the bookkeeping, its own stop event."""
        book = Bookkeeping(self.ledger, self.edition, log=self.log, now=self.now)
        return DeliveryJob(self.edition, self.view, self.history, self.email, book,
                           stop, self.log, self.now, self.expand, self.expand_many)


#: How a publish, resume or retry ended, worst last: ``complete`` (every delivery
#: sent, or ended as an outcome: bounced, skipped), ``handed`` (this process did its part;
#: the mail is left to ``syndicate worker``, [delivery] senders = "workers"), ``failed``
#: (some failed for good: ``syndicate deliveries``, fix, ``syndicate retry-failed``),
#: ``incomplete`` (some still pending: the edition is unfinished and will be resumed).
#: See docs/operations.md.
Outcome = Literal["complete", "handed", "failed", "incomplete"]
OUTCOMES: tuple[Outcome, ...] = ("complete", "handed", "failed", "incomplete")


def worst(outcomes: Iterable[Outcome]) -> Outcome:
    """The outcome of several results: incomplete beats failed (it will be resumed)."""
    return max(outcomes, key=OUTCOMES.index, default="complete")


@dataclass(frozen=True)
class PublishResult:
    edition: Edition | None
    view: EditionView
    reports: tuple[DeliveryReport, ...] = ()
    dry_run: bool = False
    resumed: bool = False
    # Unfinished editions ``publish`` finished first, before this one (oldest first).
    earlier: tuple[PublishResult, ...] = ()

    @property
    def complete(self) -> bool:
        """Nothing left pending: the edition is done (it may have failed deliveries)."""
        return all(report.pending == 0 and report.handed == 0 for report in self.reports)

    @property
    def handed(self) -> int:
        """Rows left to the workers (still pending in the ledger, not this run's)."""
        return sum(report.handed for report in self.reports)

    @property
    def pending(self) -> int:
        return sum(report.pending for report in self.reports)

    @property
    def failed(self) -> int:
        return sum(report.failed for report in self.reports)

    @property
    def outcome(self) -> Outcome:
        """This edition's outcome (not counting :attr:`earlier`)."""
        if self.pending:
            return "incomplete"
        if self.failed:
            return "failed"
        return "handed" if self.handed else "complete"

    def summary(self) -> str:
        """One line, starting with the outcome: ``complete: published edition #3: …``."""
        number = self.edition.number if self.edition else self.view.number
        if self.dry_run:
            return f"[dry run] would publish edition #{number}: {self.view.slug}"
        verb = "resumed" if self.resumed else "published"
        head = f"{self.outcome}: {verb} edition #{number}: {self.view.slug}"
        parts = [
            f"{r.channel}: {r.sent} sent"
            + (f", {r.failed} failed" if r.failed else "")
            + (f", {r.pending} pending" if r.pending else "")
            + (f", {r.handed} handed to the workers" if r.handed else "")
            + (f", {r.bounced} bounced" if r.bounced else "")
            + (f", {r.skipped} skipped" if r.skipped else "")
            for r in self.reports
        ]
        line = head + (" (" + "; ".join(parts) + ")" if parts else "")
        if self.outcome == "incomplete":
            line += f"; {self.pending} pending, will be resumed: syndicate resume"
        elif self.outcome == "failed":
            line += f"; {self.failed} failed: syndicate deliveries {number}"
        elif self.outcome == "handed":
            line += f"; {self.handed} left to `syndicate worker`"
        return line


def _enabled(config: Config) -> list[ChannelSettings]:
    return [settings for settings in config.channels if settings.enabled]


#: Seconds a channel gets, after its deadline (or a stop), to finish what is in flight
#: (a message being sent, a request being answered) and record it. Past that it is
#: left behind: its rows stay pending, and the publish returns.
STOP_GRACE = 60.0
_TICK = 0.05  # seconds between two looks at the running channels


@dataclass
class _Running:
    """One channel delivering an edition in its own thread."""

    settings: ChannelSettings
    channel: Channel
    job: DeliveryJob  # its stop event is the one set at the deadline
    deadline: float  # time.monotonic() past which the channel is told to stop
    thread: threading.Thread | None = None
    report: DeliveryReport | None = None
    error: LedgerError | None = None
    stopped_at: float | None = None
    overdue: bool = False  # stopped by its deadline (not by a stop of the whole run)
    workers: bool = False  # its rows are left to `syndicate worker` ([delivery] senders)


    @property
    def stop(self) -> threading.Event:
        return self.job.stop


def _leave_to_workers(name: str, job: DeliveryJob) -> DeliveryReport:
    """A channel sent by ``syndicate worker``: its rows are created here, as the channel
    would create them (one per active subscriber, before anything is sent); the workers
    take them once the publisher has handed them off (:meth:`Publisher._finish`)."""
    book = job.book.run(name)
    pending = book.create_for_subscribers()
    return DeliveryReport(name, handed=pending,
                          detail="left to the workers" if pending else "nothing to send")


def _run_channel(run: _Running, broken: threading.Event) -> None:
    name, job = run.settings.name, run.job
    try:
        if run.workers:
            run.report = _leave_to_workers(name, job)
        else:
            run.report = run.channel.deliver(job)
    except LedgerError as exc:
        # The ledger cannot record: every channel stops, the edition stays unfinished.
        run.error = exc
        broken.set()
    except Exception as exc:  # a broken channel must not stop the others
        job.log.exception("channel %s failed on edition #%s", name, job.edition.number)
        run.report = DeliveryReport(name, failed=1, detail=f"{type(exc).__name__}: {exc}")


def _deliver(job: _Delivering) -> tuple[DeliveryReport, ...]:
    """Run every channel, each in its own thread within its own deadline.

    One failing never blocks the others, and one slow (a webhook told to wait
    by a 429, an endpoint that hangs) never delays the others: a channel past
    its deadline is told to stop (its own stop event, in its job) and what it
    has left stays pending, for a resume to finish. ``job.stop`` (SIGTERM)
    stops them all. A :class:`LedgerError` in any channel stops them all and is
    raised once they have returned.
    """
    if job.stop.is_set():
        return tuple(DeliveryReport(s.name, pending=1, detail="stopped")
                     for s in _enabled(job.config))
    start = time.monotonic()
    broken = threading.Event()
    running = [  # built here, not in the threads: the channel registry loads lazily
        _Running(settings, build_channel(settings, job.config),
                 job.job(threading.Event()), start + settings.deadline,
                 workers=job.config.by_workers(settings))
        for settings in _enabled(job.config)
    ]
    for run in running:
        run.thread = threading.Thread(
            target=_run_channel, args=(run, broken),
            name=f"channel-{run.settings.name}", daemon=True,
        )
        run.thread.start()
    try:
        _supervise(job, running, broken)
    except BaseException:  # a second Ctrl-C: tell every channel, do not wait
        for run in running:
            run.stop.set()
        raise
    error = next((run.error for run in running if run.error is not None), None)
    if error is not None:
        raise error
    reports = tuple(_report(run) for run in running)
    for report in reports:
        job.log.info("channel %s: %s", report.channel, report)
    return reports


def _supervise(job: _Delivering, running: list[_Running], broken: threading.Event) -> None:
    """Wait for the channels; stop each at its deadline, all on ``job.stop`` or a
    broken ledger; leave behind one that does not stop within :data:`STOP_GRACE`."""
    waiting = list(running)
    while waiting:
        now = time.monotonic()
        halt = job.stop.is_set() or broken.is_set()
        for run in list(waiting):
            assert run.thread is not None
            if not run.thread.is_alive():
                waiting.remove(run)
            elif run.stopped_at is None and (halt or now >= run.deadline):
                run.overdue = not halt
                run.stopped_at = now
                run.stop.set()
                if run.overdue:
                    job.log.warning("channel %s: deadline of %ss reached on edition #%s; "
                                    "stopping it, what is left stays pending",
                                    run.settings.name, run.settings.deadline,
                                    job.edition.number)
            elif run.stopped_at is not None and now >= run.stopped_at + STOP_GRACE:
                job.log.error("channel %s did not stop within %gs; left behind, its "
                              "deliveries stay pending", run.settings.name, STOP_GRACE)
                waiting.remove(run)
        if waiting:
            thread = waiting[0].thread
            assert thread is not None
            thread.join(_TICK)


def _report(run: _Running) -> DeliveryReport:
    name = run.settings.name
    report = run.report
    if report is None:  # left behind, still running
        report = DeliveryReport(name, pending=max(1, run.job.book.pending_count(name)),
                                detail=f"did not stop within {STOP_GRACE:g}s of its deadline")
    if run.overdue and report.pending:
        why = f"deadline of {run.settings.deadline}s reached"
        report = replace(report, detail=f"{why}: {report.detail}" if report.detail else why)
    return report


def _stored_email(ledger: LedgerPort, edition: Edition) -> RenderedEmail | None:
    raw = ledger.artefact(edition.id, EMAIL_ARTEFACT)
    return RenderedEmail.from_json(raw) if raw else None


class Publisher:
    """Publishes and resumes editions for one config; the CLI and the daemon call this."""

    def __init__(
        self,
        config: Config,
        *,
        now: Callable[[], datetime] = utcnow,
        stop: threading.Event | None = None,
        logger: logging.Logger | None = None,
        lock: bool = True,
        ledger: LedgerSource | None = None,
    ) -> None:
        self.config = config
        self.now = now
        self.stop = stop or threading.Event()
        self.log = logger or log
        # The daemon holds the publisher lock for its whole life and passes lock=False.
        self.lock = lock
        # The caller's ledger (or factory, e.g. App.open_ledger); else the configured one.
        self.ledger = ledger

    @contextmanager
    def _session(self, owner: str) -> Iterator[LedgerPort]:
        """The ledger, with the publisher lock held: one publisher per ledger at a time, so a
        manual run cannot resume an edition that a running daemon is still delivering."""
        with using_ledger(self.ledger, self.config.ledger_url, now=self.now) as ledger:
            if self.lock:
                with ledger.publisher_lock(owner):
                    yield ledger
            else:
                yield ledger

    def _finish(
        self, ledger: LedgerPort, corpus: Corpus, edition: Edition, resumed: bool = False,
        editions: Sequence[Edition] | None = None,
    ) -> PublishResult:
        """Render (once) and deliver a claimed edition; mark it done when nothing is pending.

        ``editions``: every edition as the caller read them just before claiming this one
        (``publish``), so that a publish reads the whole history once, not twice; None:
        read here (a resume, where each finished edition changes the next one's history)."""
        if editions is None:
            editions = ledger.editions(status=None)
        # Links go only to editions whose archive page exists: the done ones. Passed down
        # from ``publish``, the list is a few milliseconds older (select, claim): an edition
        # a worker closed in between (``finish_edition``, [delivery] senders = "workers")
        # shows from the next publish, exactly as one it closes a moment after the read
        # here would; nothing else changes another edition's status meanwhile, since the
        # publisher lock is held and ``publish`` finished the unfinished ones before reading.
        published = [e for e in editions if e.status == "done" or e.id == edition.id]
        if all(e.id != edition.id for e in published):  # claimed after the read: the newest
            published.insert(0, edition)
        # What readers see of every edition is the text it was published with (kept in the
        # ledger), never the corpus file as it is now.
        texts = LedgerTexts(ledger, corpus, published, logger=self.log)
        case = texts.case_of(edition)
        ids = {e.slug: e.id for e in published}

        def stored(slug: str) -> Links | None:
            raw = ledger.artefact(ids[slug], LINKS_ARTEFACT) if slug in ids else None
            return Links.from_json(raw) if raw else None

        builder = ViewBuilder(self.config, corpus, published, stored, texts,
                              cache_dir=ledger.cache_dir())
        links = stored(case.slug) or builder.links(edition.number, case)
        view = builder.view(edition.number, case, edition.published_at, links)
        email = _stored_email(ledger, edition)
        if email is None:  # first delivery attempt: render once, keep it with the edition
            email = render_email(view, self.config)
            ledger.store_artefacts(
                edition.id,
                {
                    EMAIL_ARTEFACT: email.to_json(),
                    "email.html": email.html,
                    "email.txt": email.text,
                    LINKS_ARTEFACT: links.to_json(),
                },
            )
        if self.config.analytics.clicks and ledger.artefact(
                edition.id, TRACKED_LINKS_ARTEFACT) is None:
            # The only targets its click links may redirect to (no open redirect); kept
            # even when the email was rendered before clicks were turned on (a resume).
            ledger.store_artefacts(edition.id, {TRACKED_LINKS_ARTEFACT: links_json(
                tracked_links(email, self.config.site.base_url))})
        ledger.set_edition_status(edition.id, "delivering")
        for settings in _enabled(self.config):
            # Sending by itself again ([delivery] senders = "self" after "workers"): no
            # worker claims this channel's rows any more, and the rows one still holds
            # are not listed to this process (pending_deliveries skips live claims).
            if not self.config.by_workers(settings) and type(settings).sent_by_workers:
                ledger.take_back(edition.id, settings.name)
        job = _Delivering(
            self.config,
            ledger,
            edition,
            view,
            builder.history(view),
            email,
            self.now,
            self.stop,
            self.log,
            builder.expand,
            builder.expand_many,
        )
        result = PublishResult(edition, view, _deliver(job), resumed=resumed)
        if result.complete:
            ledger.set_edition_status(edition.id, "done")
        elif result.handed:
            # Handed off only now, after this process's own pass: a worker that sends the
            # last row may then close the edition, and no row of a channel still running
            # here can be missing from its "nothing pending" check.
            for report in result.reports:
                if report.handed:
                    ledger.hand_off(edition.id, report.channel)
            ledger.finish_edition(edition.id)  # the workers may be done already (a resume)
        return result

    def resume(self) -> list[PublishResult]:
        """Finish every unfinished edition (claimed or delivering), oldest first."""
        corpus = load(self.config.corpus_dir, cache_dir=self.config.corpus_cache_dir)
        with self._session("syndicate resume") as ledger:
            corpus.keep_index()  # the ledger's folder exists now (a new site)
            return self._finish_unfinished(ledger, corpus, stoppable=True)

    def _finish_unfinished(
        self, ledger: LedgerPort, corpus: Corpus, *, stoppable: bool = False
    ) -> list[PublishResult]:
        # ``publish`` is not stoppable here: nothing new may start before these are done.
        results = []
        for edition in ledger.unfinished_editions():
            if stoppable and self.stop.is_set():
                break
            self.log.info("finishing unfinished edition #%s (%s)", edition.number, edition.slug)
            results.append(self._finish(ledger, corpus, edition, resumed=True))
        return results

    def publish(self, slot: str | None = None, *, dry_run: bool = False) -> PublishResult:
        """Publish the next case study for ``slot`` (default: a new manual slot).

        Raises :class:`NothingToPublish` when the queue is empty and
        :class:`~syndicate.errors.SlotTaken` when the slot already has an edition.
        """
        corpus = load(self.config.corpus_dir, cache_dir=self.config.corpus_cache_dir)
        with self._session("syndicate publish") as ledger:
            corpus.keep_index()  # the ledger's folder exists now (a new site)
            earlier: list[PublishResult] = []
            if not dry_run:  # anything unfinished goes out before anything new
                earlier = self._finish_unfinished(ledger, corpus)
            editions = ledger.editions(status=None)
            case = select_next(corpus, (e.slug for e in editions))
            if case is None:
                raise NothingToPublish(
                    f"nothing to publish: all {len(corpus)} case studies in "
                    f"{self.config.corpus_dir} are published or drafts"
                )
            if dry_run:
                number = max((e.number for e in editions), default=0) + 1
                builder = ViewBuilder(self.config, corpus, editions,
                                      cache_dir=ledger.cache_dir())
                view = builder.view(number, case, self.now())
                render_email(view, self.config)  # prove it renders; write nothing
                return PublishResult(None, view, dry_run=True)
            # Atomic: raises SlotTaken / AlreadyPublished if another run got there first.
            edition = ledger.claim_edition(
                slot=slot or manual_slot(self.now()),
                slug=case.slug,
                title=case.title,
                url=edition_url(self.config.site.base_url, case.slug),
            )
            self.log.info(
                "claimed edition #%s for slot %s: %s", edition.number, edition.slot, edition.slug
            )
            return replace(self._finish(ledger, corpus, edition, editions=editions),
                           earlier=tuple(earlier))


@dataclass(frozen=True)
class Preview:
    """An edition rendered as it would go out, without recording anything."""

    view: EditionView
    email: RenderedEmail
    files: dict[str, bytes]


def preview(
    config: Config,
    slug: str | None = None,
    *,
    now: Callable[[], datetime] = utcnow,
    ledger: LedgerSource | None = None,
    to: str | None = None,
) -> Preview:
    """Render ``slug`` (default: the next in the queue) as email, feed item and archive page.

    A published case study keeps its edition number and date; an unpublished one gets
    the next number and ``now``. Reads the ledger, never writes it. ``email.eml`` is
    addressed to ``to`` (default: ``[publish] test_address``): the console's test send.
    """
    corpus = load(config.corpus_dir, cache_dir=config.corpus_cache_dir)
    with using_ledger(ledger, config.ledger_url, now=now) as opened:
        editions = opened.editions(status=None)
        cache_dir = opened.cache_dir()
    published = {e.slug: e for e in editions}
    if slug is None:
        case = select_next(corpus, published)
        if case is None:
            raise NothingToPublish("nothing to preview: the queue is empty (name a SLUG)")
    else:
        found = corpus.get(slug)
        if found is None:
            raise SyndicateError(f"no case study {slug!r} in {config.corpus_dir}")
        case = found
    builder = ViewBuilder(config, corpus, editions, cache_dir=cache_dir)
    edition = published.get(case.slug)
    if edition is not None:
        view = builder.view(edition.number, case, edition.published_at)
    else:
        view = builder.view(max((e.number for e in editions), default=0) + 1, case, now())
    email = render_email(view, config)
    # Lazy: the MIME assembly is the preview's; a publish leaves it to the mail channels.
    from .mail import as_bytes, build_message, feedback_id, list_id, message_id

    sample_url = unsubscribe_url(config.site.base_url, "APERCU")
    html, text = email.personalize(sample_url, None)
    sender = f"{config.site.title} <{config.site.email}>"
    to = to or config.publish.test_address
    message = build_message(
        email,
        to=to,
        from_addr=sender,
        unsubscribe_url=sample_url,
        message_id=message_id(view.number, to, config.site.email),
        list_id=list_id(config.site.title, config.site.email),
        date=view.published_at,
        feedback=feedback_id(f"edition-{view.number}", config.site.email),
    )
    feeds = render_feeds([view], config)
    files = {
        "email.html": html.encode("utf-8"),
        "email.txt": text.encode("utf-8"),
        "email.eml": as_bytes(message),
        "feed-item.xml": feeds["feed.xml"],
        "feed-item.atom.xml": feeds["atom.xml"],
        "index.html": render_edition_page(view, config).encode("utf-8"),
    }
    return Preview(view, email, files)


def publish(
    config: Config,
    *,
    slot: str | None = None,
    now: Callable[[], datetime] = utcnow,
    dry_run: bool = False,
    stop: threading.Event | None = None,
    lock: bool = True,
    ledger: LedgerSource | None = None,
) -> PublishResult:
    """Publish the next case study; see :meth:`Publisher.publish`. ``ledger``: an open
    ledger or a factory (``App.open_ledger``); by default the config's is opened."""
    return Publisher(config, now=now, stop=stop, lock=lock, ledger=ledger).publish(
        slot, dry_run=dry_run)


def resume(
    config: Config,
    *,
    now: Callable[[], datetime] = utcnow,
    stop: threading.Event | None = None,
    lock: bool = True,
    ledger: LedgerSource | None = None,
) -> list[PublishResult]:
    """Finish unfinished editions; see :meth:`Publisher.resume` (``ledger``: see publish)."""
    return Publisher(config, now=now, stop=stop, lock=lock, ledger=ledger).resume()
