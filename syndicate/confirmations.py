"""Double opt-in: the confirmation emails, and the sender that mails them outside web requests.

Used from below by both ``syndicate serve`` (:mod:`syndicate.web`) and
``syndicate run`` (:mod:`syndicate.daemon`).

Tokens come from :mod:`syndicate.tokens` (HMAC with ``SYNDICATE_SECRET``); the
confirmation token has its own purpose, so an unsubscribe token (which every
email carries) can never confirm an address, and it expires. The email carries
no text typed in the form: the name (attacker-chosen, since anyone can type
anyone's address) is stored on the pending subscriber and only used once the
address is confirmed.

Why a sender apart from the request: sending from the request tied a waitress
thread to the SMTP server for as long as it took (a stalled server froze the
feeds for everyone), and the answer time told an active address from a new one.
Now the subscribe route only records the request (:func:`request`: one small
ledger commit, the same for every address that needs a mail) and
:class:`ConfirmationSender`, a thread of ``syndicate serve`` and of
``syndicate run``, sends it.

How a row goes:

1. The sender wakes every ``interval`` seconds, or at once when a request is
   recorded in the same process (:func:`wake_senders`); it reads when the next
   row is due (a read, no lock) and only then claims rows, one at a time, with a
   lease (:meth:`~syndicate.ledger.Ledger.claim_confirmation`): several processes
   may run a sender on one ledger and each email goes once. A sender killed
   mid-send leaves its row to be taken again when the lease ends.
2. The email is rendered (the token's 48 h count from the request time stored in
   the row; assembled by :func:`syndicate.mail.build_message` like every
   edition) and sent through :func:`email_route`: the first enabled ``smtp``
   channel's server, through the same transport (TLS, AUTH, DKIM:
   :mod:`syndicate.transport`) as the editions, else the ``outbox`` channel's Maildir.
3. The outcome is recorded (:func:`decide`, pure, from the transport's
   :class:`~syndicate.errors.SendError`: its ``code`` and whether the server
   answered about this message): accepted -> ``sent``; refused for good (5xx)
   -> ``failed``, one log line; a temporary refusal (4xx) or a connection lost
   mid-message -> retried with the transport's backoff and the smtp channel's
   settings, up to its ``max_attempts``. When the server cannot be used at all
   (connection refused or timed out, AUTH or TLS refused) the message is not at
   fault: the attempt is not counted, and the whole queue waits (backoff,
   doubling up to ``max_delay``) instead of spending a timeout on every row; it
   resumes, in request order, when the server answers again. A link that expired
   before it could be sent is not sent (``failed``).
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Literal
from zoneinfo import ZoneInfo

from . import tokens
from .channels.outbox import OutboxSettings, outbox_folder, outbox_sender
from .channels.smtp import SmtpSettings, transport_settings
from .clock import utcnow
from .config import Config
from .errors import ChannelError, ExpiredToken, InvalidToken, SendError, SyndicateError
from .ledger import Confirmation, LedgerPort, open_ledger
from .mail import as_bytes, build_message, domain_of, feedback_id, list_id
from .render.email import RenderedEmail, french_date, render_template
from .render.urls import unsubscribe_url
from .transport import MaildirWriter, SmtpTransport, backoff_delay

# The logger keeps the name it had when this lived in the web package: it is in every
# JSON log line (`"logger": …`), which operators may filter on.
log = logging.getLogger("syndicate.web.confirmations")

Verdict = Literal["ok", "expired", "invalid"]

#: How long a confirmation link stays valid, counted from the request.
CONFIRM_TTL = 48 * 3600
#: A second request for the same address within this many seconds adds no email
#: (the form must not be a way to flood someone's inbox).
RESEND_WINDOW = 300.0
#: How often a sender looks for rows recorded by other processes.
POLL_INTERVAL = 1.0
#: Rows handled per pass (then the loop comes round again: stop is checked in between).
BATCH = 100
#: Sent and failed rows are deleted this long after the request.
KEEP = timedelta(days=30)
_PRUNE_EVERY = 3600.0  # seconds between two prunings by one sender


# --------------------------------------------------------------------------- tokens


def unsubscribe_token(address: str, secret: bytes) -> str:
    return tokens.make_token(secret, tokens.UNSUBSCRIBE, address)


def unsubscribe_address(token: str, secret: bytes) -> str | None:
    """The address an unsubscribe token was made for, or None if forged or altered."""
    try:
        return tokens.verify_token(secret, tokens.UNSUBSCRIBE, token)
    except InvalidToken:
        return None


def confirm_token(address: str, secret: bytes, issued: datetime, ttl: float) -> str:
    expires = int(issued.timestamp() + ttl)
    return tokens.make_token(secret, tokens.CONFIRM, address, expires=expires)


def confirm_address(token: str, secret: bytes, now: datetime) -> tuple[Verdict, str | None]:
    """``("ok", address)``, ``("expired", None)`` or ``("invalid", None)``."""
    try:
        return "ok", tokens.verify_token(secret, tokens.CONFIRM, token, now=now.timestamp())
    except ExpiredToken:
        return "expired", None
    except InvalidToken:
        return "invalid", None


# --------------------------------------------------------------------------- the email


def _when(moment: datetime, config: Config) -> str:
    local = moment.astimezone(ZoneInfo(config.schedule.timezone))
    return f"{french_date(local)} à {local:%H:%M}"


def confirmation_email(config: Config, *, address: str, confirm_url: str,
                       expires: datetime) -> RenderedEmail:
    """The rendered email. No name: only what the site itself says, and the address."""
    context = {"site": config.site, "email": address, "confirm_url": confirm_url,
               "expires": _when(expires, config)}
    return RenderedEmail(
        subject=f"Confirmez votre inscription à «\u00a0{config.site.title}\u00a0»",
        html=render_template(config, "web/confirm_email.html.j2", **context),
        text=render_template(config, "web/confirm_email.txt.j2", **context),
        preheader="Un clic pour confirmer votre adresse.",
    )


@dataclass(frozen=True)
class RetryPolicy:
    """How a confirmation is retried: the smtp channel's settings (defaults for the outbox)."""

    max_attempts: int = 4
    backoff: float = 2.0
    max_delay: float = 120.0
    timeout: float = 30.0

    @classmethod
    def of(cls, settings: object) -> RetryPolicy:
        """The policy of a channel's settings: an smtp channel's own keys, else the defaults."""
        if isinstance(settings, SmtpSettings):
            return cls(max_attempts=settings.max_attempts, backoff=settings.backoff,
                       max_delay=settings.max_delay, timeout=settings.timeout)
        return cls()

    @property
    def lease(self) -> float:
        """How long a claimed row is left to its sender: longer than any send can
        take (each SMTP step may take ``timeout``), so no second sender takes a row
        whose email is still on its way."""
        return 10 * self.timeout + 30.0

    def delay(self, attempt: int) -> float:
        """Seconds before trying again after failed attempt number ``attempt`` (1-based)."""
        return backoff_delay(attempt, self.backoff, self.max_delay)


