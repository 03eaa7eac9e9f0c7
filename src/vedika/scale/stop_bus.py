"""Stop requests across instances: `POST /ai/chat/stop` may land on any instance.

The instance that receives a stop for an answer it is not generating publishes the
message id on a Redis channel; every instance listens and the one generating it
stops it (the answer then ends with `finish_reason: "stopped"` as usual).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = structlog.get_logger(__name__)

CHANNEL = "vedika:stop"


class StopBus:
    def __init__(self, redis: Redis, on_stop: Callable[[str], Coroutine[Any, Any, bool]]) -> None:
        self.redis = redis
        self.on_stop = on_stop
        self._task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[bool]] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="vedika-stop-bus")

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def request(self, message_id: str) -> None:
        await self.redis.publish(CHANNEL, message_id)

    async def _listen(self) -> None:
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        data = message["data"]
                        mid = data.decode() if isinstance(data, bytes) else str(data)
                        task = asyncio.create_task(self.on_stop(mid))
                        self._pending.add(task)
                        task.add_done_callback(self._pending.discard)
            except (RedisError, OSError) as exc:
                log.warning("stop_bus.disconnected", error=str(exc)[:200])
                await asyncio.sleep(1.0)
