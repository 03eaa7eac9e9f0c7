"""The reaper: an answer never stays `streaming` after its generation died.

At start-up (one-process mode) every `streaming` answer is dead: a previous run
left it. Periodically, answers whose heartbeat is stale and that no live
generation here owns are marked `interrupted`; their coins come back if nothing
was delivered, and a terminal event is published to anyone still listening.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import structlog
from sqlalchemy.exc import SQLAlchemyError

from vedika import protocol as p
from vedika.chat.events import EventFactory, entry
from vedika.chat.finish import Ending, settle, terminal
from vedika.chat.generation import INTERRUPTED, Generations
from vedika.metrics import METRICS
from vedika.protocol import MessageStatus
from vedika.scale.hub import StreamHub
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
            delivered = bool(row.chunk_count or row.has_steps)
            if await self.interrupt(
                row.id, row.conversation_id, row.device_id, row.chunk_count, delivered=delivered
            ):
                count += 1
        if count:
            log.info("reaper.interrupted", count=count)
        return count

    async def interrupt(
        self,
        message_id: str,
        conversation_id: str,
        device_id: str,
        chunk_count: int,
        *,
        delivered: bool,
    ) -> bool:
        """Settle an answer nobody is writing; refund it only if nothing of it (text or
        steps) went out."""
        ending = Ending.failed(INTERRUPTED, MessageStatus.INTERRUPTED)
        settled = await settle(
            self.store,
            message_id=message_id,
            conversation_id=conversation_id,
            device_id=device_id,
            ending=ending,
            delivered=delivered,
        )
        if settled is None:
            return False
        METRICS.reaped.inc()
        events = EventFactory(conversation_id, message_id)
        await self.hub.finish_foreign(
            message_id,
            lambda last: entry(
                terminal(events, ending, chunks=chunk_count), max(last, chunk_count)
            ),
        )
        return True
