"""Signed, URL-safe tokens for unsubscribe and confirmation links (HMAC-SHA256).

A token is ``<payload>.<signature>``, both base64url without padding:

- payload: ``"<expires>:<email>"`` in UTF-8, ``expires`` a Unix time or empty
  (never expires: unsubscribe links in old emails must keep working);
- signature: HMAC-SHA256 with the secret over the purpose and the payload, so a
  token made for one use ("unsubscribe") is refused for another ("confirm").

The address is readable by whoever holds the link (it is their own); what matters
is that nobody can make a valid token for someone else's address without the
secret. Verification compares in constant time and refuses anything altered.

The secret comes from the environment variable ``SYNDICATE_SECRET`` (never the config
file). The outbox, which only writes sample files, can run without it: it then signs
with a local secret kept in the ledger (:func:`outbox_secret`), and says that
``syndicate serve`` will need the environment secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol, overload

from .errors import ExpiredToken, InvalidToken, SyndicateError

SECRET_ENV = "SYNDICATE_SECRET"
MIN_SECRET_LENGTH = 16
LOCAL_SECRET_KEY = "local_secret"
UNSUBSCRIBE = "unsubscribe"
CONFIRM = "confirm"

log = logging.getLogger("syndicate.tokens")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text or any(c not in _ALPHABET for c in text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _signature(secret: bytes, purpose: str, payload: str) -> bytes:
    message = f"syndicate/{purpose}\n{payload}".encode()
    return hmac.new(secret, message, hashlib.sha256).digest()


def make_token(secret: bytes, purpose: str, email: str, expires: int | None = None) -> str:
    """A token for ``email`` and ``purpose``; ``expires`` is a Unix time (None: never)."""
    if not secret:
        raise ValueError("an empty secret signs nothing")
    if ":" in purpose or "\n" in purpose:
        raise ValueError(f"purpose {purpose!r} must not contain ':' or a newline")
    stamp = "" if expires is None else str(int(expires))
    payload = _b64(f"{stamp}:{email}".encode())
    return f"{payload}.{_b64(_signature(secret, purpose, payload))}"


def verify_token(secret: bytes, purpose: str, token: str, *, now: float | None = None) -> str:
    """The address a genuine token was made for.

    Raises :class:`~syndicate.errors.InvalidToken` when the token is malformed,
    forged, altered or made for another purpose, and
    :class:`~syndicate.errors.ExpiredToken` when it is genuine but expired.
    """
    payload, dot, signature = token.partition(".")
    if not dot or len(token) > 2048:
        raise InvalidToken("malformed token")
    try:
        given = _unb64(signature)
    except (ValueError, binascii.Error):
        raise InvalidToken("malformed token") from None
    if not hmac.compare_digest(given, _signature(secret, purpose, payload)):
        raise InvalidToken("invalid token signature (forged, altered, or another secret)")
    try:
        stamp, colon, email = _unb64(payload).decode("utf-8").partition(":")
        expires = int(stamp) if stamp else None
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidToken("malformed token payload") from None
    if not colon or not email:
        raise InvalidToken("malformed token payload")
    if expires is not None and (time.time() if now is None else now) >= expires:
        raise ExpiredToken("this link has expired")
    return email


#: Purpose of the VERP token of a message's envelope sender (see :func:`make_verp_token`).
BOUNCE = "bounce"
_VERP_MAC_BYTES = 10  # 80 bits: forging one needs ~2^80 tries against the secret


def make_verp_token(secret: bytes, delivery_id: int) -> str:
    """The token of a message's envelope sender ``bounces+<token>@domain``, naming
    delivery row ``delivery_id``: ``<id>-<mac>``, the MAC a truncated HMAC-SHA256
    in lowercase base32.

    Unlike the link tokens it must survive as an address local part (at most 64
    characters with the prefix) and MTAs or mailbox providers that fold its case:
    so decimal digits, lowercase letters, no padding, about 27 characters."""
    if not secret:
        raise ValueError("an empty secret signs nothing")
    if delivery_id < 0:
        raise ValueError("a delivery id is not negative")
    mac = _signature(secret, BOUNCE, str(delivery_id))[:_VERP_MAC_BYTES]
    return f"{delivery_id}-{base64.b32encode(mac).decode('ascii').rstrip('=').lower()}"


def verify_verp_token(secret: bytes, token: str) -> int:
    """The delivery id a genuine VERP token names (any case); raises
    :class:`~syndicate.errors.InvalidToken` when it is malformed or forged."""
    number, dash, _mac = token.strip().lower().partition("-")
    if not dash or not number.isascii() or not number.isdigit() or len(number) > 18:
        raise InvalidToken("malformed bounce token")
    expected = make_verp_token(secret, int(number))
    if not hmac.compare_digest(expected.encode(), token.strip().lower().encode("utf-8")):
        raise InvalidToken("invalid bounce token signature (forged, altered, or another secret)")
    return int(number)


def verp_address(secret: bytes, delivery_id: int, *, local_part: str, separator: str,
                 domain: str) -> str:
    """The envelope sender naming ``delivery_id``: ``bounces+<token>@domain``."""
    return f"{local_part}{separator}{make_verp_token(secret, delivery_id)}@{domain}"


def verp_token_in(address: str, *, local_part: str, separator: str, domain: str) -> str | None:
    """The token of a VERP ``address`` made by :func:`verp_address` with these settings
    (local part and domain compared without case), or None if it is not one."""
    local, at, host = address.strip().strip("<>").rpartition("@")
    prefix = f"{local_part}{separator}".lower()
    if not at or host.lower().rstrip(".") != domain.lower() or not local.lower().startswith(
            prefix):
        return None
    return local[len(prefix):] or None


#: Purposes of the counted links of an email (``[analytics]``): a click, the open pixel.
CLICK = "click"
OPEN = "open"


@dataclass(frozen=True)
class TrackToken:
    """What a counted link names: the edition, the link's index in the edition's stored
    list (``-1`` for the open pixel) and the start of its URL's SHA-256 (a link that is not
    the one signed for is refused), when the message was made (Unix time, whole seconds:
    the same for every copy made in one run, so it names nobody) and, only with
    ``[analytics] per_subscriber``, the delivery row."""

    edition_id: int
    link: int
    digest: str
    sent: int
    delivery_id: int | None = None


def link_digest(url: str) -> str:
    """The short hash of a link a click token carries (8 hex digits)."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:8]


