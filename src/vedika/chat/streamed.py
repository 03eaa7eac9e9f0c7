"""What an answer streamed, read back from its events in the stream hub.

The stored row holds the text of the last flush and the number of chunks it covers.
The hub's events say what went out since: the chunks after that number (only an
unbroken run of them, so stored text always equals chunks 1..N), the sources, the
step events. A `GET` of a streaming answer shows it (vedika.chat.live), and the
reaper stores it when the answer's instance died (vedika.chat.reaper), so the stored
text is what any client saw.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec
import orjson

from vedika import protocol as p
from vedika.scale.hub import Entry


@dataclass(frozen=True, slots=True)
class Streamed:
    text: str  # the text of chunks after+1 .. last_chunk
    last_chunk: int
    sizes: list[int] = field(default_factory=list)  # the length of each of those chunks
    citations: list[p.Citation] = field(default_factory=list)  # the last `sources` event's
    steps: bool = False  # whether any step event (research step, tool call) went out


def after_stored(entries: Iterable[Entry], stored_chunks: int) -> Streamed:
    """What `entries` add to a row that holds chunks 1..`stored_chunks`."""
    parts: list[str] = []
    sizes: list[int] = []
    last = stored_chunks
    citations: list[p.Citation] = []
    steps = False
    for entry in entries:
        if entry.type == "content_chunk":
            # Only the next chunk extends the run: after a gap (a chunk the hub lost)
            # later text could not be placed, and chunks 1..N are what was stored.
            if entry.chunk_id == last + 1:
                parts.append(orjson.loads(entry.data)["content"])
                sizes.append(len(parts[-1]))
                last = entry.chunk_id
        elif entry.type == "sources":
            raw = orjson.loads(entry.data).get("citations") or []
            citations = msgspec.convert(raw, list[p.Citation])
        elif entry.type in p.STEP_EVENTS:
            steps = True
    return Streamed("".join(parts), last, sizes, citations, steps)
