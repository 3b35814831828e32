"""What every per-subscriber email channel shares (``smtp``, ``outbox``).

:class:`MailChannelSettings` declares the keys both accept (``reply_to``,
``unsubscribe_mailto``); ``from`` stays in each, required by smtp, optional in
the outbox.

:class:`Mailing` builds one edition's messages for one channel:
:meth:`Mailing.message` returns a subscriber's message bytes, spliced from a
per-edition :class:`~syndicate.mail.MessageTemplate` (no MIME building, no MJML
per subscriber), DKIM-signed when configured. The rows (one per active subscriber,
all created before the first send; the skip of anyone no longer active; bounces)
are the job's bookkeeping's (:class:`~._bookkeeping.Bookkeeping`), as for every channel.

:class:`Progress` reports a long send: a rich progress bar when stderr is a
terminal, plain log lines (every N messages or every few seconds) otherwise.
"""

from __future__ import annotations

import logging
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import getaddresses
from typing import IO, TYPE_CHECKING, Any

from pydantic import Field, field_validator

from ..config import ChannelSettings, Config, Duration, deadline_field
from ..ledger import OPEN_LINK
from ..render.urls import click_url, open_url, unsubscribe_url
from ..tokens import (
    CLICK,
    OPEN,
    SECRET_ENV,
    UNSUBSCRIBE,
    TrackToken,
    link_digest,
    make_token,
    make_track_token,
    secret_from_env,
)

# Re-exported for one release: they were defined here before. From their own modules,
# not the smtp one: writing an outbox loads no smtplib nor ssl.
from ..transport.signing import DKIM_HEADERS, dkim_signer  # noqa: F401
from ..transport.wire import envelope_address
from ._base import DeliveryJob

if TYPE_CHECKING:
    from ..ledger import Subscriber
    from ..mail import MessageTemplate
    from ..render.email import RenderedEmail