@dataclass(frozen=True)
class EmailRoute:
    """Where the confirmations go, and the sender to use.

    ``send(message, recipient)`` returns the server's final reply ``(code, text)``
    (``(None, "maildir …")`` for the outbox) and raises
    :class:`~syndicate.errors.SendError` when the message was not accepted.
    """

    name: str
    from_addr: str
    send: Callable[[EmailMessage, str], tuple[int | None, str]]
    retry: RetryPolicy = RetryPolicy()


def _smtp_route(settings: SmtpSettings, config: Config) -> EmailRoute:
    server = transport_settings(settings, config.resolve)
    sender = settings.from_address

    def send(message: EmailMessage, recipient: str) -> tuple[int | None, str]:
        # The secrets are read at each send, as a channel reads them at each edition:
        # a fixed password or key file is picked up without a restart.
        return SmtpTransport.prepare(server).send(as_bytes(message), sender, recipient)

    return EmailRoute(settings.name, sender, send, RetryPolicy.of(settings))


def _outbox_route(settings: OutboxSettings, config: Config) -> EmailRoute:
    folder = outbox_folder(settings, config.resolve)

    def send(message: EmailMessage, recipient: str) -> tuple[int | None, str]:
        key = MaildirWriter(folder).add(as_bytes(message))
        return None, f"maildir {folder} {key}"

    sender = outbox_sender(settings, config.site.title, config.site.email)
    return EmailRoute(settings.name, sender.from_address, send, RetryPolicy.of(settings))


