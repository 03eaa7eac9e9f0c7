"""SQLite through aiosqlite, with one trip to its thread per statement.

aiosqlite runs each sqlite3 call in the connection's own thread. SQLAlchemy's adapter
makes four such calls per statement: cursor, execute, fetchall and close. Each call
wakes the thread, hands the GIL over and back, and wakes the event loop through its
self-pipe. That cost more CPU than the query itself (`bench/rest.py`: a one-row read
made five trips, four of them for the statement). Here the statement runs whole in one
trip: execute, fetch the rows, read `description`, `rowcount` and `lastrowid`, close. The
cursor SQLAlchemy sees keeps what came back. Commit and rollback are one trip each, and
none at all when no transaction is open: the pool rolls back every connection it gets
back, and after a read (sqlite3 opens a transaction only for a write) that was a trip
to the thread for nothing. Errors are sqlite3's own, as before.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

import aiosqlite
from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.pool import StaticPool

T = TypeVar("T")


def run_statement(
    conn: sqlite3.Connection, operation: str, parameters: Any, many: bool
) -> tuple[Any, list[Any], int, int | None, bool]:
    """In the connection's thread: the whole statement."""
    cur = conn.cursor()
    try:
        if many:
            cur.executemany(operation, parameters)
        elif parameters is None:
            cur.execute(operation)
        else:
            cur.execute(operation, parameters)
        description = cur.description
        rows = cur.fetchall() if description else []
        return description, rows, cur.rowcount, cur.lastrowid, conn.in_transaction
    finally:
        cur.close()


class _Finished:
    """What SQLAlchemy reads of a cursor, as the statement left it."""

    __slots__ = ("arraysize", "description", "lastrowid", "rowcount")

    def __init__(self) -> None:
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self.arraysize = 1

    async def close(self) -> None:
        """Nothing to close: the sqlite3 cursor was closed in its thread."""


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()

    def _make_new_cursor(self, connection: Any) -> Any:
        return _Finished()

    def _aenter_cursor(self, cursor: Any) -> Any:
        return cursor

    async def _run(self, operation: Any, parameters: Any, many: bool) -> None:
        async with self._adapt_connection._execute_mutex:
            conn: aiosqlite.Connection = self._connection  # type: ignore[assignment]
            description, rows, rowcount, lastrowid, in_tx = await conn._execute(
                run_statement, conn._conn, operation, parameters, many
            )
        self._adapt_connection._in_tx = in_tx  # type: ignore[attr-defined]
        done = self._cursor
        done.description, done.rowcount, done.lastrowid = description, rowcount, lastrowid  # type: ignore[misc]
        self._rows = collections.deque(rows)

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        await self._run(operation, parameters, False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        await self._run(operation, seq_of_parameters, True)


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("_in_tx", "_sync")
    _cursor_cls = OneTripCursor

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self._in_tx = False  # as sqlite3 said after the last statement
        self._sync: Engine | None = None  # for whole transactions (run_transaction)

    def rollback(self) -> None:
        if self._in_tx:
            super().rollback()
            self._in_tx = False

    def commit(self) -> None:
        if self._in_tx:
            super().commit()
            self._in_tx = False


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The aiosqlite DB-API of SQLAlchemy, with `OneTripCursor` for every statement."""

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        adapted = super().connect(*arg, **kw)
        return OneTripConnection(self, adapted._connection)


def dbapi() -> OneTripDBAPI:
    """For `create_async_engine(url, module=dbapi())` with a `sqlite+aiosqlite` URL."""
    return OneTripDBAPI(aiosqlite, sqlite3)


# ---------------------------------------------------------------- whole transactions


def _transaction(engine: Engine, fn: Callable[[Connection], T]) -> T:
    """In the connection's thread: `fn` in one transaction, committed or rolled back."""
    with engine.begin() as sync:
        return fn(sync)


async def run_transaction(
    aconn: AsyncConnection, fn: Callable[[Connection], T], engine_kw: dict[str, Any]
) -> T:
    """Run `fn(connection)` as one transaction in a single trip to the thread of the
    aiosqlite connection `aconn` holds (checked out by the caller): a turn's dozen
    statements used to be a dozen trips, each a hand-off to the thread and a wake-up of
    the event loop. The statements are SQLAlchemy's as ever, run by its synchronous
    SQLite dialect on the same sqlite3 connection (same types, same SQL)."""
    raw = await aconn.get_raw_connection()
    adapted: OneTripConnection = raw.dbapi_connection  # type: ignore[assignment]
    aio: aiosqlite.Connection = adapted._connection  # type: ignore[assignment]
    if adapted._sync is None:  # made once per pooled connection; it connects to nothing
        sqlite_conn = aio._conn
        adapted._sync = create_engine(
            "sqlite://", creator=lambda: sqlite_conn, poolclass=StaticPool, **engine_kw
        )
    async with adapted._execute_mutex:
        try:
            return await aio._execute(_transaction, adapted._sync, fn)
        finally:
            adapted._in_tx = False  # committed or rolled back in the thread
