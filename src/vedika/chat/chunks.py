"""Turning deltas into numbered chunks, merging them under load.

Every delta goes out at once as its own chunk (lowest latency), unless merging pays
(vedika.chat.coalescing: the process is behind, with enough answers live): then
deltas that arrive within `window` seconds of the first pending one are merged into
one chunk, which cuts frames, encodes and syscalls per token. A delta is held for
that only if the answer's previous one came less than `window` before it: an answer
whose deltas come farther apart than the window could never have two in one, and
holding them only made every gap a window longer (at 150 streams, 20 ms a token:
gap p99 41.7 ms against 26.6 unbatched, with 2.6% of the tokens merged). Merging
never reorders or drops text: chunks stay contiguous and `flush()` runs before every
terminal event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from vedika.chat.coalescing import Coalescing
from vedika.chat.events import EventFactory
from vedika.scale.hub import StreamHub


class ChunkWriter:
    __slots__ = (
        "_handle",
        "_last_at",
        "_pending",
        "chunk_id",
        "coalescing",
        "events",
        "hub",
        "message_id",
        "parts",
        "sizes",
    )

    def __init__(
        self,
        *,
        hub: StreamHub,
        events: EventFactory,
        parts: list[str],
        coalescing: Coalescing,
    ) -> None:
        self.hub = hub
        self.events = events
        self.message_id = events.message_id
        self.parts = parts  # the whole answer so far (published or pending)
        self.coalescing = coalescing
        self.chunk_id = 0
        self.sizes: list[int] = []  # the length of each chunk 1..chunk_id (stored with it)
        self._pending: list[str] = []
        self._handle: asyncio.TimerHandle | None = None
        self._last_at = float("-inf")  # when the previous delta came (time.monotonic)

    def add(self, text: str) -> None:
        self.parts.append(text)
        now = time.monotonic()
        soon = now - self._last_at < self.coalescing.window
        self._last_at = now
        if self._pending or (soon and self.coalescing.active()):
            self._pending.append(text)
            if self._handle is None:
                loop = asyncio.get_running_loop()
                self._handle = loop.call_later(self.coalescing.window, self.flush)
            return
        self.chunk_id += 1
        self.sizes.append(len(text))
        self.hub.publish(self.message_id, self.events.chunk(text, self.chunk_id))

    @property
    def published_parts(self) -> int:
        """How many of `parts` went out in chunks 1..chunk_id (the pending ones are the
        tail), so text stored with a chunk count is exactly those chunks' text."""
        return len(self.parts) - len(self._pending)

    def flush(self) -> None:
        """Publish what is pending as one chunk (called by the timer, and before the end)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._pending:
            text = "".join(self._pending)
            self._pending.clear()
            self.chunk_id += 1
            self.sizes.append(len(text))
            self.hub.publish(self.message_id, self.events.chunk(text, self.chunk_id))


ChunkWriterFactory = Callable[[EventFactory, list[str]], ChunkWriter]
