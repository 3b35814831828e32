"""One delivery bookkeeping for every channel: the rows of one edition for one channel.

The listmonk split: a channel's job is to push messages (write files, POST, send mail);
the bookkeeping owns the ledger rows and the counts. Every channel follows the same rules:

- a row exists *before* the send: 'pending' (one per edition for a channel that delivers
  once, recipient ''; one per active subscriber for a mailing, all created before the
  first message, so a resume days later never adds people who subscribed after);
- after the send the row is marked, in its own small commit: :meth:`DeliveryRun.sent`;
  :meth:`~DeliveryRun.failed` (for good: only ``retry-failed`` sends it again);
  :meth:`~DeliveryRun.retry_later` (a temporary failure: the attempt and the answer are
  kept, the row stays 'pending' for the next pass or resume); :meth:`~DeliveryRun.skipped`
  and :meth:`~DeliveryRun.bounced` (outcomes, not failures: the ledger stores them as
  'failed' with the ``skipped:`` / ``bounced:`` prefixes, which ``retry-failed`` and the
  exit status leave alone);
- a row already 'sent' is never sent again, one 'failed' waits for ``retry-failed``;
- the :class:`DeliveryReport` counts what *this pass* marked
  (:meth:`DeliveryRun.report`), and 'pending' is read back from the ledger.

It wraps the ledger's delivery and subscriber-status methods a channel needs, no more;
it is thread-safe as the ledger is (the counts have their own lock), so the smtp
channel's workers share one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal, Protocol

from ..clock import utcnow
from ..ledger import BOUNCED, SKIPPED

if TYPE_CHECKING:
    from ..ledger import Delivery, Edition, Subscriber

__all__ = [
    "BOUNCED", "SKIPPED", "Bookkeeping", "DeliveryReport", "DeliveryRun", "DeliveryStore",
    "Limiter", "Tally",
]



@dataclass(frozen=True)
class DeliveryReport:
    """What one channel did for one edition."""

    channel: str
    sent: int = 0
    failed: int = 0  # failed for good, not counting bounces: needs the operator
    skipped: int = 0
    pending: int = 0  # still to deliver: the edition stays unfinished, resumed later
    detail: str = ""
    bounced: int = 0  # the address does not exist: an outcome, not a failure
    #: Rows left pending for ``syndicate worker`` to send ([delivery] senders = "workers"):
    #: not this pass's to finish, so not counted as ``pending``.
    handed: int = 0

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.pending == 0


class DeliveryStore(Protocol):
    """What the bookkeeping uses of the ledger (:class:`syndicate.ledger.Ledger` is one)."""

    def ensure_delivery(self, edition_id: int, channel: str, recipient: str = "") -> Delivery: ...

    def ensure_deliveries(
        self, edition_id: int, channel: str, recipients: Iterable[str], *, chunk: int = ...
    ) -> int: ...

    def pending_deliveries(
        self, edition_id: int, channel: str, *, chunk: int = ...
    ) -> Iterator[Delivery]: ...

    def mark_sent(self, delivery_id: int, response: str = "", code: int | None = None) -> None: ...

    def mark_failed(
        self, delivery_id: int, code: int | None, message: str, permanent: bool = True
    ) -> None: ...

    def delivery_counts(self, edition_id: int) -> dict[str, dict[str, int]]: ...

    def delivery_event_counts(self, edition_id: int) -> dict[str, int]: ...

    def iter_subscribers(
        self, status: str | None = ..., *, chunk: int = ...
    ) -> Iterator[Subscriber]: ...

    def get_subscriber(self, email: str, *, normalized: bool = ...) -> Subscriber | None: ...

    def set_subscriber_status(self, email: str, status: str) -> Subscriber: ...

    def get_meta(self, key: str, default: str | None = None) -> str | None: ...

    def set_meta(self, key: str, value: str | None) -> None: ...


Outcome = Literal["sent", "failed", "skipped", "bounced"]


class Limiter(Protocol):
    """Spaces sends to a channel's ``rate`` (``transport.RateLimiter`` is one)."""

    def wait(self, stop: threading.Event) -> bool: ...


@dataclass
class Tally:
    """What one run marked, by outcome (temporary failures are not counted: still pending)."""

    sent: int = 0
    failed: int = 0
    skipped: int = 0
    bounced: int = 0


