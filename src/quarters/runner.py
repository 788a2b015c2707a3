"""How the read path's statements run: on a pooled async psycopg connection (the server) or
on a SQLAlchemy connection in a worker thread (the test harness's rolled-back transaction).

The SQL is the same either way: quarters.services builds every statement (``:name``
parameters); a runner only executes it and returns the first row.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Protocol

from sqlalchemy import Connection, text
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect
from starlette.concurrency import run_in_threadpool

from quarters.services import Statement

_DIALECT = psycopg_dialect()


@lru_cache(maxsize=1024)
def pyformat(sql: str) -> str:
    """``:name`` parameters as psycopg's ``%(name)s`` and literal ``%`` doubled, exactly as
    SQLAlchemy sends the statement (converted once per statement shape)."""
    return str(text(sql).compile(dialect=_DIALECT))


def _prepare(plan_each_time: bool) -> bool | None:
    """psycopg's ``prepare``: None (prepared once it repeats) or False (never prepared). A page
    whose cost depends on its values (a bbox over 200 of a million rows or over 200,000,
    ``services.selective``) is planned with them each time: after five runs PostgreSQL may
    switch a prepared statement to a generic plan, which for the bbox page at 1 M measures took
    twice the time (bench_growth). Planning costs ~0.3 ms, so other pages stay prepared."""
    return False if plan_each_time else None


class Runner(Protocol):
    """Runs one statement and returns its first row (None: no row)."""

    async def first(self, statement: Statement, *,  # noqa: D102
                    plan_each_time: bool = False) -> tuple[Any, ...] | None: ...


class _OnConnection:
    def __init__(self, conn: Any) -> None:
        self.conn = conn


class PoolRunner(_OnConnection):
    """On one async psycopg connection (autocommit; psycopg prepares repeated statements)."""

    async def first(self, statement: Statement, *,
                    plan_each_time: bool = False) -> tuple[Any, ...] | None:
        """Execute and fetch the first row (``plan_each_time``: not prepared, see ``_prepare``)."""
        sql, params = statement
        cursor = await self.conn.execute(pyformat(sql), params, prepare=_prepare(plan_each_time))
        return await cursor.fetchone()


class LazyPoolRunner(PoolRunner):
    """A PoolRunner that takes its connection from ``pool`` only when a statement runs (a read
    answered from memory never checks one out); ``close`` returns it."""

    def __init__(self, pool: Any) -> None:
        super().__init__(None)
        self.pool = pool

    async def first(self, statement: Statement, *,
                    plan_each_time: bool = False) -> tuple[Any, ...] | None:
        """Execute and fetch the first row (on a connection checked out at the first call)."""
        if self.conn is None:
            self.conn = await self.pool.getconn()
        return await super().first(statement, plan_each_time=plan_each_time)

    async def close(self) -> None:
        """Give the connection back to the pool (if one was taken)."""
        if self.conn is not None:
            conn, self.conn = self.conn, None
            await self.pool.putconn(conn)


class ThreadRunner(_OnConnection):
    """On a sync SQLAlchemy connection, in a worker thread (tests share their transaction)."""

    conn: Connection

    async def first(self, statement: Statement, *,
                    plan_each_time: bool = False) -> tuple[Any, ...] | None:
        """Execute and fetch the first row."""
        sql, params = statement
        row = await run_in_threadpool(lambda: self.conn.execute(text(sql), params).first())
        return None if row is None else tuple(row)
