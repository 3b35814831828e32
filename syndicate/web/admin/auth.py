"""Who may use the console: argon2id passwords, signed session cookies, CSRF tokens,
rate-limited sign-in. Pure functions and small objects; the routes are in :mod:`.console`.

Sessions are **signed cookies** (itsdangerous, the signer Flask itself uses), keyed by a
key derived from ``SYNDICATE_SECRET``: every ``serve`` instance holding the secret accepts
them, and nothing is stored per sign-in. The cookie holds the operator's name, a random
session id, the session's CSRF token, when it was issued and a fingerprint of the
operator's password hash (changing the password in the config ends every session of
that operator). Signing out records the session id as revoked in the ledger's rate-limit
counters (:mod:`syndicate.web.throttle`'s storage) until the session would have expired,
so a copy of the cookie is refused by every instance too.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from limits import RateLimitItem, parse_many
from limits.strategies import FixedWindowRateLimiter

from ...config import AdminConfig
from ...ledger import RateLimitCounters
from ..throttle import LedgerStorage

#: The shortest password ``syndicate admin passwd`` accepts.
MIN_PASSWORD = 12
COOKIE = "syndicate_admin"

_HASHER = PasswordHasher()  # argon2id, the library's current recommended parameters
#: Verified when the operator name is unknown, so that an unknown name takes as long
#: to refuse as a wrong password (no enumeration of operator names by timing).
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(operators: dict[str, str], name: str, password: str) -> bool:
    """Whether ``password`` is ``name``'s; the same argon2 work whether or not ``name``
    exists."""
    digest = operators.get(name)
    try:
        return _HASHER.verify(digest or _DUMMY_HASH, password) and digest is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def derive_key(secret: bytes, purpose: str) -> bytes:
    return hmac.new(secret, f"syndicate/admin/{purpose}".encode(), hashlib.sha256).digest()


def fingerprint(digest: str) -> str:
    return hashlib.sha256(digest.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Session:
    operator: str
    sid: str
    csrf: str
    issued: int


class Sessions:
    """Issue and check session cookies (see the module's docstring)."""

    def __init__(self, settings: AdminConfig, secret: bytes, revocations: RateLimitCounters,
                 clock: Any) -> None:
        self._settings = settings
        self._signer = URLSafeTimedSerializer(derive_key(secret, "session"),
                                              salt="syndicate-admin-session")
        self._revocations = revocations
        self._clock = clock  # () -> Unix time, the app's clock

    @property
    def lifetime(self) -> int:
        return self._settings.session_lifetime

    def issue(self, operator: str) -> tuple[Session, str]:
        session = Session(operator, secrets.token_urlsafe(16), secrets.token_urlsafe(24),
                          int(self._clock()))
        value = self._signer.dumps({
            "o": operator, "s": session.sid, "c": session.csrf, "t": session.issued,
            "p": fingerprint(self._settings.operators[operator]),
        })
        return session, value

    def check(self, cookie: str | None) -> Session | None:
        """The session ``cookie`` proves, or None (absent, forged, expired, revoked, or
        issued before the operator's password last changed, or for a removed operator)."""
        if not cookie or len(cookie) > 1000:
            return None
        try:
            data = self._signer.loads(cookie)
        except BadSignature:
            return None
        if not isinstance(data, dict):
            return None
        try:
            session = Session(str(data["o"]), str(data["s"]), str(data["c"]), int(data["t"]))
            print_ = str(data["p"])
        except (KeyError, TypeError, ValueError):
            return None
        age = self._clock() - session.issued
        if age < -60 or age > self.lifetime:  # the app's clock, not the signer's
            return None
        digest = self._settings.operators.get(session.operator)
        if digest is None or not hmac.compare_digest(print_, fingerprint(digest)):
            return None
        if self._revocations.limit_get(self._revoked_key(session.sid)) > 0:
            return None
        return session

    def revoke(self, session: Session) -> None:
        left = session.issued + self.lifetime - self._clock()
        if left > 0:
            self._revocations.limit_incr(self._revoked_key(session.sid), left + 60)

    @staticmethod
    def _revoked_key(sid: str) -> str:
        return f"admin-revoked/{hashlib.sha256(sid.encode()).hexdigest()[:32]}"


def csrf_ok(session: Session, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(session.csrf.encode(), (sent or "").encode())


class LoginLimits:
    """Sign-in attempts per client and per operator name, counted in the ledger
    (``limits``' fixed windows over :class:`~syndicate.web.throttle.LedgerStorage`)."""

    def __init__(self, settings: AdminConfig, counters: RateLimitCounters,
                 secret: bytes) -> None:
        self._limiter = FixedWindowRateLimiter(LedgerStorage(counters))
        self._key = derive_key(secret, "login-limits")
        self._rules: dict[str, list[RateLimitItem]] = {
            "ip": parse_many(settings.login_limit_per_ip),
            "operator": parse_many(settings.login_limit_per_operator),
        }

    def _identifier(self, scope: str, value: str) -> str:
        return hmac.new(self._key, f"{scope}\n{value}".encode(), hashlib.sha256).hexdigest()[:32]

    def consume(self, client: str, operator: str) -> str | None:
        """Count one attempt; the scope whose limit it exceeds, or None."""
        for scope, value in (("ip", client), ("operator", operator.casefold()[:64])):
            identifier = self._identifier(scope, value)
            for item in self._rules[scope]:
                if not self._limiter.hit(item, "admin-login", scope, identifier):
                    return scope
        return None
