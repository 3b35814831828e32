"""The ``smtp`` channel: one message per active subscriber, over reused SMTP connections.

How a send goes (and why):

1. One delivery row per active subscriber is created *before* anything is sent
   (the job's :class:`~._bookkeeping.Bookkeeping`), streaming, so a crash at any
   point leaves a complete list of who still has to get the edition.
2. ``concurrency`` worker threads each hold one SMTP connection (smtplib) and
   take pending rows from one shared keyset scan of the ledger.
3. Just before sending, the subscriber's status is read again: someone who
   unsubscribed (or bounced) a second ago gets nothing.
4. Each accepted message is marked sent with the server's reply in its own
   small commit (WAL, synchronous=NORMAL: survives a SIGKILL without an fsync).
   Nothing is batched, so after a kill at most the messages in flight (at most
   ``concurrency``) can be sent again by the resume.
5. Temporary failures (4xx, a dropped connection, a timeout) are retried on a
   fresh connection with exponential backoff, up to ``max_attempts``; permanent
   ones (5xx) are recorded, and a "no such user" answer marks the subscriber
   bounced. One bad address never stops the others.
6. SIGTERM / Ctrl-C set ``job.stop``: the workers finish the message in hand,
   record it, and return; the remaining rows stay pending for ``resume``.
7. Every ``CHECK_EVERY`` rows (and before the first) the circuit breaker
   (:mod:`._breaker`) looks at the bounces and complaints reported later: an edition
   paused, or whose rates run above ``[bounces] pause_*``, gets no new row taken.

A server that cannot be reached at all (refused, TLS or AUTH failure) stops the
channel with every row still pending: retrying the edition later loses nobody.

The SMTP sessions (connect, STARTTLS, AUTH, MAIL/RCPT/DATA), DKIM, and the
pure decisions (classification, backoff, rate limiting) are the transport's
(:mod:`syndicate.transport`), shared with the confirmation emails; the channel
gives it plain settings (:func:`transport_settings`) and drives the workers.
"""

from __future__ import annotations

import logging
import smtplib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field, field_validator, model_validator

from ..config import ChannelSettings, Config, Duration, deadline_field
from ..errors import LedgerError, SyndicateError
from ..tokens import verp_address
from ..transport import (  # those in __all__ are re-exported: they were defined here before
    DEFAULT_PORTS,
    REPLY_EXCERPT,
    ConnectError,
    Connection,
    DkimSettings,
    Failure,
    RateLimiter,
    Security,
    SmtpTransport,
    TransportSettings,
    auth_password,
    backoff_delay,
    classify,
    envelope_address,
    is_no_such_user,
    load_signer,
    tls_context,
)
from . import _breaker as breaker
from ._base import DeliveryJob, DeliveryReport, check_env_name
from ._breaker import CHECK_EVERY
from ._mailing import SECRET_ENV, MailChannelSettings, Mailing, Progress, check_address

if TYPE_CHECKING:
    from ..ledger import Delivery
    from ._bookkeeping import DeliveryRun, Outcome

__all__ = [
    "DEFAULT_PORTS",
    "REPLY_EXCERPT",
    "ConnectError",
    "Connection",
    "Failure",
    "RateLimiter",
    "Security",
    "SmtpChannel",
    "SmtpSettings",
    "backoff_delay",
    "classify",
    "is_no_such_user",
    "transport_settings",
]

log = logging.getLogger("syndicate.channels.smtp")


