"""The bounce mailbox: a Maildir folder, or an IMAP folder (:mod:`.imap`), the bounce
address is delivered to. Both are a :class:`Source`; only the storage differs.

:func:`process_source` reads every message once (at most ``max_per_pass``), records what it says
(:func:`~.events.record_event`, or an unsubscribe for a List-Unsubscribe mailto),
then moves it to the ``processed`` folder; a message that cannot be used
(unreadable, too large, not a report, attributed to nobody, a forged token) goes to
``unparsed`` with one log line. A message leaves the inbox only after its outcome is
recorded: the copy into the folder is made before the original is removed, so a
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
from typing import Protocol

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


@dataclass
class Summary:
    """What one pass over the mailbox did."""

    counts: Counter[str] = field(default_factory=Counter)
    lost: str = ""  # why the pass ended early (the connection dropped), or ""

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def line(self) -> str:
        order = ("hard", "soft", "complaint", "unsubscribe", "duplicate", "unparsed")
        parts = [f"{self.counts[k]} {k}" for k in order if self.counts[k]]
        return (f"bounces: {self.total} message(s)" + (": " + ", ".join(parts) if parts else ""))


def policy_of(settings: BouncesConfig) -> BouncePolicy:
    return BouncePolicy(settings.soft_limit, timedelta(seconds=settings.soft_window))


class SourceLost(SyndicateError):
    """The mailbox went away mid-pass (a dropped connection): what was recorded stays
    recorded, the messages not yet filed stay in the inbox for the next pass."""


class Source(Protocol):
    """Where the reports are stored: only the storage differs between the Maildir and
    IMAP; :func:`process_source` does the rest, the same for both."""

    #: Shown in log lines ("/srv/bounces", "imaps://user@host:993/INBOX").
    name: str
    #: The ``source`` of the events recorded from it: "maildir", "imap".
    kind: str

    def keys(self, limit: int) -> list[str]:
        """The keys of (at most ``limit``) messages waiting in the inbox."""
        ...

    def read(self, key: str, limit: int) -> bytes | None:
        """The message's bytes; None when it is larger than ``limit`` bytes. Raises
        KeyError when it is gone meanwhile (taken by another pass)."""
        ...

    def file(self, key: str, folder: str) -> None:
        """Move the message to ``folder`` (:data:`PROCESSED` or :data:`UNPARSED`): a copy
        made before the original goes, never the other way round."""
        ...


class MaildirSource:
    """A Maildir folder; its subfolders ``.processed`` and ``.unparsed``."""

    def __init__(self, path: Path) -> None:
        if not (path / "cur").is_dir() or not (path / "new").is_dir():
            raise SyndicateError(f"{path} is not a Maildir folder (no cur/ and new/ in it)")
        self.name, self.kind = str(path), "maildir"
        self.box = mailbox.Maildir(path, factory=None, create=False)
        self.folders = {name: (self.box.get_folder(name) if name in self.box.list_folders()
                               else self.box.add_folder(name)) for name in (PROCESSED, UNPARSED)}

    def keys(self, limit: int) -> list[str]:
        return sorted(self.box.iterkeys())[:limit]

    def read(self, key: str, limit: int) -> bytes | None:
        try:
            with self.box.get_file(key) as handle:
                data = handle.read(limit + 1)
        except FileNotFoundError:
            raise KeyError(key) from None
        return None if len(data) > limit else bytes(data)

    def file(self, key: str, folder: str) -> None:
        with self.box.get_file(key) as handle:
            self.folders[folder].add(handle)  # copied (and closed) before the original goes
        self.box.discard(key)


def process_maildir(ledger: LedgerPort, settings: BouncesConfig, path: Path, secret: bytes,
                    *, logger: logging.Logger = log,
                    unsubscribed: Callable[[str], None] | None = None) -> Summary:
    """Process every message of the Maildir at ``path`` once (see the module doc)."""
    return process_source(ledger, settings, MaildirSource(path), secret, logger=logger,
                          unsubscribed=unsubscribed)


def process_source(ledger: LedgerPort, settings: BouncesConfig, source: Source, secret: bytes,
                   *, logger: logging.Logger = log,
                   unsubscribed: Callable[[str], None] | None = None) -> Summary:
    """Process (at most ``settings.max_per_pass``) messages of ``source`` once: record
    each one's outcome, then file it. A :class:`SourceLost` mid-pass is one log line and
    ends the pass (``summary.lost`` says why); a ledger error propagates."""
    policy = policy_of(settings)
    summary = Summary()
    limit = settings.max_per_pass
    try:
        keys = source.keys(limit + 1)
        for n, key in enumerate(keys):
            if n >= limit:
                logger.warning("bounces: %d messages handled, the rest wait for the next pass",
                               n)
                break
            try:
                raw = source.read(key, settings.max_size)
            except KeyError:
                continue  # taken meanwhile by another pass
            outcome, problem = process_message(raw, ledger, settings, secret, policy,
                                               unsubscribed, source=source.kind)
            if problem:
                logger.warning("bounces: %s: %s (moved to %s)", key, problem, UNPARSED)
            summary.counts[outcome] += 1
            source.file(key, UNPARSED if outcome == "unparsed" else PROCESSED)
    except SourceLost as exc:
        summary.lost = str(exc)
        logger.error("bounces: %s; %d message(s) handled, the rest stay in the inbox for "
                     "the next pass", exc, summary.total)
    return summary


def process_message(raw: bytes | None, ledger: LedgerPort, settings: BouncesConfig,
                    secret: bytes, policy: BouncePolicy,
                    unsubscribed: Callable[[str], None] | None,
                    *, source: str = "maildir") -> tuple[str, str]:
    """``(outcome, problem)`` of one message, its outcome recorded; the problem is
    logged by the caller. Every source calls this."""
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
    found = attribute(report, ledger, secret, settings, source=source)
    if not found.events:
        return "unparsed", found.problem
    outcome = "duplicate"
    for event in found.events:
        done = record_event(ledger, event, policy)
        if done.new:
            outcome = event.kind
    return outcome, ""


__all__ = ["PROCESSED", "UNPARSED", "MaildirSource", "Source", "SourceLost", "Summary",
           "policy_of", "process_maildir", "process_message", "process_source"]
