"""A resume from the store after chunk N (issue 16): the text after chunk N once, then
the terminal event, for an answer whose events the stream hub no longer holds.

The row stores where each chunk ends (`messages.chunk_ends`, migration 0012), written
by the flush, the settle and the reaper. Each case runs on SQLite and PostgreSQL:
a completed answer past the hub's retention; an answer interrupted by a SIGKILL and
resumed on the restarted server; the reaper storing the chunks the hub held after the
last flush (the crash path); a row without boundaries (written before 0012), which
keeps the terminal event only; and the migration, up and down.
"""

from __future__ import annotations

import asyncio
import signal
import types
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import DATABASES, a_database
from tests.support.client import Api, Socket, assert_invariants, chunks_of, text_of
from tests.support.rows import streaming_answer
from tests.support.server import serving
from tests.test_branches import _alembic  # upgrade or downgrade to a revision
from vedika import protocol as p
from vedika.chat.events import EventFactory
from vedika.chat.reaper import Reaper
from vedika.chat.streams import stored_events, subscribe
from vedika.scale.hub import MemoryHub
from vedika.store import conversations as data
from vedika.store.engine import Store, make_engine, migrate

NO_RETENTION = {"VEDIKA_STREAM_RETENTION_SECONDS": "0"}  # every replay from the store


@pytest.fixture(params=DATABASES)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with a_database(request.param, tmp_path) as url:
        yield url


def _replay(events: list[dict[str, Any]], stored: dict[str, Any]) -> dict[str, Any]:
    """The events of a resume from the store after N < chunk_count chunks: one chunk,
    numbered as the last, then the terminal event. Returns the terminal event."""
    end = assert_invariants(events, first_chunk=stored["chunk_count"], expect_start=False)
    assert [e["type"] for e in events] == ["content_chunk", end["type"]]
    return end


async def _set(url: str, sql: str, **values: Any) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(sql), values)
    finally:
        await engine.dispose()


# ---------------------------------------------------------------- over a real server


async def test_a_completed_answer_resumed_after_n_gets_the_rest_once(
    db: str, tmp_path: Path, upstream, models_file
) -> None:
    with serving(tmp_path, upstream, models_file, db=db, **NO_RETENTION) as srv:
        async with Api(srv.url) as api:
            first = await api.ask("tell me the rest", model_id="fake-steady", limit=3)
            cid, mid = first[0]["conversation_id"], first[0]["message_id"]
            stored = await api.wait_status(cid, mid)
            assert stored["status"] == "complete" and stored["chunk_count"] > 3
            rest = await api.ask(message_id=mid, resume_from=3)
            end = _replay(rest, stored)
            assert end["type"] == "stream_complete"
            assert text_of(first) + text_of(rest) == stored["content"] == end["full_response"]
            assert end["total_chunks"] == stored["chunk_count"]
            # The same over SSE; and a resume after the replayed chunk is at the end.
            async with httpx.AsyncClient(base_url=srv.url, headers=api.http.headers) as h:
                sse = (await h.get(f"/ai/chat/stream/{mid}", params={"after": 3})).text
            assert sse.count("event: content_chunk") == 1
            assert f"id: {stored['chunk_count']}\nevent: content_chunk" in sse
            last = await api.ask(message_id=mid, resume_from=stored["chunk_count"])
            assert [e["type"] for e in last] == ["stream_complete"]
            # From the start: the whole text as one chunk, as before.
            whole = await api.ask(message_id=mid)
            assert text_of(whole) == stored["content"] and len(chunks_of(whole)) == 1

            # A row stored before migration 0012 has no boundaries: terminal only.
            await _set(db, "UPDATE messages SET chunk_ends = NULL WHERE id = :id", id=mid)
            old = await api.ask(message_id=mid, resume_from=3)
            assert [e["type"] for e in old] == ["stream_complete"]
            assert old[-1]["full_response"] == stored["content"]


