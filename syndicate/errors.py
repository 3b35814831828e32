"""One exception tree for the whole package.

Every error carries enough context to be printed as one clear line by the CLI
(``str(error)``); callers that need more read the attributes.
"""

from __future__ import annotations

from pathlib import Path


class SyndicateError(Exception):
    """Base class of every error syndicate raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(SyndicateError):
    """The configuration file is missing, unreadable or invalid.

    ``problems`` holds every problem found (one line each), so ``config check``
    can print them all at once.
    """

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path = Path(path)
        self.problems = list(problems)
        head = f"{self.path}: invalid configuration"
        if len(self.problems) == 1:
            super().__init__(f"{self.problems[0]}")
        else:
            super().__init__(head + "\n" + "\n".join(f"  {p}" for p in self.problems))


class CorpusError(SyndicateError):
    """A corpus file cannot be read or is invalid; ``problems`` are ``file:line: what``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class CorpusChanged(CorpusError):
    """The corpus changed on disk since the operator looked at it: nothing was written."""


class IngestError(SyndicateError):
    """A scraped page cannot be read or split into articles."""

    def __init__(self, page: Path | str, message: str) -> None:
        self.page = Path(page)
        super().__init__(f"{self.page}: {message}")


class LedgerError(SyndicateError):
    """The ledger database cannot be opened, migrated or written."""


class LedgerUnavailable(LedgerError):
    """The ledger's server cannot be reached, or the connection to it died (a database
    server restarted, a network cut): nothing is wrong with the ledger itself, and the
    same call is worth trying again on a new connection, after a pause."""


class LedgerURLError(LedgerError):
    """A ledger location that cannot be opened: an unsupported scheme, a malformed URL.

    ``url`` is the location as written (password masked), ``reason`` what is wrong with
    it, so that the configuration can report it against its file and key.
    """

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"ledger URL {url!r}: {reason}")


class LedgerWriteError(LedgerError):
    """The ledger file cannot be written (disk full, file size limit, I/O error).

    Nothing recorded so far is lost and what is unrecorded stays pending: the
    edition is resumable once the ledger can be written again. ``os_error`` is
    the operating system's error when it could be determined.
    """

    def __init__(self, path: Path | str, os_error: str, detail: str) -> None:
        self.path = Path(path)
        self.os_error = os_error
        self.detail = detail
        super().__init__(f"cannot write to the ledger {self.path}: {os_error} ({detail})")


class SlotTaken(LedgerError):
    """An edition already exists for this slot (a retried or concurrent run)."""

    def __init__(self, slot: str, slug: str | None = None) -> None:
        self.slot = slot
        self.slug = slug
        extra = f" ({slug})" if slug else ""
        super().__init__(f"slot {slot} already has an edition{extra}")


class AlreadyPublished(LedgerError):
    """The case study was already published; a case study is never published twice."""

    def __init__(self, slug: str) -> None:
        self.slug = slug
        super().__init__(f"case study {slug!r} was already published")


class SubscriberExists(LedgerError):
    """The address is already a subscriber (whatever its status); ``subscriber`` is the row."""

    def __init__(self, email: str, subscriber: object = None) -> None:
        self.email = email
        self.subscriber = subscriber
        super().__init__(f"{email} is already a subscriber")


class InvalidAddress(SyndicateError):
    """An email address is not valid (checked without DNS)."""

    def __init__(self, address: str, reason: str) -> None:
        self.address = address
        self.reason = reason
        super().__init__(f"invalid email address {address!r}: {reason}")


class NothingToPublish(SyndicateError):
    """Every non-draft case study has been published."""


class RenderError(SyndicateError):
    """A template is missing or fails to render."""


class InvalidToken(SyndicateError):
    """A signed token (unsubscribe, confirmation) is malformed, forged or altered."""


class ExpiredToken(InvalidToken):
    """A signed token was genuine but is past its expiry time."""


class ChannelError(SyndicateError):
    """A channel failed; ``permanent`` says whether retrying may help."""

    def __init__(self, channel: str, message: str, *, permanent: bool = False) -> None:
        self.channel = channel
        self.permanent = permanent
        super().__init__(f"channel {channel}: {message}")


class SendError(ChannelError):
    """A message was not handed over by the transport (:mod:`syndicate.transport`).

    ``detail`` is the message without the ``channel <name>:`` prefix; ``code`` the
    server's reply code when it gave one (``550`` refusing a recipient, ``421``
    while connecting). ``recipient`` is set when the server answered about this
    message (refused the recipient or the content, dropped it mid-way); None when
    the server or the settings could not be used at all (connection refused, TLS,
    AUTH, a missing password or key file): then no message can go, not just this one.
    """

    def __init__(self, channel: str, detail: str, *, permanent: bool, code: int | None = None,
                 recipient: str | None = None) -> None:
        self.detail = detail
        self.code = code
        self.recipient = recipient
        super().__init__(channel, detail, permanent=permanent)


class PluginError(SyndicateError):
    """A channel type of the ``syndicate.channels`` entry points cannot be used (the
    message names the type, its ``module:Class`` and the package that declares it)."""


class LockedError(SyndicateError):
    """Another process holds the publisher lock on this ledger."""
