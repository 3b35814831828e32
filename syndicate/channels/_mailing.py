"""What every per-subscriber email channel shares (``smtp``, ``outbox``).

:class:`MailChannelSettings` declares the keys both accept (``reply_to``,
``unsubscribe_mailto``); ``from`` stays in each, required by smtp, optional in
the outbox.

:class:`Mailing` walks one edition's subscribers for one channel:

- :meth:`Mailing.prepare` creates a 'pending' delivery row for every active
  subscriber *before* anything is sent (streaming, in chunks), once per
  (edition, channel): a retry or a resume days later never adds people who
  subscribed after the edition went out;
- :meth:`Mailing.pending` streams the rows still to send (keyset pages);
- :meth:`Mailing.recipient` re-reads the subscriber just before sending and
  records a skip for anyone no longer active (unsubscribed, bounced, removed);
- :meth:`Mailing.message` returns the subscriber's message bytes, spliced from
  a per-edition :class:`~syndicate.mail.MessageTemplate` (no MIME building,
  no MJML per subscriber), DKIM-signed when configured.

:class:`Progress` reports a long send: a rich progress bar when stderr is a
terminal, plain log lines (every N messages or every few seconds) otherwise.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import getaddresses
from typing import IO, TYPE_CHECKING, Any

from email_validator import EmailNotValidError, validate_email
from pydantic import Field, field_validator

from ..config import Duration
from ..ledger import BOUNCED, SKIPPED
from ..render.urls import unsubscribe_url
from ..tokens import SECRET_ENV, UNSUBSCRIBE, make_token, secret_from_env
from ._base import ChannelSettings, deadline_field

if TYPE_CHECKING:
    from ..ledger import Delivery, Subscriber
    from ..mail import MessageTemplate
    from ..pipeline import PublishJob

__all__ = [
    "BOUNCED", "SECRET_ENV", "SKIPPED", "MailChannelSettings", "MailSender", "Mailing", "Progress",
    "check_address", "dkim_signer", "envelope_address",
]

# SKIPPED prefixes the ledger message of a row not sent because its subscriber is
# no longer active, BOUNCED that of a row whose address does not exist. Such rows
# are 'failed' (the ledger has no other final status, and the edition must not
# wait for them) but they are outcomes, not delivery failures.

#: Headers the DKIM signature covers when present. List-Unsubscribe-Post must be
#: named explicitly: dkimpy's default list leaves it out, and RFC 8058 requires it
#: signed (a provider ignores one-click on an unsigned List-Unsubscribe-Post).
DKIM_HEADERS = (
    "From", "To", "Subject", "Date", "Message-ID", "Reply-To", "MIME-Version",
    "Content-Type", "Content-Language", "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post",
)


def check_address(value: str, *, display_name: bool) -> str:
    """The bare address of ``value`` (``"Name <a@b.c>"`` when ``display_name``);
    raises ``ValueError`` with a readable reason (config validation)."""
    if "\n" in value or "\r" in value:
        raise ValueError("an address on one line")
    found = getaddresses([value])
    if len(found) != 1 or not found[0][1]:
        hint = "'Name <address@example.org>' or 'address@example.org'"
        raise ValueError(f"one email address such as {hint if display_name else 'a@example.org'}")
    shown, address = found[0]
    if shown and not display_name:
        raise ValueError("a bare address, without a display name")
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"a valid email address ({exc})") from None
    return address


def envelope_address(value: str) -> str:
    """The SMTP envelope form of an address: bare, domain in IDNA (ASCII) form."""
    found = getaddresses([value])
    address = found[0][1] if found and found[0][1] else value.strip()
    local, at, domain = address.rpartition("@")
    if not at or domain.isascii():
        return address
    return f"{local}@{domain.encode('idna').decode('ascii')}"


def dkim_signer(selector: str, domain: str, key: bytes) -> Callable[[bytes], bytes]:
    """A function adding a DKIM-Signature header to a message (dkimpy, rsa-sha256,
    relaxed/relaxed). Raises ``ValueError`` for a key dkimpy cannot use."""
    import dkim

    try:  # fail at start-up, not on the first subscriber
        dkim.sign(b"From: a@b.c\r\nSubject: t\r\n\r\nx\r\n", selector.encode(), domain.encode(),
                  key, include_headers=[b"from"])
    except dkim.DKIMException as exc:
        raise ValueError(f"unusable DKIM key: {exc}") from None

    wanted = {name.lower().encode(): name.encode() for name in DKIM_HEADERS}

    def sign(message: bytes) -> bytes:
        head = message.split(b"\r\n\r\n", 1)[0]
        names = {line.split(b":", 1)[0].strip().lower() for line in head.split(b"\r\n")
                 if line and line[:1] not in (b" ", b"\t")}
        present = [header for key, header in wanted.items() if key in names]
        signature = dkim.sign(message, selector.encode(), domain.encode(), key,
                              canonicalize=(b"relaxed", b"relaxed"), include_headers=present)
        return signature + message

    return sign


@dataclass(frozen=True)
class MailSender:
    """Who a mailing comes from (channel settings)."""

    from_address: str
    reply_to: str | None = None
    unsubscribe_mailto: str | None = None


class MailChannelSettings(ChannelSettings):
    """Keys of every per-subscriber email channel."""

    reply_to: str = Field("", description="Reply-To address (empty: replies go to `from`).")
    deadline: Duration = deadline_field(1800)
    unsubscribe_mailto: str = Field(
        "",
        description="Address added to List-Unsubscribe as a mailto: alternative to the HTTPS "
        "one-click link (empty: HTTPS link only).",
    )

    @field_validator("reply_to", "unsubscribe_mailto")
    @classmethod
    def _optional_address(cls, value: str) -> str:
        if value:
            check_address(value, display_name=False)
        return value

    def mail_sender(self, from_address: str) -> MailSender:
        """The :class:`MailSender` of a mailing from ``from_address`` with these keys."""
        return MailSender(from_address=from_address, reply_to=self.reply_to or None,
                          unsubscribe_mailto=self.unsubscribe_mailto or None)


class Mailing:
    """One edition's per-subscriber sends for one channel (see the module doc).

    Thread-safe for :meth:`recipient`, :meth:`message` and :meth:`bounce` (the
    ledger serialises its connection; the template is read-only).
    """

    def __init__(self, job: PublishJob, channel: str, sender: MailSender) -> None:
        self.job = job
        self.ledger = job.ledger
        self.edition = job.edition
        self.channel = channel
        self.sender = sender
        self.base_url = job.config.site.base_url
        self.signer: Callable[[bytes], bytes] | None = None
        self.secret = b""
        self.template: MessageTemplate | None = None

    def start(self, *, secret: bytes | None = None,
              signer: Callable[[bytes], bytes] | None = None) -> None:
        """Get ready to build messages: the signing secret (default: ``SYNDICATE_SECRET``,
        required) and the per-edition template. Raises ``SyndicateError`` if unusable."""
        from ..mail import MessageTemplate, dot_stuffed, list_id, message_id

        self._message_id = message_id
        self._dot_stuffed = dot_stuffed
        self.secret = secret if secret is not None else secret_from_env(required=True) or b""
        self.signer = signer
        # The Date header is the edition's: the same in every copy, and on a resume.
        self.template = MessageTemplate(
            self.job.email, from_addr=self.sender.from_address,
            list_id=list_id(self.job.config.site.title, self.sender.from_address),
            reply_to=self.sender.reply_to, date=self.edition.published_at,
        )

    @property
    def _ready_key(self) -> str:
        return f"deliveries-created:{self.edition.id}:{self.channel}"

    def prepare(self) -> int:
        """Create the rows for every active subscriber (once); return how many are pending."""
        if self.ledger.get_meta(self._ready_key) is None:
            created = self.ledger.ensure_deliveries(
                self.edition.id, self.channel,
                (subscriber.email for subscriber in self.ledger.iter_subscribers("active")),
            )
            # Written after the last chunk: a crash before it makes the resume
            # re-run the (idempotent) creation, never skip part of it.
            self.ledger.set_meta(self._ready_key, self.job.now().isoformat())
            self.job.log.info("%s: %d delivery row(s) created for edition #%s", self.channel,
                              created, self.edition.number)
        return self.pending_count()

    def pending_count(self) -> int:
        counts = self.ledger.delivery_counts(self.edition.id).get(self.channel, {})
        return counts.get("pending", 0)

    def pending(self) -> Iterator[Delivery]:
        return self.ledger.pending_deliveries(self.edition.id, self.channel)

    def recipient(self, delivery: Delivery) -> Subscriber | None:
        """The subscriber of ``delivery`` if still active; else record the skip, None."""
        subscriber = self.ledger.get_subscriber(delivery.recipient, normalized=True)
        if subscriber is not None and subscriber.status == "active":
            return subscriber
        why = "removed from the list" if subscriber is None else subscriber.status
        self.ledger.mark_failed(delivery.id, None, f"{SKIPPED} subscriber {why}", permanent=True)
        return None

    def unsubscribe_url(self, email: str) -> str:
        return unsubscribe_url(self.base_url, make_token(self.secret, UNSUBSCRIBE, email))

    def message(self, subscriber: Subscriber, *, smtp: bool = False) -> bytes:
        """The message bytes for ``subscriber`` (CRLF line endings).

        ``smtp=True``: ready for SMTP DATA, dot-stuffed (lines starting with '.'
        get a second one); the template does it once per edition for the fixed
        parts, cheaper than smtplib's scan of every message.
        """
        assert self.template is not None, "call start() first"
        transparent = smtp and self.signer is None  # sign first, stuff after
        data = self.template.render(
            to=subscriber.email,
            unsubscribe_url=self.unsubscribe_url(subscriber.email),
            message_id=self._message_id(self.edition.number, subscriber.email,
                                        self.sender.from_address),
            unsubscribe_mailto=self.sender.unsubscribe_mailto,
            name=subscriber.name,
            smtp=transparent,
        )
        if self.signer is not None:
            data = self.signer(data)
            if smtp:
                data = self._dot_stuffed(data)
        return data

    def bounce(self, delivery: Delivery, email: str, code: int | None, answer: str) -> None:
        """The address does not exist: record the row as bounced (an outcome, not a
        failure), and never mail the subscriber again."""
        self.ledger.mark_failed(delivery.id, code, f"{BOUNCED} {answer}", permanent=True)
        self.ledger.set_subscriber_status(email, "bounced")
        self.job.log.info("%s: %s bounced (no such mailbox): marked 'bounced'",
                             self.channel, email)


_BAR_FREE = threading.Lock()  # held by the Progress showing a rich bar


class Progress:
    """Progress of a long send; :meth:`advance` may be called from any thread.

    A rich bar on a terminal; otherwise a log line every ``every`` messages or
    ``interval`` seconds, whichever comes first, and one at the end.
    """

    def __init__(
        self,
        label: str,
        total: int,
        logger: logging.Logger,
        *,
        every: int = 1000,
        interval: float = 5.0,
        stream: IO[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.total = total
        self.log = logger
        self.every = max(1, every)
        self.interval = interval
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.counts = {"sent": 0, "failed": 0, "skipped": 0}
        self._lock = threading.Lock()
        self._bar: Any = None
        self._task: Any = None
        self._start = self._last = clock()

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    def __enter__(self) -> Progress:
        isatty = getattr(self.stream, "isatty", None)
        # rich allows one live display at a time, and channels run in parallel: the
        # first long send gets the bar, any other one logs lines.
        if (self.total > 1 and isatty is not None and isatty()
                and _BAR_FREE.acquire(blocking=False)):
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TaskProgressColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            try:
                self._bar = RichProgress(
                    TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TaskProgressColumn(), TextColumn("{task.fields[detail]}"),
                    TimeRemainingColumn(), console=Console(file=self.stream), transient=False,
                )
                self._bar.start()
                self._task = self._bar.add_task(self.label, total=self.total, detail="")
            except BaseException:
                self._bar = None
                _BAR_FREE.release()
                raise
        return self

    def advance(self, outcome: str = "sent") -> None:
        with self._lock:
            self.counts[outcome] = self.counts.get(outcome, 0) + 1
            done, now = self.done, self.clock()
            due = done % self.every == 0 or now - self._last >= self.interval
            if due:
                self._last = now
        if self._bar is not None:
            detail = "" if done == self.counts["sent"] else self._detail()
            self._bar.update(self._task, advance=1, detail=detail)
        elif due:
            self.log.info("%s: %s", self.label, self.line())

    def _detail(self) -> str:
        return ", ".join(f"{n} {k}" for k, n in self.counts.items() if n and k != "sent")

    def line(self) -> str:
        elapsed = max(self.clock() - self._start, 1e-9)
        extra = self._detail()
        return (f"{self.done}/{self.total} ({self.counts['sent']} sent"
                + (f", {extra}" if extra else "") + f"), {self.done / elapsed:.0f}/s")

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
            _BAR_FREE.release()
        if self.total:
            self.log.info("%s: finished: %s", self.label, self.line())
