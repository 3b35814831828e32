"""Tokens and the double opt-in email of the web app.

Tokens come from :mod:`syndicate.tokens` (HMAC with ``SYNDICATE_SECRET``); the
confirmation token has its own purpose, so an unsubscribe token (which every
email carries) can never confirm an address, and it expires.

The confirmation email goes through the configured email channel: the first
enabled ``smtp`` channel, else the ``outbox`` channel's Maildir; the message is
assembled by :func:`syndicate.mail.build_message` like every edition. It is never
sent from a web request: the request records it in the ledger's confirmation
outbox and :mod:`syndicate.web.confirmations` sends it in the background.

The email carries no text typed in the form: the name (attacker-chosen, since
anyone can type anyone's address) is stored on the pending subscriber and only
used once the address is confirmed.
"""

from __future__ import annotations

import mailbox
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any, Literal
from zoneinfo import ZoneInfo

from .. import tokens
from ..config import Config
from ..errors import ChannelError, ExpiredToken, InvalidToken
from ..mail import as_bytes, build_message, domain_of, list_id
from ..render.email import RenderedEmail, french_date, render_template
from ..render.urls import unsubscribe_url

Verdict = Literal["ok", "expired", "invalid"]

#: How long a confirmation link stays valid, counted from the request.
CONFIRM_TTL = 48 * 3600


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
class Transport:
    """Where the confirmation goes, and the sender to use.

    ``send(message, recipient)`` returns the server's final reply ``(code, text)``
    (``(None, "maildir …")`` for the outbox) and raises :class:`ChannelError`
    (``permanent`` or not) when the message was not accepted. ``settings`` are the
    channel's (the smtp channel's retry policy applies to confirmations too).
    """

    name: str
    from_addr: str
    send: Callable[[EmailMessage, str], tuple[int | None, str]]
    settings: Any = None


def _channel(config: Config, kind: str) -> Any | None:
    return next((c for c in config.channels if c.enabled and c.type == kind), None)


def _smtp_transport(settings: Any, config: Config) -> Transport:
    from ..channels.smtp import SmtpChannel

    channel = SmtpChannel(settings, config)

    def send(message: EmailMessage, recipient: str) -> tuple[int | None, str]:
        # The channel's own sending code: same TLS, AUTH, DKIM as the editions.
        return channel.send_one(as_bytes(message), recipient)

    return Transport(settings.name, settings.from_address, send, settings)


def _outbox_transport(settings: Any, config: Config) -> Transport:
    from ..channels.outbox import OutboxChannel

    channel = OutboxChannel(settings, config)

    def send(message: EmailMessage, recipient: str) -> tuple[int | None, str]:
        key = mailbox.Maildir(channel.folder, create=True).add(as_bytes(message))
        return None, f"maildir {channel.folder} {key}"

    return Transport(settings.name, channel.sender().from_address, send, settings)


def email_transport(config: Config) -> Transport:
    """The first enabled ``smtp`` channel, else the ``outbox`` Maildir; raises
    :class:`ChannelError` when neither is configured."""
    smtp = _channel(config, "smtp")
    if smtp is not None:
        return _smtp_transport(smtp, config)
    outbox = _channel(config, "outbox")
    if outbox is not None:
        return _outbox_transport(outbox, config)
    raise ChannelError("web", "no enabled smtp or outbox channel to send the confirmation "
                              "email (add one to [[channels]])", permanent=True)


def confirmation_message_id(confirmation_id: int, requested_at: datetime,
                            from_addr: str) -> str:
    """The same Message-ID for every attempt at one request: if a crash makes a
    sender mail it twice, mail clients can tell it is one message."""
    return f"<confirm.{confirmation_id}.{int(requested_at.timestamp())}@{domain_of(from_addr)}>"


def confirmation_message(config: Config, secret: bytes, transport: Transport, *, address: str,
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
        from_addr=transport.from_addr,
        unsubscribe_url=unsubscribe_url(base, unsubscribe_token(address, secret)),
        message_id=message_id or make_msgid("confirm", domain=domain_of(transport.from_addr)),
        list_id=list_id(config.site.title, transport.from_addr),
        date=date or requested_at,
    )


def send_message(transport: Transport, message: EmailMessage,
                 address: str) -> tuple[int | None, str]:
    """Send through ``transport``; any failure becomes one :class:`ChannelError` line."""
    try:
        return transport.send(message, address)
    except ChannelError:
        raise
    except Exception as exc:  # smtplib / OS errors: one clear line for the log
        raise ChannelError(transport.name, f"confirmation email: {exc}") from exc