class Bookkeeping:
    """The delivery rows of one edition, for every channel (see the module doc).

    What a :class:`~._base.DeliveryJob` carries instead of the ledger. A channel starts
    each delivery with :meth:`run` (its rows, its counts for this run).
    """

    def __init__(
        self,
        store: DeliveryStore,
        edition: Edition,
        *,
        log: logging.Logger | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.edition = edition
        self.log = log or logging.getLogger("syndicate.channels")
        self.now = now

    def run(self, channel: str) -> DeliveryRun:
        """One delivery pass of ``channel`` (its name in the ledger) over this edition."""
        return DeliveryRun(self, channel)

    def pending_count(self, channel: str) -> int:
        found = self.store.delivery_counts(self.edition.id).get(channel, {})
        return found.get("pending", 0)

    def subscriber(self, email: str) -> Subscriber | None:
        return self.store.get_subscriber(email)

    def limiter(self, channel: str, rate: float) -> Limiter | None:
        """A limiter shared beyond this process for ``channel``'s ``rate``, or None: the
        channel spaces its own sends (one process). ``syndicate worker`` gives one kept in
        the ledger, so that the rate holds across all workers together."""
        return None

    # The ledger's key/value store: the outbox's local signing secret lives there.
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        return self.store.get_meta(key, default)

    def set_meta(self, key: str, value: str | None) -> None:
        self.store.set_meta(key, value)


class DeliveryRun:
    """One channel's rows of the edition, and what this pass marked (thread-safe)."""

    def __init__(self, book: Bookkeeping, channel: str) -> None:
        self.book = book
        self.store = book.store
        self.edition = book.edition
        self.channel = channel
        self.tally = Tally()
        self._lock = threading.Lock()
        #: Called with each outcome as it is marked (the smtp channel's progress bar).
        self.on_mark: Callable[[Outcome], None] | None = None

    # -- rows ------------------------------------------------------------------------

    def row(self, recipient: str = "") -> Delivery:
        """The row for ``recipient`` (default: the channel's one row), created if missing."""
        return self.store.ensure_delivery(self.edition.id, self.channel, recipient)

    def settled(self, delivery: Delivery, done: str) -> DeliveryReport | None:
        """The report for a single-row channel whose row is already final, else None:
        'sent' is not redone (``done`` says what was), 'failed' waits for ``retry-failed``."""
        if delivery.status == "sent":
            return DeliveryReport(self.channel, skipped=1, detail=done)
        if delivery.status == "failed":
            return DeliveryReport(self.channel, failed=1,
                                  detail=f"failed earlier: {delivery.response}")
        return None

    @property
    def _ready_key(self) -> str:
        return f"deliveries-created:{self.edition.id}:{self.channel}"

    def create_for_subscribers(self) -> int:
        """Create a row for every active subscriber, once per (edition, channel); return
        how many rows are pending. Streams (the ledger inserts in chunks)."""
        if self.store.get_meta(self._ready_key) is None:
            created = self.store.ensure_deliveries(
                self.edition.id, self.channel,
                (subscriber.email for subscriber in self.store.iter_subscribers("active")),
            )
            # Written after the last chunk: a crash before it makes the resume
            # re-run the (idempotent) creation, never skip part of it.
            self.store.set_meta(self._ready_key, self.book.now().isoformat())
            self.book.log.info("%s: %d delivery row(s) created for edition #%s",
                               self.channel, created, self.edition.number)
        return self.pending_count()

    def pending(self) -> Iterator[Delivery]:
        """The rows still to send, in id order (keyset pages: mark as you go)."""
        return self.store.pending_deliveries(self.edition.id, self.channel)

    def counts(self) -> dict[str, int]:
        """``{"sent": n, "failed": n, "pending": n}`` of this channel's rows."""
        found = self.store.delivery_counts(self.edition.id).get(self.channel, {})
        return {status: found.get(status, 0) for status in ("sent", "failed", "pending")}

    def pending_count(self) -> int:
        return self.book.pending_count(self.channel)

    def recipient(self, delivery: Delivery) -> Subscriber | None:
        """The subscriber of ``delivery`` if still active (read again just before the
        send); else the row is recorded as skipped and None returned."""
        subscriber = self.store.get_subscriber(delivery.recipient, normalized=True)
        if subscriber is not None and subscriber.status == "active":
            return subscriber
        self.skipped(delivery, "removed from the list" if subscriber is None
                     else subscriber.status)
        return None

    # -- marks -----------------------------------------------------------------------

    def sent(self, delivery: Delivery, response: str = "", code: int | None = None) -> None:
        self.store.mark_sent(delivery.id, response, code)
        self._count("sent")

    def failed(self, delivery: Delivery, message: str, code: int | None = None) -> None:
        """Failed for good: only ``retry-failed`` sends it again."""
        self.store.mark_failed(delivery.id, code, message, permanent=True)
        self._count("failed")

    def retry_later(self, delivery: Delivery, message: str, code: int | None = None) -> None:
        """A temporary failure: the attempt is recorded, the row stays pending."""
        self.store.mark_failed(delivery.id, code, message, permanent=False)

    def skipped(self, delivery: Delivery, why: str) -> None:
        """Not sent, and rightly so (the subscriber is no longer active): an outcome."""
        self.store.mark_failed(delivery.id, None, f"{SKIPPED} subscriber {why}", permanent=True)
        self._count("skipped")

    def bounced(self, delivery: Delivery, email: str, code: int | None, answer: str) -> None:
        """The address does not exist: an outcome, and the subscriber is never mailed
        again (status 'bounced')."""
        self.store.mark_failed(delivery.id, code, f"{BOUNCED} {answer}", permanent=True)
        self.store.set_subscriber_status(email, "bounced")
        self._count("bounced")
        self.book.log.info("%s: %s bounced (no such mailbox): marked 'bounced'",
                           self.channel, email)

    def _count(self, outcome: Outcome) -> None:
        with self._lock:
            setattr(self.tally, outcome, getattr(self.tally, outcome) + 1)
        if self.on_mark is not None:
            self.on_mark(outcome)

    # -- the report ------------------------------------------------------------------

    def report(self, detail: str = "", *, skipped_before: int = 0) -> DeliveryReport:
        """What this pass did: the marks counted here, 'pending' read from the ledger.
        ``skipped_before``: rows found already done, reported as skipped."""
        with self._lock:
            tally = Tally(**vars(self.tally))
        return DeliveryReport(self.channel, sent=tally.sent, failed=tally.failed,
                              skipped=tally.skipped + skipped_before,
                              pending=self.pending_count(), detail=detail,
                              bounced=tally.bounced)
