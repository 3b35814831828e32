"""Delivery to a Maildir folder: the ``outbox`` channel and the confirmation emails'
fallback when no smtp channel is configured.

A Maildir is what any mail client reads (``mutt -f var/outbox``): each message
is written to ``tmp/`` then renamed into ``new/`` (the standard library's
:class:`mailbox.Maildir` does both), so a reader never sees half a message.
"""

from __future__ import annotations

import mailbox
from pathlib import Path

__all__ = ["MaildirWriter"]


class MaildirWriter:
    """Messages written to the Maildir ``folder`` (created when missing).

    :meth:`open` creates the folder now (a writer held for many messages fails
    before the first one); :meth:`add` opens it on first use. Both raise
    ``OSError`` when the folder cannot be created or written.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._box: mailbox.Maildir | None = None

    def open(self) -> MaildirWriter:
        # Maildir(create=True) makes the folder, not its parents: with a ledger that is
        # no file (PostgreSQL) nothing else creates ../var before the outbox writes there.
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        self._box = mailbox.Maildir(self.folder, create=True)
        return self

    def add(self, message: bytes) -> str:
        """Write ``message`` (the serialised email, CRLF); return its key in the folder."""
        if self._box is None:
            self.open()
        assert self._box is not None
        return self._box.add(message)
