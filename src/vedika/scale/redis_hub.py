"""RedisHub: answers stream through Redis Streams so any instance can serve them.

One Redis stream per answer (`vedika:stream:<message_id>`). Entry ids encode the
protocol's numbering: content chunk N is `N-0`, and the events after it are `N-1`,
`N-2`, ... (`0-1`, `0-2` before the first chunk). Resuming after chunk N is then a
plain XREAD from `N-0`: no scan, no renumbering, identical on every instance.

The generating instance also keeps the events in a MemoryHub, so its own
subscribers never wait on a Redis round trip; other instances read with a blocking
XREAD per subscriber. Publishing never blocks the generation: entries go to an
outbox that one writer task pipelines to Redis. If Redis fails, the hub says so
loudly (`healthy` turns false, `on_failure` is told which answers were affected):
it never falls back to in-process state, which would silently split instances.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from vedika.protocol import TERMINAL_KINDS, TERMINAL_TYPES
from vedika.scale.hub import Entry, MemoryHub

log = structlog.get_logger(__name__)

PREFIX = "vedika:stream:"
# A terminal event written by another instance's reaper goes far after the last entry:
# the dead instance may have shown its own clients chunks that never reached Redis, and
# a client resuming after any of them must still get the terminal event.
FOREIGN_OFFSET = 1_000_000_000
MAXLEN = 50_000  # a guard; answers are far shorter
BLOCK_MS = 10_000
READ_PAGE = 1000  # entries per XRANGE when the reaper reads a whole stream


def key_for(message_id: str) -> str:
    return PREFIX + message_id


class RedisUnavailable(Exception):
    """Redis could not be reached; the caller turns this into a 503 or stream_error."""


class RedisHub:
    distributed = True

    def __init__(
        self,
        *,
        writer: Redis,
        reader: Redis,
        retention: float,
        on_failure: Callable[[set[str]], None] | None = None,
    ) -> None:
        self.writer = writer
        self.reader = reader
        self.retention = max(int(retention), 1)
        self.local = MemoryHub(retention=retention)
        self.on_failure = on_failure
        self.healthy = True
        self._outbox: list[tuple[str, Entry]] = []
        self._wake = asyncio.Event()
        self._mine: set[str] = set()
        self._barriers: list[asyncio.Future[None]] = []
        self._task: asyncio.Task[None] | None = None
        self._pinger: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._task = asyncio.create_task(self._write_loop(), name="vedika-redis-writer")
        self._pinger = asyncio.create_task(self._ping_loop(), name="vedika-redis-ping")

    async def close(self) -> None:
        await self._drain_outbox()
        for task in (self._task, self._pinger):
            if task:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _drain_outbox(self, timeout: float = 5.0) -> None:
        """Shutdown: give the writer a moment to send what is queued."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._outbox and self.healthy and loop.time() < deadline:
            self._wake.set()
            await asyncio.sleep(0.01)

    async def ping(self) -> bool:
        try:
            await self.writer.ping()
        except (RedisError, OSError):
            self.healthy = False
            return False
        self.healthy = True
        return True

    async def _ping_loop(self) -> None:
        while True:
            await asyncio.sleep(0.5 if not self.healthy else 2.0)
            was = self.healthy
            if await self.ping() and not was:
                log.warning("redis.recovered")

    # ------------------------------------------------------------ publishing

    def open(self, message_id: str) -> None:
        self.local.open(message_id)
        self._mine.add(message_id)

    def has(self, message_id: str) -> bool:
        return self.local.has(message_id)

    def forget(self, message_id: str) -> None:
        """Nothing to drop: the Redis stream expires by itself (its retention)."""

    def publish(self, message_id: str, entry: Entry) -> None:
        if message_id not in self._mine:
            return
        self.local.publish(message_id, entry)
        self._outbox.append((message_id, entry))
        if entry.type in TERMINAL_TYPES:
            self._mine.discard(message_id)
        self._wake.set()

    async def barrier(self) -> None:
        """Wait until the outbox so far is in Redis (start() awaits this, so a client of
        another instance that arrives right after the 201 finds the stream)."""
        if not self._outbox:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._barriers.append(fut)
        self._wake.set()
        await fut
        if not self.healthy:
            raise RedisUnavailable("Redis did not take the stream")

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            barriers, self._barriers = self._barriers, []
            if not self._outbox:
                _release(barriers)
                continue
            batch, self._outbox = self._outbox, []
            pipe = self.writer.pipeline(transaction=False)
            owners: list[str] = []  # the answer behind each queued command
            for message_id, entry in batch:
                key = key_for(message_id)
                pipe.xadd(
                    key,
                    {"t": entry.type, "d": entry.data},
                    id=f"{entry.chunk_id}-*",
                    maxlen=MAXLEN,
                    approximate=True,
                )
                owners.append(message_id)
                if entry.type in TERMINAL_TYPES:
                    pipe.expire(key, self.retention)
                    owners.append(message_id)
            try:
                results = await pipe.execute(raise_on_error=False)
            except (RedisError, OSError) as exc:
                # Redis itself is unreachable: every answer streaming from here is affected.
                self.healthy = False
                affected = {mid for mid, _ in batch} | set(self._mine)
                log.error("redis.publish_failed", error=str(exc)[:200], answers=len(affected))
                if self.on_failure:
                    self.on_failure(affected)
            else:
                # A command refused on its own (e.g. another instance's reaper already
                # ended that stream): only that answer is affected.
                refused = {owners[i] for i, r in enumerate(results) if isinstance(r, Exception)}
                if refused:
                    log.warning(
                        "redis.entries_refused",
                        answers=len(refused),
                        error=str(next(r for r in results if isinstance(r, Exception)))[:200],
                    )
                    self._mine -= refused
                    if self.on_failure:
                        self.on_failure(refused)
            finally:
                _release(barriers)

    async def finish_foreign(self, message_id: str, build: Callable[[int], Entry]) -> None:
        """Publish a terminal event for an answer whose generator died elsewhere."""
        if message_id in self._mine or self.local.has(message_id):
            self.publish(message_id, build(0))
            return
        key = key_for(message_id)
        try:
            last: Any = await self.writer.xrevrange(key, count=1)
            if not last:
                return  # nobody streamed it through Redis (or it expired)
            last_id = last[0][0]
            last_id = last_id.decode() if isinstance(last_id, bytes) else last_id
            fields = last[0][1]
            kind = fields.get(b"t") or fields.get("t")
            if kind in TERMINAL_KINDS or kind in TERMINAL_TYPES:
                return
            at = int(last_id.split("-")[0]) % FOREIGN_OFFSET
            entry = build(at)
            await self.writer.xadd(
                key,
                {"t": entry.type, "d": entry.data},
                id=f"{at + FOREIGN_OFFSET}-*",
                nomkstream=True,
            )
            await self.writer.expire(key, self.retention)
        except (RedisError, OSError) as exc:
            log.warning("redis.finish_foreign_failed", error=str(exc)[:200])

    async def read(self, message_id: str) -> list[Entry]:
        """The answer's stream as it is now: pages of XRANGE, never a blocking read, so
        the reaper gets exactly what reached Redis (and waits for nothing more)."""
        if self.local.has(message_id):
            return await self.local.read(message_id)
        key = key_for(message_id)
        out: list[Entry] = []
        start = "-"
        try:
            while True:
                page: Any = await self.writer.xrange(key, min=start, max="+", count=READ_PAGE)
                for raw_id, fields in page:
                    sid, item = _entry(raw_id, fields)
                    out.append(item)
                    start = f"({sid}"  # exclusive: the next page starts after it
                if len(page) < READ_PAGE:
                    return out
        except (RedisError, OSError) as exc:
            log.warning("redis.read_failed", message_id=message_id, error=str(exc)[:200])
            raise RedisUnavailable(str(exc)) from None

    # ------------------------------------------------------------ subscribing

    async def subscribe(self, message_id: str, after: int = 0) -> AsyncIterator[list[Entry]]:
        if self.local.has(message_id):
            async for local_batch in self.local.subscribe(message_id, after):
                yield local_batch
            return
        key = key_for(message_id)
        last = f"{after}-0" if after > 0 else "0-0"
        try:
            if not await self.reader.exists(key):
                return
            while True:
                resp: Any = await self.reader.xread({key: last}, count=1000, block=BLOCK_MS)
                if not resp:
                    if not await self.reader.exists(key):
                        return
                    continue
                entries = resp[0][1]
                batch: list[Entry] = []
                done = False
                for raw_id, fields in entries:
                    last, item = _entry(raw_id, fields)
                    batch.append(item)
                    if item.type in TERMINAL_TYPES:
                        done = True
                        break
                yield batch
                if done:
                    return
        except (RedisError, OSError) as exc:
            log.warning("redis.subscribe_failed", message_id=message_id, error=str(exc)[:200])
            raise RedisUnavailable(str(exc)) from None


def _release(barriers: list[asyncio.Future[None]]) -> None:
    for fut in barriers:
        if not fut.done():
            fut.set_result(None)


def _entry(raw_id: Any, fields: Any) -> tuple[str, Entry]:
    """(stream id, Entry) of one Redis stream entry: the id's first part is the chunk."""
    sid = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
    at = int(sid.split("-", 1)[0]) % FOREIGN_OFFSET
    return sid, Entry(_text(fields, "t"), at, _text(fields, "d"))


def _text(fields: Any, name: str) -> str:
    value = fields.get(name.encode()) or fields.get(name) or b""
    return value.decode() if isinstance(value, bytes) else value
