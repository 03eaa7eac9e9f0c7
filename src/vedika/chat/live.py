"""The text of an answer still being written, as far as it has streamed.

The stored row holds the text of the last flush (every `VEDIKA_FLUSH_SECONDS`) and the
number of chunks it covers. A client that reloads mid-answer and only reads
`GET /ai/conversations/{id}` (the original web client opens no socket then) must see
what has streamed so far, not that flush: the stored text plus the chunks published
after it, read from the stream hub (Redis when several instances run, so any
instance answers the same), or straight from the generation when it runs here.
"""

from __future__ import annotations

from vedika.chat.generation import Generations
from vedika.chat.streamed import after_stored
from vedika.scale.hub import StreamHub
from vedika.scale.redis_hub import RedisUnavailable


async def live_text(
    hub: StreamHub, generations: Generations, message_id: str, stored: str, chunks: int
) -> tuple[str, int]:
    """(text streamed so far, its chunk count) of a `streaming` answer."""
    gen = generations.live.get(message_id)
    if gen is not None:
        return gen.published_text(), gen.chunk_id
    try:
        # What the hub holds now (one non-blocking read): the live tail is not waited for.
        entries = await hub.read(message_id)
    except RedisUnavailable:
        return stored, chunks  # the stored text is what there is
    more = after_stored(entries, chunks)
    return stored + more.text, more.last_chunk
