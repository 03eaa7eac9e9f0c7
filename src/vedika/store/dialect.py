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
