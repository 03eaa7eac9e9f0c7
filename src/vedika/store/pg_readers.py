"""A few asyncpg connections for point reads (and single autocommit writes), handed
out without asyncpg's pool.

asyncpg's `Pool.fetch` wraps each query in an acquire and a release: a queue, a
holder, a timeout and a shielded task; on this machine that doubled the CPU of a
one-row read (`bench/results`: 115 µs against 56 µs on a bare connection, 8 tasks
sharing 4 connections). Point reads need none of it: they run single selects outside
any transaction, so a connection is reusable as soon as its query returns and needs
no reset. What is left to get right is small and is all here: a connection that died
(the server restarted) is dropped and replaced, a query cancelled mid-way drops its
connection (its state is unknown), and a waiter cancelled just as it was handed a
connection gives it back.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from vedika.store.slots import refused_for_slots


class Readers:
    """Up to `size` connections opened with `connect()`, lent one query at a time."""

    def __init__(self, connect: Callable[[], Awaitable[Any]], size: int) -> None:
        self._connect = connect
        self._size = size
        self._free: list[Any] = []
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self._opened = 0  # connections open or opening, lent or free
        self._closed = False

    async def fetch(self, sql: str, args: list[Any]) -> list[Any]:
        rows: list[Any] = await self._lend(lambda conn: conn.fetch(sql, *args))
        return rows

    async def execute(self, sql: str, args: list[Any]) -> str:
        """One statement in autocommit; its command tag ("UPDATE 1")."""
        status: str = await self._lend(lambda conn: conn.execute(sql, *args))
        return status

    async def _lend(self, use: Callable[[Any], Awaitable[Any]]) -> Any:
        """`use(connection)` on a connection of these, given back after."""
        conn = await self._take()
        try:
            result = await use(conn)
        except Exception:
            # A failed statement leaves no state behind (autocommit: no transaction
            # open); a dead link is dropped when it is given back.
            self._give(conn)
            raise
        except BaseException:  # cancelled mid-query: whatever it was doing, drop it
            self._drop(conn, terminate=True)
            raise
        self._give(conn)
        return result

    async def _take(self) -> Any:
        while True:
            while self._free:
                conn = self._free.pop()
                if not conn.is_closed():
                    return conn
                self._opened -= 1  # the server closed it while it was free
            if self._closed:
                raise ConnectionError("the point-read connections are closed")
            if self._opened < self._size:
                self._opened += 1
                try:
                    return await self._connect()
                except BaseException as error:
                    self._opened -= 1
                    if not (self._opened and refused_for_slots(error)):
                        self._wake_one()  # a waiter may open the one this could not
                        raise
                    # The server has no slot left but we hold others: wait for one.
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                return await waiter
            except _Retry:
                continue  # a slot came free: open a connection in it
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    handed = waiter.exception()
                    if handed is None:
                        self._give(waiter.result())  # handed one just as it was cancelled
                    elif isinstance(handed, _Retry):
                        self._wake_one()  # and the free slot to the next waiter
                raise

    def _give(self, conn: Any) -> None:
        if conn.is_closed() or self._closed:
            self._drop(conn)
            return
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._free.append(conn)

    def _drop(self, conn: Any, terminate: bool = False) -> None:
        self._opened -= 1
        if terminate or self._closed:
            conn.terminate()
        self._wake_one()

    def _wake_one(self) -> None:
        """A slot came free: the first waiter opens a connection of its own."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(_Retry())
                return

    async def close(self) -> None:
        self._closed = True
        free, self._free = self._free, []
        for conn in free:
            self._opened -= 1
            await conn.close()
        for waiter in self._waiting:
            if not waiter.done():
                waiter.set_exception(ConnectionError("the point-read connections are closed"))
        self._waiting.clear()


class _Retry(Exception):
    """Raised into a waiter whose turn came as a free slot, not a connection."""
