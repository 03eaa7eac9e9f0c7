"""Point reads: the hottest one-row reads, run on the database driver itself.

A page load and every turn read the device's balance: one indexed row of two integers.
Through SQLAlchemy's async engine that read cost about 280 µs of CPU on the benchmark
machine, against about 75 µs for the same statement on the driver: the pool checkout
and return (an AsyncConnection, a greenlet hand-off, the reset) and the execution
context cost more than the query (`bench/rest.py`, docs/benchmarks/). So a few reads
that need none of what SQLAlchemy adds (no transaction, no type conversion of their
results) run here instead: the statement is still a SQLAlchemy Core select, compiled
once per dialect, and its values are bound by name as they are for `conn.execute`.

- SQLite: two aiosqlite connections of their own (WAL: readers never wait on the
  writer), each statement one trip to the connection's thread.
- PostgreSQL: a small asyncpg pool of its own.

A failure of the driver becomes `ConnectionError`, which the API answers as it answers
SQLAlchemy's (503, "the database is unavailable"). Writes, and reads inside a
transaction, stay on SQLAlchemy.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from typing import Any

import aiosqlite
from sqlalchemy import Integer, Select, String
from sqlalchemy.engine import URL, Dialect

from vedika.store.sqlite_driver import run_statement

SQLITE_READERS = 2
PG_READERS = 4


class PointRead:
    """A select whose columns come back as the driver gives them (integers, strings),
    compiled once for each dialect it runs on."""

    def __init__(self, statement: Select[Any]) -> None:
        for column in statement.selected_columns:
            if not isinstance(column.type, Integer | String):
                raise TypeError(f"{column} needs SQLAlchemy's result processing")
        self.statement = statement
        self._compiled: dict[str, tuple[str, tuple[str, ...]]] = {}

    def compiled(self, dialect: Dialect) -> tuple[str, tuple[str, ...]]:
        """(SQL in the driver's parameter style, the bound names in their order)."""
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self.statement.compile(dialect=dialect)
            found = (str(compiled), tuple(compiled.positiontup or ()))
            self._compiled[dialect.name] = found
        return found


class PointReads:
    """The driver connections point reads run on, opened on first use."""

    def __init__(self, url: URL, dialect: Dialect) -> None:
        self.url = url
        self.dialect = dialect
        self._sqlite: list[aiosqlite.Connection] = []
        self._turn = itertools.count()
        self._pg: Any = None  # asyncpg.Pool
        self._opening = asyncio.Lock()

    async def first(self, read: PointRead, values: dict[str, Any]) -> tuple[Any, ...] | None:
        """The first row of `read` with `values`, or None."""
        sql, names = read.compiled(self.dialect)
        args = tuple(values[name] for name in names)
        try:
            if self.dialect.name == "sqlite":
                conn = await self._sqlite_reader()
                _, rows, _, _, _ = await conn._execute(run_statement, conn._conn, sql, args, False)
                return tuple(rows[0]) if rows else None
            pool = await self._pg_pool()
            row = await pool.fetchrow(sql, *args)
            return tuple(row) if row is not None else None
        except (OSError, sqlite3.Error, ValueError) as exc:
            raise ConnectionError(f"database read failed: {exc}") from exc
        except Exception as exc:  # asyncpg's own errors: not imported on SQLite
            if type(exc).__module__.startswith("asyncpg"):
                raise ConnectionError(f"database read failed: {exc}") from exc
            raise

    async def _sqlite_reader(self) -> aiosqlite.Connection:
        if len(self._sqlite) < SQLITE_READERS:
            async with self._opening:
                while len(self._sqlite) < SQLITE_READERS:
                    conn = await aiosqlite.connect(self.url.database or ":memory:", timeout=30)
                    await conn.execute("PRAGMA busy_timeout=10000")
                    self._sqlite.append(conn)
        return self._sqlite[next(self._turn) % SQLITE_READERS]

    async def _pg_pool(self) -> Any:
        if self._pg is None:
            async with self._opening:
                if self._pg is None:
                    import asyncpg

                    dsn = self.url.set(drivername="postgresql").render_as_string(
                        hide_password=False
                    )
                    self._pg = await asyncpg.create_pool(
                        dsn, min_size=1, max_size=PG_READERS, statement_cache_size=64
                    )
        return self._pg

    async def close(self) -> None:
        for conn in self._sqlite:
            await conn.close()
        self._sqlite.clear()
        if self._pg is not None:
            await self._pg.close()
            self._pg = None