__all__ = [
    "SECRET_ENV", "MailChannelSettings", "MailSender", "Mailing", "Progress",
    "check_address", "dkim_signer", "envelope_address",
]


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
    # Lazy: email_validator compiles its RFC grammar on import (~30 ms); only a config
    # naming an address (reply_to, from, unsubscribe_mailto) needs it, not every publish.
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"a valid email address ({exc})") from None
    return address


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
    """The messages of one edition for one mail channel (see the module doc); the rows
    are the job's bookkeeping's (:class:`~._bookkeeping.Bookkeeping`).

    Thread-safe for :meth:`message` (the template is read-only once started).
    """

    def __init__(self, job: DeliveryJob, config: Config, sender: MailSender) -> None:
        self.job = job
        self.edition = job.edition
        self.sender = sender
        self.site_title = config.site.title
        self.base_url = config.site.base_url
        self.signer: Callable[[bytes], bytes] | None = None
        self.secret = b""
        self.template: MessageTemplate | None = None
        self.analytics = config.analytics
        self.links: list[str] = []  # the counted links ([analytics] clicks)
        self.sent_stamp = 0
        self._placeholders: dict[str, str] = {}  # per_subscriber: key -> placeholder

    def start(self, *, secret: bytes | None = None,
              signer: Callable[[bytes], bytes] | None = None) -> None:
        """Get ready to build messages: the signing secret (default: ``SYNDICATE_SECRET``,
        required) and the per-edition template. Raises ``SyndicateError`` if unusable."""
        # Lazy: syndicate.mail loads the email renderer (jinja2, MJML), needed to send,
        # not to validate a config naming a mail channel.
        from ..mail import dot_stuffed, feedback_id, list_id, message_id

        self._message_id = message_id
        self._dot_stuffed = dot_stuffed
        self.secret = secret if secret is not None else secret_from_env(required=True) or b""
        self.signer = signer
        self._list_id = list_id(self.site_title, self.sender.from_address)
        self._feedback = feedback_id(f"edition-{self.edition.number}", self.sender.from_address)
        email = self.job.email
        if self.analytics.clicks or self.analytics.open_pixel:
            from ..render.links import tracked_links

            # The same list the publisher stored with the edition (same email, same
            # function): index i names the same link in the tokens and in the ledger.
            self.links = tracked_links(email, self.base_url) if self.analytics.clicks else []
            # When this run made the messages, in whole seconds: the same in every copy
            # (it names nobody), what the scanner window is measured from.
            self.sent_stamp = int(self.job.now().timestamp())
            if self.analytics.per_subscriber:
                # Each message's links name its delivery: placeholders (a random nonce, as
                # the unsubscribe one) spliced per message like the unsubscribe URL.
                nonce = secrets.token_hex(8)
                self._placeholders = {key: f"{nonce}{key}X" for key in self._tracked_keys()}
                email = self._tracked(email, self._placeholders)
            else:
                email = self._tracked(email, self._tracked_urls(None))
        self.template = self._template(email)

    def _template(self, email: RenderedEmail) -> MessageTemplate:
        from ..mail import MessageTemplate

        # The Date header is the edition's: the same in every copy, and on a resume.
        return MessageTemplate(email, from_addr=self.sender.from_address,
                               list_id=self._list_id, reply_to=self.sender.reply_to,
                               date=self.edition.published_at, feedback=self._feedback,
                               placeholders=self._placeholders)

    def _tracked_keys(self) -> list[str]:
        """``"0"``, ``"1"``… for the counted links, ``"p"`` for the open pixel."""
        return [str(i) for i in range(len(self.links))] + (
            ["p"] if self.analytics.open_pixel else [])

    def _tracked_urls(self, delivery_id: int | None) -> dict[str, str]:
        """The signed URL of each :meth:`_tracked_keys` key, naming ``delivery_id`` when
        per-subscriber analytics are on (None: the same for every copy)."""

        def token(purpose: str, link: int, digest: str) -> str:
            return make_track_token(self.secret, purpose, TrackToken(
                self.edition.id, link, digest, self.sent_stamp, delivery_id))

        urls = {str(i): click_url(self.base_url, token(CLICK, i, link_digest(url)))
                for i, url in enumerate(self.links)}
        if self.analytics.open_pixel:
            urls["p"] = open_url(self.base_url, token(OPEN, OPEN_LINK, ""))
        return urls

    def _tracked(self, email: RenderedEmail, urls: dict[str, str]) -> RenderedEmail:
        """``email`` with its counted links replaced by ``urls`` and the open pixel added."""
        from ..render.links import add_pixel, rewrite_links

        if self.links:
            email = rewrite_links(email, self.links, lambda i: urls[str(i)])
        if "p" in urls:
            email = add_pixel(email, urls["p"])
        return email

    def unsubscribe_url(self, email: str) -> str:
        return unsubscribe_url(self.base_url, make_token(self.secret, UNSUBSCRIBE, email))

    def unsubscribe_mailto(self, email: str) -> str | None:
        """The List-Unsubscribe mailto URI, its Subject carrying the subscriber's signed
        token: a mail to it unsubscribes only the address the token names, once
        ``syndicate bounces fetch`` reads the mailbox it is delivered to."""
        mailto = self.sender.unsubscribe_mailto
        if not mailto:
            return None
        token = make_token(self.secret, UNSUBSCRIBE, email)
        return f"mailto:{mailto.removeprefix('mailto:')}?subject=unsubscribe%20{token}"

    def message(self, subscriber: Subscriber, *, smtp: bool = False,
                delivery_id: int | None = None) -> bytes:
        """The message bytes for ``subscriber`` (CRLF line endings); ``delivery_id``: its
        row, named in its counted links with ``[analytics] per_subscriber`` (and only then).

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
            unsubscribe_mailto=self.unsubscribe_mailto(subscriber.email),
            name=subscriber.name,
            smtp=transparent,
            values=self._tracked_urls(delivery_id) if self._placeholders else None,
        )
        if self.signer is not None:
            data = self.signer(data)
            if smtp:
                data = self._dot_stuffed(data)
        return data


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
            from rich.console import Console  # lazy: only a terminal gets the bar
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
