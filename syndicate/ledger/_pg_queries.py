"""The PostgreSQL side of the shared query plumbing (:mod:`._queries`).

:class:`PgQueries` runs the statements the shared mixins (delivery events, analytics) write
once with ``?`` placeholders on a PostgreSQL connection (``%s``, its own time type); the
mixins' PostgreSQL twins are assembled here, apart from their modules, so that opening a
SQLite ledger (``queue``, ``status``...) imports no PostgreSQL code.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ._analytics import AnalyticsMethods
from ._events import EventMethods
from ._pg_methods import PgConnection, _stamp_of
from ._queries import Queries


class PgQueries(PgConnection, Queries):
    def _q_one(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        return self._one(sql.replace("?", "%s"), params)

    def _q_all(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._locked() as conn:
            return list(conn.execute(sql.replace("?", "%s").encode(), params).fetchall())

    def _q_exec(self, sql: str, params: tuple[Any, ...]) -> int:
        with self._write() as conn:
            return int(conn.execute(sql.replace("?", "%s").encode(), params).rowcount)

    def _q_when(self, moment: datetime) -> datetime:
        return _stamp_of(moment)

    def _q_now(self) -> datetime:
        return self._stamp()


class PgEventMethods(PgQueries, EventMethods):
    pass


class PgAnalyticsMethods(PgQueries, AnalyticsMethods):
    pass


__all__ = ["PgAnalyticsMethods", "PgEventMethods", "PgQueries"]
