"""The /health probe checks the database at most once per second, whoever asks, and
anew at once after a failure was seen."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from vedika.health import HealthProbe


class CountingStore:
    """A store whose reads count, and fail while `down`."""

    def __init__(self) -> None:
        self.reads = 0
        self.down = False

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Any]:
        self.reads += 1
        await asyncio.sleep(0.01)  # a round trip: concurrent callers overlap it
        if self.down:
            raise ConnectionError("database away")
        yield self

    async def execute(self, _statement: Any) -> None:
        return None


class Hub:
    healthy = True


def probe(store: CountingStore, ttl: float = 1.0) -> HealthProbe:
    return HealthProbe(store, None, Hub(), ttl=ttl)  # type: ignore[arg-type]


async def test_a_flood_of_calls_makes_one_check() -> None:
    store = CountingStore()
    health = probe(store)
    states = await asyncio.gather(*(health.state() for _ in range(50)))
    assert set(states) == {("ok", "not_configured")}
    assert store.reads == 1
    for _ in range(20):
        await health.state()
    assert store.reads == 1  # within the second: the same check answers


async def test_a_failure_is_seen_after_the_ttl_or_at_once_when_invalidated() -> None:
    store = CountingStore()
    health = probe(store, ttl=0.2)
    assert await health.state() == ("ok", "not_configured")
    store.down = True
    assert await health.state() == ("ok", "not_configured")  # cached
    health.invalidate()
    assert await health.state() == ("unavailable", "not_configured")
    store.down = False
    await asyncio.sleep(0.25)
    assert await health.state() == ("ok", "not_configured")
    assert store.reads == 3