@pytest.mark.redis
@pytest.mark.postgres
async def test_over_redis_a_resume_after_the_stream_expired_gets_the_rest_once(
    fresh_pg: str, tmp_path: Path, upstream, models_file
) -> None:
    """The Redis hub: once an answer's Redis stream has expired (its retention is at
    least 1 s), a resume after chunk N comes from the store, the rest once."""
    from redis.asyncio import Redis

    from vedika.scale.redis_hub import key_for

    redis = {"VEDIKA_REDIS_URL": "redis://127.0.0.1:6379/0"}
    with serving(tmp_path, upstream, models_file, db=fresh_pg, **redis, **NO_RETENTION) as srv:
        async with Api(srv.url) as api:
            first = await api.ask("tell me the rest over redis", model_id="fake-steady", limit=3)
            cid, mid = first[0]["conversation_id"], first[0]["message_id"]
            stored = await api.wait_status(cid, mid)
            assert stored["status"] == "complete" and stored["chunk_count"] > 3
            client = Redis.from_url(redis["VEDIKA_REDIS_URL"])
            try:
                for _ in range(100):  # the stream expires a second after the answer ends
                    if not await client.exists(key_for(mid)):
                        break
                    await asyncio.sleep(0.05)
                assert not await client.exists(key_for(mid))
            finally:
                await client.aclose()
            rest = await api.ask(message_id=mid, resume_from=3)
            end = _replay(rest, stored)
            assert text_of(first) + text_of(rest) == stored["content"] == end["full_response"]


async def test_an_interrupted_answer_resumed_on_a_fresh_process_gets_the_rest_once(
    db: str, tmp_path: Path, upstream, models_file
) -> None:
    """SIGKILL mid-answer, restart on the same database: the client that saw 3 chunks
    gets the stored text after them, once, then the interrupted terminal event."""
    with serving(tmp_path, upstream, models_file, db=db) as srv:
        async with Api(srv.url) as api:
            first = await api.ask("long slow answer", model_id="fake-slow", limit=3)
            cid, mid = first[0]["conversation_id"], first[0]["message_id"]
            async with Socket(srv.ws_url) as watcher:  # until chunk 8 went out
                await watcher.send_chat(api, message_id=mid, resume_from=3)
                await watcher.until_terminal(limit=5)
            await asyncio.sleep(0.6)  # two flushes (0.3 s) after it
            srv.stop(signal.SIGKILL)
            srv.start()
            stored = await api.wait_status(cid, mid, timeout=5)
            assert stored["status"] == "interrupted" and stored["chunk_count"] >= 8
            rest = await api.ask(message_id=mid, resume_from=3)
            end = _replay(rest, stored)
            assert end["type"] == "stream_error" and end["code"] == "interrupted"
            assert text_of(first) + text_of(rest) == stored["content"]


# ---------------------------------------------------------------- the crash path

CHUNKS = ["Alpha ", "beta, ", "γάμμα ", "", "delta ", "and the end."]


@pytest.fixture
async def store(db: str) -> AsyncIterator[Store]:
    await asyncio.to_thread(migrate, db)  # alembic runs its own event loop
    s = Store(make_engine(db))
    yield s
    await s.close()


async def _streaming_answer(store: Store, *, flushed: int, ends: bool = True) -> str:
    """A `streaming` answer whose instance died after its flush of chunks 1..`flushed`
    (with their boundaries, or without them: a row of a version before 0012)."""
    _cid, mid = await streaming_answer(store)
    now = p.utcnow()
    text = "".join(CHUNKS[:flushed])
    sizes = data.encode_chunk_sizes([len(c) for c in CHUNKS[:flushed]])
    row = {"b_id": mid, "b_content": text, "b_chunks": flushed, "b_now": now}
    async with store.tx() as conn:
        await data.save_partials(conn, rows=[row | {"b_ends": sizes if ends else None}])
    return mid


def _reaper(store: Store, hub: MemoryHub) -> Reaper:
    dead = types.SimpleNamespace(is_alive=lambda _mid: False)
    return Reaper(store=store, hub=hub, generations=dead, interval=60, stale_after=0)  # type: ignore[arg-type]


