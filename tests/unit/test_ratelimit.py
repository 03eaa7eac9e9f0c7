"""The sliding-window rate limiter (vedika.scale.ratelimit), in memory and on the real
Redis (127.0.0.1:6379), on a clock the test moves: no edge of the clock resets a
count, the wait it names is the wait that works, and refused attempts count."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from vedika.scale.ratelimit import MemoryLimiter, RateLimiter, RedisLimiter, decide

REDIS = "redis://127.0.0.1:6379/0"
HOUR = 3600.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[tuple[RateLimiter, Clock]]:
    clock = Clock(1_800_000_000.0)  # on an hour's edge: 1.8e9 is a multiple of 3600
    if request.param == "memory":
        yield MemoryLimiter(clock), clock
        return
    redis = Redis.from_url(REDIS)
    try:
        yield RedisLimiter(redis, clock), clock
    finally:
        await redis.aclose()


def key() -> str:
    return f"test:{uuid.uuid4().hex}"  # each test its own keys in the shared Redis


async def hits(limiter: RateLimiter, k: str, n: int, limit: int, window: float) -> list[bool]:
    return [(await limiter.hit(k, limit, window)).allowed for _ in range(n)]


async def test_the_limit_holds_across_the_clocks_edge(limiter) -> None:
    rl, clock = limiter
    k = key()
    clock.now -= 1  # a second before the hour
    assert await hits(rl, k, 3, limit=3, window=HOUR) == [True, True, True]
    clock.now += 2  # a second after it: a fixed window would start again here
    refused = await rl.hit(k, 3, HOUR)
    assert not refused.allowed
    # The last hour's three weigh as if spread over it: the wait is 40 minutes, where a
    # fixed window gave none at all.
    assert refused.retry_after > 30 * 60


async def test_the_wait_it_names_is_the_wait_that_works(limiter) -> None:
    rl, clock = limiter
    k = key()
    clock.now += 20  # a third of the way into a minute
    assert await hits(rl, k, 5, limit=4, window=60) == [True] * 4 + [False]
    wait = (await rl.hit(k, 4, 60)).retry_after  # the sixth attempt, refused too
    clock.now += wait - 1
    assert not (await rl.hit(k, 4, 60)).allowed  # a second early: refused (and counted)
    wait = (await rl.hit(k, 4, 60)).retry_after
    clock.now += wait
    assert (await rl.hit(k, 4, 60)).allowed


async def test_a_steady_caller_under_the_limit_is_never_refused(limiter) -> None:
    rl, clock = limiter
    k = key()
    for _ in range(5 * 28):  # 28 a minute against 30, evenly, for five minutes
        assert (await rl.hit(k, 30, 60)).allowed
        clock.now += 60 / 28


async def test_refused_attempts_count_and_keys_are_apart(limiter) -> None:
    rl, clock = limiter
    k, other = key(), key()
    assert await hits(rl, k, 12, limit=2, window=60) == [True, True] + [False] * 10
    clock.now += 60  # a minute on, the hammering still weighs on the key
    assert not (await rl.hit(k, 2, 60)).allowed
    assert await hits(rl, other, 2, limit=2, window=60) == [True, True]


def test_the_last_windows_share_fades_as_the_window_slides() -> None:
    # 10 in the last clock minute and 1 now: at 30 s in, 10 * 0.5 + 1 = 6.
    assert decide(10, 1, now=30.0, window=60, limit=6).allowed
    assert not decide(10, 1, now=29.0, window=60, limit=6).allowed
    # Refused at 29 s: the next event (a second in this window) fits at 36 s.
    assert decide(10, 1, now=29.0, window=60, limit=6).retry_after == 7
    # Over the limit within this window alone: into the next, until its share fades.
    assert decide(0, 5, now=0.0, window=60, limit=4).retry_after == 60 + 24


async def test_an_hours_count_outlives_a_minutes_sweep(limiter) -> None:
    """Limits of different windows share the limiter: forgetting old minutes must not
    forget this hour (it did, in memory, every minute: a sign-in limit per account per
    hour was a limit per minute or so)."""
    rl, clock = limiter
    hourly, minutely = key(), key()
    clock.now += 600
    assert await hits(rl, hourly, 3, limit=3, window=HOUR) == [True] * 3
    for _ in range(3):  # minutes go by, each with a per-minute hit (and a sweep)
        clock.now += 61
        assert (await rl.hit(minutely, 10, 60)).allowed
    assert not (await rl.hit(hourly, 3, HOUR)).allowed
