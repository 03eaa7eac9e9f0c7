"""Fixed-window rate limits, in memory (one process) or in Redis (several).

`hit(key, limit, window)` counts one event; over the limit it says how long to
wait. A fixed window is coarse but cheap (one INCR) and good enough to stop floods;
its worst case lets 2x the limit through across a window edge.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.requests import HTTPConnection

from vedika.errors import RateLimited, ServiceUnavailable


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after: int


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window: float) -> Decision: ...


class MemoryLimiter:
    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], int] = {}
        self._last_sweep = 0.0

    async def hit(self, key: str, limit: int, window: float) -> Decision:
        now = time.time()
        slot = int(now // window)
        k = (key, slot)
        count = self._counts.get(k, 0) + 1
        self._counts[k] = count
        if now - self._last_sweep > 60:
            self._sweep(now, window)
        if count > limit:
            return Decision(False, max(1, math.ceil((slot + 1) * window - now)))
        return Decision(True, 0)

    def _sweep(self, now: float, window: float) -> None:
        self._last_sweep = now
        current = int(now // window)
        for k in [k for k in self._counts if k[1] < current - 1]:
            del self._counts[k]


class RedisLimiter:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def hit(self, key: str, limit: int, window: float) -> Decision:
        now = time.time()
        slot = int(now // window)
        rkey = f"vedika:rl:{key}:{slot}"
        try:
            pipe = self.redis.pipeline(transaction=True)
            pipe.incr(rkey)
            pipe.expire(rkey, math.ceil(window) + 1)
            count, _ = await pipe.execute()
        except (RedisError, OSError):
            raise ServiceUnavailable(
                "The shared state service (Redis) is unavailable; please retry shortly.",
                code="redis_unavailable",
                headers={"Retry-After": "2"},
            ) from None
        if int(count) > limit:
            return Decision(False, max(1, math.ceil((slot + 1) * window - now)))
        return Decision(True, 0)


async def enforce(limiter: RateLimiter, key: str, limit: int, window: float, what: str) -> None:
    """Raise RateLimited (429 with Retry-After) when `key` is over its limit."""
    if limit <= 0:
        return
    decision = await limiter.hit(key, limit, window)
    if not decision.allowed:
        raise RateLimited(
            f"Too many {what}. Please wait {decision.retry_after} seconds and try again.",
            headers={"Retry-After": str(decision.retry_after)},
            details={"retry_after": decision.retry_after},
        )


async def enforce_per_address(
    limiter: RateLimiter, conn: HTTPConnection, name: str, limit: int, what: str
) -> None:
    """`enforce` a per-minute limit keyed by the client's address (the TCP peer, or
    the forwarded one from VEDIKA_TRUSTED_PROXIES): for calls that need no session."""
    client = conn.client.host if conn.client else "unknown"
    await enforce(limiter, f"{name}:{client}", limit, 60, what)