class SmtpSettings(MailChannelSettings):
    """``type = "smtp"``: send each active subscriber the edition through an SMTP server."""

    # Each message carries an RFC 8058 one-click unsubscribe link: https only.
    sends_unsubscribe_links: ClassVar[bool] = True
    # `syndicate worker` sends its rows when [delivery] senders = "workers".
    sent_by_workers: ClassVar[bool] = True

    host: str = Field(description="SMTP server (submission) host name or address.")
    port: int = Field(
        0, ge=0, le=65535,
        description="Server port; 0 = the usual one for `security` "
        "(587 starttls, 465 tls, 25 none).",
    )
    security: Security = Field(
        "starttls",
        description="'starttls' (plain connection upgraded with STARTTLS, port 587), "
        "'tls' (implicit TLS, port 465) or 'none' (no encryption: local relays only).",
    )
    tls_ca_file: str = Field(
        "",
        description="PEM file of the CA(s) that signed the server certificate, when it is not "
        "signed by a CA the system trusts (relative to the config file). Empty: system CAs.",
    )
    username: str = Field("", description="AUTH user name; empty: no authentication.")
    password_env: str = Field(
        "",
        description="Name of the environment variable holding the AUTH password (the password "
        "itself is never written in the config file). Required with `username`.",
    )
    from_address: str = Field(
        alias="from",
        description="Sender, an address optionally with a display name, e.g. "
        "'Études de cas <lettre@example.org>'. Also the envelope sender (bounces go there).",
    )
    concurrency: int = Field(
        4, ge=1, le=64, description="SMTP connections used in parallel (one per sender thread)."
    )
    rate: float = Field(
        0.0, ge=0, description="Messages per second over all connections; 0 = unlimited."
    )
    timeout: float = Field(
        30.0, gt=0, le=600, description="Seconds to wait for the server at each step."
    )
    max_attempts: int = Field(
        4, ge=1, le=20,
        description="Attempts per message on temporary failures (4xx, dropped connection, "
        "timeout) before it is recorded as failed.",
    )
    backoff: float = Field(
        2.0, ge=0, le=3600,
        description="Seconds before the first retry; doubled at each further retry.",
    )
    max_delay: float = Field(
        120.0, ge=0, le=86400, description="Longest wait between two attempts."
    )
    # A long list at a limited `rate` legitimately takes hours.
    deadline: Duration = deadline_field(7200)
    dkim_selector: str = Field("", description="DKIM selector (e.g. 'lettre2026'); optional.")
    dkim_domain: str = Field("", description="DKIM signing domain (d=), e.g. 'example.org'.")
    dkim_key_file: str = Field(
        "",
        description="PEM file of the DKIM private key (RSA), relative to the config file. "
        "The signature covers From, Subject, List-Unsubscribe and List-Unsubscribe-Post.",
    )

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not value.strip() or any(c.isspace() for c in value):
            raise ValueError("a host name or address such as 'smtp.example.org'")
        return value

    @field_validator("password_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        return check_env_name(value, "SMTP_PASSWORD")

    @field_validator("from_address")
    @classmethod
    def _from(cls, value: str) -> str:
        check_address(value, display_name=True)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SmtpSettings:
        if bool(self.username) != bool(self.password_env):
            raise ValueError("username and password_env go together (AUTH needs both)")
        dkim = (self.dkim_selector, self.dkim_domain, self.dkim_key_file)
        if any(dkim) and not all(dkim):
            raise ValueError("DKIM needs all three of dkim_selector, dkim_domain, dkim_key_file")
        return self

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.security]

    def secret_env_vars(self) -> dict[str, str]:
        # The unsubscribe links are signed with SYNDICATE_SECRET: no secret, no send.
        found = {"password_env": self.password_env, "unsubscribe_secret": SECRET_ENV}
        return {key: var for key, var in found.items() if var}


def transport_settings(settings: SmtpSettings,
                       resolve: Callable[[Path], Path]) -> TransportSettings:
    """What the transport needs of an smtp channel's settings; ``resolve`` makes the
    key and CA file paths absolute (``Config.resolve``: relative to the config file).

    The one place that reads these keys for sending: the channel and the
    confirmation emails (:mod:`syndicate.confirmations`) both go through it."""
    s = settings
    dkim = (DkimSettings(s.dkim_selector, s.dkim_domain, resolve(Path(s.dkim_key_file)))
            if s.dkim_key_file else None)
    return TransportSettings(
        name=s.name, host=s.host, port=s.effective_port, security=s.security,
        timeout=s.timeout, username=s.username, password_env=s.password_env,
        tls_ca_file=resolve(Path(s.tls_ca_file)) if s.tls_ca_file else None, dkim=dkim,
    )


# --------------------------------------------------------------------------- the channel


