"""The Ledger's plumbing: one SQLite connection, its lock, transactions and paging.

:class:`LedgerConnection` is the base of :class:`~._ledger.Ledger` and of the
method groups it is made of (:mod:`._deliveries`, :mod:`._subscribers`); the
threading and durability rules it implements are described on ``Ledger``.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any, Self

from ..errors import LedgerError, LedgerWriteError
from . import _schema
from ._records import to_db, utcnow

DEFAULT_PATH = Path("var/syndicate.db")
CHUNK = 1000  # rows per keyset page / executemany batch: memory stays flat
PROBE_GAP = 1 << 20  # how far past the ledger's largest file the write probe writes


def is_write_failure(exc: sqlite3.Error) -> bool:
    """Whether SQLite failed to write the file (disk full, file size limit, I/O error)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    return name == "SQLITE_FULL" or (name.startswith("SQLITE_IOERR") and "READ" not in name)


def _describe(exc: OSError) -> str:
    code = errno.errorcode.get(exc.errno or 0, "")
    return f"{exc.strerror or exc}" + (f" ({code})" if code else "")


def os_write_error(path: Path) -> str:
    """The operating system's error behind a failed ledger write, found by a probe.

    SQLite reports "disk I/O error" or "database or disk is full", never the errno.
    The probe repeats the kind of write that failed, harmlessly: one byte, in a
    sparse temporary file beside the ledger, at an offset past its largest file
    (the database, its WAL or journal). A full disk or quota refuses the block
    (ENOSPC, EDQUOT), a file size limit (``ulimit -f``) the offset (EFBIG).
    """
    sizes = []
    for name in (path.name, path.name + "-wal", path.name + "-journal"):
        with suppress(OSError):
            sizes.append((path.parent / name).stat().st_size)
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.probe-", dir=path.parent)
    except OSError as exc:
        return _describe(exc)
    try:
        os.pwrite(fd, b"\0", max(sizes, default=0) + PROBE_GAP)
        os.fsync(fd)
    except OSError as exc:
        return _describe(exc)
    finally:
        os.close(fd)
        with suppress(OSError):
            os.unlink(probe)
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError as exc:
        return _describe(exc)
    return f"I/O error ({free // 1024} KiB free on its file system)"


def translate(path: Path, exc: sqlite3.Error) -> LedgerError:
    """The ledger error for ``exc``: a :class:`LedgerWriteError` for a failed write."""
    if is_write_failure(exc):
        return LedgerWriteError(path, os_write_error(path), f"sqlite: {exc}")
    return LedgerError(f"ledger {path}: {exc}")


class LedgerConnection:
    """One SQLite connection, shared by threads under one lock (see ``Ledger``)."""

    def __init__(
        self,
        path: Path | str = DEFAULT_PATH,
        *,
        now: Callable[[], datetime] = utcnow,
        timeout: float = 10.0,
    ) -> None:
        self.path = Path(path)
        self._now = now
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerError(f"cannot create the folder of ledger {self.path}: {exc}") from exc
        self._conn: sqlite3.Connection | None = _schema.connect(self.path, timeout=timeout)
        try:
            _schema.migrate(self._conn, self.path)
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _stamp(self) -> str:
        return to_db(self._now())

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise LedgerError(f"ledger {self.path} is closed")
        return self._conn

    @contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise translate(self.path, exc) from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: the write lock is taken up front,
        so the reads inside it see the state the writes will commit against."""
        with self._lock:
            conn = self._db
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    # Also after a failed COMMIT (disk full): the next BEGIN must not find
                    # a transaction still open. A failing ROLLBACK must not hide the cause.
                    if conn.in_transaction:
                        with suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                    raise
            except sqlite3.IntegrityError:
                raise  # callers translate the constraint they expect
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    raise LedgerError(
                        f"ledger {self.path} is busy: another process held its write lock "
                        f"too long ({exc})"
                    ) from exc
                raise translate(self.path, exc) from exc
            except sqlite3.Error as exc:
                raise translate(self.path, exc) from exc

    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        with self._locked() as conn:
            row: tuple[Any, ...] | None = conn.execute(sql, params).fetchone()
            return row

    def _pages(self, sql: str, params: tuple[Any, ...], chunk: int) -> Iterator[tuple[Any, ...]]:
        """Keyset pagination: ``sql`` ends with ``id > ? ORDER BY id LIMIT ?``.

        Each page is fetched whole under the lock and the cursor closed before
        rows are yielded, so no read cursor stays open while the caller writes
        (or another thread does), and memory is one page, whatever the total.
        """
        last = 0
        while True:
            with self._locked() as conn:
                rows = conn.execute(sql, (*params, last, chunk)).fetchall()
            yield from rows
            if len(rows) < chunk:
                return
            last = rows[-1][0]
