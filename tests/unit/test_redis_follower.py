"""A follower of the Redis hub's shared reader (vedika.scale.redis_hub._Follower): what
the reader hands it, its wait's timeout (one timer per timeout period, not per take),
and the reader's failure."""

from __future__ import annotations

import asyncio

import pytest

from vedika.scale.hub import Entry
from vedika.scale.redis_hub import RedisUnavailable, _Follower


def _items(n: int) -> list[tuple[tuple[int, int], Entry]]:
    return [((n, 0), Entry("content_chunk", n, f'{{"n":{n}}}'))]


async def test_what_came_before_and_while_waiting() -> None:
    follower = _Follower()
    follower.put(_items(1))
    assert await follower.take(1.0) == _items(1)  # at once
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, follower.put, _items(2))
    assert await follower.take(1.0) == _items(2)
    follower.close()


async def test_a_silent_stream_times_out_after_the_timeout() -> None:
    follower = _Follower()
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await follower.take(0.2) is None
    assert 0.19 <= loop.time() - start < 1.0
    follower.put(_items(3))  # and it still takes what comes after
    assert await follower.take(0.2) == _items(3)
    follower.close()


async def test_a_stream_that_keeps_coming_never_times_out() -> None:
    # Ten items 0.05 s apart, each wait far under the 0.15 s timeout, over 0.5 s in all:
    # the one timer moves itself along instead of ending a wait that began recently.
    follower = _Follower()
    loop = asyncio.get_running_loop()
    for n in range(10):
        loop.call_later(0.05 * (n + 1), follower.put, _items(n))
    got = []
    for _ in range(10):
        taken = await follower.take(0.15)
        assert taken is not None
        got.extend(taken)
    assert [at for at, _e in got] == [(n, 0) for n in range(10)]
    follower.close()
    assert follower._timer is None


async def test_the_readers_failure_reaches_a_waiting_take() -> None:
    follower = _Follower()
    asyncio.get_running_loop().call_later(0.05, follower.fail, RedisUnavailable("gone"))
    with pytest.raises(RedisUnavailable):
        await follower.take(1.0)
    follower.close()
