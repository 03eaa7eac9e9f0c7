"""Point reads: the hottest reads, run on the database driver itself.

A page load and every turn read the device's balance: one indexed row of two integers.
Through SQLAlchemy's async engine that read cost about 280 µs of CPU on the benchmark
machine, against about 75 µs for the same statement on the driver: the pool checkout
and return (an AsyncConnection, a greenlet hand-off, the reset) and the execution
context cost more than the query (`bench/rest.py`, docs/benchmarks/). So the reads
of every page load (the balance, the conversation list, a conversation), which need
no transaction, run here instead. The statement is still a SQLAlchemy Core select,
planned once per dialect by vedika.store.direct (as a transaction's statements are);
its values are bound by name as for `conn.execute`, and
values and columns go through the conversions SQLAlchemy's types define for that
dialect (timestamps kept as text on SQLite, JSON decoded with the engine's decoder).

- SQLite: two aiosqlite connections of their own (WAL: readers never wait on the
  writer), each statement one trip to the connection's thread.
- PostgreSQL: a few asyncpg connections of its own, lent without asyncpg's pool
  (`pg_readers.py` says why).

A failure of the driver becomes `ConnectionError`, which the API answers as it answers
SQLAlchemy's (503, "the database is unavailable"). On PostgreSQL a write that is one
statement on its own (`Store.write_one`: an answer's ending) runs on these connections
too, in autocommit, its errors SQLAlchemy's. Transactions stay on SQLAlchemy's
connections (their statements on the driver: vedika.store.direct).
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from types import SimpleNamespace
from typing import Any

import aiosqlite
from sqlalchemy import Executable, Select
from sqlalchemy.engine import URL, Dialect

from vedika.store import direct
from vedika.store.pg_readers import Readers
from vedika.store.sqlite_driver import run_statement

SQLITE_READERS = 2
PG_READERS = 4


# URL options SQLAlchemy's asyncpg adapter takes for itself before it calls
# asyncpg.connect (which would refuse them).
_ADAPTER_ONLY = (
    "async_creator_fn",
    "prepared_statement_cache_size",
    "prepared_statement_name_func",
)


class PointRead:
    """A select run on the driver: vedika.store.direct plans it once for each dialect
    (and set of parameter names) it runs on, its parameters and columns converted by
    the processors SQLAlchemy itself would use; its rows come back as plain tuples."""

    __slots__ = ("statement",)

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement


class PointReads:
    """The driver connections point reads run on, opened on first use."""

    def __init__(self, url: URL, dialect: Dialect) -> None:
        self.url = url
        self.dialect = dialect
        self._sqlite: list[aiosqlite.Connection] = []
        self._turn = itertools.count()
        self._pg: Readers | None = None
        self._opening = asyncio.Lock()

    async def all(self, read: PointRead, values: dict[str, Any]) -> list[tuple[Any, ...]] | None:
        """Every row of `read` with `values`; None when the read is one only SQLAlchemy
        can run (a list expanded into IN)."""
        bound = direct.bind(read.statement, values, self.dialect)
        if bound is None:
            return None
        plan, args = bound
        try:
            if self.dialect.name == "sqlite":
                conn = await self._sqlite_reader()
                _, rows, _, _, _ = await conn._execute(
                    run_statement, conn._conn, plan.sql, args, False
                )
            else:
                rows = await self._pg_readers().fetch(plan.sql, args)
        except (OSError, sqlite3.Error, ValueError) as exc:
            raise ConnectionError(f"database read failed: {exc}") from exc
        except Exception as exc:  # asyncpg's own errors: not imported on SQLite
            if type(exc).__module__.startswith("asyncpg"):
                raise ConnectionError(f"database read failed: {exc}") from exc
            raise
        return [plan.values(raw) for raw in rows]

    async def write(self, statement: Executable, values: dict[str, Any]) -> int | None:
        """PostgreSQL: one statement in autocommit (atomic on its own) on these
        connections, as SQLAlchemy would run it but without its pool and execution;
        its row count. None when the statement is one only SQLAlchemy can run."""
        bound = direct.bind(statement, values, self.dialect)
        if bound is None:
            return None
        plan, args = bound
        try:
            status = await self._pg_readers().execute(plan.sql, args)
        except Exception as exc:
            if type(exc).__module__.startswith("asyncpg"):
                raise direct.asyncpg_error(self.dialect, plan.sql, args, exc) from exc
            raise
        return direct.rowcount(status)

    async def _sqlite_reader(self) -> aiosqlite.Connection:
        if len(self._sqlite) < SQLITE_READERS:
            async with self._opening:
                while len(self._sqlite) < SQLITE_READERS:
                    conn = await aiosqlite.connect(self.url.database or ":memory:", timeout=30)
                    await conn.execute("PRAGMA busy_timeout=10000")
                    self._sqlite.append(conn)
        return self._sqlite[next(self._turn) % SQLITE_READERS]

    def _pg_readers(self) -> Readers:
        if self._pg is None:
            import asyncpg

            # The arguments SQLAlchemy's engine connects with, from the same URL: its
            # query (`?ssl=require`, a managed database's usual) means to the engine
            # what it means here. As a DSN, asyncpg took `ssl` for a server setting.
            cargs, ckw = self.dialect.create_connect_args(self.url)
            for adapters_own in _ADAPTER_ONLY:  # SQLAlchemy's, not asyncpg's
                ckw.pop(adapters_own, None)
            ckw["statement_cache_size"] = 64

            async def connect() -> Any:
                conn = await asyncpg.connect(*cargs, **ckw)
                try:
                    await self._pg_codecs(conn)
                except BaseException:
                    conn.terminate()
                    raise
                return conn

            self._pg = Readers(connect, PG_READERS)
        return self._pg

    async def _pg_codecs(self, conn: Any) -> None:
        """JSON columns decoded as SQLAlchemy's engine decodes them (its dialect sets
        these codecs on each of its own connections; it is given this one)."""
        dialect: Any = self.dialect
        adapted = SimpleNamespace(_connection=conn)
        await dialect.setup_asyncpg_json_codec(adapted)
        await dialect.setup_asyncpg_jsonb_codec(adapted)

    async def close(self) -> None:
        for conn in self._sqlite:
            await conn.close()
        self._sqlite.clear()
        if self._pg is not None:
            await self._pg.close()
            self._pg = None
