"""The publisher lock: one publisher per ledger (``syndicate run``, ``publish-next``).

An exclusive, non-blocking ``fcntl.flock`` on ``<database>.lock`` rather than a
row in the database, because the kernel releases a flock when its holder dies,
however it dies (SIGKILL, OOM killer, power cut of a container): there is no
stale lock to detect, no pid-liveness or heartbeat heuristics (pids get reused,
clocks jump), and taking it needs no write transaction on the ledger. The file
holds ``pid<TAB>owner<TAB>since`` for the error message only; it is never
unlinked (unlinking a flock'ed file lets a newcomer lock a fresh inode while the
old holder still believes it owns the lock). flock locks belong to an open file
description, so a second attempt from the same process (another Ledger object)
is refused too. Like SQLite's WAL itself, this assumes a local file system.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..errors import LockedError


@dataclass(frozen=True)
class LockHolder:
    pid: int | None
    owner: str
    since: str


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


def read_holder(path: Path) -> LockHolder | None:
    """Who the lock file says holds it (None if empty or unreadable)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    parts = text.rstrip("\n").split("\t")
    if len(parts) != 3:
        return None
    pid, owner, since = parts
    return LockHolder(int(pid) if pid.isdigit() else None, owner, since)


@contextmanager
def publisher_lock(database: Path, owner: str, now: datetime) -> Iterator[LockHolder]:
    path = lock_path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = read_holder(path)
            if holder is None:  # the holder is between flock and writing its name
                who = "another process"
            else:
                who = f"pid {holder.pid} ({holder.owner}, since {holder.since})"
            error = LockedError(
                f"ledger {database} is locked by {who}: another publisher is running on "
                f"this ledger; stop it first or wait for it (lock file {path})"
            )
            error.holder = holder  # type: ignore[attr-defined]
            error.lock_file = path  # type: ignore[attr-defined]
            raise error from None
        me = LockHolder(os.getpid(), owner.replace("\t", " ").replace("\n", " "),
                        now.isoformat(timespec="seconds"))
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{me.pid}\t{me.owner}\t{me.since}\n".encode(), 0)
        try:
            yield me
        finally:
            # Empty it first so the file never names a process that let go.
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
