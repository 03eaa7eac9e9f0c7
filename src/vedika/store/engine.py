"""The database engine and the Store handle every service uses.

SQLite (WAL) by default, PostgreSQL by URL. On SQLite, writes from this process
go through one asyncio lock: SQLite has a single writer anyway, and queueing in
Python is cheaper and clearer than `database is locked` retries.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Executable, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    DataError,
    IntegrityError,
    NotSupportedError,
    ProgrammingError,
    SQLAlchemyError,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.util import greenlet_spawn

from vedika.store import liveness, sqlite_driver
from vedika.store.pointread import PointRead, PointReads
from vedika.store.slots import WaitingPool

MIGRATIONS = Path(__file__).parent / "migrations"
T = TypeVar("T")


# Failures that depend on the statement: it fails the same way when it is sent again.
_PERMANENT = (IntegrityError, ProgrammingError, DataError, NotSupportedError)


def transient(exc: BaseException) -> bool:
    """Whether `exc` says the database could not be reached or could not answer this
    time (a connection refused or cut, the server out of connections, a pool timeout,
    SQLite busy), so the same write may succeed when tried again."""
    if isinstance(exc, OSError):
        return True
    return isinstance(exc, SQLAlchemyError) and not isinstance(exc, _PERMANENT)


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


# JSON columns (citations, sources, steps, routing) through orjson: opening a long
# conversation decodes one or more per message, several times faster than the stdlib.
_JSON = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int = 20) -> AsyncEngine:
    """The engine for `url`. `pool_size` and `max_overflow` size PostgreSQL's pool
    (VEDIKA_DB_POOL_SIZE, VEDIKA_DB_MAX_OVERFLOW); SQLite's is sized for its threads."""
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
        # A connection above the pool's size is opened and closed around each use
        # (with aiosqlite: a thread started and joined), so the pool holds as many as
        # the requests that commonly run at once: SQLAlchemy's 5 churned at 16.
        engine = create_async_engine(
            url,
            module=sqlite_driver.dbapi(),  # one trip to aiosqlite's thread per statement
            connect_args={"timeout": 30},
            pool_size=32,
            max_overflow=64,
            # The connection used last, not the one idle longest: in WAL mode a
            # connection drops its whole page cache when another one has written since
            # its last use, so handed round in turn (FIFO) every statement read its pages
            # again, 110 preads a turn (strace); 22 this way, and 9% less CPU per turn.
            pool_use_lifo=True,
            **_JSON,
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()

        return engine
    engine = create_async_engine(
        url,
        poolclass=WaitingPool,  # PostgreSQL out of slots: wait for ours (vedika.store.slots)
        pool_size=pool_size,
        max_overflow=max_overflow,
        **_JSON,
    )
    liveness.install(engine)  # instead of pool_pre_ping's three round trips a checkout
    return engine


def _ensure_sqlite_dir(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


class Store:
    """Connections for reads, serialised transactions for writes."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None
        self._writer: sqlite_driver.Writer | None = None  # SQLite: run_tx's connection
        # Reads outside a transaction, and single statements (`write_one`). On
        # PostgreSQL in autocommit: SQLAlchemy would open a transaction (BEGIN) for the
        # first statement and end it when the connection goes back to the pool, two
        # round trips for nothing a read needs (each statement reads its own snapshot
        # under READ COMMITTED either way). On SQLite, the engine itself.
        self._autocommit = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if self.dialect == "postgresql"
            else engine
        )
        # Off SQLAlchemy's path (vedika.store.pointread), but for an in-memory SQLite,
        # which other connections would not see.
        in_memory = self.dialect == "sqlite" and engine.url.database in (None, "", ":memory:")
        self._points = None if in_memory else PointReads(engine.url, engine.dialect)

    @asynccontextmanager
    async def tx(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction: committed on success, rolled back on error."""
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock, self.engine.begin() as conn:
            yield conn

    async def run_tx(self, fn: Callable[[Connection], T]) -> T:
        """One write transaction written as a plain function of a (synchronous)
        connection: committed when it returns, rolled back when it raises. On SQLite the
        whole of it is one trip to the database thread (vedika.store.sqlite_driver). On
        PostgreSQL the whole of it (checkout, BEGIN, the statements, COMMIT, return) is
        one greenlet of SQLAlchemy's bridge to asyncpg, where `engine.begin()` and
        `run_sync` made five, and a task to shield the connection's return:
        bench.pg_writes measured a one-statement transaction at 445-515 -> 313-357 us of
        CPU. A cancelled transaction is rolled back and its connection given back
        (tests/test_direct_pg.py)."""
        if self._write_lock is None:
            return await greenlet_spawn(sqlite_driver.transaction, self.engine.sync_engine, fn)
        async with self._write_lock:
            writer = self._writer
            if writer is None or not writer.usable():
                if writer is not None:
                    self._writer = None
                    await writer.close()
                writer = self._writer = await sqlite_driver.Writer.open(self.engine, _JSON)
            return await writer.run(fn)

    async def write_one(self, statement: Executable, params: dict[str, Any] | None = None) -> int:
        """One statement that is atomic on its own; returns its row count. On
        PostgreSQL it runs in autocommit: one round trip, where a transaction around it
        would add BEGIN and COMMIT, on the point connections (vedika.store.pointread:
        no pool checkout, no execution context). On SQLite, as `run_tx` runs it."""
        if self._write_lock is None:
            if self._points is not None:
                count = await self._points.write(statement, params or {})
                if count is not None:
                    return count
            async with self._autocommit.connect() as conn:
                return (await conn.execute(statement, params)).rowcount
        return await self.run_tx(lambda conn: conn.execute(statement, params).rowcount)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads only: on PostgreSQL it runs in autocommit, so a write
        would be committed at once, statement by statement. Writes go in `tx()` or
        `run_tx()`."""
        async with self._autocommit.connect() as conn:
            yield conn

    @asynccontextmanager
    async def reads(self) -> AsyncIterator[Reads]:
        """Several reads that may or may not happen, on at most one connection."""
        reads = Reads(self)
        try:
            yield reads
        finally:
            await reads.close()

    async def first(self, read: PointRead, values: dict[str, Any]) -> tuple[Any, ...] | None:
        """The first row of a point read (outside any transaction), or None."""
        rows = await self.all(read, values)
        return rows[0] if rows else None

    async def all(self, read: PointRead, values: dict[str, Any]) -> list[tuple[Any, ...]]:
        """The rows of a point read (outside any transaction)."""
        if self._points is not None:
            rows = await self._points.all(read, values)
            if rows is not None:
                return rows
        async with self.read() as conn:
            return [tuple(row) for row in await conn.execute(read.statement, values)]

    async def close(self) -> None:
        if self._points is not None:
            await self._points.close()
        if self._writer is not None:
            await self._writer.close()
            self._writer = None
        await self.engine.dispose()


class Reads:
    """A read connection opened on first use and shared by the reads after it: each
    connection costs a pool checkout and a reset on return."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._stack = AsyncExitStack()
        self._conn: AsyncConnection | None = None

    async def conn(self) -> AsyncConnection:
        if self._conn is None:
            self._conn = await self._stack.enter_async_context(self._store.read())
        return self._conn

    async def close(self) -> None:
        self._conn = None
        await self._stack.aclose()


def migrate(url: str) -> None:
    """Bring the schema up to date (blocking; call it outside the event loop)."""
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(cfg, "head")
