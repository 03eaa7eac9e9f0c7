"""RedisHub on a real Redis: local subscribers get only what Redis acknowledged.

The generating instance's own clients must never hold an entry the Redis stream does
not (a SIGKILL would leave them with a chunk no reaper stores), and once another
instance fenced the stream, nothing more from here reaches them but its terminal event.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis
from redis.asyncio import Redis

from vedika.scale.hub import Entry
from vedika.scale.redis_hub import RedisHub, key_for

REDIS = "redis://127.0.0.1:6379/0"

pytestmark = pytest.mark.redis


def chunk(i: int) -> Entry:
    return Entry("content_chunk", i, f'{{"content":"c{i}"}}')


@pytest.fixture
async def hubs() -> AsyncIterator[tuple[RedisHub, RedisHub]]:
    made: list[RedisHub] = []
    for _ in range(2):
        hub = RedisHub(writer=Redis.from_url(REDIS), reader=Redis.from_url(REDIS), retention=60)
        hub.start()
        made.append(hub)
    yield made[0], made[1]
    for hub in made:
        await hub.close()
        await hub.writer.aclose()
        await hub.reader.aclose()


async def test_a_local_subscriber_never_gets_an_entry_before_redis_has_it(hubs) -> None:
    hub, _ = hubs
    mid = f"order-{uuid.uuid4().hex}"
    look = redis.Redis.from_url(REDIS)  # blocking on purpose: Redis as it is on arrival
    hub.open(mid)
    early: list[str] = []

    async def follow() -> list[Entry]:
        seen: list[Entry] = []
        async for batch in hub.subscribe(mid):
            stored = {f[b"d"].decode() for _id, f in look.xrange(key_for(mid))}
            early.extend(e.data for e in batch if e.data not in stored)
            seen.extend(batch)
        return seen

    task = asyncio.create_task(follow())
    await asyncio.sleep(0)
    hub.publish(mid, Entry("stream_start", 0, "start"))
    for i in range(1, 301):
        hub.publish(mid, chunk(i))
        if i % 7 == 0:
            await asyncio.sleep(0)
    hub.publish(mid, Entry("stream_complete", 300, "done"))
    seen = await asyncio.wait_for(task, 10)
    look.close()
    assert early == []
    assert [e.data for e in seen] == ["start"] + [chunk(i).data for i in range(1, 301)] + ["done"]


async def test_after_a_fence_only_the_other_instance_terminal_reaches_local_subscribers(
    hubs,
) -> None:
    hub, other = hubs
    superseded: list[set[str]] = []
    hub.on_superseded = superseded.append
    mid = f"fence-{uuid.uuid4().hex}"
    hub.open(mid)
    for i in range(1, 4):
        hub.publish(mid, chunk(i))
    await hub.barrier()
    seen: list[Entry] = []

    async def follow() -> None:
        async for batch in hub.subscribe(mid):
            seen.extend(batch)

    task = asyncio.create_task(follow())
    await other.fence(mid)  # another instance's reaper
    for i in range(4, 6):
        hub.publish(mid, chunk(i))
    await hub.barrier()
    assert superseded == [{mid}]
    # The reaper stores what Redis holds (no fence, none of the refused chunks) ...
    assert [e.data for e in await other.read(mid)] == [chunk(i).data for i in range(1, 4)]
    # ... and its terminal event is what the subscriber here gets, right after chunk 3.
    await other.finish_foreign(mid, lambda last: Entry("stream_error", last, "reaped"))
    await asyncio.wait_for(task, 10)
    assert [e.data for e in seen] == [chunk(i).data for i in range(1, 4)] + ["reaped"]
    hub.publish(mid, chunk(6))  # the generation is told to stop; this goes nowhere
    await hub.barrier()
    assert [e.data for e in await other.read(mid)][-1] == "reaped"
