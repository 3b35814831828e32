"""The SMTP transport: one session, what it needs to open one, and one message on its own.

- :class:`TransportSettings` is all the transport needs to know about a server
  (host, port, security, AUTH, timeout, DKIM): plain values, built by whoever
  holds the configuration (the smtp channel's settings, see
  :func:`syndicate.channels.smtp.transport_settings`), so that the transport
  imports nothing above it;
- :func:`auth_password`, :func:`tls_context` and :func:`load_signer` turn them
  into the AUTH secret, the TLS context and the DKIM signer, raising
  :class:`~syndicate.errors.SendError` when they are unusable;
- :class:`Connection` wraps one smtplib session: connect, (STARTTLS), (AUTH),
  then many MAIL/RCPT/DATA, keeping the server's final reply for the ledger;
  :class:`ConnectError` says a server cannot be used at all, and whether
  retrying can help;
- :class:`SmtpTransport` holds the secrets read once and sends one message on a
  connection of its own (:meth:`SmtpTransport.send`: the confirmation emails).

Which reply means what is decided in :mod:`.policy`; the smtp channel drives
many connections in parallel with these.
"""

from __future__ import annotations

import contextlib
import os
import re
import smtplib
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import SendError
from .policy import classify, reply_text
from .signing import Signer, dkim_signer
from .wire import dot_stuffed, envelope_address  # re-exported: they were defined here

__all__ = [
    "DEFAULT_PORTS",
    "ConnectError",
    "Connection",
    "DkimSettings",
    "Security",
    "SmtpTransport",
    "TransportSettings",
    "auth_password",
    "dot_stuffed",
    "envelope_address",
    "load_signer",
    "tls_context",
]

Security = Literal["starttls", "tls", "none"]
DEFAULT_PORTS: dict[str, int] = {"starttls": 587, "tls": 465, "none": 25}

# An address that can go between angle brackets as is (no quoting, no SMTPUTF8).
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+\Z")


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class DkimSettings:
    """Sign with ``key_file`` (a PEM RSA key, path resolved) as ``selector._domainkey.domain``."""

    selector: str
    domain: str
    key_file: Path


@dataclass(frozen=True)
class TransportSettings:
    """How to reach one SMTP server. ``name`` (the channel's) prefixes every error."""

    name: str
    host: str
    port: int = 0  # 0: the usual one for ``security``
    security: Security = "starttls"
    timeout: float = 30.0  # seconds to wait for the server at each step
    username: str = ""  # empty: no AUTH
    password_env: str = ""  # the environment variable holding the AUTH password
    tls_ca_file: Path | None = None  # CA(s) of the server certificate; None: system CAs
    dkim: DkimSettings | None = None

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.security]


def auth_password(settings: TransportSettings) -> str | None:
    """The AUTH password from the environment (None: no AUTH configured)."""
    if not settings.password_env:
        return None
    password = os.environ.get(settings.password_env)
    if not password:
        raise SendError(settings.name, f"the environment variable "
                        f"{settings.password_env} (password_env) is not set", permanent=True)
    return password


def tls_context(settings: TransportSettings) -> ssl.SSLContext | None:
    """The client TLS context (None with ``security = "none"``), trusting
    ``tls_ca_file`` when set, else the system CAs."""
    if settings.security == "none":
        return None
    context = ssl.create_default_context()
    if settings.tls_ca_file is not None:
        path = settings.tls_ca_file
        try:
            context.load_verify_locations(cafile=str(path))
        except (OSError, ssl.SSLError) as exc:
            raise SendError(settings.name, f"tls_ca_file {path}: {exc}", permanent=True) from None
    return context


def load_signer(settings: TransportSettings) -> Signer | None:
    """The DKIM signer (None when DKIM is not configured), its key read now."""
    dkim = settings.dkim
    if dkim is None:
        return None
    path = dkim.key_file
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise SendError(settings.name, f"dkim_key_file {path}: {exc.strerror or exc}",
                        permanent=True) from None
    try:
        return dkim_signer(dkim.selector, dkim.domain, key)
    except ValueError as exc:
        raise SendError(settings.name, f"dkim_key_file {path}: {exc}", permanent=True) from None


# --------------------------------------------------------------------------- the wire


