"""The one place a ledger is opened: :func:`open_ledger`, from a path or a URL.

Everything outside this package gets its ledger from here (the commands through
``syndicate.app.App.open_ledger``), typed as :class:`~._port.LedgerPort`. Adding a
storage (the next one is PostgreSQL) is a module in this package, its scheme in
:data:`._url.SCHEMES` and one branch in each function below; nothing else changes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

from ..clock import utcnow
from ._ledger import SqliteLedger
from ._url import parse_ledger_url

if TYPE_CHECKING:  # the Protocols (a dozen classes) are for the type checker only
    from ._port import LedgerPort, LedgerSource


def open_ledger(
    location: str | os.PathLike[str],
    *,
    now: Callable[[], datetime] = utcnow,
    timeout: float = 10.0,
) -> LedgerPort:
    """Open (creating and migrating it if needed) the ledger at ``location``: a file path,
    ``sqlite:///relative/path`` or ``sqlite:////absolute/path``.

    ``postgresql://user@host:port/database`` opens a PostgreSQL ledger
    (:mod:`._postgres`; its password from the variable named by ``?password_env=``, else
    libpq's ``PGPASSWORD`` / ``~/.pgpass``); a server it cannot reach is one
    ``LedgerError`` line naming host and database.

    ``now`` is the ledger's clock; ``timeout`` how long a write waits for another
    process's write lock (and, for PostgreSQL, for a connection). Raises
    :class:`~syndicate.errors.LedgerURLError` for a location it cannot open (one line
    naming the scheme) and :class:`~syndicate.errors.LedgerError` for a database it
    cannot use. Close it, or use it as a context manager.
    """
    where = parse_ledger_url(location)
    if where.scheme == "postgresql":
        from ._postgres import PostgresLedger  # psycopg: loaded for PostgreSQL only

        return PostgresLedger(where, now=now, timeout=timeout)
    assert where.scheme == "sqlite" and where.path is not None
    return SqliteLedger(where.path, now=now, timeout=timeout)


def ledger_exists(location: str | os.PathLike[str]) -> bool:
    """Whether a ledger was ever created at ``location``, without creating one: the
    commands that only read (``schedule``, ``corpus check``) skip a ledger not yet there."""
    where = parse_ledger_url(location)
    if where.scheme == "postgresql":  # the database must exist; the ledger is its schema
        from ._postgres import exists

        return exists(where)
    assert where.scheme == "sqlite" and where.path is not None
    return where.path.exists()


@contextmanager
def using_ledger(
    source: LedgerSource | None,
    location: str | os.PathLike[str],
    *,
    now: Callable[[], datetime] = utcnow,
) -> Iterator[LedgerPort]:
    """The ledger a library call works on: ``source`` when it is an open ledger (not closed
    here), else the one ``source()`` returns, else :func:`open_ledger` of ``location``
    (both closed on exit). ``pipeline.publish(config, ledger=app.open_ledger)`` and the
    like open their ledger this way, so the caller decides which one without having to."""
    if source is not None and not callable(source):
        yield source
        return
    opened = source() if source is not None else open_ledger(location, now=now)
    with opened as ledger:
        yield ledger


__all__ = ["ledger_exists", "open_ledger", "using_ledger"]
