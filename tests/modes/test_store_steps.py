"""Steps are stored by the periodic flush while an answer streams, on both databases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Connection

from tests.conftest import DATABASES, drop_pg_database, fresh_pg_database
from vedika.protocol import utcnow
from vedika.store import conversations as data
from vedika.store.engine import Store, make_engine, migrate


@pytest.fixture(params=DATABASES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/v.db"
    else:
        url = await asyncio.to_thread(fresh_pg_database)
    await asyncio.to_thread(migrate, url)
    s = Store(make_engine(url))
    try:
        yield s
    finally:
        await s.close()
        if request.param == "postgres":
            await asyncio.to_thread(drop_pg_database, url)


async def test_flushed_steps_land_only_on_live_answers(store: Store) -> None:
    now = utcnow()

    def write(conn: Connection) -> None:
        data.create_conversation(
            conn, conversation_id="c1", device_id="d1", title="t", model="m", now=now
        )
        for mid, status in (("live", "streaming"), ("done", "complete")):
            data.insert_message(
                conn,
                id=mid,
                conversation_id="c1",
                role="assistant",
                content="",
                status=status,
                created_at=now,
                updated_at=now,
            )

    await store.run_tx(write)
    steps = [
        {
            "type": "tool_call",
            "chunk": 0,
            "call_id": "a",
            "name": "calculator",
            "arguments": {"expression": "1+1"},
            "step": 1,
        },
        {
            "type": "tool_result",
            "chunk": 0,
            "call_id": "a",
            "name": "calculator",
            "ok": True,
            "content": "1+1 = 2",
            "step": 1,
            "truncated": False,
        },
    ]
    async with store.tx() as conn:
        await data.save_steps(
            conn, rows=[{"b_id": "live", "b_steps": steps}, {"b_id": "done", "b_steps": steps}]
        )
    async with store.read() as conn:
        rows = {r.id: r for r in await data.list_messages(conn, conversation_id="c1")}
    assert rows["live"].steps == steps
    assert rows["done"].steps is None  # a finished answer is written once, at the end
