"""The query plumbing shared by the ledger mixins whose SQL is written once for both backends.

A mixin built on :class:`Queries` (delivery events, analytics) writes its statements with
``?`` placeholders and calls ``_q_one`` / ``_q_all`` / ``_q_exec``, and stores times through
``_q_when`` / ``_q_now``; :class:`SqliteQueries` and :class:`~._pg_queries.PgQueries` run
them on their connection (PostgreSQL with ``%s`` and its own time type). One place per
backend, so a new mixin adds statements and nothing else. The PostgreSQL side lives in
:mod:`._pg_queries`: opening a SQLite ledger imports no PostgreSQL code.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ._connection import LedgerConnection
from ._records import to_db


class Queries:
    """What each backend provides (its connection plumbing, placeholders and time type)."""

    def _q_one(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        raise NotImplementedError

    def _q_all(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _q_exec(self, sql: str, params: tuple[Any, ...]) -> int:
        raise NotImplementedError

    def _q_when(self, moment: datetime) -> Any:
        raise NotImplementedError

    def _q_now(self) -> Any:
        raise NotImplementedError


class SqliteQueries(LedgerConnection, Queries):
    def _q_one(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        return self._one(sql, params)

    def _q_all(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._locked() as conn:
            return list(conn.execute(sql, params).fetchall())

    def _q_exec(self, sql: str, params: tuple[Any, ...]) -> int:
        with self._write() as conn:
            return int(conn.execute(sql, params).rowcount)

    def _q_when(self, moment: datetime) -> str:
        return to_db(moment)

    def _q_now(self) -> str:
        return self._stamp()
