"""What the SQLite store does for its speed, checked where it could silently stop or
go wrong: which connection a write gets, and the full-text index written in batches
(vedika.store.search_queue)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from tests.conftest import sqlite_url
from tests.test_branches import _alembic  # upgrade or downgrade to a revision
from vedika.store import conversations as data
from vedika.store import organise, search_queue
from vedika.store.engine import Store, make_engine, migrate


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = sqlite_url(tmp_path / "vedika.db")
    migrate(url)
    return url


@pytest.fixture
async def store(url: str) -> AsyncIterator[Store]:
    store = Store(make_engine(url))
    try:
        yield store
    finally:
        await store.close()


def _raw(conn: Connection) -> int:
    return id(conn.connection.dbapi_connection)


async def test_writes_one_after_another_reuse_the_connection_used_last(store: Store) -> None:
    """In WAL mode a connection drops its page cache when another one wrote since its
    last use: the pool hands out the connection used last, so back-to-back writes keep
    theirs warm (handed round in turn, a turn read its pages again, 110 preads)."""
    release = asyncio.Event()

    async def hold() -> None:
        async with store.read() as conn:
            await conn.exec_driver_sql("select 1")
            await release.wait()

    holders = [asyncio.create_task(hold()) for _ in range(4)]
    await asyncio.sleep(0.2)  # the pool now has four connections open
    release.set()
    await asyncio.gather(*holders)
    used = [await store.run_tx(_raw) for _ in range(4)]
    assert len(set(used)) == 1, used


async def test_write_transactions_hold_one_connection_and_replace_a_closed_one(
    store: Store,
) -> None:
    """run_tx holds a connection of the pool for writes (a checkout and return per
    transaction cost more than most statements); one that stopped is replaced, and
    what was written stays."""
    await store.run_tx(lambda conn: _conversation(conn, "c1"))
    writer = store._writer
    assert writer is not None and writer.usable()
    assert await store.run_tx(_raw) == await store.run_tx(_raw)
    assert store._writer is writer
    await writer.aio.close()  # as a failure of its thread would leave it
    assert not writer.usable()
    await store.run_tx(lambda conn: _conversation(conn, "c2"))
    assert store._writer is not writer and store._writer is not None
    async with store.read() as conn:
        ids = (await conn.execute(text("SELECT id FROM conversations ORDER BY id"))).scalars()
        assert list(ids) == ["c1", "c2"]


async def test_a_writer_given_back_leaves_its_connection_usable(store: Store) -> None:
    """The pool hands the connection used last (LIFO): the writer's, once given back."""
    await store.run_tx(lambda conn: _conversation(conn, "c1"))
    writer = store._writer
    assert writer is not None
    store._writer = None
    await writer.close()
    async with store.read() as conn:
        assert await store.run_tx(_raw) != 0
        count = (await conn.execute(text("SELECT count(*) FROM conversations"))).scalar()
        assert count == 1


# ---------------------------------------------------------------- the full-text queue

T0 = datetime(2026, 12, 7, 9, 0, 0, tzinfo=UTC)


def _conversation(conn: Connection, cid: str) -> None:
    data.create_conversation(
        conn, conversation_id=cid, device_id="dev-a", title="untitled", model="m", now=T0
    )


def _message(conn: Connection, mid: str, cid: str, content: str, status: str) -> None:
    data.insert_message(
        conn,
        id=mid,
        conversation_id=cid,
        role="assistant" if status == data.ASSISTANT_LIVE else "user",
        content=content,
        status=status,
        created_at=T0,
        updated_at=T0,
    )


def _state(conn: Connection) -> tuple[list[str], int]:
    """(the message ids in the index, how many are queued)."""
    indexed = conn.execute(text("SELECT message_id FROM messages_fts ORDER BY rowid"))
    queued = conn.execute(text("SELECT count(*) FROM messages_search_queue")).scalar()
    return list(indexed.scalars()), int(queued or 0)


async def _found(store: Store, q: str) -> list[str]:
    rows, _ = await organise.page(
        store, device_id="dev-a", limit=10, cursor=None, q=q, archived=False
    )
    return [r.id for r in rows]


async def test_a_search_finds_what_is_still_queued(store: Store) -> None:
    def write(conn: Connection) -> None:
        _conversation(conn, "c1")
        _message(conn, "q1", "c1", "what about xylophones", "complete")

    await store.run_tx(write)
    assert await store.run_tx(_state) == ([], 1)  # queued, not indexed
    assert await _found(store, "xyloph") == ["c1"]
    assert await store.run_tx(_state) == (["q1"], 0)
    assert await _found(store, "xyloph") == ["c1"]  # and once only