def email_route(config: Config) -> EmailRoute:
    """The first enabled ``smtp`` channel, else the ``outbox`` Maildir; raises
    :class:`ChannelError` when neither is configured."""
    enabled = [c for c in config.channels if c.enabled]
    smtp = next((c for c in enabled if c.type == "smtp" and isinstance(c, SmtpSettings)), None)
    if smtp is not None:
        return _smtp_route(smtp, config)
    outbox = next((c for c in enabled if c.type == "outbox" and isinstance(c, OutboxSettings)),
                  None)
    if outbox is not None:
        return _outbox_route(outbox, config)
    raise ChannelError("web", "no enabled smtp or outbox channel to send the confirmation "
                              "email (add one to [[channels]])", permanent=True)


def confirmation_message_id(confirmation_id: int, requested_at: datetime,
                            from_addr: str) -> str:
    """The same Message-ID for every attempt at one request: if a crash makes a
    sender mail it twice, mail clients can tell it is one message."""
    return f"<confirm.{confirmation_id}.{int(requested_at.timestamp())}@{domain_of(from_addr)}>"


def confirmation_message(config: Config, secret: bytes, route: EmailRoute, *, address: str,
                         requested_at: datetime, ttl: float = CONFIRM_TTL,
                         message_id: str | None = None,
                         date: datetime | None = None) -> EmailMessage:
    """The email to ``address``: a signed link to ``/confirm/<token>`` valid ``ttl``
    seconds from ``requested_at`` (the request, not the send)."""
    base = config.site.base_url
    confirm_url = f"{base}confirm/{confirm_token(address, secret, requested_at, ttl)}"
    rendered = confirmation_email(config, address=address, confirm_url=confirm_url,
                                  expires=requested_at + timedelta(seconds=ttl))
    return build_message(
        rendered,
        to=address,
        from_addr=route.from_addr,
        unsubscribe_url=unsubscribe_url(base, unsubscribe_token(address, secret)),
        message_id=message_id or make_msgid("confirm", domain=domain_of(route.from_addr)),
        list_id=list_id(config.site.title, route.from_addr),
        date=date or requested_at,
        feedback=feedback_id("confirmation", route.from_addr, "transactional"),
    )


def send_message(route: EmailRoute, message: EmailMessage,
                 address: str) -> tuple[int | None, str]:
    """Send through ``route``; any failure becomes one :class:`SendError` line."""
    try:
        return route.send(message, address)
    except SendError:
        raise
    except Exception as exc:  # a Maildir that cannot be written, a bug: one clear line
        raise SendError(route.name, f"confirmation email: {exc}", permanent=False,
                        recipient=address) from exc


# --------------------------------------------------------------------------- recording


_senders: weakref.WeakSet[ConfirmationSender] = weakref.WeakSet()
_senders_lock = threading.Lock()


def wake_senders() -> None:
    """Wake the senders running in this process (a request was just recorded)."""
    with _senders_lock:
        running = list(_senders)
    for sender in running:
        sender.wake()


def request(ledger: LedgerPort, address: str) -> bool:
    """Record that ``address`` asked for a confirmation email (the web request's
    only part in sending it); True if a new email was queued. Idempotent within
    :data:`RESEND_WINDOW`."""
    queued = ledger.enqueue_confirmation(address, window=RESEND_WINDOW)
    if queued:
        wake_senders()
    return queued


# --------------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class Outcome:
    """What to record after a failed attempt."""

    action: Literal["retry", "failed"]
    code: int | None
    text: str
    delay: float = 0.0
    hold: bool = False  # the server is in trouble: the whole queue waits ``delay``
    counted: bool = True  # False: the message never reached the server; not an attempt


