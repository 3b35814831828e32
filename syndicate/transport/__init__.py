"""Sending mail: the SMTP session, its retry policy, DKIM, and the Maildir writer.

Shared by the ``smtp`` and ``outbox`` channels and the confirmation emails
(:mod:`syndicate.confirmations`), so an edition and a confirmation go out the
same way (same TLS, AUTH, DKIM, same answer classification and backoff).

The transport takes plain values (:class:`TransportSettings`, built from a
channel's settings by the caller) and imports nothing above it: not the
channels, the pipeline nor the web app.

- :mod:`.smtp`: settings, one SMTP session (:class:`Connection`), the secrets
  (AUTH password, TLS context, DKIM key) and one message on its own
  (:class:`SmtpTransport`);
- :mod:`.policy`: what a server's answer means (:func:`classify`), the one
  backoff formula of every retrying sender (:func:`backoff_delay`), the rate limiter;
- :mod:`.signing`: DKIM signatures;
- :mod:`.wire`: the rules of the wire every sender applies (dot-stuffing, the
  envelope form of an address);
- :mod:`.maildir`: messages written to a Maildir folder.

The names below load their module on first use (PEP 562): writing an outbox or a
feed never imports smtplib and ssl, which only sending by SMTP needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..modules import lazy_attribute

if TYPE_CHECKING:
    from .maildir import MaildirWriter
    from .policy import (
        REPLY_EXCERPT,
        Failure,
        RateLimiter,
        backoff_delay,
        classify,
        is_no_such_user,
        reconnect_delay,
        reply_text,
    )
    from .signing import DKIM_HEADERS, Signer, dkim_signer
    from .smtp import (
        DEFAULT_PORTS,
        ConnectError,
        Connection,
        DkimSettings,
        Security,
        SmtpTransport,
        TransportSettings,
        auth_password,
        load_signer,
        tls_context,
    )
    from .wire import dot_stuffed, envelope_address

#: Where each name lives (the module imported when the name is first used).
_HOMES = {
    "MaildirWriter": "maildir",
    **dict.fromkeys(("REPLY_EXCERPT", "Failure", "RateLimiter", "backoff_delay", "classify",
                     "is_no_such_user", "reconnect_delay", "reply_text"), "policy"),
    **dict.fromkeys(("DKIM_HEADERS", "Signer", "dkim_signer"), "signing"),
    **dict.fromkeys(("DEFAULT_PORTS", "ConnectError", "Connection", "DkimSettings", "Security",
                     "SmtpTransport", "TransportSettings", "auth_password", "load_signer",
                     "tls_context"), "smtp"),
    **dict.fromkeys(("dot_stuffed", "envelope_address"), "wire"),
}


def __getattr__(name: str) -> Any:
    return lazy_attribute(globals(), _HOMES, name)


__all__ = [
    "DEFAULT_PORTS",
    "DKIM_HEADERS",
    "REPLY_EXCERPT",
    "ConnectError",
    "Connection",
    "DkimSettings",
    "Failure",
    "MaildirWriter",
    "RateLimiter",
    "Security",
    "Signer",
    "SmtpTransport",
    "TransportSettings",
    "auth_password",
    "backoff_delay",
    "classify",
    "dkim_signer",
    "dot_stuffed",
    "envelope_address",
    "is_no_such_user",
    "load_signer",
    "reconnect_delay",
    "reply_text",
    "tls_context",
]
