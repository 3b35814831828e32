"""The transport's pure decisions: what a failure means, how long to wait, how fast to go.

- :func:`classify` turns an smtplib exception into a :class:`Failure`: temporary
  (4xx, a dropped connection, a timeout: retry on a fresh connection) or
  permanent (5xx), and whether it is a bounce (the mailbox does not exist);
- :func:`backoff_delay` is THE wait between two attempts, for every sender that
  retries (the smtp and webhook channels, the confirmation emails): one formula,
  each caller passing its own settings;
- :class:`RateLimiter` spaces sends evenly over all sender threads.

No sockets here: :mod:`.smtp` and the channels do the sending and apply these.
"""

from __future__ import annotations

import re
import smtplib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "REPLY_EXCERPT", "Failure", "RateLimiter", "backoff_delay", "classify", "is_no_such_user",
    "reconnect_delay", "reply_text",
]

REPLY_EXCERPT = 300  # characters of a server answer kept in the ledger
_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
# 5.1.x codes that say the mailbox or its domain does not exist (RFC 3463, RFC 7505).
_NO_SUCH_USER = {"1", "2", "3", "6", "10"}


@dataclass(frozen=True)
class Failure:
    """A failed attempt, as the ledger records it."""

    code: int | None
    message: str
    temporary: bool
    bounce: bool = False  # the address does not exist: stop mailing it

    @property
    def reconnect(self) -> bool:
        """Whether the connection should be thrown away (it may be in an unknown state)."""
        return self.temporary or self.code is None


def is_no_such_user(code: int | None, text: str) -> bool:
    """A permanent "mailbox does not exist" answer (550/551/553 or enhanced 5.1.x)."""
    match = _ENHANCED.search(text)
    if match:
        return match.group(1) == "5" and match.group(2) == "1" and match.group(3) in _NO_SUCH_USER
    return code in (550, 551, 553)


def reply_text(reply: bytes | str) -> str:
    """A server answer on one line, cut to what the ledger keeps."""
    raw = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(raw.split())[:REPLY_EXCERPT]


def classify(exc: BaseException) -> Failure:
    """What a failed send means: temporary (retry on a fresh connection) or permanent."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(exc.recipients.values()))
        text = reply_text(reply)
        permanent = 500 <= code < 600
        return Failure(code, text, not permanent, permanent and is_no_such_user(code, text))
    if isinstance(exc, smtplib.SMTPResponseException):
        # Sender refused, DATA refused, a 421 "closing" at any step...
        code, text = exc.smtp_code, reply_text(exc.smtp_error)
        permanent = 500 <= code < 600
        # At DATA only an explicit enhanced 5.1.x says the address is wrong: a bare
        # 550 there is usually about the content (spam, size), not the mailbox.
        bounce = (permanent and isinstance(exc, smtplib.SMTPDataError)
                  and _ENHANCED.search(text) is not None and is_no_such_user(code, text))
        return Failure(code, text, not permanent, bounce)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return Failure(None, reply_text(str(exc)), temporary=False)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        reason = reply_text(str(exc)) or "no reason given"
        return Failure(None, f"connection dropped: {reason}", True)
    if isinstance(exc, TimeoutError):
        return Failure(None, f"timed out: {reply_text(str(exc)) or 'no answer'}", True)
    if isinstance(exc, OSError | smtplib.SMTPException):
        return Failure(None, f"{type(exc).__name__}: {reply_text(str(exc))}", True)
    raise exc


def backoff_delay(attempt: int, base: float, cap: float,
                  retry_after: float | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    ``base`` doubled at each further attempt (``base * 2**(attempt-1)``), or the
    server's own ``retry_after`` when it gave one (HTTP Retry-After); never more
    than ``cap``. No jitter: each caller retries one message or request at a
    time, which cannot stampede a server.
    """
    # The exponent is bounded: a loop that keeps counting attempts (an outage of hours)
    # must not overflow a float; 2**30 times any base is past every cap.
    doubled = base * 2 ** min(max(attempt - 1, 0), 30)
    delay = retry_after if retry_after is not None else doubled
    return min(cap, delay)


def reconnect_delay(attempt: int, poll: float) -> float:
    """Seconds before the ``attempt``-th try to open an unreachable ledger again (workers
    and daemons alike): 0.25 s doubling, at most ``max(poll, 10 s)`` — quick after a
    database restart, gentle on a long outage."""
    return float(backoff_delay(attempt, 0.25, max(poll, 10.0)))


class RateLimiter:
    """At most ``rate`` sends per second over all threads (0 = unlimited).

    Each caller reserves the next free slot under a lock, then sleeps outside
    it, so threads are spaced evenly instead of bursting.
    """

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.clock = clock
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self, stop: threading.Event) -> bool:
        """Block until the caller may send; False if ``stop`` was set meanwhile."""
        if not self.interval:
            return not stop.is_set()
        with self._lock:
            now = self.clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        delay = slot - now
        return not stop.wait(delay) if delay > 0 else not stop.is_set()