class SmtpChannel:
    type_name: ClassVar[str] = "smtp"
    Settings: ClassVar[type[ChannelSettings]] = SmtpSettings

    def __init__(self, settings: SmtpSettings, config: Config) -> None:
        self.settings = settings
        self.config = config

    # -- delivery ------------------------------------------------------------

    def deliver(self, job: DeliveryJob) -> DeliveryReport:
        s = self.settings
        mailing = Mailing(job, self.config, s.mail_sender(s.from_address))
        # Rows first: if the set-up below fails (a secret missing, a bad key file)
        # the edition stays unfinished with everyone pending, instead of being
        # closed with nobody mailed.
        book = job.book.run(s.name)
        total = book.create_for_subscribers()
        if not total:
            return DeliveryReport(s.name, detail="nothing to send")
        settings = transport_settings(s, self.config.resolve)
        try:
            signer = load_signer(settings)
            mailing.start(signer=signer)
            transport = SmtpTransport(settings, password=auth_password(settings),
                                      tls=tls_context(settings), signer=signer)
        except SyndicateError as exc:
            job.log.error("smtp %s: cannot send: %s", s.name, exc)
            return DeliveryReport(s.name, pending=total, detail=f"cannot send: {exc}")
        return _Run(self, job, book, mailing, transport).go(total)


