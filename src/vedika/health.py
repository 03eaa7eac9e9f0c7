"""The instance's health behind `GET /health`: the database and Redis, checked at most
once a second, whoever asks (one check in flight).

A load balancer polls /health on every instance every few seconds, and anyone may
call it: a flood of calls makes at most one database round trip per `ttl`.
"""

from __future__ import annotations

import asyncio
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import text

from vedika.scale.hub import StreamHub
from vedika.store.engine import Store

_SELECT_1 = text("SELECT 1")


class HealthProbe:
    """The database and Redis, checked at most once per `ttl` seconds."""

    def __init__(self, store: Store, redis: Redis | None, hub: StreamHub, ttl: float = 1.0) -> None:
        self.store = store
        self.redis = redis
        self.hub = hub  # knows at once when Redis failed under it
        self.ttl = ttl
        self._at = -ttl
        self._state = ("ok", "not_configured")
        self._running: asyncio.Future[tuple[str, str]] | None = None

    async def state(self) -> tuple[str, str]:
        """(database, redis): "ok", "unavailable" or (redis) "not_configured"."""
        if time.monotonic() - self._at < self.ttl and (self.hub.healthy or self.redis is None):
            return self._state
        if self._running is None:
            self._running = asyncio.ensure_future(self._check())
        running = self._running
        try:
            return await asyncio.shield(running)
        finally:
            if self._running is running and running.done():
                self._running = None

    async def _check(self) -> tuple[str, str]:
        database = "ok"
        try:
            async with self.store.read() as conn:
                await conn.execute(_SELECT_1)
        except Exception:
            database = "unavailable"
        redis = "not_configured"
        if self.redis is not None:
            try:
                redis = "ok" if await self.redis.ping() else "unavailable"
            except (RedisError, OSError):
                redis = "unavailable"
        self._state, self._at = (database, redis), time.monotonic()
        return self._state

    def invalidate(self) -> None:
        """Something just failed (a request found the database away): check anew next
        time instead of answering from the last check."""
        self._at = -self.ttl
