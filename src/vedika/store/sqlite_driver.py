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
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
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
    __slots__ = ("_in_tx",)
    _cursor_cls = OneTripCursor

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self._in_tx = False  # as sqlite3 said after the last statement

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


def transaction(engine: Engine, fn: Callable[[Connection], T]) -> T:
    """`fn` in one transaction of `engine`, committed or rolled back: in SQLite's
    connection thread (Writer), or in one greenlet on PostgreSQL (Store.run_tx)."""
    with engine.begin() as sync:
        return fn(sync)


class Writer:
    """A connection of the pool held for the store's write transactions, which the
    store's lock runs one at a time. Each transaction used to check a connection out
    of the pool and back through SQLAlchemy's greenlet bridge, and ask it for its
    driver connection: 140-170 us of CPU on the benchmark host, more than most of a
    turn's statements. Held, it also keeps its page cache: it wrote last."""

    def __init__(self, held: AsyncConnection, adapted: OneTripConnection, sync: Engine) -> None:
        self.held = held
        self.adapted = adapted
        self.aio: aiosqlite.Connection = adapted._connection  # type: ignore[assignment]
        self.sync = sync

    @classmethod
    async def open(cls, engine: AsyncEngine, engine_kw: dict[str, Any]) -> Writer:
        held = await engine.connect()
        try:
            raw = await held.get_raw_connection()
            adapted: OneTripConnection = raw.dbapi_connection  # type: ignore[assignment]
            aio: aiosqlite.Connection = adapted._connection  # type: ignore[assignment]
            sqlite_conn = aio._conn
            # SQLAlchemy's synchronous engine on the same sqlite3 connection: it
            # connects to nothing.
            sync = create_engine(
                "sqlite://", creator=lambda: sqlite_conn, poolclass=StaticPool, **engine_kw
            )
        except BaseException:
            await held.close()
            raise
        return cls(held, adapted, sync)

    def usable(self) -> bool:
        """Whether its aiosqlite connection still runs (it is closed by a failure only)."""
        return bool(self.aio._running) and self.aio._connection is not None

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn(connection)` as one transaction in a single trip to the connection's
        thread: a turn's dozen statements used to be a dozen trips, each a hand-off to
        the thread and a wake-up of the event loop. The statements are SQLAlchemy's as
        ever, run by its synchronous SQLite dialect on the same sqlite3 connection (same
        types, same SQL), or on sqlite3 itself (vedika.store.direct)."""
        async with self.adapted._execute_mutex:
            try:
                return await self.aio._execute(transaction, self.sync, fn)
            finally:
                self.adapted._in_tx = False  # committed or rolled back in the thread

    async def close(self) -> None:
        """Back to the pool; a connection that stopped is discarded instead. (The
        synchronous engine is dropped, not disposed: its pool would close the sqlite3
        connection, which stays the pool's.)"""
        if not self.usable():
            await self.held.invalidate()
        await self.held.close()
