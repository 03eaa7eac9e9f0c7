"""The reaper: an answer never stays `streaming` after its generation died.

At start-up (one-process mode) every `streaming` answer is dead: a previous run
left it. Periodically, answers whose heartbeat is stale and that no live
generation here owns are marked `interrupted`; their coins come back if nothing
was delivered, and a terminal event is published to anyone still listening.

What was streamed is stored: the row holds the text of the generation's last flush,
and the chunks after it that reached the stream hub (the Redis stream, when the dead
instance published there) are added before settling, so the stored text is what any
client of the hub saw. With Redis the stream is fenced before it is read: a generation
that was only stale (a stopped or saturated instance) can add nothing after it, and
stops (vedika.scale.redis_hub). If Redis cannot be read, the answer is left for the
next round rather than settled without the text it holds.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import structlog
from sqlalchemy.exc import SQLAlchemyError

from vedika import protocol as p
from vedika.chat.events import EventFactory, entry
from vedika.chat.finish import Ending, Written, settle, terminal
from vedika.chat.generation import INTERRUPTED, Generations
from vedika.chat.streamed import after_stored
from vedika.metrics import METRICS
from vedika.protocol import MessageStatus
from vedika.scale.hub import StreamHub
from vedika.scale.redis_hub import RedisUnavailable
from vedika.store import conversations as data
from vedika.store.engine import Store

log = structlog.get_logger(__name__)


class Reaper:
    def __init__(
        self,
        *,
        store: Store,
        hub: StreamHub,
        generations: Generations,
        interval: float,
        stale_after: float,
    ) -> None:
        self.store = store
        self.hub = hub
        self.generations = generations
        self.interval = interval
        self.stale_after = stale_after
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="vedika-reaper")

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.reap()
            except (SQLAlchemyError, OSError) as exc:
                log.warning("reaper.failed", error=str(exc)[:200])
            except Exception:  # the reaper must outlive any one bad row
                log.exception("reaper.crashed")

    async def reap(self, *, everything: bool = False) -> int:
        """Mark dead answers interrupted. `everything`: all `streaming` ones (start-up)."""
        older = None if everything else p.utcnow() - timedelta(seconds=self.stale_after)
        async with self.store.read() as conn:
            rows = await data.stale_streaming(conn, older_than=older)
        count = 0
        for row in rows:
            if self.generations.is_alive(row.id):
                continue
            try:
                written = await self.interrupt(
                    row.id,
                    row.conversation_id,
                    row.device_id,
                    content=row.content or "",
                    chunk_count=row.chunk_count,
                    chunk_ends=row.chunk_ends,
                    has_steps=bool(row.has_steps),
                )
            except RedisUnavailable:
                continue  # its text is in Redis: the next round stores it
            if written is not None:
                count += 1
        if count:
            log.info("reaper.interrupted", count=count)
        return count

    async def interrupt(
        self,
        message_id: str,
        conversation_id: str,
        device_id: str,
        *,
        content: str,
        chunk_count: int,
        chunk_ends: str | None,
        has_steps: bool,
    ) -> Written | None:
        """Settle an answer nobody is writing, with the stored text (`content`, chunks
        1..`chunk_count`, which end where `chunk_ends` says) plus the chunks after it
        that reached the stream hub; refund it only if nothing of it (text, sources or
        steps) went out. Returns what was stored, or None if the answer had already
        ended. Raises RedisUnavailable when the hub cannot be read (nothing is settled
        then)."""
        # Fenced first: a generation still running elsewhere (stale, not dead) can add
        # nothing after what is read here, and it learns that it must stop.
        await self.hub.fence(message_id)
        more = after_stored(await self.hub.read(message_id), chunk_count)
        chunks = more.last_chunk
        stored = data.decode_chunk_sizes(chunk_ends, chunk_count, content)
        # Output tokens as a generation counts them without the model's usage: one a chunk.
        written = Written(
            content + more.text,
            chunks,
            0,
            chunks,
            citations=more.citations,
            chunk_sizes=None if stored is None else stored + more.sizes,
        )
        delivered = bool(chunks or has_steps or more.steps or more.citations)
        ending = Ending.failed(INTERRUPTED, MessageStatus.INTERRUPTED)
        settled = await settle(
            self.store,
            message_id=message_id,
            conversation_id=conversation_id,
            device_id=device_id,
            ending=ending,
            delivered=delivered,
            written=written,
        )
        if settled is None:
            return None
        METRICS.reaped.inc()
        if more.text:
            log.info("reaper.stored_streamed", message_id=message_id, chunks=chunks - chunk_count)
        events = EventFactory(conversation_id, message_id)
        await self.hub.finish_foreign(
            message_id,
            lambda last: entry(terminal(events, ending, chunks=chunks), max(last, chunks)),
        )
        return written
