"""The smtp channel's connections: one SMTP session, and what it needs to open one.

- :class:`Connection` wraps one smtplib session: connect, (STARTTLS), (AUTH),
  then many MAIL/RCPT/DATA, keeping the server's final reply for the ledger;
- :class:`ConnectError` says a server cannot be used at all, and whether
  retrying can help;
- :func:`auth_password` and :func:`tls_context` turn the settings into the AUTH
  secret and the TLS context, raising ``ChannelError`` when they are unusable.

Which reply means what is decided in :mod:`._smtp_policy`; :mod:`.smtp` drives
the sending.
"""

from __future__ import annotations

import contextlib
import os
import re
import smtplib
import ssl
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ChannelError
from ._smtp_policy import reply_text

if TYPE_CHECKING:
    from ..config import Config
    from .smtp import SmtpSettings

__all__ = ["ConnectError", "Connection", "auth_password", "tls_context"]

# An address that can go between angle brackets as is (no quoting, no SMTPUTF8).
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+\Z")


def auth_password(settings: SmtpSettings) -> str | None:
    """The AUTH password from the environment (None: no AUTH configured)."""
    if not settings.password_env:
        return None
    password = os.environ.get(settings.password_env)
    if not password:
        raise ChannelError(settings.name, f"the environment variable "
                           f"{settings.password_env} (password_env) is not set",
                           permanent=True)
    return password


def tls_context(settings: SmtpSettings, config: Config) -> ssl.SSLContext | None:
    """The client TLS context (None with ``security = "none"``), trusting
    ``tls_ca_file`` when set, else the system CAs."""
    if settings.security == "none":
        return None
    context = ssl.create_default_context()
    if settings.tls_ca_file:
        path = config.resolve(Path(settings.tls_ca_file))
        try:
            context.load_verify_locations(cafile=str(path))
        except (OSError, ssl.SSLError) as exc:
            raise ChannelError(settings.name, f"tls_ca_file {path}: {exc}",
                               permanent=True) from None
    return context


class ConnectError(Exception):
    """The server cannot be used at all; ``permanent`` when retrying cannot help."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class Connection:
    """One SMTP session: connect, (STARTTLS), (AUTH), then many MAIL/RCPT/DATA."""

    def __init__(self, settings: SmtpSettings, password: str | None,
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
                               f"{reply_text(exc.smtp_error)}", permanent=True) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise ConnectError(f"{exc} (check `security`)", permanent=True) from None
        except ssl.SSLCertVerificationError as exc:
            raise ConnectError(f"TLS certificate not trusted: {exc.verify_message} "
                               "(see `tls_ca_file`)", permanent=True) from None
        except smtplib.SMTPResponseException as exc:
            permanent = 500 <= exc.smtp_code < 600
            raise ConnectError(f"server answered {exc.smtp_code} {reply_text(exc.smtp_error)}",
                               permanent=permanent) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise ConnectError(f"{type(exc).__name__}: {exc}", permanent=False) from None
        self.smtp = smtp
        self.smtputf8 = smtp.has_extn("smtputf8")

    def send(self, sender: str, recipient: str, data: bytes) -> tuple[int, str]:
        """MAIL, RCPT, DATA for one recipient; the server's final reply, or raise.

        ``data`` is the message already dot-stuffed for DATA (``Mailing.message(...,
        smtp=True)``), ending with CRLF: smtplib's ``data()`` would scan every
        message with a regular expression, which costs more than the rest of the
        per-message work together on a 40 KB newsletter.

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
