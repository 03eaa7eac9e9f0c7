"""store.direct on PostgreSQL: a statement run on asyncpg under SQLAlchemy's adapter
must store and return exactly what SQLAlchemy's execution does, inside the caller's
transaction, and fail as SQLAlchemy fails."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import Connection, bindparam, select, text
from sqlalchemy.exc import IntegrityError

from tests.support.rows import NOW, first_conversation, live_answer, stored_message
from vedika.store import conversations as data
from vedika.store import direct
from vedika.store.engine import Store, make_engine, migrate
from vedika.store.tables import messages

pytestmark = pytest.mark.postgres


@pytest.fixture
async def store(fresh_pg: str) -> AsyncIterator[Store]:
    await asyncio.to_thread(migrate, fresh_pg)
    s = Store(make_engine(fresh_pg))
    await s.run_tx(first_conversation)
    try:
        yield s
    finally:
        await s.close()


async def test_an_insert_stores_what_sqlalchemy_stores(store: Store) -> None:
    insert = messages.insert()

    def write(conn: Connection) -> None:
        direct.run(conn, insert, live_answer("a1"))
        conn.execute(insert, live_answer("a2"))

    await store.run_tx(write)
    assert direct._PLANS[(id(insert), tuple(sorted(live_answer("a1"))), "postgresql")] is not None
    one, two = await store.run_tx(lambda c: (stored_message(c, "a1"), stored_message(c, "a2")))
    assert one == two
    assert one["routing"] == {"selected_model": "m", "reason": "fits", "confidence": 0.5}
    assert one["created_at"] == NOW
    assert one["chunk_count"] == 0 and one["input_tokens"] == 0  # the columns' defaults


async def test_a_select_returns_the_same_rows_by_name(store: Store) -> None:
    await store.run_tx(lambda c: c.execute(messages.insert(), live_answer("a1")))
    query = select(messages.c.id, messages.c.routing, messages.c.created_at).where(
        messages.c.conversation_id == bindparam("b_c")
    )

    def read(conn: Connection) -> tuple[Any, Any, Any]:
        mine = direct.run(conn, query, {"b_c": "c1"}).first()
        theirs = conn.execute(query, {"b_c": "c1"}).first()
        return mine, theirs, direct.run(conn, query, {"b_c": "nope"}).first()

    mine, theirs, none = await store.run_tx(read)
    assert tuple(mine) == tuple(theirs)
    assert mine.routing["reason"] == "fits"
    assert mine.created_at == NOW
    assert none is None


async def test_an_update_counts_its_rows(store: Store) -> None:
    await store.run_tx(lambda c: c.execute(messages.insert(), live_answer("a1")))

    def finish(conn: Connection) -> tuple[bool, bool, int]:
        first = data.finish_message(conn, message_id="a1", status="complete", content="done")
        again = data.finish_message(conn, message_id="a1", status="error", content="no")
        return first, again, data.count_streaming(conn, device_id="d1")

    assert await store.run_tx(finish) == (True, False, 0)
    stored = await store.run_tx(lambda c: stored_message(c, "a1"))
    assert (stored["status"], stored["content"]) == ("complete", "done")


async def test_its_statements_are_the_transactions(store: Store) -> None:
    """The first statement of a transaction run directly begins it: a failure after it
    rolls it back, where outside a transaction it would have been committed alone."""

    def write_then_fail(conn: Connection) -> None:
        direct.run(conn, messages.insert(), live_answer("a1"))
        raise RuntimeError("after the insert")

    with pytest.raises(RuntimeError):
        await store.run_tx(write_then_fail)
    rows = await store.run_tx(
        lambda c: c.execute(select(messages.c.id).where(messages.c.id == "a1")).all()
    )
    assert rows == []


async def test_a_constraint_fails_as_sqlalchemys_error_and_writes_nothing(store: Store) -> None:
    def twice(conn: Connection) -> None:
        direct.run(conn, messages.insert(), live_answer("a2"))
        direct.run(conn, messages.insert(), live_answer("a2"))

    with pytest.raises(IntegrityError):
        await store.run_tx(twice)
    rows = await store.run_tx(
        lambda c: c.execute(select(messages.c.id).where(messages.c.id == "a2")).all()
    )
    assert rows == []
    # The connection the failure happened on is still good for the next transaction.
    await store.run_tx(lambda c: direct.run(c, messages.insert(), live_answer("a3")))
    assert (await store.run_tx(lambda c: stored_message(c, "a3")))["status"] == data.ASSISTANT_LIVE


async def test_a_single_write_runs_in_autocommit_on_the_point_connections(store: Store) -> None:
    """Store.write_one (an answer's ending) on asyncpg itself: its row count, its
    values stored as SQLAlchemy stores them, its errors SQLAlchemy's."""
    await store.run_tx(lambda c: c.execute(messages.insert(), live_answer("a1")))
    finish = (
        messages.update()
        .where(messages.c.id == bindparam("b_id"), messages.c.status == data.ASSISTANT_LIVE)
        .values(status=bindparam("b_status"), citations=bindparam("b_citations"))
    )
    params = {"b_id": "a1", "b_status": "complete", "b_citations": [{"url": "https://x"}]}
    assert await store.write_one(finish, params) == 1
    assert await store.write_one(finish, params) == 0  # no longer streaming
    assert direct._PLANS[(id(finish), tuple(sorted(params)), "postgresql")] is not None
    stored = await store.run_tx(lambda c: stored_message(c, "a1"))
    assert (stored["status"], stored["citations"]) == ("complete", [{"url": "https://x"}])
    with pytest.raises(IntegrityError):
        await store.write_one(messages.insert(), live_answer("a1"))


@pytest.mark.parametrize("cancels", [1, 2])
async def test_a_transaction_cancelled_midway_writes_nothing_and_gives_its_connection_back(
    store: Store, cancels: int
) -> None:
    """Store.run_tx runs the whole transaction in one greenlet (checkout, statements,
    commit, return). Cancelled while a statement runs (once, or again during the
    rollback), nothing of it is stored and the pool gets its connection back."""

    def slow(conn: Connection) -> None:
        direct.run(conn, messages.insert(), live_answer("a9"))
        conn.execute(text("SELECT pg_sleep(2)"))

    task = asyncio.create_task(store.run_tx(slow))
    await asyncio.sleep(0.3)
    for _ in range(cancels):
        task.cancel()
        await asyncio.sleep(0)
    with pytest.raises(asyncio.CancelledError):
        await task
    pool: Any = store.engine.sync_engine.pool
    for _ in range(100):
        if pool.checkedout() == 0:
            break
        await asyncio.sleep(0.05)
    assert pool.checkedout() == 0
    rows = await store.run_tx(
        lambda c: c.execute(select(messages.c.id).where(messages.c.id == "a9")).all()
    )
    assert rows == []
