"""ChunkWriter: one chunk per delta alone; merged under load; never reordered or lost."""

from __future__ import annotations

import asyncio

import orjson

from vedika.chat.chunks import ChunkWriter
from vedika.chat.events import EventFactory
from vedika.scale.hub import MemoryHub


def make(window: float, live: list[int]) -> tuple[ChunkWriter, MemoryHub, list[str]]:
    hub = MemoryHub(retention=60)
    hub.open("m")
    parts: list[str] = []
    writer = ChunkWriter(
        hub=hub, events=EventFactory("c", "m"), parts=parts, window=window, min_streams=3, live=live
    )
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
    assert published(hub) == []  # waiting for the window
    await asyncio.sleep(0.05)
    writer.add("d")
    writer.flush()  # the end of the answer: nothing may stay pending
    chunks = published(hub)
    assert [(e["chunk_id"], e["content"]) for e in chunks] == [(1, "abc"), (2, "d")]
    assert "".join(parts) == "abcd" and writer.chunk_id == 2


async def test_window_zero_never_merges() -> None:
    writer, hub, _ = make(0, live=[1, 2, 3, 4])
    writer.add("x")
    writer.add("y")
    assert [e["content"] for e in published(hub)] == ["x", "y"]
