"""Turning deltas into numbered chunks, merging them under load.

One stream: every delta goes out at once as its own chunk (lowest latency). Under
load (at least `min_streams` answers live in this process), deltas that arrive
within `window` seconds of the first pending one are merged into one chunk, which
cuts frames, encodes and syscalls per token. Merging never reorders or drops text:
chunks stay contiguous and `flush()` runs before every terminal event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sized

from vedika.chat.events import EventFactory
from vedika.scale.hub import StreamHub


class ChunkWriter:
    __slots__ = (
        "_handle",
        "_pending",
        "chunk_id",
        "events",
        "hub",
        "live",
        "message_id",
        "min_streams",
        "parts",
        "window",
    )

    def __init__(
        self,
        *,
        hub: StreamHub,
        events: EventFactory,
        parts: list[str],
        window: float,
        min_streams: int,
        live: Sized,
    ) -> None:
        self.hub = hub
        self.events = events
        self.message_id = events.message_id
        self.parts = parts  # the whole answer so far (published or pending)
        self.window = window
        self.min_streams = min_streams
        self.live = live
        self.chunk_id = 0
        self._pending: list[str] = []
        self._handle: asyncio.TimerHandle | None = None

    def add(self, text: str) -> None:
        self.parts.append(text)
        if self._pending or (self.window > 0 and len(self.live) >= self.min_streams):
            self._pending.append(text)
            if self._handle is None:
                self._handle = asyncio.get_running_loop().call_later(self.window, self.flush)
            return
        self.chunk_id += 1
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
            self.hub.publish(self.message_id, self.events.chunk(text, self.chunk_id))


ChunkWriterFactory = Callable[[EventFactory, list[str]], ChunkWriter]
