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
    "CONFIRM", "SECRET_ENV", "UNSUBSCRIBE", "make_token", "outbox_secret", "secret_from_env",
    "verify_token",
]
