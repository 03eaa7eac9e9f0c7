"""Run untrusted-input work (file parsing, page extraction) in a child process with
time and memory caps, off the event loop.

Children are forked from a forkserver that has already imported the parsers, so a
run costs a fork, not an interpreter start. Each child sets its own address-space
and CPU limits, runs one function and exits; on timeout it is killed. A parser
that runs out of memory raises MemoryError in the child and the server carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import resource
from collections.abc import Callable
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


class Isolation:
    """At most `workers` children at once, each under `timeout` and `memory_bytes`."""

    def __init__(self, *, workers: int, timeout: float, memory_bytes: int) -> None:
        self.timeout = timeout
        self.memory_bytes = memory_bytes
        self._slots = asyncio.Semaphore(workers)

    async def run(self, fn: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
        async with self._slots:
            return await asyncio.to_thread(
                run_isolated,
                fn,
                args,
                timeout=timeout or self.timeout,
                memory_bytes=self.memory_bytes,
            )
