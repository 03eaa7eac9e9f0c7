"""StreamHub: numbered events per answer, replay from any point, then the live tail.

The generation publishes; sockets and SSE only subscribe. Each event is encoded
once, when published, and the same text goes to every subscriber. The hub never
renumbers: `chunk_id` comes from the generation.

Resume semantics (`after=N`): every event published after content chunk N, in
order. `after=0` replays from the start (credits_info, stream_start, ...).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol

import msgspec

from vedika.protocol import TERMINAL_TYPES


class Entry(msgspec.Struct, frozen=True, gc=False):
    """One event as the hub keeps it. Not a NamedTuple: the collector never stops
    tracking a tuple subclass, and the hub keeps every answer's entries for its
    retention (120,000 of them at 100 streams), which every full collection then walked
    (vedika.heap). A struct of strings and an int cannot be part of a cycle, so
    `gc=False` is safe; it is also made in a quarter of the time."""

    type: str
    chunk_id: int  # for content chunks its id; otherwise the last chunk id before it
    data: str  # the encoded JSON event, ready for the wire


class StreamHub(Protocol):
    """Where an answer's events live: `MemoryHub` (one process) or `RedisHub` (several)."""

    healthy: bool
    distributed: bool  # other instances may be generating answers this one serves

    def open(self, message_id: str) -> None:
        """Called by the generating instance before its first publish."""

    def publish(self, message_id: str, entry: Entry) -> None:
        """Append an event; never blocks (Redis writes are batched in the background)."""

    def has(self, message_id: str) -> bool:
        """Whether this process holds the answer's events in memory."""

    def subscribe(self, message_id: str, after: int = 0) -> AsyncIterator[list[Entry]]:
        """Batches of events after chunk `after`, then the live tail, until the terminal
        event. Yields nothing at all when the hub does not know the answer. A distributed
        hub yields an empty batch when the stream has been silent a while (a tick: an
        instance that died before publishing the end leaves a stream that never ends)."""

    async def read(self, message_id: str) -> list[Entry]:
        """Every event the hub holds of the answer now, in order, without waiting for
        more (empty when it holds none). The reaper stores a dead answer's text from it."""

    async def finish_foreign(self, message_id: str, build: Callable[[int], Entry]) -> None:
        """Publish the terminal event of an answer whose generation died (the reaper);
        `build(last_chunk_id)` makes it."""

    def forget(self, message_id: str) -> None:
        """Drop what is kept of a deleted answer, where it is kept in memory."""

    async def fence(self, message_id: str) -> None:
        """The reaper, before it reads an answer it will settle: whatever the answer's
        generation (if it still runs somewhere) writes from now on is refused."""

    async def ended(self, message_id: str, fallback: Entry) -> Entry:
        """A generation whose answer another instance settled: publish nothing more of
        it; its subscribers get the terminal event the hub holds (else `fallback`)."""

    async def barrier(self) -> None:
        """Return once everything published so far is visible to every instance."""

    async def ping(self) -> bool:
        """Check the backing service now (and update `healthy`)."""

    def start(self) -> None: ...

    async def close(self) -> None: ...


@dataclass(slots=True)
class _Log:
    entries: list[Entry] = field(default_factory=list)
    chunk_pos: list[int] = field(default_factory=list)  # chunk k is entries[chunk_pos[k-1]]
    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    done: bool = False


class MemoryHub:
    """The hub for one process. Logs of finished answers are kept for `retention` s."""

    healthy = True
    distributed = False

    def __init__(self, retention: float = 900.0) -> None:
        self.retention = retention
        self._logs: dict[str, _Log] = {}

    def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def barrier(self) -> None:
        pass

    async def ping(self) -> bool:
        return True

    async def fence(self, message_id: str) -> None:
        pass  # one process: its reaper never settles an answer it is generating

    async def ended(self, message_id: str, fallback: Entry) -> Entry:
        log = self._logs.get(message_id)
        if log is not None and log.done:
            return log.entries[-1]
        self.publish(message_id, fallback)
        return fallback

    async def finish_foreign(self, message_id: str, build: Callable[[int], Entry]) -> None:
        log = self._logs.get(message_id)
        if log is not None and not log.done:
            self.publish(message_id, build(len(log.chunk_pos)))

    async def read(self, message_id: str) -> list[Entry]:
        log = self._logs.get(message_id)
        return list(log.entries) if log is not None else []

    def open(self, message_id: str) -> None:
        self._logs.setdefault(message_id, _Log())

    def has(self, message_id: str) -> bool:
        return message_id in self._logs

    def publish(self, message_id: str, entry: Entry) -> None:
        log = self._logs.get(message_id)
        if log is None or log.done:
            return
        if entry.type == "content_chunk":
            log.chunk_pos.append(len(log.entries))
        log.entries.append(entry)
        if entry.type in TERMINAL_TYPES:
            log.done = True
            asyncio.get_running_loop().call_later(self.retention, self._logs.pop, message_id, None)
        waiters, log.waiters = log.waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def forget(self, message_id: str) -> None:
        log = self._logs.pop(message_id, None)
        if log is not None:
            for fut in log.waiters:
                if not fut.done():
                    fut.set_result(None)

    async def subscribe(self, message_id: str, after: int = 0) -> AsyncIterator[list[Entry]]:
        """Yield batches of entries: the replay first, then live ones as they come.

        Ends after the terminal event. Batches let a transport coalesce writes.
        """
        log = self._logs.get(message_id)
        if log is None:
            return
        if after <= 0:
            i = 0
        elif after <= len(log.chunk_pos):
            i = log.chunk_pos[after - 1] + 1
        else:
            i = len(log.entries)
        loop = asyncio.get_running_loop()
        while True:
            n = len(log.entries)
            if i < n:
                batch = log.entries[i:n]
                i = n
                if after > 0 and batch[0].chunk_id <= after:
                    # The client is ahead of what existed when it came: drop what it has.
                    batch = [
                        e
                        for e in batch
                        if e.chunk_id > after or (e.chunk_id == after and e.type != "content_chunk")
                    ]
                    if not batch:
                        continue
                yield batch
                continue
            if log.done or self._logs.get(message_id) is not log:
                return
            fut: asyncio.Future[None] = loop.create_future()
            log.waiters.append(fut)
            await fut