def make_track_token(secret: bytes, purpose: str, mark: TrackToken) -> str:
    """A signed, never-expiring token for :class:`TrackToken` ``mark`` (``CLICK``/``OPEN``)."""
    delivery = "" if mark.delivery_id is None else str(mark.delivery_id)
    body = f"{mark.edition_id}/{mark.link}/{mark.digest}/{mark.sent}/{delivery}"
    return make_token(secret, purpose, body)


def verify_track_token(secret: bytes, purpose: str, token: str) -> TrackToken:
    """The :class:`TrackToken` of a genuine token; raises
    :class:`~syndicate.errors.InvalidToken` for a forged, altered or malformed one."""
    body = verify_token(secret, purpose, token)
    parts = body.split("/")
    try:
        edition, link, digest, sent, delivery = parts
        return TrackToken(int(edition), int(link), digest, int(sent),
                          int(delivery) if delivery else None)
    except ValueError:
        raise InvalidToken("malformed tracking token") from None


@overload
def secret_from_env(required: Literal[True] = ..., environ: Mapping[str, str] | None = ...
                    ) -> bytes: ...
@overload
def secret_from_env(required: bool, environ: Mapping[str, str] | None = ...
                    ) -> bytes | None: ...
def secret_from_env(required: bool = True, environ: Mapping[str, str] | None = None
                    ) -> bytes | None:
    """``SYNDICATE_SECRET`` as bytes; raise if ``required`` and unset, or if too short."""
    env = os.environ if environ is None else environ
    value = env.get(SECRET_ENV, "")
    if not value:
        if required:
            raise SyndicateError(
                f"the environment variable {SECRET_ENV} is not set: it signs unsubscribe and "
                f"confirmation links (generate one with: python -c 'import secrets; "
                f"print(secrets.token_hex(32))')"
            )
        return None
    if len(value) < MIN_SECRET_LENGTH:
        raise SyndicateError(
            f"{SECRET_ENV} is too short ({len(value)} characters; at least "
            f"{MIN_SECRET_LENGTH}, e.g. the output of: python -c 'import secrets; "
            f"print(secrets.token_hex(32))')"
        )
    return value.encode("utf-8")


class _Meta(Protocol):
    def get_meta(self, key: str, default: str | None = None) -> str | None: ...
    def set_meta(self, key: str, value: str | None) -> None: ...


def outbox_secret(ledger: _Meta, environ: Mapping[str, str] | None = None,
                  logger: logging.Logger = log) -> bytes:
    """The secret that signs links in outbox copies.

    ``SYNDICATE_SECRET`` when set (the links then work with ``syndicate serve``).
    Otherwise a local secret created once (``secrets.token_hex(32)``) and kept in the
    ledger's meta table, so the outbox works out of the box and its sample links stay
    stable from one edition to the next; the log says that ``serve`` (and the smtp
    channel) will need ``SYNDICATE_SECRET``, under which these sample links are invalid.
    """
    secret = secret_from_env(required=False, environ=environ)
    if secret is not None:
        return secret
    local = ledger.get_meta(LOCAL_SECRET_KEY)
    if not local:
        local = secrets.token_hex(32)
        ledger.set_meta(LOCAL_SECRET_KEY, local)
    logger.warning(
        "%s is not set: outbox unsubscribe links are signed with a local secret kept in "
        "the ledger; `syndicate serve` and real sending need %s (links signed with the "
        "local secret will not work there)", SECRET_ENV, SECRET_ENV,
    )
    return local.encode("ascii")


__all__ = [
    "BOUNCE",
    "CLICK",
    "CONFIRM",
    "OPEN",
    "SECRET_ENV",
    "UNSUBSCRIBE",
    "TrackToken",
    "link_digest",
    "make_token",
    "make_track_token",
    "make_verp_token",
    "outbox_secret",
    "secret_from_env",
    "verify_token",
    "verify_track_token",
    "verify_verp_token",
    "verp_address",
    "verp_token_in",
]
