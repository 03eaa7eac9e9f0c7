"""`GET /ai/conversations/{id}` while an answer streams returns the text streamed so far,
on any instance, not the last flush (issue 13, item 3: the original web client opens
no socket after a reload and shows only what this GET returns).

The flush interval is set to 30 s here, so the stored text stays empty for the whole
test: everything seen comes from the generation or the stream hub.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import drop_pg_database, fresh_pg_database
from tests.fakes.upstream import FakeUpstream, fake_reply
from tests.support.client import Api
from tests.support.server import VedikaServer, serving

SLOW = {"VEDIKA_FLUSH_SECONDS": "30", "VEDIKA_HEARTBEAT_STALE_SECONDS": "120"}
MODEL = "fake-slow"  # 200 ms a token: the answer below takes about 10 s


@pytest.fixture(scope="module")
def single(tmp_path_factory, upstream: FakeUpstream, models_file: Path) -> Iterator[VedikaServer]:
    tmp = tmp_path_factory.mktemp("live-single")
    with serving(tmp, upstream, models_file, **SLOW) as srv:
        yield srv


@pytest.fixture(scope="module")
def two(tmp_path_factory, upstream: FakeUpstream, models_file: Path) -> Iterator[tuple]:
    tmp = tmp_path_factory.mktemp("live-two")
    pg = fresh_pg_database()
    shared = {"VEDIKA_REDIS_URL": "redis://127.0.0.1:6379/0", **SLOW}
    try:
        with (
            serving(tmp, upstream, models_file, db=pg, log="a.log", **shared) as a,
            serving(tmp, upstream, models_file, db=pg, log="b.log", **shared) as b,
        ):
            yield a, b
    finally:
        drop_pg_database(pg)


async def _seen(base_url: str, session_id: str, conversation_id: str, message_id: str) -> dict:
    headers = {"Authorization": f"Bearer {session_id}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as h:
        conv = (await h.get(f"/ai/conversations/{conversation_id}")).json()
    return next(m for m in conv["messages"] if m["message_id"] == message_id)


async def _check_growing(starter: VedikaServer, reader: VedikaServer) -> None:
    async with Api(starter.url) as api:
        question = " ".join(f"word{i}" for i in range(40))
        started = await api.start(question, model_id=MODEL)
        cid, mid = started["conversation_id"], started["message_id"]
        full = "".join(fake_reply(MODEL, question))
        await asyncio.sleep(1.5)
        first = await _seen(reader.url, api.session_id, cid, mid)
        await asyncio.sleep(1.0)
        second = await _seen(reader.url, api.session_id, cid, mid)
        assert first["status"] == second["status"] == "streaming"
        assert 0 < len(first["content"]) < len(second["content"]) < len(full)
        assert full.startswith(second["content"])
        assert second["chunk_count"] > first["chunk_count"] > 0
        await api.http.post("/ai/chat/stop", json={"message_id": mid})


async def test_live_text_on_the_generating_instance(single: VedikaServer) -> None:
    await _check_growing(single, single)


@pytest.mark.postgres
@pytest.mark.redis
async def test_live_text_on_another_instance(two: tuple[VedikaServer, VedikaServer]) -> None:
    a, b = two
    await _check_growing(a, b)