async def test_an_answer_is_queued_when_it_leaves_streaming(store: Store) -> None:
    def write(conn: Connection) -> None:
        _conversation(conn, "c1")
        _message(conn, "a1", "c1", "half of a marimba", data.ASSISTANT_LIVE)

    await store.run_tx(write)
    assert await store.run_tx(_state) == ([], 0)
    assert await _found(store, "marimba") == []
    await store.run_tx(
        lambda c: data.finish_message(
            c, message_id="a1", status="complete", content="all of a marimba"
        )
    )
    assert await store.run_tx(_state) == ([], 1)
    assert await _found(store, "marimba") == ["c1"]


async def test_a_message_deleted_while_queued_leaves_the_queue(store: Store) -> None:
    def write(conn: Connection) -> None:
        _conversation(conn, "c1")
        _message(conn, "q1", "c1", "ocarina one", "complete")
        _message(conn, "q2", "c1", "ocarina two", "complete")

    await store.run_tx(write)
    await store.run_tx(lambda c: c.execute(text("DELETE FROM messages WHERE id = 'q1'")))
    assert await store.run_tx(_state) == ([], 1)
    await search_queue.catch_up(store)
    assert await store.run_tx(_state) == (["q2"], 0)
    await store.run_tx(lambda c: c.execute(text("DELETE FROM messages WHERE id = 'q2'")))
    assert await store.run_tx(_state) == ([], 0)  # an indexed one leaves the index
    assert await _found(store, "ocarina") == []


async def test_the_queue_goes_in_by_batches(store: Store) -> None:
    def write(conn: Connection) -> None:
        _conversation(conn, "c1")
        for i in range(5):
            _message(conn, f"q{i}", "c1", f"kalimba {i}", "complete")

    await store.run_tx(write)
    moved = [await store.run_tx(lambda c: search_queue.index_batch(c, 2)) for _ in range(4)]
    assert moved == [2, 2, 1, 0]
    assert await store.run_tx(_state) == ([f"q{i}" for i in range(5)], 0)


async def test_the_indexer_empties_the_queue_on_its_own(store: Store) -> None:
    indexer = search_queue.SearchIndexer(store, every=0.05)
    indexer.start()
    try:

        def write(conn: Connection) -> None:
            _conversation(conn, "c1")
            _message(conn, "q1", "c1", "a theremin", "complete")

        await store.run_tx(write)
        for _ in range(100):
            if await store.run_tx(_state) == (["q1"], 0):
                break
            await asyncio.sleep(0.02)
        assert await store.run_tx(_state) == (["q1"], 0)
    finally:
        await indexer.close()


async def test_the_migration_queues_and_its_downgrade_indexes_the_queue(tmp_path: Path) -> None:
    """0013 keeps what 0008's triggers indexed; going back, what is still queued goes
    into the index and the direct triggers are back."""
    url = sqlite_url(tmp_path / "vedika.db")
    await asyncio.to_thread(_alembic, url, "0012")
    engine = make_engine(url)
    store = Store(engine)

    async def indexed() -> list[str]:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT message_id FROM messages_fts ORDER BY rowid"))
            return list(rows.scalars())

    try:

        def before(conn: Connection) -> None:
            _conversation(conn, "c1")
            _message(conn, "q1", "c1", "a bassoon", "complete")

        await store.run_tx(before)
        assert await indexed() == ["q1"]  # 0008's trigger, at once
        # Every connection closed before each migration, the writer's too: it is held
        # out of the pool, so engine.dispose() left it open (to be collected later,
        # unclosed, its thread then failing against a closed event loop in some other
        # test: CI, once).
        await store.close()
        await asyncio.to_thread(_alembic, url, "0013")
        await store.run_tx(lambda c: _message(c, "q2", "c1", "a second bassoon", "complete"))
        assert await store.run_tx(_state) == (["q1"], 1)
        await store.close()
        await asyncio.to_thread(_alembic, url, "0012", down=True)
        assert await indexed() == ["q1", "q2"]
        await store.run_tx(lambda c: _message(c, "q3", "c1", "a third bassoon", "complete"))
        assert await indexed() == ["q1", "q2", "q3"]
    finally:
        await store.close()


async def test_a_search_runs_when_the_queue_cannot_be_indexed(store: Store) -> None:
    """A search is a read: when the queue cannot go into the index (here its table is
    gone; a full disk is the real case) it still answers, from the index as it is."""

    def write(conn: Connection) -> None:
        _conversation(conn, "c1")
        data.create_conversation(
            conn,
            conversation_id="c2",
            device_id="dev-a",
            title="glockenspiel",
            model="m",
            now=T0,
        )
        _message(conn, "q1", "c1", "a glockenspiel in the text", "complete")

    await store.run_tx(write)
    await store.run_tx(lambda c: c.execute(text("DROP TABLE messages_search_queue")))
    assert await _found(store, "glockenspiel") == ["c2"]  # the title; q1 never indexed
