"""The few statements that differ between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, bindparam
from sqlalchemy.dialects import postgresql, sqlite

from vedika.store.direct import run as run_direct

_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def insert_ignore(dialect: str, table: Table) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING on either database; the values are given at
    execute time, so one statement can be built once and reused."""
    stmt: Any = _INSERTS[dialect](table)
    return stmt.on_conflict_do_nothing()


def upsert_add(dialect: str, table: Table, *, key: str, column: str) -> Any:
    """INSERT a row, or add its `column` to the existing row's (same `key`): a counter
    that may not exist yet, in one statement."""
    stmt: Any = _INSERTS[dialect](table)
    return stmt.on_conflict_do_update(
        index_elements=[table.c[key]],
        set_={column: table.c[column] + stmt.excluded[column]},
    )


def insert_for(dialect: str, table: Table) -> Any:
    """The dialect's own INSERT, for the statements above's kin: ON CONFLICT with a
    condition, RETURNING."""
    return _INSERTS[dialect](table)


NewRow = tuple[Table, dict[str, Any]]  # a table and the values of a row to insert in it
_ONE: dict[str, Any] = {}  # a table's INSERT, built once (compiled once per column set)
_TOGETHER: dict[tuple[tuple[str, tuple[str, ...]], ...], Any] = {}


def insert_rows(conn: Connection, rows: Sequence[NewRow]) -> None:
    """INSERT each (table, values) in `rows`, in order, in the caller's transaction.

    On PostgreSQL in one statement, one round trip: every insert but the last is a
    data-modifying WITH of the last (a turn's conversation, question and answer were
    three round trips). PostgreSQL checks a foreign key at the end of the statement, so
    a row may refer to one inserted in the same statement. SQLite has no INSERT inside
    WITH: there they are one statement each (run in the database's own thread, where a
    statement costs no round trip). Each shape (tables and columns) is built once."""
    if conn.dialect.name != "postgresql" or len(rows) < 2:
        for table, values in rows:
            stmt = _ONE.get(table.name)
            if stmt is None:
                stmt = _ONE[table.name] = table.insert()
            run_direct(conn, stmt, values)
        return
    full = [(table, _with_defaults(table, values)) for table, values in rows]
    shape = tuple((table.name, tuple(values)) for table, values in full)
    stmt = _TOGETHER.get(shape)
    if stmt is None:
        stmt = _TOGETHER[shape] = _together(full)
    params = {
        f"r{i}_{key}": value for i, (_, values) in enumerate(full) for key, value in values.items()
    }
    run_direct(conn, stmt, params)


def _with_defaults(table: Table, values: dict[str, Any]) -> dict[str, Any]:
    """`values` and the column defaults SQLAlchemy would add (in one statement of
    several inserts it cannot: they would share a parameter name)."""
    out = dict(values)
    for column in table.c:
        default = column.default
        if default is None or column.key in out:
            continue
        if not getattr(default, "is_scalar", False):
            raise ValueError(f"insert_rows: give {table.name}.{column.key}")
        out[column.key] = default.arg  # type: ignore[attr-defined]
    return out


def _together(rows: Sequence[NewRow]) -> Any:
    def insert(i: int, table: Table, keys: Sequence[str]) -> Any:
        return table.insert().values(
            {key: bindparam(f"r{i}_{key}", type_=table.c[key].type) for key in keys}
        )

    *first, (last_table, last_values) = rows
    ctes = [insert(i, t, list(v)).cte(f"r{i}") for i, (t, v) in enumerate(first)]
    return insert(len(first), last_table, list(last_values)).add_cte(*ctes)
