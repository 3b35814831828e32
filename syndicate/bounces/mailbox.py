"""The bounce mailbox: a Maildir folder the bounce address is delivered to.

:func:`process_maildir` reads every message once, records what it says
(:func:`~.events.record_event`, or an unsubscribe for a List-Unsubscribe mailto),
then moves it to the ``.processed`` subfolder; a message that cannot be used
(unreadable, too large, not a report, attributed to nobody, a forged token) goes to
``.unparsed`` with one log line. A message leaves the inbox only after its outcome is
recorded: the copy into the subfolder is made before the original is removed, so a
crash in between leaves a duplicate, which the next pass records as such (event ids
are unique), never a loss. A ledger that cannot record stops the pass with the
remaining messages where they are.
"""

from __future__ import annotations

import logging
import mailbox
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from ..config import BouncesConfig
from ..errors import ExpiredToken, InvalidToken, SyndicateError
from ..ledger import LedgerPort
from ..tokens import UNSUBSCRIBE, verify_token
from .attribute import attribute
from .events import BouncePolicy, record_event
from .parse import parse_report

log = logging.getLogger("syndicate.bounces")

PROCESSED = "processed"
UNPARSED = "unparsed"
#: Bounded: one pass handles at most this many messages (the next pass the rest).
MAX_PER_PASS = 10_000


@dataclass
class Summary:
    """What one pass over the mailbox did."""

    counts: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def line(self) -> str:
        order = ("hard", "soft", "complaint", "unsubscribe", "duplicate", "unparsed")
        parts = [f"{self.counts[k]} {k}" for k in order if self.counts[k]]
        return (f"bounces: {self.total} message(s)" + (": " + ", ".join(parts) if parts else ""))


def policy_of(settings: BouncesConfig) -> BouncePolicy:
    return BouncePolicy(settings.soft_limit, timedelta(seconds=settings.soft_window))


def _read(box: mailbox.Maildir, key: str, limit: int) -> bytes | None:
    """The message's bytes, or None when it is larger than ``limit``."""
    with box.get_file(key) as handle:
        data = handle.read(limit + 1)
    return None if len(data) > limit else bytes(data)


def _move(box: mailbox.Maildir, key: str, folder: mailbox.Maildir) -> None:
    with box.get_file(key) as handle:
        folder.add(handle)  # copied (and closed) before the original goes
    box.discard(key)


def process_maildir(ledger: LedgerPort, settings: BouncesConfig, path: Path, secret: bytes,
                    *, logger: logging.Logger = log,
                    unsubscribed: Callable[[str], None] | None = None) -> Summary:
    """Process every message of the Maildir at ``path`` once (see the module doc)."""
    if not (path / "cur").is_dir() or not (path / "new").is_dir():
        raise SyndicateError(f"{path} is not a Maildir folder (no cur/ and new/ in it)")
    box = mailbox.Maildir(path, factory=None, create=False)
    folders = {name: (box.get_folder(name) if name in box.list_folders()
                      else box.add_folder(name)) for name in (PROCESSED, UNPARSED)}
    policy = policy_of(settings)
    summary = Summary()
    for n, key in enumerate(sorted(box.iterkeys())):
        if n >= MAX_PER_PASS:
            logger.warning("bounces: %d messages handled, the rest wait for the next pass", n)
            break
        try:
            raw = _read(box, key, settings.max_size)
        except (FileNotFoundError, KeyError):
            continue  # taken meanwhile by another pass
        outcome, problem = _handle(raw, ledger, settings, secret, policy, unsubscribed)
        if problem:
            logger.warning("bounces: %s: %s (moved to .%s)", key, problem, UNPARSED)
        summary.counts[outcome] += 1
        _move(box, key, folders[UNPARSED if outcome == "unparsed" else PROCESSED])
    return summary


def _handle(raw: bytes | None, ledger: LedgerPort, settings: BouncesConfig, secret: bytes,
            policy: BouncePolicy, unsubscribed: Callable[[str], None] | None
            ) -> tuple[str, str]:
    """``(outcome, problem)`` of one message; the problem is logged by the caller."""
    if raw is None:
        return "unparsed", f"larger than max_size ({settings.max_size} bytes): not read"
    report = parse_report(raw)
    if report.kind == "unsubscribe":
        try:
            address = verify_token(secret, UNSUBSCRIBE, report.unsubscribe_token)
        except ExpiredToken:
            return "unparsed", "expired unsubscribe token"
        except InvalidToken as exc:
            return "unparsed", f"unsubscribe mail: {exc}"
        current = ledger.get_subscriber(address)
        if current is not None and current.status in ("active", "pending"):
            ledger.set_subscriber_status(address, "unsubscribed")
            if unsubscribed is not None:
                unsubscribed(current.email)
        return "unsubscribe", ""
    if report.kind == "unknown":
        return "unparsed", report.problem
    found = attribute(report, ledger, secret, settings)
    if not found.events:
        return "unparsed", found.problem
    outcome = "duplicate"
    for event in found.events:
        done = record_event(ledger, event, policy)
        if done.new:
            outcome = event.kind
    return outcome, ""


__all__ = ["MAX_PER_PASS", "PROCESSED", "UNPARSED", "Summary", "policy_of", "process_maildir"]
