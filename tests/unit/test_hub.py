"""MemoryHub: replay then live tail, resume after N, terminal ends every subscriber."""

from __future__ import annotations

import asyncio

from vedika.scale.hub import Entry, MemoryHub


def chunk(i: int) -> Entry:
    return Entry("content_chunk", i, f"c{i}")


async def collect(hub: MemoryHub, mid: str, after: int = 0) -> list[Entry]:
    out: list[Entry] = []
    async for batch in hub.subscribe(mid, after):
        out.extend(batch)
    return out


async def test_replay_and_live_tail_in_order() -> None:
    hub = MemoryHub(retention=60)
    hub.open("m")
    hub.publish("m", Entry("stream_start", 0, "start"))
    hub.publish("m", chunk(1))
    early = asyncio.create_task(collect(hub, "m"))
    resumed = asyncio.create_task(collect(hub, "m", after=1))
    ahead = asyncio.create_task(collect(hub, "m", after=3))  # came before chunk 3 existed
    await asyncio.sleep(0)
    for i in range(2, 6):
        hub.publish("m", chunk(i))
        await asyncio.sleep(0)
    hub.publish("m", Entry("stream_complete", 5, "done"))
    full = await early
    assert [e.data for e in full] == ["start", "c1", "c2", "c3", "c4", "c5", "done"]
    assert [e.data for e in await resumed] == ["c2", "c3", "c4", "c5", "done"]
    assert [e.data for e in await ahead] == ["c4", "c5", "done"]
    # After the end, a newcomer gets the whole log at once and finishes.
    assert [e.data for e in await collect(hub, "m", after=4)] == ["c5", "done"]


async def test_publish_after_terminal_is_ignored_and_unknown_is_empty() -> None:
    hub = MemoryHub(retention=60)
    hub.open("m")
    hub.publish("m", Entry("stream_error", 0, "err"))
    hub.publish("m", chunk(1))
    assert [e.data for e in await collect(hub, "m")] == ["err"]
    assert await collect(hub, "unknown") == []


async def test_forget_releases_waiters() -> None:
    hub = MemoryHub(retention=60)
    hub.open("m")
    waiting = asyncio.create_task(collect(hub, "m"))
    await asyncio.sleep(0)
    hub.forget("m")
    assert await asyncio.wait_for(waiting, 1) == []
