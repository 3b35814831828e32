"""Two wire rules every sender applies, apart from the SMTP session so that writing a
message (:mod:`syndicate.mail`, the outbox) does not load smtplib and ssl.

- :func:`dot_stuffed`: SMTP DATA transparency (RFC 5321 4.5.2);
- :func:`envelope_address`: the bare address of the envelope, domain in IDNA form.
"""

from __future__ import annotations

from email.utils import getaddresses

__all__ = ["dot_stuffed", "envelope_address"]


def envelope_address(value: str) -> str:
    """The SMTP envelope form of an address: bare, domain in IDNA (ASCII) form."""
    found = getaddresses([value])
    address = found[0][1] if found and found[0][1] else value.strip()
    local, at, domain = address.rpartition("@")
    if not at or domain.isascii():
        return address
    return f"{local}@{domain.encode('idna').decode('ascii')}"


def dot_stuffed(data: bytes) -> bytes:
    """``data`` (starting at the start of a line) with a second '.' at the start of
    every line that begins with one: SMTP DATA transparency (RFC 5321 4.5.2)."""
    data = data.replace(b"\n.", b"\n..")
    return b"." + data if data.startswith(b".") else data