def decide(error: SendError, attempts: int, policy: RetryPolicy, held: int = 0) -> Outcome:
    """The outcome of failed attempt number ``attempts`` (1-based).

    ``held``: how many times in a row the server could not be used (the queue's
    backoff). An error naming no recipient (connection refused or timed out,
    AUTH, TLS, settings) is about the server, not this message: the attempt does
    not count and the whole queue waits.
    """
    body, code = error.detail, error.code
    if error.recipient is None:
        return Outcome("retry", code, body, policy.delay(held + 1), hold=True, counted=False)
    if error.permanent:
        return Outcome("failed", code, body)
    if attempts >= policy.max_attempts:
        return Outcome("failed", code, f"{body} (after {attempts} attempts)")
    # A 421 or a connection lost mid-message: the server is in trouble, not the address.
    return Outcome("retry", code, body, policy.delay(attempts), hold=code in (None, 421))


# --------------------------------------------------------------------------- the sender


class ConfirmationSender:
    """A background thread sending the confirmation outbox of ``config``'s ledger.

    :meth:`start` / :meth:`stop` (bounded; the email in hand is finished and
    recorded, or left to its lease); :meth:`run_once` does one pass in the
    caller's thread (tests, ``--once`` style uses).
    """

    def __init__(
        self,
        config: Config,
        secret: bytes,
        *,
        now: Callable[[], datetime] = utcnow,
        interval: float = POLL_INTERVAL,
        ttl: float = CONFIRM_TTL,
        batch: int = BATCH,
        ledger: LedgerPort | None = None,
    ) -> None:
        self.config = config
        self.secret = secret
        self.now = now
        self.interval = interval
        self.ttl = ttl
        self.batch = batch
        self.owner = f"pid {os.getpid()} {secrets.token_hex(4)}"
        self._ledger = ledger
        self._own_ledger = ledger is None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._held = 0  # consecutive "server unusable" outcomes
        self._hold_until: datetime | None = None
        self._last_error = ""
        self._pruned_at = float("-inf")

    @property
    def ledger(self) -> LedgerPort:
        if self._ledger is None:
            self._ledger = open_ledger(self.config.ledger_url, now=self.now)
        return self._ledger

    # -- thread ------------------------------------------------------------

    def start(self) -> ConfirmationSender:
        self.ledger  # noqa: B018 - open it now: a bad database fails the command at once
        self._thread = threading.Thread(target=self._loop, name="confirmations", daemon=True)
        with _senders_lock:
            _senders.add(self)
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the email in hand; wait at most ``timeout`` seconds."""
        self._stop.set()
        self._wake.set()
        with _senders_lock:
            _senders.discard(self)
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():  # stuck on the server: its lease covers the row
                log.warning("confirmation sender still sending after %.0fs; leaving it "
                            "(the email in hand will be taken again after its lease)", timeout)
                return
        if self._own_ledger and self._ledger is not None:
            self._ledger.close()
            self._ledger = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # before the pass: a wake during it gives another pass
            wait = self.interval
            try:
                self.run_once()
                wait = self._sleep()
            except Exception:  # a busy ledger, a bug: say so, try again later
                log.exception("confirmation sender: pass failed")
            self._wake.wait(wait)

    def _sleep(self) -> float:
        now = self.now()
        wait = self.interval
        if self._hold_until is not None:
            return max(0.0, min(wait, (self._hold_until - now).total_seconds()))
        due = self.ledger.next_confirmation_due()
        if due is not None:
            wait = min(wait, max(0.0, (due - now).total_seconds()))
        return wait

    # -- one pass ------------------------------------------------------------

    def run_once(self) -> int:
        """Send what is due now (at most ``batch`` rows); return how many rows were handled."""
        now = self.now()
        if self._hold_until is not None:
            if now < self._hold_until:
                return 0
            self._hold_until = None
        self._prune(now)
        due = self.ledger.next_confirmation_due()
        if due is None or due > now:
            return 0
        try:
            route = email_route(self.config)
        except ChannelError as exc:
            self._say_once(f"confirmation emails cannot be sent (they stay pending): {exc}")
            return 0
        handled = 0
        while handled < self.batch and not self._stop.is_set():
            row = self.ledger.claim_confirmation(self.owner, route.retry.lease)
            if row is None:
                break
            handled += 1
            if not self._deliver(row, route):
                break  # the server cannot be used: the queue waits
        return handled

    def _deliver(self, row: Confirmation, route: EmailRoute) -> bool:
        """Send one claimed row and record the outcome; False: hold the queue."""
        ledger, now = self.ledger, self.now()
        if now >= row.requested_at + timedelta(seconds=self.ttl):
            ledger.mark_confirmation_failed(row.id, self.owner, None,
                                            "the link expired before it could be sent")
            log.warning("confirmation email to %s not sent: its link expired first", row.email)
            return True
        try:
            message = confirmation_message(
                self.config, self.secret, route, address=row.email,
                requested_at=row.requested_at, ttl=self.ttl, date=now,
                message_id=confirmation_message_id(row.id, row.requested_at, route.from_addr))
            code, reply = send_message(route, message, row.email)
        except SendError as exc:
            return self._failed(row, decide(exc, row.attempts, route.retry, self._held))
        except SyndicateError as exc:  # rendering (a template error): not the server's fault
            return self._failed(row, Outcome("failed", None, str(exc)))
        self._held = 0
        self._last_error = ""
        answer = " ".join(filter(None, (str(code or ""), reply)))
        if not ledger.mark_confirmation_sent(row.id, self.owner, code, answer):
            log.warning("confirmation email to %s sent, but its lease had run out", row.email)
        log.info("confirmation email to %s sent via %s: %s", row.email, route.name, answer)
        return True

    def _failed(self, row: Confirmation, outcome: Outcome) -> bool:
        ledger, now = self.ledger, self.now()
        if outcome.action == "failed":
            ledger.mark_confirmation_failed(row.id, self.owner, outcome.code, outcome.text)
            log.warning("confirmation email to %s failed: %s", row.email, outcome.text)
            return True
        due = now + timedelta(seconds=outcome.delay)
        ledger.mark_confirmation_retry(row.id, self.owner, due, outcome.code, outcome.text,
                                       attempts=None if outcome.counted else row.attempts - 1)
        if not outcome.counted:  # the server cannot be used: every row waits
            self._held += 1
            self._hold_until = due
            self._say_once(f"confirmation emails wait: the server cannot be used: "
                           f"{outcome.text}")
            return False
        log.info("confirmation email to %s: %s; retry %d in %.1fs", row.email, outcome.text,
                 row.attempts + 1, outcome.delay)
        if outcome.hold:
            self._hold_until = due
            return False
        return True

    def _say_once(self, message: str) -> None:
        """Log a server or settings problem once, not once per row or per pass."""
        if message != self._last_error:
            log.warning("%s", message)
            self._last_error = message

    def _prune(self, now: datetime) -> None:
        tick = time.monotonic()
        if tick - self._pruned_at >= _PRUNE_EVERY:
            self._pruned_at = tick
            self.ledger.prune_confirmations(now - KEEP)


# --------------------------------------------------------------------------- for commands


@contextmanager
def running(config: Config, secret: bytes | None, *,
            now: Callable[[], datetime] = utcnow) -> Iterator[ConfirmationSender | None]:
    """A sender running for the duration of the block (``serve``, ``run``).

    None (and one log line) when it cannot send anything: no secret to sign the
    links, or no smtp/outbox channel; requests then wait in the ledger for a
    process that can.
    """
    if secret is None:
        log.info("no SYNDICATE_SECRET: confirmation emails are left to `syndicate serve`")
        yield None
        return
    try:
        email_route(config)
    except ChannelError as exc:
        log.info("confirmation emails not sent by this process: %s", exc)
        yield None
        return
    sender = ConfirmationSender(config, secret, now=now).start()
    try:
        yield sender
    finally:
        sender.stop()
