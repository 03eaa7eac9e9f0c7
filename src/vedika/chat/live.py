"""The text of an answer still being written, as far as it has streamed.

The stored row holds the text of the last flush (every `VEDIKA_FLUSH_SECONDS`) and the
number of chunks it covers. A client that reloads mid-answer and only reads
`GET /ai/conversations/{id}` (the original web client opens no socket then) must see
what has streamed so far, not that flush: the stored text plus the chunks published
after it, read from the stream hub (Redis when several instances run, so any
instance answers the same), or straight from the generation when it runs here.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson

from vedika.chat.generation import Generations
from vedika.scale.hub import Entry, StreamHub
from vedika.scale.redis_hub import RedisUnavailable

FIRST_BATCH_SECONDS = 0.5  # the hub's replay of what exists is immediate; a miss is not
NEXT_BATCH_SECONDS = 0.02  # past the replay, anything later is the live tail: stop


async def live_text(
    hub: StreamHub, generations: Generations, message_id: str, stored: str, chunks: int
) -> tuple[str, int]:
    """(text streamed so far, its chunk count) of a `streaming` answer."""
    gen = generations.live.get(message_id)
    if gen is not None:
        return gen.published_text(), gen.chunk_id
    extra: list[str] = []
    last = chunks
    for entry in await _replay(hub, message_id, chunks):
        if entry.type == "content_chunk" and entry.chunk_id == last + 1:
            extra.append(orjson.loads(entry.data)["content"])
            last = entry.chunk_id
    return stored + "".join(extra), last


async def _replay(hub: StreamHub, message_id: str, after: int) -> list[Entry]:
    """The events the hub holds after chunk `after`, without waiting for new ones."""
    out: list[Entry] = []
    stream: Any = hub.subscribe(message_id, after)
    timeout = FIRST_BATCH_SECONDS
    try:
        while True:
            try:
                batch = await asyncio.wait_for(anext(stream), timeout)
            except (StopAsyncIteration, TimeoutError):
                return out
            out.extend(batch)
            timeout = NEXT_BATCH_SECONDS
    except RedisUnavailable:
        return out  # the stored text is what there is
    finally:
        with contextlib.suppress(Exception):
            await stream.aclose()
