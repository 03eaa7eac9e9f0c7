"""Run untrusted-input work (file parsing, page extraction) in a child process with
time and memory caps, off the event loop.

Children are forked from a forkserver that has already imported the parsers, so a
run costs a fork, not an interpreter start. Each child sets its own address-space
and CPU limits, runs one function and exits; on timeout it is killed. A parser
that runs out of memory raises MemoryError in the child and the server carries on.

A pool is shared fairly: work given an `owner` (a device) may hold at most
`per_owner` of its workers (workers - 1, at least 1), so one device's uploads
cannot take them all; its extra work waits for its own turn, for at most the
pool's timeout, then fails with Busy. Web pages get a pool of their own
(`SourcesService`), so uploads never take their capacity either.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import resource
from collections.abc import AsyncIterator, Callable
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from vedika.sources.parsers.base import ParseFailure

T = TypeVar("T")
PRELOAD = ["vedika.sources.parsers"]
_ctx: Any = None


def _context() -> Any:
    global _ctx
    if _ctx is None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        _ctx = ctx
    return _ctx


def _address_space() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _limit(memory_bytes: int, cpu_seconds: float) -> None:
    with contextlib.suppress(OSError, ValueError):
        cap = _address_space() + memory_bytes
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (cap if hard < 0 else min(cap, hard), hard))
    with contextlib.suppress(OSError, ValueError):
        _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
        seconds = int(cpu_seconds) + 2
        resource.setrlimit(resource.RLIMIT_CPU, (seconds if hard < 0 else min(seconds, hard), hard))


def _child(
    conn: Connection, fn: Callable[..., Any], args: tuple[Any, ...], memory: int, cpu: float
) -> None:
    _limit(memory, cpu)
    result: tuple[bool, Any]
    try:
        result = (True, fn(*args))
    except ParseFailure as exc:
        result = (False, exc)
    except MemoryError:
        result = (False, _memory_failure())
    except RecursionError:
        result = (False, ParseFailure("too_complex", "This file is nested too deeply to read."))
    except Exception as exc:
        result = (
            False,
            ParseFailure("unreadable", f"This file could not be read ({type(exc).__name__})."),
        )
    try:
        conn.send(result)
    except MemoryError:
        conn.send((False, _memory_failure()))
    finally:
        conn.close()


def _memory_failure() -> ParseFailure:
    return ParseFailure("memory", "Reading this file needed more memory than Vedika allows.")


def run_isolated(
    fn: Callable[..., T], args: tuple[Any, ...], *, timeout: float, memory_bytes: int
) -> T:
    """Call `fn(*args)` in a capped child process (blocking). Raises ParseFailure."""
    ctx = _context()
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, args, memory_bytes, timeout), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(timeout):
            raise ParseFailure("timeout", f"Reading this file took longer than {timeout:g} s.")
        try:
            ok, value = parent.recv()
        except (EOFError, OSError):
            raise ParseFailure(
                "unreadable", "The file reader stopped unexpectedly while reading this file."
            ) from None
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        parent.close()
    if ok:
        return value
    raise value


class Busy(Exception):
    """An owner's work waited too long for its share of the pool."""

    def __init__(self, waited: float) -> None:
        super().__init__(waited)
        self.waited = waited


def owner_share(workers: int) -> int:
    """How many workers one owner may hold: all but one, so another device always
    finds one free (a single-worker pool can only be shared in turns)."""
    return max(1, workers - 1)


class Isolation:
    """At most `workers` children at once, each under `timeout` and `memory_bytes`;
    at most `per_owner` of them for one owner."""

    def __init__(
        self, *, workers: int, timeout: float, memory_bytes: int, per_owner: int | None = None
    ) -> None:
        self.timeout = timeout
        self.memory_bytes = memory_bytes
        self.per_owner = per_owner or owner_share(workers)
        self._slots = asyncio.Semaphore(workers)
        self._owners: dict[str, asyncio.Semaphore] = {}
        self._users: dict[str, int] = {}  # running and waiting, to forget idle owners

    async def run(
        self,
        fn: Callable[..., T],
        *args: Any,
        timeout: float | None = None,
        owner: str | None = None,
    ) -> T:
        if owner is None:
            return await self._run(fn, args, timeout)
        async with self._owner_turn(owner):
            return await self._run(fn, args, timeout)

    async def _run(self, fn: Callable[..., T], args: tuple[Any, ...], timeout: float | None) -> T:
        async with self._slots:
            return await asyncio.to_thread(
                run_isolated,
                fn,
                args,
                timeout=timeout or self.timeout,
                memory_bytes=self.memory_bytes,
            )

    @contextlib.asynccontextmanager
    async def _owner_turn(self, owner: str) -> AsyncIterator[None]:
        """Hold one of the owner's `per_owner` turns, taken before a pool slot so a
        waiting owner never sits on a slot someone else could use."""
        turns = self._owners.setdefault(owner, asyncio.Semaphore(self.per_owner))
        self._users[owner] = self._users.get(owner, 0) + 1
        try:
            try:
                async with asyncio.timeout(self.timeout):
                    await turns.acquire()
            except TimeoutError:
                raise Busy(self.timeout) from None
            try:
                yield
            finally:
                turns.release()
        finally:
            self._users[owner] -= 1
            if not self._users[owner]:
                del self._users[owner], self._owners[owner]