class ConnectError(Exception):
    """The server cannot be used at all; ``permanent`` when retrying cannot help,
    ``code`` the server's reply code when it answered."""

    def __init__(self, message: str, *, permanent: bool, code: int | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code


class Connection:
    """One SMTP session: connect, (STARTTLS), (AUTH), then many MAIL/RCPT/DATA."""

    def __init__(self, settings: TransportSettings, password: str | None,
                 tls: ssl.SSLContext | None) -> None:
        self.settings = settings
        self.password = password
        self.tls = tls
        self.smtp: smtplib.SMTP | None = None
        self.smtputf8 = False

    def open(self) -> None:
        s = self.settings
        try:
            if s.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.host, s.effective_port, timeout=s.timeout, context=self.tls)
            else:
                smtp = smtplib.SMTP(s.host, s.effective_port, timeout=s.timeout)
            try:
                smtp.ehlo()
                if s.security == "starttls":
                    smtp.starttls(context=self.tls)
                    smtp.ehlo()
                if s.username:
                    smtp.login(s.username, self.password or "")
            except BaseException:
                _close(smtp)
                raise
        except smtplib.SMTPAuthenticationError as exc:
            raise ConnectError(f"AUTH refused for {s.username!r}: {exc.smtp_code} "
                               f"{reply_text(exc.smtp_error)}", permanent=True,
                               code=exc.smtp_code) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise ConnectError(f"{exc} (check `security`)", permanent=True) from None
        except ssl.SSLCertVerificationError as exc:
            raise ConnectError(f"TLS certificate not trusted: {exc.verify_message} "
                               "(see `tls_ca_file`)", permanent=True) from None
        except smtplib.SMTPResponseException as exc:
            permanent = 500 <= exc.smtp_code < 600
            raise ConnectError(f"server answered {exc.smtp_code} {reply_text(exc.smtp_error)}",
                               permanent=permanent, code=exc.smtp_code) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise ConnectError(f"{type(exc).__name__}: {exc}", permanent=False) from None
        self.smtp = smtp
        self.smtputf8 = smtp.has_extn("smtputf8")

    def send(self, sender: str, recipient: str, data: bytes) -> tuple[int, str]:
        """MAIL, RCPT, DATA for one recipient; the server's final reply, or raise.

        ``data`` is the message already dot-stuffed for DATA (``Mailing.message(...,
        smtp=True)``, :func:`dot_stuffed`), ending with CRLF: smtplib's ``data()``
        would scan every message with a regular expression, which costs more than
        the rest of the per-message work together on a 40 KB newsletter.

        smtplib's ``sendmail`` throws the DATA reply away; the ledger keeps it
        (it holds the server's queue id, what a postmaster asks for).
        """
        smtp = self.smtp
        assert smtp is not None
        if _PLAIN_ADDRESS.match(sender) and _PLAIN_ADDRESS.match(recipient):
            # Validated ASCII addresses: skip smtplib's address parser, which costs
            # more per message than the ledger commit.
            smtp.putcmd("mail", f"FROM:<{sender}>")
            code, reply = smtp.getreply()
        else:
            options: list[str] = []
            if not (sender.isascii() and recipient.isascii()):
                if not self.smtputf8:
                    raise smtplib.SMTPNotSupportedError(
                        "the address is not ASCII and the server does not support SMTPUTF8")
                options.append("SMTPUTF8")
            code, reply = smtp.mail(sender, options)
        if code != 250:
            self._reset(code)
            raise smtplib.SMTPSenderRefused(code, reply, sender)
        if _PLAIN_ADDRESS.match(recipient):
            smtp.putcmd("rcpt", f"TO:<{recipient}>")
            code, reply = smtp.getreply()
        else:
            code, reply = smtp.rcpt(recipient)
        if code not in (250, 251):
            self._reset(code)
            raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
        smtp.putcmd("data")
        code, reply = smtp.getreply()
        if code == 354:
            smtp.send(data + b".\r\n" if data.endswith(b"\r\n") else data + b"\r\n.\r\n")
            code, reply = smtp.getreply()
        if code != 250:
            self._reset(code)
            raise smtplib.SMTPDataError(code, reply)
        return code, reply_text(reply)

    def _reset(self, code: int) -> None:
        if code == 421:
            self.close()  # the server is closing the session: do not talk to it again
            return
        try:
            assert self.smtp is not None
            self.smtp.rset()
        except (OSError, smtplib.SMTPException):
            self.close()

    def quit(self) -> None:
        if self.smtp is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self.smtp.quit()
            self.close()

    def close(self) -> None:
        if self.smtp is not None:
            _close(self.smtp)
            self.smtp = None


def _close(smtp: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError):
        smtp.close()


# --------------------------------------------------------------------------- the transport


class SmtpTransport:
    """One server with its secrets read: connections for a channel's workers, or
    one message on a connection of its own (:meth:`send`).

    :meth:`prepare` reads the secrets from ``settings``; the constructor takes
    them already read, for a caller that must read them in its own order.
    """

    def __init__(self, settings: TransportSettings, *, password: str | None,
                 tls: ssl.SSLContext | None, signer: Signer | None = None) -> None:
        self.settings = settings
        self.password = password
        self.tls = tls
        self.signer = signer

    @classmethod
    def prepare(cls, settings: TransportSettings) -> SmtpTransport:
        """Read the DKIM key, the AUTH password and the CA file (in that order);
        raises :class:`SendError` (``recipient`` None) when one is unusable."""
        signer = load_signer(settings)
        return cls(settings, password=auth_password(settings), tls=tls_context(settings),
                   signer=signer)

    def connection(self) -> Connection:
        """A new session (not yet open: :meth:`Connection.open`)."""
        return Connection(self.settings, self.password, self.tls)

    def send(self, message: bytes, sender: str, recipient: str) -> tuple[int, str]:
        """Send ``message`` from ``sender`` to ``recipient`` on a connection of its own;
        return the server's final reply ``(code, text)``.

        ``message`` is the serialised message (:func:`syndicate.mail.as_bytes`: CRLF,
        not dot-stuffed); it is signed, then made transparent for DATA, here.
        Raises :class:`SendError`: ``recipient`` None when the server cannot be used,
        else the server's answer about this message (``"<recipient>: <code> <text>"``,
        ``code`` set when it gave one); ``permanent`` says whether trying again
        later may help.
        """
        name = self.settings.name
        data = dot_stuffed(self.signer(message) if self.signer is not None else message)
        connection = self.connection()
        try:
            connection.open()
        except ConnectError as exc:
            raise SendError(name, str(exc), permanent=exc.permanent, code=exc.code) from None
        try:
            return connection.send(envelope_address(sender), envelope_address(recipient), data)
        except (OSError, smtplib.SMTPException) as exc:
            failure = classify(exc)
            answer = " ".join(filter(None, (str(failure.code or ""), failure.message)))
            raise SendError(name, f"{recipient}: {answer}", permanent=not failure.temporary,
                            code=failure.code, recipient=recipient) from None
        finally:
            connection.quit()
