"""ChunkWriter: one chunk per delta alone; merged under load; never reordered or lost."""

from __future__ import annotations

import asyncio

import orjson

from vedika.chat.chunks import ChunkWriter
from vedika.chat.coalescing import Coalescing
from vedika.chat.events import EventFactory
from vedika.scale.hub import MemoryHub


def make(window: float, live: list[int]) -> tuple[ChunkWriter, MemoryHub, list[str]]:
    hub = MemoryHub(retention=60)
    hub.open("m")
    parts: list[str] = []
    coalescing = Coalescing(window=window, min_streams=3, behind=0, live=live)
    writer = ChunkWriter(hub=hub, events=EventFactory("c", "m"), parts=parts, coalescing=coalescing)
    return writer, hub, parts


def published(hub: MemoryHub) -> list[dict]:
    return [orjson.loads(e.data) for e in hub._logs["m"].entries]


async def test_alone_every_delta_is_a_chunk() -> None:
    writer, hub, _parts = make(0.02, live=[1])
    for t in ("a", "b", "c"):
        writer.add(t)
    assert [(e["chunk_id"], e["content"]) for e in published(hub)] == [(1, "a"), (2, "b"), (3, "c")]


async def test_under_load_deltas_in_a_window_merge_in_order() -> None:
    writer, hub, parts = make(0.02, live=[1, 2, 3])
    for t in ("a", "b", "c"):
        writer.add(t)
    # "a" had no delta just before it: out at once; "b" and "c" wait for the window.
    assert [e["content"] for e in published(hub)] == ["a"]
    await asyncio.sleep(0.05)
    writer.add("d")  # the window since "c" is over: out at once, alone
    writer.add("e")  # right after "d": held
    writer.flush()  # the end of the answer: nothing may stay pending
    chunks = published(hub)
    assert [(e["chunk_id"], e["content"]) for e in chunks] == [
        (1, "a"),
        (2, "bc"),
        (3, "d"),
        (4, "e"),
    ]
    assert "".join(parts) == "abcde" and writer.chunk_id == 4
    assert writer.sizes == [1, 2, 1, 1]  # where each chunk ends, as the row stores it


async def test_under_load_an_answer_slower_than_the_window_is_never_held() -> None:
    # Deltas 30 ms apart against a 20 ms window: holding one could never merge it with
    # the next, only delay it.
    writer, hub, _ = make(0.02, live=[1, 2, 3])
    for t in ("x", "y", "z"):
        writer.add(t)
        assert published(hub)[-1]["content"] == t  # out at once
        await asyncio.sleep(0.03)
    assert [e["chunk_id"] for e in published(hub)] == [1, 2, 3]


async def test_window_zero_never_merges() -> None:
    writer, hub, _ = make(0, live=[1, 2, 3, 4])
    writer.add("x")
    writer.add("y")
    assert [e["content"] for e in published(hub)] == ["x", "y"]


def test_merging_starts_when_the_loop_is_behind_and_stops_when_it_catches_up() -> None:
    live = [1, 2, 3]
    coalescing = Coalescing(window=0.02, min_streams=3, behind=0.005, live=live)
    assert not coalescing.active()  # on time: every delta at once
    for _ in range(10):
        coalescing.note(0.001)
    assert not coalescing.active() and coalescing.lag < 0.005
    for _ in range(10):
        coalescing.note(0.030)  # 30 ms late, again and again: the CPU is the bottleneck
    assert coalescing.active()
    coalescing.note(0.004)  # under the threshold but above half of it: keeps merging
    assert coalescing.active()
    for _ in range(20):
        coalescing.note(0.0)
    assert not coalescing.active()
    for _ in range(10):
        coalescing.note(0.030)
    live.pop()  # behind, but too few answers live for merging to matter
    assert not coalescing.active()


async def test_the_loop_watch_sees_a_blocked_loop() -> None:
    import time

    coalescing = Coalescing(window=0.02, min_streams=1, behind=0.005, live=[1])
    coalescing.start()
    try:
        await asyncio.sleep(0.2)
        assert not coalescing.active()
        for _ in range(8):  # the loop blocked for 40 ms at a time
            time.sleep(0.04)  # noqa: ASYNC251  (blocking the loop is the point)
            await asyncio.sleep(0)
        await asyncio.sleep(0.06)
        assert coalescing.active() and coalescing.lag >= 0.005
    finally:
        await coalescing.close()
