"""DKIM signing of outgoing messages (dkimpy, rsa-sha256, relaxed/relaxed).

A transport concern: the signature is added just before the message goes on the
wire, over the headers a receiving server checks. Used by the smtp channel's
per-subscriber messages and by the confirmation emails.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["DKIM_HEADERS", "Signer", "dkim_signer"]

#: A function returning a message with a DKIM-Signature header added.
Signer = Callable[[bytes], bytes]

#: Headers the DKIM signature covers when present. List-Unsubscribe-Post must be
#: named explicitly: dkimpy's default list leaves it out, and RFC 8058 requires it
#: signed (a provider ignores one-click on an unsigned List-Unsubscribe-Post); Feedback-ID
#: is signed so Gmail trusts the campaign fields of its feedback loop.
DKIM_HEADERS = (
    "From", "To", "Subject", "Date", "Message-ID", "Reply-To", "MIME-Version",
    "Content-Type", "Content-Language", "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post",
    "Feedback-ID",
)


def dkim_signer(selector: str, domain: str, key: bytes) -> Signer:
    """A function adding a DKIM-Signature header to a message (dkimpy, rsa-sha256,
    relaxed/relaxed). Raises ``ValueError`` for a key dkimpy cannot use."""
    # Imported here on purpose: dkimpy (and its crypto) takes ~80 ms to import, and
    # only a channel configured with a DKIM key needs it.
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
        signature: bytes = dkim.sign(message, selector.encode(), domain.encode(), key,
                                     canonicalize=(b"relaxed", b"relaxed"),
                                     include_headers=present)
        return signature + message

    return sign
