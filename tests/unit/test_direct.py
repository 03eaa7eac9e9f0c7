"""store.direct runs a statement on sqlite3 itself: it must store and return exactly
what SQLAlchemy's execution of the same statement does."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    Table,
    bindparam,
    create_engine,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool

from tests.support.rows import NOW, first_conversation, live_answer, stored_message
from vedika.store import conversations as data
from vedika.store import direct
from vedika.store.engine import _JSON
from vedika.store.tables import conversations, messages, metadata


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[Connection]:
    """A connection as sqlite_driver.Writer's thread has it: SQLAlchemy's synchronous engine
    over a sqlite3 connection of its own."""
    raw = sqlite3.connect(tmp_path / "d.db", check_same_thread=False)
    engine = create_engine("sqlite://", creator=lambda: raw, poolclass=StaticPool, **_JSON)
    metadata.create_all(engine)
    with engine.begin() as c:
        first_conversation(c)
        yield c
    engine.dispose()


def test_an_insert_stores_what_sqlalchemy_stores(conn: Connection) -> None:
    insert = messages.insert()
    direct.run(conn, insert, live_answer("a1"))  # planned: sqlite3 itself
    conn.execute(insert, live_answer("a2"))
    assert direct._PLANS[(id(insert), tuple(sorted(live_answer("a1"))), "sqlite")] is not None
    one, two = stored_message(conn, "a1"), stored_message(conn, "a2")
    assert one == two
    assert one["routing"] == {"selected_model": "m", "reason": "fits", "confidence": 0.5}
    assert one["chunk_count"] == 0 and one["input_tokens"] == 0  # the columns' defaults


def test_a_constant_default_is_one_of_the_values(conn: Connection) -> None:
    """`pinned` and `archived` default to False in Python (SQLAlchemy fills them in)."""
    insert = conversations.insert()
    row = {"id": "c2", "device_id": "d1", "title": "t", "model": "m"} | {
        "created_at": NOW,
        "updated_at": NOW,
    }
    direct.run(conn, insert, row)
    conn.execute(insert, row | {"id": "c3"})
    assert direct._PLANS[(id(insert), tuple(sorted(row)), "sqlite")] is not None
    query = select(conversations).where(conversations.c.id.in_(["c2", "c3"]))
    two, three = (dict(r._mapping) for r in conn.execute(query.order_by(conversations.c.id)))
    assert two | {"id": "c3"} == three
    assert two["pinned"] is False and two["archived"] is False and two["message_count"] == 0


def test_a_select_returns_the_same_rows_by_name(conn: Connection) -> None:
    conn.execute(messages.insert(), live_answer("a1"))
    query = select(messages.c.id, messages.c.routing, messages.c.created_at).where(
        messages.c.conversation_id == bindparam("b_c")
    )
    mine = direct.run(conn, query, {"b_c": "c1"}).first()
    theirs = conn.execute(query, {"b_c": "c1"}).first()
    assert tuple(mine) == tuple(theirs)
    assert mine.routing["reason"] == "fits"
    assert mine.created_at.replace(tzinfo=UTC) == NOW
    assert direct.run(conn, query, {"b_c": "nope"}).first() is None


def test_an_update_counts_its_rows_and_sets_its_values(conn: Connection) -> None:
    conn.execute(messages.insert(), live_answer("a1"))
    assert data.finish_message(conn, message_id="a1", status="complete", content="done")
    assert not data.finish_message(conn, message_id="a1", status="error", content="no")
    stored = stored_message(conn, "a1")
    assert (stored["status"], stored["content"]) == ("complete", "done")
    assert data.count_streaming(conn, device_id="d1") == 0


def test_a_constraint_fails_as_sqlalchemys_error(conn: Connection) -> None:
    direct.run(conn, messages.insert(), live_answer("a1"))
    with pytest.raises(IntegrityError):
        direct.run(conn, messages.insert(), live_answer("a1"))


def test_a_default_computed_per_row_is_left_to_sqlalchemy(conn: Connection) -> None:
    counter = iter(range(100, 200))
    table = Table(
        "counted",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("n", Integer, default=lambda: next(counter)),
    )
    table.create(conn)
    insert = table.insert()
    direct.run(conn, insert, {"id": 1})
    direct.run(conn, insert, {"id": 2})
    assert direct._PLANS[(id(insert), ("id",), "sqlite")] is None  # SQLAlchemy's execution
    assert [tuple(r) for r in conn.execute(select(table).order_by(table.c.id))] == [
        (1, 100),
        (2, 101),
    ]


def test_a_value_computed_per_call_is_left_to_sqlalchemy(conn: Connection) -> None:
    counter = iter(range(7, 100))
    query = select(bindparam("n", callable_=lambda: next(counter), type_=Integer))
    assert direct.run(conn, query, {}).scalar() == 7
    assert direct.run(conn, query, {}).scalar() == 8  # not frozen in a plan
    assert direct._PLANS[(id(query), (), "sqlite")] is None
