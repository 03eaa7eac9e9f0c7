"""The point reads' own connections (vedika.store.pg_readers): never more than its size
open, a dead or cancelled connection replaced, nothing leaked by a cancelled waiter.
Fake connections stand in for asyncpg's; tests/test_pointread.py runs the real one."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from vedika.store.pg_readers import Readers


class FakeConn:
    def __init__(self, n: int, opened: list[FakeConn]) -> None:
        self.n = n
        self.closed = False
        self.terminated = False
        self.busy = False
        self.gate: asyncio.Event | None = None  # set: the next query waits on it
        opened.append(self)

    def is_closed(self) -> bool:
        return self.closed or self.terminated

    def terminate(self) -> None:
        self.terminated = True

    async def close(self) -> None:
        self.closed = True

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        assert not self.busy, "one query at a time on a connection"
        self.busy = True
        try:
            await asyncio.sleep(0)
            if self.gate is not None:
                await self.gate.wait()
            if sql == "fail":
                raise ValueError("a bad select")
            return [(self.n, *args)]
        finally:
            self.busy = False


class Factory:
    def __init__(self) -> None:
        self.opened: list[FakeConn] = []
        self.fail_next = 0

    async def __call__(self) -> FakeConn:
        await asyncio.sleep(0)
        if self.fail_next:
            self.fail_next -= 1
            raise OSError("connection refused")
        return FakeConn(len(self.opened), self.opened)

    def live(self) -> list[FakeConn]:
        return [c for c in self.opened if not c.is_closed()]


async def test_many_readers_share_at_most_size_connections() -> None:
    factory = Factory()
    readers = Readers(factory, 3)
    rows = await asyncio.gather(*(readers.fetch("q", (i,)) for i in range(50)))
    assert sorted(r[0][1] for r in rows) == list(range(50))
    assert len(factory.opened) == 3
    await readers.close()
    assert all(c.closed for c in factory.opened)


async def test_a_failed_select_keeps_its_connection_and_a_closed_one_is_replaced() -> None:
    factory = Factory()
    readers = Readers(factory, 1)
    with pytest.raises(ValueError):
        await readers.fetch("fail", ())
    assert (await readers.fetch("q", ()))[0][0] == 0  # the same connection
    factory.opened[0].closed = True  # the server went away while it was free
    assert (await readers.fetch("q", ()))[0][0] == 1
    assert len(factory.opened) == 2


async def test_a_query_cancelled_midway_drops_its_connection() -> None:
    factory = Factory()
    readers = Readers(factory, 1)
    await readers.fetch("q", ())
    first = factory.opened[0]
    first.gate = asyncio.Event()
    task = asyncio.create_task(readers.fetch("q", ()))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert first.terminated
    assert (await readers.fetch("q", ()))[0][0] == 1  # a new one, in the freed slot


async def test_cancelled_waiters_leak_nothing() -> None:
    factory = Factory()
    readers = Readers(factory, 1)
    await readers.fetch("q", ())
    gate = factory.opened[0].gate = asyncio.Event()
    holder = asyncio.create_task(readers.fetch("q", ()))
    await asyncio.sleep(0.01)
    waiters = [asyncio.create_task(readers.fetch("q", (i,))) for i in range(5)]
    await asyncio.sleep(0.01)
    gate.set()  # the holder returns its connection to the first waiter...
    await asyncio.sleep(0)
    for w in waiters:  # ...and every waiter is cancelled before it runs
        w.cancel()
    await holder
    await asyncio.gather(*waiters, return_exceptions=True)
    factory.opened[0].gate = None
    assert (await asyncio.wait_for(readers.fetch("q", ()), 1))[0][0] == 0
    assert len(factory.opened) == 1


async def test_a_failed_connect_lets_a_waiter_try_again() -> None:
    factory = Factory()
    readers = Readers(factory, 1)
    factory.fail_next = 1
    both = asyncio.gather(readers.fetch("q", ()), readers.fetch("q", ()), return_exceptions=True)
    results = await asyncio.wait_for(both, 2)  # not left waiting for a slot nobody holds
    assert isinstance(results[0], OSError)
    assert results[1] == [(0,)]  # the waiter opened the slot the first could not


async def test_closed_readers_refuse() -> None:
    readers = Readers(Factory(), 1)
    await readers.close()
    with pytest.raises(ConnectionError):
        await readers.fetch("q", ())
