"""Statements of a write transaction, run on the database driver itself.

A turn's transaction is a plain function of a SQLAlchemy connection (Store.run_tx).
There, SQLAlchemy's execution of a statement cost more than the statement itself: the
compiled cache's key and lookup, the execution context, the parameters' dict, the
result's metadata (bench.profile --call turn_start: on SQLite 15% of a turn's CPU
against 3% in sqlite3). `run` executes the same Core statement on the driver instead:
compiled by SQLAlchemy once per dialect and set of parameter names, its values and
columns converted by the processors SQLAlchemy's types define, its rows named tuples,
its errors SQLAlchemy's.

- SQLite: on the sqlite3 connection, in the database's thread (sqlite_driver.Writer).
- PostgreSQL: on the asyncpg connection under SQLAlchemy's adapter, in the adapter's
  transaction and with its prepared statements, one await through SQLAlchemy's
  greenlet bridge per statement, as SQLAlchemy's own execution makes.

A statement that needs what only SQLAlchemy's execution does (a Python-side default
computed per row, a list expanded into IN) and any other connection go through
`conn.execute`.
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Executable
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.util import await_

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Plan:
    """A statement for one dialect and set of parameter names, as its driver takes it."""

    sql: str
    names: tuple[str, ...]  # the bound names, in the order of the SQL's parameters
    fixed: dict[str, Any]  # the values the statement holds itself (a scalar default...)
    binds: tuple[Processor, ...]
    row: Callable[[tuple[Any, ...]], Any] | None  # a result row, converted and named
    results: tuple[Processor, ...]  # each column's conversion (text to a datetime, JSON...)

    def values(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        """A result row converted, as a plain tuple: for reads of many rows (a long
        conversation's messages), where building a named row each cost more."""
        if not any(self.results):
            return tuple(raw)
        return tuple(
            v if f is None or v is None else f(v) for v, f in zip(raw, self.results, strict=True)
        )


class Done:
    """What `run` gives back: the few things the callers read of a SQLAlchemy result."""

    __slots__ = ("rowcount", "rows")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self.rows = rows
        self.rowcount = rowcount

    def first(self) -> Any:
        return self.rows[0] if self.rows else None

    def all(self) -> list[Any]:
        return self.rows

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None

    def scalar_one(self) -> Any:
        if len(self.rows) != 1:
            raise LookupError(f"expected one row, got {len(self.rows)}")
        return self.rows[0][0]


_PLANS: dict[tuple[int, tuple[str, ...], str], _Plan | None] = {}
_KEPT: dict[int, Executable] = {}  # the statements planned, so that their ids stay theirs
# The callers pass statements built once (module constants, or cached by shape); should
# one pass a statement built per call, the plans stop growing here.
MAX_PLANS = 512


def run(conn: Connection, statement: Executable, params: dict[str, Any]) -> Any:
    """`conn.execute(statement, params)`, on the driver directly where it can be."""
    raw: Any = conn.connection.driver_connection
    execute: Callable[[Connection, Any, _Plan, list[Any]], Done]
    if isinstance(raw, sqlite3.Connection):
        execute = _on_sqlite
    elif conn.dialect.driver == "asyncpg":
        execute = _on_asyncpg
    else:
        return conn.execute(statement, params)
    bound = bind(statement, params, conn.dialect)
    if bound is None:
        return conn.execute(statement, params)
    return execute(conn, raw, *bound)


def bind(
    statement: Executable, params: dict[str, Any], dialect: Dialect
) -> tuple[_Plan, list[Any]] | None:
    """The statement's plan for `dialect` and these parameter names, and its values as
    the driver takes them, in order; None for a statement left to SQLAlchemy."""
    keys = tuple(sorted(params))
    key = (id(statement), keys, dialect.name)
    try:
        plan = _PLANS[key]
    except KeyError:
        if len(_PLANS) >= MAX_PLANS:
            return None
        plan = _PLANS[key] = _plan(statement, keys, dialect)
        _KEPT[id(statement)] = statement
    if plan is None:
        return None
    values = plan.fixed | params if plan.fixed else params
    args = [
        values[name] if convert is None else convert(values[name])
        for name, convert in zip(plan.names, plan.binds, strict=True)
    ]
    return plan, args


def _on_sqlite(conn: Connection, raw: sqlite3.Connection, plan: _Plan, args: list[Any]) -> Done:
    try:
        cur = raw.execute(plan.sql, args)
        try:
            rows = [] if plan.row is None else [plan.row(r) for r in cur.fetchall()]
            return Done(rows, cur.rowcount)
        finally:
            cur.close()
    except sqlite3.Error as exc:
        # As SQLAlchemy raises it (IntegrityError, OperationalError...): callers catch those.
        raise DBAPIError.instance(plan.sql, args, exc, sqlite3.Error) from exc


def _on_asyncpg(conn: Connection, raw: Any, plan: _Plan, args: list[Any]) -> Done:
    adapted: Any = conn.connection.dbapi_connection
    try:
        records, status = await_(_asyncpg_execute(adapted, conn.dialect, plan.sql, args))
    except Exception as exc:
        # What SQLAlchemy does with a failed statement: its own exception class
        # (IntegrityError...), and a connection found broken is invalidated.
        conn._handle_dbapi_exception(exc, plan.sql, args, None, None)
    rows = [] if plan.row is None else [plan.row(r) for r in records]
    return Done(rows, rowcount(status))


async def _asyncpg_execute(
    adapted: Any, dialect: Any, sql: str, args: list[Any]
) -> tuple[list[Any], str | None]:
    """What SQLAlchemy's asyncpg cursor does for one statement: the transaction begun
    on the first, the connection's cached prepared statement, asyncpg's errors as the
    adapter's DB-API classes."""
    async with adapted._execute_mutex:
        if adapted._transaction is None:
            await adapted._start_transaction()
        try:
            prepared, _ = await adapted._prepare(sql, dialect._invalidate_schema_cache_asof)
            records = await prepared.fetch(*args)
            return records, prepared.get_statusmsg()
        except Exception as error:
            adapted._handle_exception(error)
            raise  # not reached: the adapter raises


def rowcount(status: str | None) -> int:
    """The rows a statement touched, from PostgreSQL's command tag ("UPDATE 3",
    "INSERT 0 1", "SELECT 2"), as SQLAlchemy's adapter reads it."""
    if not status:
        return -1
    tail = status.rpartition(" ")[2]
    return int(tail) if tail.isdigit() else -1


def asyncpg_error(dialect: Any, sql: str, args: list[Any], error: Exception) -> Exception:
    """An asyncpg error as SQLAlchemy's execution raises it: translated to the adapter's
    DB-API class, then wrapped (IntegrityError, OperationalError...). Errors that are not
    asyncpg's (OSError...) stay as they are, as they do there."""
    from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection

    dbapi = dialect.loaded_dbapi
    try:
        AsyncAdapt_asyncpg_connection._handle_exception_no_connection(dbapi, error)
    except dbapi.Error as translated:
        return DBAPIError.instance(sql, args, translated, dbapi.Error)
    except Exception:  # not one it translates: raised again as it is
        pass
    return error


def _plan(statement: Any, keys: Sequence[str], dialect: Dialect) -> _Plan | None:
    compiled: Any = statement.compile(dialect=dialect, column_keys=list(keys))
    if (
        compiled.positiontup is None
        or compiled.literal_execute_params
        or compiled.post_compile_params
        or "POSTCOMPILE" in compiled.string
        or any(bind.callable is not None for bind in compiled.binds.values())
    ):
        return None  # what SQLAlchemy's execution context would do for it (per call)
    names = tuple(compiled.positiontup)
    # The column defaults SQLAlchemy's execution context fills in (`default=` on an
    # insert, `onupdate=` on an update): a constant is one of the statement's values;
    # one computed per row stays SQLAlchemy's to compute.
    defaults: dict[str, Any] = {}
    for column, default in [(c, c.default) for c in compiled.insert_prefetch] + [
        (c, c.onupdate) for c in compiled.update_prefetch
    ]:
        if not getattr(default, "is_scalar", False) or column.key not in names:
            return None
        defaults[column.key] = default.arg
    binds = tuple(
        compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    )
    fixed = {
        name: bind.effective_value
        for name, bind in compiled.binds.items()
        if not bind.required and name not in keys
    } | defaults
    columns = compiled._result_columns
    row: Callable[[tuple[Any, ...]], Any] | None = None
    results: tuple[Processor, ...] = ()
    if columns:
        shape = namedtuple("Row", [c.keyname for c in columns], rename=True)  # type: ignore[misc]
        results = tuple(
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns
        )
        if any(results):

            def row(raw: tuple[Any, ...]) -> Any:
                return shape._make(
                    v if f is None or v is None else f(v) for v, f in zip(raw, results, strict=True)
                )

        else:
            row = shape._make
    return _Plan(compiled.string, names, fixed, binds, row, results)
