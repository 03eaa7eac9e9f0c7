"""The few statements that differ between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite

_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def insert_ignore(dialect: str, table: Table, **values: Any) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING on either database."""
    stmt: Any = _INSERTS[dialect](table)
    return stmt.values(**values).on_conflict_do_nothing()


def insert_ignore_statement(dialect: str, table: Table) -> Any:
    """The same, its values given at execute time (build it once, reuse it)."""
    stmt: Any = _INSERTS[dialect](table)
    return stmt.on_conflict_do_nothing()