class _Run:
    """One delivery pass of the channel over an edition's pending rows."""

    def __init__(self, channel: SmtpChannel, job: DeliveryJob, book: DeliveryRun,
                 mailing: Mailing, transport: SmtpTransport) -> None:
        self.settings = channel.settings
        self.job = job
        self.book = book
        self.mailing = mailing
        self.transport = transport
        self.envelope_from = envelope_address(self.settings.from_address)
        # [bounces] domain set: each message's envelope sender names its delivery row
        # (VERP), so a bounce arriving later by mail is attributed (syndicate.bounces).
        self.bounces = channel.config.bounces
        # Across every worker when the rows are the workers' (the ledger's slots), else here.
        shared = book.book.limiter(self.settings.name, self.settings.rate)
        self.limiter = shared or RateLimiter(self.settings.rate)
        self.rows = self.book.pending()
        self.feed_lock = threading.Lock()
        # Set when the server cannot be used at all: every worker stops, rows stay pending.
        self.abort = threading.Event()
        self.fatal = ""
        self.lock = threading.Lock()
        self.progress: Progress | None = None
        self.ledger_error: LedgerError | None = None
        # The circuit breaker (._breaker): rows taken, and why the edition is paused.
        self.taken = 0
        self.paused = ""

    @property
    def halted(self) -> bool:
        return self.job.stop.is_set() or self.abort.is_set()

    def go(self, total: int) -> DeliveryReport:
        s, job = self.settings, self.job
        job.log.info("smtp %s: %d message(s) to send for edition #%s via %s:%s", s.name, total,
                     job.edition.number, s.host, s.effective_port)
        workers = [threading.Thread(target=self._worker, name=f"smtp-{s.name}-{i}", daemon=True)
                   for i in range(min(s.concurrency, total))]
        with Progress(f"{s.name} #{job.edition.number}", total, job.log) as progress:
            self.progress = progress
            self.book.on_mark = self._advance
            for worker in workers:
                worker.start()
            try:
                for worker in workers:
                    worker.join()
            except BaseException:
                # Ctrl-C without the CLI's handler: stop taking work, but let the
                # messages in flight finish and be recorded before going further.
                self.abort.set()
                for worker in workers:
                    worker.join()
                raise
        if self.ledger_error is not None:
            raise self.ledger_error  # the pipeline stops the edition and reports it, once
        pending = self.book.pending_count()
        detail = ""
        if self.fatal:
            detail = f"stopped: {self.fatal}"
            job.log.error("smtp %s: %s; %d message(s) left pending", s.name, self.fatal, pending)
        elif self.paused and pending:
            detail = f"paused: {self.paused}"
            job.log.warning("smtp %s: edition #%s paused; %d message(s) left pending",
                            s.name, job.edition.number, pending)
        elif job.stop.is_set() and pending:
            detail = "stopped before the end (resume finishes it)"
        return self.book.report(detail)

    def _next(self) -> Delivery | None:
        """The next pending row for a worker (None: no more, or halted).

        Workers pull from one shared keyset scan under a lock: no feeder thread
        and no queue hand-off per message, and no row fetched ahead of need
        (beyond the ledger's page).
        """
        with self.feed_lock:
            if self.halted or self.paused:
                return None
            if self.taken % CHECK_EVERY == 0:  # before the first row, then every so many
                job = self.job
                self.paused = breaker.check(self.book.book.store, job.edition.id,
                                            job.edition.number, self.bounces, job.log)
                if self.paused:
                    return None
            self.taken += 1
            return next(self.rows, None)

    def _worker(self) -> None:
        connection = self.transport.connection()
        try:
            while (delivery := self._next()) is not None:
                self._send_one(connection, delivery)
        except LedgerError as exc:
            # The ledger cannot record (disk full...): stop sending what could not be
            # recorded. The rows stay pending; at most the messages in flight are resent.
            with self.lock:
                self.ledger_error = self.ledger_error or exc
            self.abort.set()
        except Exception as exc:  # a bug must not go unnoticed, nor hang the others
            log.exception("smtp worker crashed")
            self._fail(f"internal error: {type(exc).__name__}: {exc}")
        finally:
            connection.quit()

    def _fail(self, message: str) -> None:
        with self.lock:
            if not self.fatal:
                self.fatal = message
        self.abort.set()

    def _connect(self, connection: Connection) -> bool:
        """Open ``connection`` if needed, retrying with backoff; False: give up (abort)."""
        s = self.settings
        attempt = 0
        while connection.smtp is None:
            attempt += 1
            try:
                connection.open()
            except ConnectError as exc:
                where = f"{s.host}:{s.effective_port}"
                if exc.permanent or attempt >= s.max_attempts:
                    self._fail(f"cannot use SMTP server {where}: {exc}")
                    return False
                self.job.log.warning("smtp %s: cannot connect to %s (%s), retrying", s.name,
                                     where, exc)
                if self.job.stop.wait(backoff_delay(attempt, s.backoff, s.max_delay)):
                    return False
            if self.abort.is_set():
                return False
        return True

    def _send_one(self, connection: Connection, delivery: Delivery) -> None:
        s, book = self.settings, self.book
        subscriber = book.recipient(delivery)  # records the skip if no longer active
        if subscriber is None:  # unsubscribed, bounced or removed since the row was made
            return
        data = self.mailing.message(subscriber, smtp=True, delivery_id=delivery.id)
        # Stored addresses are bare and normalised: only an IDN domain needs converting.
        email = subscriber.email
        recipient = email if email.isascii() else envelope_address(email)
        attempt = 0
        while True:
            attempt += 1
            if not self._connect(connection) or not self.limiter.wait(self.job.stop):
                return  # halted: the row stays pending
            try:
                code, reply = connection.send(self._sender(delivery), recipient, data)
            except Exception as exc:
                failure = classify(exc)
                if isinstance(exc, smtplib.SMTPSenderRefused) and not failure.temporary:
                    # Our own address refused for good (not allowed to send as `from`,
                    # authentication required...): every message would fail the same
                    # way. Stop with the rows pending rather than fail them all.
                    self._fail(f"the server refuses the sender {self.envelope_from}: "
                               f"{failure.code} {failure.message}")
                    return
            else:
                book.sent(delivery, f"{code} {reply}", code)
                return
            if failure.reconnect:
                connection.close()
            if failure.temporary and attempt < s.max_attempts:
                book.retry_later(delivery, failure.message, failure.code)
                delay = backoff_delay(attempt, s.backoff, s.max_delay)
                self.job.log.info("smtp %s: %s: %s; retry %d in %.1fs", s.name, subscriber.email,
                                  failure.message, attempt + 1, delay)
                if self.job.stop.wait(delay):
                    return
                continue
            if failure.bounce:  # no such mailbox: an outcome, the subscriber is 'bounced'
                book.bounced(delivery, subscriber.email, failure.code, failure.message)
                return
            book.failed(delivery, failure.message, failure.code)
            self.job.log.warning("smtp %s: %s failed: %s %s", s.name, subscriber.email,
                                 failure.code or "", failure.message)
            return

    def _sender(self, delivery: Delivery) -> str:
        """The envelope sender (MAIL FROM) of ``delivery``'s message."""
        b = self.bounces
        if not b.domain:
            return self.envelope_from
        return verp_address(self.mailing.secret, delivery.id, local_part=b.local_part,
                            separator=b.separator, domain=b.domain)

    def _advance(self, outcome: Outcome) -> None:
        if self.progress is not None:
            self.progress.advance(outcome)