async def _row(store: Store, mid: str) -> data.StoredMessage:
    async with store.read() as conn:
        row = await data.find_message(conn, message_id=mid, device_id="dev")
    assert row is not None
    return row


def _events(entries: list[Any]) -> list[dict[str, Any]]:
    import orjson

    return [orjson.loads(e.data) for e in entries]


async def test_a_resume_after_the_reaper_stored_the_hub_chunks_gets_the_rest_once(
    store: Store,
) -> None:
    """The dead instance flushed chunks 1..2 and its hub (Redis, in production) holds
    1..6; the reaper stores all six with their boundaries. Once the hub's log is gone,
    a client that saw chunks 1..N gets chunks N+1..6 as one chunk, then the terminal."""
    mid = await _streaming_answer(store, flushed=2)
    hub = MemoryHub(retention=60)
    hub.open(mid)
    events = EventFactory("c", mid)
    for n, text in enumerate(CHUNKS, 1):
        hub.publish(mid, events.chunk(text, n))
    assert await _reaper(store, hub).reap(everything=True) == 1
    hub.forget(mid)
    row = await _row(store, mid)
    assert row.status is p.MessageStatus.INTERRUPTED
    assert row.content == "".join(CHUNKS) and row.chunk_sizes() == [len(c) for c in CHUNKS]
    for after in range(1, len(CHUNKS)):
        resumed = subscribe(hub, _reaper(store, hub), row, after, "dev")
        got = [e async for batch in resumed for e in batch]
        replay = _events(got)
        assert [e["type"] for e in replay] == ["content_chunk", "stream_error"]
        assert replay[0]["chunk_id"] == len(CHUNKS)
        assert "".join(CHUNKS[:after]) + replay[0]["content"] == row.content
    # After the last chunk, and from a row without boundaries: the terminal event only.
    assert [e.type for e in stored_events(row, len(CHUNKS))] == ["stream_error"]
    assert [e.type for e in stored_events(row.but(chunk_ends=None), 2)] == ["stream_error"]


async def test_a_streaming_row_without_boundaries_is_resumed_as_before(store: Store) -> None:
    """Flushed by a version before 0012 (NULL boundaries), reaped on resume: what the
    hub held is stored, its boundaries stay unknown, and the resume gets the terminal
    event only."""
    mid = await _streaming_answer(store, flushed=2, ends=False)
    hub = MemoryHub(retention=60)
    hub.open(mid)
    events = EventFactory("c", mid)
    for n, text in enumerate(CHUNKS, 1):
        hub.publish(mid, events.chunk(text, n))
    await _reaper(store, hub).reap(everything=True)
    row = await _row(store, mid)
    assert row.content == "".join(CHUNKS) and row.chunk_ends is None
    assert [e.type for e in stored_events(row, 2)] == ["stream_error"]


# ---------------------------------------------------------------- the migration


async def test_the_migration_adds_and_drops_the_boundaries(db: str) -> None:
    async def columns() -> set[str]:
        engine = create_async_engine(db)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda c: {col["name"] for col in sa.inspect(c).get_columns("messages")}
                )
        finally:
            await engine.dispose()

    await asyncio.to_thread(_alembic, db, "0011")
    assert "chunk_ends" not in await columns()
    await asyncio.to_thread(_alembic, db, "0012")
    assert "chunk_ends" in await columns()
    await asyncio.to_thread(_alembic, db, "0011", down=True)
    assert "chunk_ends" not in await columns()
    if db.startswith("sqlite"):  # dropped in place: the full-text triggers (0008) stay
        engine = create_async_engine(db)
        async with engine.connect() as conn:
            triggers = await conn.execute(
                sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            )
            assert {"messages_fts_insert", "messages_fts_finish"} <= set(triggers.scalars())
        await engine.dispose()
    await asyncio.to_thread(_alembic, db, "head")
    assert "chunk_ends" in await columns()
