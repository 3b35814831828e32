"""The bounce mailbox over IMAP (TLS from the first byte, port 993): stdlib ``imaplib``.

:class:`ImapSource` is a :class:`~.mailbox.Source`: :func:`~.mailbox.process_source`
does the same with it as with a Maildir. Messages are addressed by UID (stable across
sessions, unlike sequence numbers). Filing a message is ``UID MOVE`` when the server
announces MOVE (RFC 6851: atomic), else ``UID COPY`` to the folder and only then
``\\Deleted`` + expunge, so a message is never deleted before its copy exists and its
outcome is recorded. A connection that drops between recording and filing leaves the
message in the inbox: the next pass records it again, a duplicate (event ids are
unique), never a loss.

Every failure is one :class:`~syndicate.errors.SyndicateError` line naming host and
user: the login refused, the certificate not trusted, the connection lost
(:class:`~.mailbox.SourceLost`, which ends the pass without losing anything).
"""

from __future__ import annotations

import imaplib
import os
import re
import ssl
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from ..config import BouncesConfig
from ..errors import SyndicateError
from .mailbox import PROCESSED, UNPARSED, SourceLost

_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


class ImapSource:
    """One IMAP session on ``settings.imap_folder``; a context manager (logs out)."""

    def __init__(self, settings: BouncesConfig, *, ca_file: Path | None = None,
                 environ: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.host, self.port, self.user = (settings.imap_host, settings.imap_port,
                                           settings.imap_user)
        self.folder = settings.imap_folder
        self.kind = "imap"
        self.name = f"imaps://{self.user}@{self.host}:{self.port}/{self.folder}"
        env = os.environ if environ is None else environ
        password = env.get(settings.imap_password_env, "")
        if not password:
            raise SyndicateError(
                f"[bounces] imap_password_env = {settings.imap_password_env!r}: the "
                f"environment variable {settings.imap_password_env} is not set (the IMAP "
                "password is read from it, never the file)")
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        where = f"IMAP {self.host}:{self.port} (user {self.user})"
        try:
            self.imap = imaplib.IMAP4_SSL(self.host, self.port, ssl_context=context,
                                          timeout=settings.imap_timeout)
        except ssl.SSLCertVerificationError as exc:
            raise SyndicateError(f"{where}: TLS certificate not trusted: "
                                 f"{exc.verify_message} (set [bounces] imap_ca_file for a "
                                 "private CA)") from None
        except (OSError, imaplib.IMAP4.error) as exc:
            raise SyndicateError(f"{where}: cannot connect: {_why(exc)}") from None
        try:
            try:
                self.imap.login(self.user, password)
            except imaplib.IMAP4.abort as exc:
                raise SyndicateError(f"{where}: connection lost at login: {_why(exc)}") from None
            except imaplib.IMAP4.error as exc:
                raise SyndicateError(f"{where}: login refused: {_why(exc)}") from None
            self._call(f"{where}: cannot open folder {self.folder!r}",
                       lambda: self.imap.select(_quote(self.folder)))
            # Servers announce more once logged in (imaplib keeps the greeting's list).
            data = self._call("CAPABILITY", self.imap.capability)
            caps = set(b" ".join(d for d in data if isinstance(d, bytes)).upper().split())
            self.move, self.uidplus = b"MOVE" in caps, b"UIDPLUS" in caps
            for name in (PROCESSED, UNPARSED):
                self._ensure(name)
        except BaseException:
            self.close()
            raise

    # -- the Source protocol ------------------------------------------------------
    def keys(self, limit: int) -> list[str]:
        data = self._call("UID SEARCH", lambda: self.imap.uid("SEARCH", "ALL"))
        uids = data[0].split() if data and isinstance(data[0], bytes) else []
        return [uid.decode() for uid in sorted(uids, key=int)[:limit]]

    def read(self, key: str, limit: int) -> bytes | None:
        data = self._call(f"UID FETCH {key} size",
                          lambda: self.imap.uid("FETCH", key, "(RFC822.SIZE)"))
        found = [_SIZE.search(d) for d in data if isinstance(d, bytes)]
        sizes = [int(m.group(1)) for m in found if m]
        if not sizes:
            raise KeyError(key)  # expunged meanwhile by another pass
        if sizes[0] > limit:
            return None
        data = self._call(f"UID FETCH {key}",
                          lambda: self.imap.uid("FETCH", key, "(BODY.PEEK[])"))
        for part in data:
            if isinstance(part, tuple) and len(part) == 2:
                return bytes(part[1])
        raise KeyError(key)

    def file(self, key: str, folder: str) -> None:
        target = _quote(folder)
        if self.move:
            self._call(f"UID MOVE {key}", lambda: self.imap.uid("MOVE", key, target))
            return
        self._call(f"UID COPY {key}", lambda: self.imap.uid("COPY", key, target))
        self._call(f"UID STORE {key}",
                   lambda: self.imap.uid("STORE", key, "+FLAGS.SILENT", "(\\Deleted)"))
        if self.uidplus:  # only this message, not one another client flagged
            self._call(f"UID EXPUNGE {key}", lambda: self.imap.uid("EXPUNGE", key))
        else:
            self._call("EXPUNGE", self.imap.expunge)

    # -- plumbing -----------------------------------------------------------------
    def _ensure(self, name: str) -> None:
        listed = self._call(f"LIST {name!r}", lambda: self.imap.list('""', _quote(name)))
        if not any(isinstance(line, bytes) and line for line in listed):
            self._call(f"cannot create folder {name!r}", lambda: self.imap.create(_quote(name)))

    def _raw(self, command: Callable[[], tuple[str, list[Any] | None]]
             ) -> tuple[str, list[Any]]:
        """Run ``command``: a dropped connection or a timeout is :class:`SourceLost`, a
        refusal (BAD) one :class:`SyndicateError` line."""
        try:
            status, data = command()
        except (imaplib.IMAP4.abort, OSError) as exc:  # socket.timeout is an OSError
            raise SourceLost(f"IMAP {self.host}:{self.port} (user {self.user}): connection "
                             f"lost: {_why(exc)}") from None
        except imaplib.IMAP4.error as exc:
            raise SyndicateError(f"IMAP {self.host}:{self.port} (user {self.user}): "
                                 f"{_why(exc)}") from None
        return str(status), list(data or [])

    def _call(self, what: str, command: Callable[[], tuple[str, list[Any] | None]]
              ) -> list[Any]:
        status, data = self._raw(command)
        if status != "OK":
            detail = b" ".join(d for d in data if isinstance(d, bytes)).decode(
                "utf-8", "replace")
            raise SyndicateError(f"IMAP {self.host}:{self.port} (user {self.user}): {what}: "
                                 f"{status} {detail}".rstrip())
        return data

    def close(self) -> None:
        try:
            if self.imap.state == "SELECTED":
                self.imap.close()
            self.imap.logout()
        except (imaplib.IMAP4.error, OSError):
            pass  # already gone: nothing of ours is pending on the server

    def __enter__(self) -> ImapSource:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _why(exc: BaseException) -> str:
    text = str(exc.args[0] if exc.args else exc)
    if text.startswith("b'") or text.startswith('b"'):
        text = text[2:-1]
    return text or type(exc).__name__


__all__ = ["ImapSource"]
