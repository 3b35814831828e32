"""Checks on a posted subscribe form: where it comes from and when it was served.

- :func:`cross_site`: a browser says where a request comes from (``Sec-Fetch-Site``,
  ``Origin``); a form posted from another site is refused. ``Origin: null`` is what
  Chromium sends for our own no-referrer pages: accepted only with
  ``Sec-Fetch-Site: same-origin``. Clients that send
  neither header (curl, old browsers) are not refused here: the form token is
  their check.
- :func:`form_token` / :func:`check_form_token`: the form carries a token signed
  with the app's secret (HMAC-SHA256) holding the time it was served. A token
  younger than ``form_min_age`` (a bot posting at once), older than
  ``form_max_age``, forged or missing is refused. Stateless: nothing is stored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from typing import Literal
from urllib.parse import urlsplit

FormVerdict = Literal["ok", "missing", "invalid", "young", "old"]

_PURPOSE = b"syndicate/subscribe-form\n"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str | None:
    """``scheme://host:port`` of ``url`` (the default port made explicit), or None."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname or port is None:
        return None
    return f"{parts.scheme.lower()}://{parts.hostname.lower()}:{port}"


def cross_site(sec_fetch_site: str | None, origin: str | None, base_url: str) -> bool:
    """Whether a browser tells us the request comes from another site: ``Sec-Fetch-Site:
    cross-site``, or an ``Origin`` header (``null`` included) that is not ``base_url``'s."""
    fetch_site = (sec_fetch_site or "").strip().lower()
    if fetch_site == "cross-site":
        return True
    if fetch_site == "same-origin" and (origin or "").strip() == "null":
        # A page served with "Referrer-Policy: no-referrer" (ours are) makes Chromium post
        # its own forms with "Origin: null"; Sec-Fetch-Site still says where it came from.
        return False
    return origin is not None and origin_of(origin) != origin_of(base_url)


def _sign(secret: bytes, payload: str) -> str:
    digest = hmac.new(secret, _PURPOSE + payload.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def form_token(secret: bytes, issued: float) -> str:
    """``<issued>.<nonce>.<signature>``: the token the form served at ``issued`` carries."""
    payload = f"{int(issued)}.{secrets.token_urlsafe(6)}"
    return f"{payload}.{_sign(secret, payload)}"


def check_form_token(secret: bytes, token: str, now: float, *, min_age: float,
                     max_age: float) -> FormVerdict:
    if not token:
        return "missing"
    payload, _, signature = token.rpartition(".")
    if len(token) > 200 or not payload:
        return "invalid"
    try:
        valid = hmac.compare_digest(signature.encode("ascii"),
                                    _sign(secret, payload).encode("ascii"))
        issued = int(payload.split(".", 1)[0])
    except (UnicodeEncodeError, ValueError, binascii.Error):
        return "invalid"
    if not valid:
        return "invalid"
    age = now - issued
    if age < min_age:
        return "young"
    if age > max_age:
        return "old"
    return "ok"
