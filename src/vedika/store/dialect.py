"""The few statements that differ between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite

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
