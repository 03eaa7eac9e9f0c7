"""Sliding-window rate limits, in memory (one process) or in Redis (several).

`hit(key, limit, window)` counts one event; over the limit it says how long to
wait. Every attempt counts, refused ones too, so hammering never gets through.

The window slides ("sliding window counter"): a key keeps a count per clock window,
and an event is weighed against this window's count plus the last one's, scaled by
how much of the last window the sliding one still covers. Two counters a key and
one round trip to Redis, like a fixed window, without its edge: a fixed window
forgot every count at each edge of the clock, so a caller who had used its limit at
xx:59:59 had all of it again a second later (2x the limit through), and a sign-in
limit of 3 an hour reset at the hour.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.requests import HTTPConnection

from vedika.errors import RateLimited, ServiceUnavailable

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after: int


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window: float) -> Decision: ...


_ROUNDING = 1e-6  # floating point's, so that waiting the named wait is enough


def decide(last: int, current: int, now: float, window: float, limit: int) -> Decision:
    """The decision for an event counted in `current` (this clock window's count, the
    event included), with `last` the previous clock window's count."""
    into = now / window % 1.0  # how far into this clock window, 0 to 1
    if last * (1.0 - into) + current <= limit + _ROUNDING:
        return Decision(True, 0)
    # Refused: the wait until one more event would fit (it will count too).
    if current + 1 <= limit:  # the last window's share must fall: last > 0 here
        fits_at = 1.0 - (limit - current - 1) / last
        wait = (fits_at - into) * window
    else:  # not in this clock window; in the next, this one's count is the last's
        fits_at = max(0.0, 1.0 - (limit - 1) / current)
        wait = (1.0 - into + fits_at) * window
    return Decision(False, max(1, math.ceil(wait - _ROUNDING)))


class MemoryLimiter:
    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._counts: dict[tuple[str, float, int], int] = {}  # (key, window, slot)
        self._last_sweep = 0.0

    async def hit(self, key: str, limit: int, window: float) -> Decision:
        now = self._clock()
        slot = int(now // window)
        current = self._counts.get((key, window, slot), 0) + 1
        self._counts[(key, window, slot)] = current
        if now - self._last_sweep > 60:
            self._sweep(now)
        last = self._counts.get((key, window, slot - 1), 0)
        return decide(last, current, now, window, limit)

    def _sweep(self, now: float) -> None:
        """Forget the counts of clock windows before the last one, each by its own
        window's length (an hour's slots are not a minute's)."""
        self._last_sweep = now
        for k in [k for k in self._counts if k[2] < now // k[1] - 1]:
            del self._counts[k]


class RedisLimiter:
    def __init__(self, redis: Redis, clock: Clock = time.time) -> None:
        self.redis = redis
        self._clock = clock

    async def hit(self, key: str, limit: int, window: float) -> Decision:
        now = self._clock()
        slot = int(now // window)
        rkey = f"vedika:rl:{key}:{slot}"
        try:
            pipe = self.redis.pipeline(transaction=True)
            pipe.incr(rkey)
            pipe.expire(rkey, math.ceil(2 * window) + 1)  # it is the next window's last
            pipe.get(f"vedika:rl:{key}:{slot - 1}")
            current, _, last = await pipe.execute()
        except (RedisError, OSError):
            raise ServiceUnavailable(
                "The shared state service (Redis) is unavailable; please retry shortly.",
                code="redis_unavailable",
                headers={"Retry-After": "2"},
            ) from None
        return decide(int(last or 0), int(current), now, window, limit)


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
