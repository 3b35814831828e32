"""Rate limits of the subscribe form: per client, mailbox, recipient domain and in all.

The counting is the ``limits`` library's fixed-window strategy over a storage
backed by the ledger (:class:`LedgerStorage`, counters in the ``rate_limits``
table), so every ``serve`` process, and a restarted one, shares the counts. The
limits themselves are the ``[subscribe]`` section of the config.

Identifiers are never stored as such: each is an HMAC with the app's secret, so
the table holds no address or IP. Pure key functions first, then the storage,
then :class:`SubscribeLimits`, which the subscribe route asks.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

from limits import RateLimitItem, parse_many
from limits.storage import Storage
from limits.strategies import FixedWindowRateLimiter

from ..config import SubscribeConfig
from ..errors import LedgerError
from ..ledger import RateLimitCounters

#: Which limits, in the order they are consumed (see :meth:`SubscribeLimits.consume`).
SCOPES = ("ip", "mailbox", "domain", "global")


def mailbox_key(address: str) -> str:
    """The mailbox ``address`` delivers to, for counting: the local part without its
    ``+tag`` and everything case folded (``V+1@X.org`` and ``v+2@x.org`` are one)."""
    local, _, domain = address.rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}".casefold()


def domain_key(address: str) -> str:
    return address.rpartition("@")[2].casefold()


def client_key(remote_addr: str | None) -> str:
    """The client to count: the IPv4 address, or the /64 network of an IPv6 one
    (one host usually holds a whole /64, and could rotate through it)."""
    text = (remote_addr or "").strip()
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return text or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def redact(address: str) -> str:
    """``m***@example.org``: enough for the operator's log, not the address itself."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}"


class LedgerStorage(Storage):
    """A ``limits`` storage whose counters are ledger rows (fixed windows only: the
    moving-window strategies would need a row per request)."""

    STORAGE_SCHEME = None  # not reachable by URI: built around a Ledger object

    def __init__(self, ledger: RateLimitCounters) -> None:
        super().__init__()
        self.ledger = ledger

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return LedgerError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return self.ledger.limit_incr(key, expiry, amount)

    def get(self, key: str) -> int:
        return self.ledger.limit_get(key)

    def get_expiry(self, key: str) -> float:
        return self.ledger.limit_expiry(key)

    def check(self) -> bool:
        try:
            self.ledger.limit_get("check")
        except LedgerError:
            return False
        return True

    def reset(self) -> int | None:
        return self.ledger.limit_reset()

    def clear(self, key: str) -> None:
        self.ledger.limit_clear(key)


class SubscribeLimits:
    """The four limits of ``[subscribe]``, counted in the ledger."""

    def __init__(self, settings: SubscribeConfig, ledger: RateLimitCounters, secret: bytes) -> None:
        self._limiter = FixedWindowRateLimiter(LedgerStorage(ledger))
        self._secret = secret
        self._rules: dict[str, list[RateLimitItem]] = {
            "ip": parse_many(settings.limit_per_ip),
            "mailbox": parse_many(settings.limit_per_mailbox),
            "domain": parse_many(settings.limit_per_domain),
            "global": parse_many(settings.limit_global),
        }

    def _identifier(self, scope: str, value: str) -> str:
        digest = hmac.new(self._secret, f"rate-limit/{scope}\n{value}".encode(), hashlib.sha256)
        return digest.hexdigest()[:32]

    def consume(self, client: str, address: str) -> str | None:
        """Count one request from ``client`` for ``address``; the scope whose limit it
        exceeds (``"ip"``, ``"mailbox"``, ``"domain"``, ``"global"``), or None.

        The scopes are counted from the narrowest to the widest and the counting
        stops at the first refusal: a flood refused per client does not use up the
        mailbox, domain and global budgets of everyone else.
        """
        values = {"ip": client, "mailbox": mailbox_key(address),
                  "domain": domain_key(address), "global": "*"}
        for scope in SCOPES:
            identifier = self._identifier(scope, values[scope])
            for item in self._rules[scope]:
                if not self._limiter.hit(item, "subscribe", scope, identifier):
                    return scope
        return None
