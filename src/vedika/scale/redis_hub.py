"""RedisHub: answers stream through Redis Streams so any instance can serve them.

One Redis stream per answer (`vedika:stream:<message_id>`). Entry ids encode the
protocol's numbering: content chunk N is `N-0`, and the events after it are `N-1`,
`N-2`, ... (`0-1`, `0-2` before the first chunk). Resuming after chunk N is then a
plain XREAD from `N-0`: no scan, no renumbering, identical on every instance.

Publishing never blocks the generation: entries go to an outbox that one writer
task pipelines to Redis, one round trip per batch. The generating instance also keeps
the events in a MemoryHub for its own subscribers, but an entry goes there only once
Redis has acknowledged it: a client never holds a chunk that Redis (and so the reaper
of another instance) does not. Other instances read with a blocking XREAD per
subscriber. If Redis fails, the hub says so loudly (`healthy` turns false,
`on_failure` is told which answers were affected): it never falls back to in-process
state, which would silently split instances.

Another instance's reaper may end an answer that is still generating here (its
heartbeat went stale under load, or the process was stopped for a while). It first
writes a fence (an entry above any chunk id), so every later entry of the generation
is refused by Redis; then it reads the stream, settles the row and writes the terminal
event after the fence. The refusal tells this instance (`on_superseded`): the
generation stops, its own clients get the terminal event the reaper wrote, and
nothing else from here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeout

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
# A follower whose stream is silent this long gets an empty batch (vedika.chat.streams),
# at most: the services tick at half the time a heartbeat may be stale.
IDLE_TICK_S = 5.0
# The shared reader's XREAD: a stream that joins interrupts it (CLIENT UNBLOCK); should
# that come before Redis even started blocking, the join waits this long at most.
TAIL_BLOCK_MS = 1_000
BATCH_GAP = 0.002  # s: the least time between two of the writer's batches (_write_loop)
WRITE_TIMEOUT = 5.0  # s, for one batch's round trip (the writer's socket timeout before)
READ_PAGE = 1000  # entries per XRANGE when the reaper reads a whole stream
FENCE = "fence"  # the reaper's entry that ends what the generation may still write
END_WAIT = 30.0  # how long a superseded generation waits for the reaper's terminal event


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
        on_superseded: Callable[[set[str]], None] | None = None,
        batch_gap: float = BATCH_GAP,
        idle_tick: float = IDLE_TICK_S,
    ) -> None:
        self.writer = writer
        self.idle_tick = idle_tick
        self.batch_gap = batch_gap
        self.reader = reader
        self.retention = max(int(retention), 1)
        self.local = MemoryHub(retention=retention)
        self.on_failure = on_failure
        self.on_superseded = on_superseded
        self.healthy = True
        self._outbox: list[tuple[str, Entry]] = []
        self._wake = asyncio.Event()
        self._mine: set[str] = set()
        # Answers another instance ended while they generated here: the terminal event
        # their local subscribers get (once Redis has it).
        self._ending: dict[str, asyncio.Task[Entry]] = {}
        self._fallback: dict[str, Entry] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._conn: AbstractConnection | None = None  # the writer's own connection (_send)
        self._heads: dict[str, bytes] = {}  # answer -> its XADD's packed start
        self.tails = _Tails(self)  # the live tails other instances' answers are read from
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
        if self._conn is not None:
            await self._conn.disconnect()
            self._conn = None
        await self.tails.close()

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
        # Local subscribers get it once Redis has it (the writer loop).
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
        loop = asyncio.get_running_loop()
        gap = self.batch_gap
        sent_at = -gap
        while True:
            await self._wake.wait()
            # A batch costs a wake-up, a write, a read and a timer whatever its size, and
            # sent as soon as anything was queued they held one or two entries. So a
            # batch follows the one before no sooner than `gap` (VEDIKA_REDIS_BATCH_MS):
            # idle, an entry goes at once; busy, what those milliseconds bring goes in one
            # round trip. A barrier (a turn's start, waiting for its stream to exist)
            # never waits.
            wait = sent_at + gap - loop.time()
            if wait > 0 and not self._barriers:
                await asyncio.sleep(wait)
            sent_at = loop.time()
            self._wake.clear()
            barriers, self._barriers = self._barriers, []
            if not self._outbox:
                _release(barriers)
                continue
            batch, self._outbox = self._outbox, []
            try:
                await self._write(batch)
            finally:
                _release(barriers)

    async def _write(self, batch: list[tuple[str, Entry]]) -> None:
        """One round trip for the batch; then each acknowledged entry goes to this
        instance's subscribers, in order. After an entry Redis refused, nothing more of
        that answer is delivered here."""
        if self._ending:
            batch = [(mid, e) for mid, e in batch if mid not in self._ending]
            if not batch:
                return
        try:
            results = await self._send(batch)
        except (RedisError, OSError) as exc:
            # Redis itself is unreachable: every answer streaming from here is affected.
            self.healthy = False
            affected = {mid for mid, _ in batch} | set(self._mine)
            log.error("redis.publish_failed", error=str(exc)[:200], answers=len(affected))
            if self.on_failure:
                self.on_failure(affected)
            # The answers' ends still reach their subscribers here (their generations
            # were told; the stream_error they publish comes through this way too), but
            # no chunk that Redis may not hold.
            for message_id, entry in batch:
                if entry.type in TERMINAL_TYPES:
                    self.local.publish(message_id, entry)
            return
        refused: dict[str, Entry] = {}  # answer -> its first refused entry
        error: Exception | None = None
        i = 0
        for message_id, entry in batch:
            result = results[i]
            i += 2 if entry.type in TERMINAL_TYPES else 1
            if message_id in refused:
                continue
            if isinstance(result, Exception):
                # E.g. another instance's reaper fenced or ended the stream.
                refused[message_id] = entry
                error = error or result
                continue
            self.local.publish(message_id, entry)
        if refused:
            log.warning("redis.entries_refused", answers=len(refused), error=str(error)[:200])
            self._mine -= refused.keys()
            for message_id, entry in refused.items():
                own = entry if entry.type in TERMINAL_TYPES else None
                self._end_locally(message_id, own)
            superseded = {mid for mid, e in refused.items() if e.type not in TERMINAL_TYPES}
            if superseded and self.on_superseded:
                self.on_superseded(superseded)

    async def _send(self, batch: list[tuple[str, Entry]]) -> list[Any]:
        """The batch's XADDs (and EXPIREs after terminal events) in one write on the
        writer's own connection, then their replies (an exception for a refused one).
        The commands are packed here, the stream key's part once per answer: redis-py's
        pipeline cost more CPU than the rest of a token's path (bench/profile.py)."""
        conn = self._conn
        if conn is None:
            # Without a socket timeout of its own: redis-py would wrap every send and
            # read in a timer (a task per send); the round trip has one (WRITE_TIMEOUT).
            pool = self.writer.connection_pool
            conn = pool.connection_class(**{**pool.connection_kwargs, "socket_timeout": None})
            await conn.connect()
            self._conn = conn
        out: list[bytes] = []
        n = 0
        for message_id, entry in batch:
            head = self._heads.get(message_id)
            if head is None:
                head = self._heads[message_id] = _xadd_head(key_for(message_id))
            sid = b"%d-*" % entry.chunk_id
            kind = entry.type.encode()
            data = entry.data.encode()
            out.append(head)
            out.append(
                b"$%d\r\n%s\r\n$1\r\nt\r\n$%d\r\n%s\r\n$1\r\nd\r\n$%d\r\n%s\r\n"
                % (len(sid), sid, len(kind), kind, len(data), data)
            )
            n += 1
            if entry.type in TERMINAL_TYPES:
                self._heads.pop(message_id, None)
                out.append(_pack(b"EXPIRE", key_for(message_id).encode(), b"%d" % self.retention))
                n += 1
        try:
            async with asyncio.timeout(WRITE_TIMEOUT):
                await conn.send_packed_command(b"".join(out), check_health=False)
                results = await _replies(conn, n)
        except TimeoutError:
            self._conn = None
            await conn.disconnect(nowait=True)
            raise RedisTimeout("Redis did not answer the writer in time") from None
        except BaseException:
            self._conn = None
            await conn.disconnect(nowait=True)
            raise
        return results

    # ------------------------------------------------------------ ended elsewhere

    def _end_locally(self, message_id: str, own: Entry | None) -> asyncio.Task[Entry]:
        self._heads.pop(message_id, None)  # nothing more of it is written from here
        task = self._ending.get(message_id)
        if task is None:
            task = asyncio.create_task(
                self._adopt_end(message_id, own), name=f"vedika-redis-end-{message_id}"
            )
            self._ending[message_id] = task
            task.add_done_callback(lambda _t: self._ending.pop(message_id, None))
        elif own is not None:
            # Already waiting for the reaper's terminal event, but the generation settled
            # the row first (the reaper will write nothing): the waiter reads this one.
            own_task = asyncio.create_task(self._end_after_fence(message_id, own))
            self._tasks.add(own_task)
            own_task.add_done_callback(self._tasks.discard)
        return task

    async def _end_after_fence(self, message_id: str, own: Entry) -> Entry | None:
        """Write the generation's own terminal event above the fence, unless the stream
        already ends with one; returns the terminal event the stream ends with."""
        key = key_for(message_id)
        try:
            last: Any = await self.writer.xrevrange(key, count=1)
            if last:
                _sid, top = _entry(*last[0])
                if top.type in TERMINAL_TYPES:
                    return top
            await self.writer.xadd(
                key, {"t": own.type, "d": own.data}, id=f"{FOREIGN_OFFSET + own.chunk_id}-*"
            )
            await self.writer.expire(key, self.retention)
            return own
        except (RedisError, OSError) as exc:
            log.warning("redis.end_failed", message_id=message_id, error=str(exc)[:200])
            return None

    async def _adopt_end(self, message_id: str, own: Entry | None) -> Entry:
        """The terminal event of an answer this instance may not write any more, given
        to its local subscribers: `own` (the generation settled the row, but a fence
        refused its terminal event: it goes after the fence) or, when another instance
        settled it, the terminal event that instance writes to the stream."""
        end: Entry | None = None
        if own is not None:
            end = await self._end_after_fence(message_id, own) or own
        else:
            try:
                end = await self._await_terminal(key_for(message_id))
            except (RedisError, OSError) as exc:
                log.warning("redis.end_failed", message_id=message_id, error=str(exc)[:200])
            end = end or self._fallback.get(message_id)
        if end is None:
            raise RedisUnavailable("no terminal event for " + message_id)
        self.local.publish(message_id, end)
        return end

    async def _await_terminal(self, key: str) -> Entry | None:
        """The stream's terminal event, waiting for it up to END_WAIT s (else None)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + END_WAIT
        last: Any = await self.writer.xrevrange(key, count=1)
        if not last:
            return None  # no stream (expired, or never written)
        sid, top = _entry(*last[0])
        if top.type in TERMINAL_TYPES:
            return top
        while (left := deadline - loop.time()) > 0:
            block = max(int(min(left, BLOCK_MS / 1000) * 1000), 1)
            resp: Any = await self.reader.xread({key: sid}, count=100, block=block)
            for raw_id, fields in resp[0][1] if resp else ():
                sid, item = _entry(raw_id, fields)
                if item.type in TERMINAL_TYPES:
                    return item
        return None

    async def ended(self, message_id: str, fallback: Entry) -> Entry:
        """The generation found its answer already settled (by another instance's
        reaper): it publishes nothing more, and its subscribers here get the terminal
        event that instance wrote (or `fallback`, if none comes)."""
        self._mine.discard(message_id)
        self._fallback[message_id] = fallback
        try:
            return await asyncio.shield(self._end_locally(message_id, None))
        except RedisUnavailable:
            self.local.publish(message_id, fallback)
            return fallback
        finally:
            self._fallback.pop(message_id, None)

    async def fence(self, message_id: str) -> None:
        """The reaper, before it reads an answer to settle it: from now on Redis refuses
        whatever its generation may still write (it tells that instance so)."""
        # The fence makes the stream if there is none yet: a generation whose instance
        # is slow (not dead) may not have published its first event when its heartbeat
        # goes stale, and without a fence it would stream text after the reaper stored
        # none (found by the nginx soak on a loaded machine).
        key = key_for(message_id)
        try:
            await self.writer.xadd(key, {"t": FENCE, "d": ""}, id=f"{FOREIGN_OFFSET}-*")
        except ResponseError:
            pass  # already ended (its terminal is above the fence's id)
        except (RedisError, OSError) as exc:
            raise RedisUnavailable(str(exc)) from None
        try:
            await self.writer.expire(key, self.retention)
        except (RedisError, OSError) as exc:
            raise RedisUnavailable(str(exc)) from None

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
            entry = build(at)  # after a fence `at` is 0: the entry's own id counts
            await self.writer.xadd(
                key,
                {"t": entry.type, "d": entry.data},
                id=f"{max(at, entry.chunk_id) + FOREIGN_OFFSET}-*",
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
                    if item.type != FENCE:
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
        # Joined before the replay is read, so nothing falls between the two: what the
        # shared reader hands over up to where the replay ended is dropped (`pos`).
        follower = self.tails.join(key, (after, 0))
        try:
            pos = (after, 0)
            start = f"({after}-0" if after > 0 else "-"
            done = False
            while True:  # the replay, in pages
                page: Any = await self.reader.xrange(key, min=start, max="+", count=READ_PAGE)
                if not page and pos == (after, 0) and not await self.reader.exists(key):
                    return
                entries = (_entry(raw_id, fields) for raw_id, fields in page)
                batch, pos, done = _after(((_sid(sid), item) for sid, item in entries), pos)
                start = f"({pos[0]}-{pos[1]}"
                if batch:
                    yield batch
                if done or len(page) < READ_PAGE:
                    break
            self.tails.advance(key, pos)
            while not done:  # the live tail, from the instance's one reader
                got = await follower.take(self.idle_tick)
                if got is None:
                    if not await self.reader.exists(key):
                        return  # expired without a terminal event
                    # A tick: the subscriber may check whether a silent stream's answer
                    # ended anyway (its instance died before publishing the end).
                    yield []
                    continue
                batch, pos, done = _after(got, pos)
                if batch:
                    yield batch
        except (RedisError, OSError) as exc:
            log.warning("redis.subscribe_failed", message_id=message_id, error=str(exc)[:200])
            raise RedisUnavailable(str(exc)) from None
        finally:
            self.tails.leave(key, follower)


class _Follower:
    """One subscriber's queue of what the shared reader read for its stream.

    `take` waits up to a timeout for something to arrive. Not with `asyncio.wait_for`:
    that arms and cancels a timer on every take, one per chunk per follower (4.7 us
    each). One timer per timeout period does: when it fires it ends the wait if the
    wait began a whole timeout ago, and otherwise moves itself to that moment."""

    __slots__ = ("_since", "_timer", "error", "items", "waiter")

    def __init__(self) -> None:
        self.items: list[tuple[tuple[int, int], Entry]] = []
        self.waiter: asyncio.Future[bool] | None = None
        self.error: Exception | None = None
        self._since = 0.0  # when the current wait began (loop time)
        self._timer: asyncio.TimerHandle | None = None

    def put(self, items: list[tuple[tuple[int, int], Entry]]) -> None:
        self.items.extend(items)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(True)

    def fail(self, error: Exception) -> None:
        self.error = error
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(True)

    async def take(self, timeout: float) -> list[tuple[tuple[int, int], Entry]] | None:
        """What arrived (waiting up to `timeout` s for something; None if nothing)."""
        if not self.items and self.error is None:
            loop = asyncio.get_running_loop()
            self.waiter = waiter = loop.create_future()
            self._since = loop.time()
            if self._timer is None:
                self._timer = loop.call_at(self._since + timeout, self._expire, timeout)
            try:
                if not await waiter:
                    return None
            finally:
                self.waiter = None
        if self.error is not None:
            raise self.error
        items, self.items = self.items, []
        return items

    def _expire(self, timeout: float) -> None:
        self._timer = None
        waiter = self.waiter
        if waiter is None or waiter.done():
            return  # not waiting: the next wait arms the timer again
        loop = waiter.get_loop()
        due = self._since + timeout
        if loop.time() < due:
            self._timer = loop.call_at(due, self._expire, timeout)
        else:
            waiter.set_result(False)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class _Tails:
    """One blocking XREAD per instance for every stream its subscribers follow live
    (rather than one per subscriber): each entry is read and parsed once, then handed
    to each follower of its stream. A stream joining while the XREAD blocks interrupts
    it (CLIENT UNBLOCK from the writer connection), so it is read from then on."""

    def __init__(self, hub: RedisHub) -> None:
        self.hub = hub
        self.streams: dict[str, tuple[list[_Follower], list[tuple[int, int]]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._conn: AbstractConnection | None = None
        self._client_id: int | None = None
        self._blocked = False
        self._closed = False

    def join(self, key: str, at: tuple[int, int]) -> _Follower:
        follower = _Follower()
        known = self.streams.get(key)
        if known is None:
            self.streams[key] = ([follower], [at])
            self._wake()
        else:
            known[0].append(follower)  # its replay reaches past the reader's position
        self._ensure_reader()
        return follower

    def _ensure_reader(self) -> None:
        if not self._closed and self.streams and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._loop(), name="vedika-redis-tails")

    def advance(self, key: str, at: tuple[int, int]) -> None:
        """A follower's replay read up to `at`: the reader need not read it again."""
        known = self.streams.get(key)
        if known is not None and at > known[1][0]:
            known[1][0] = at

    def leave(self, key: str, follower: _Follower) -> None:
        follower.close()
        known = self.streams.get(key)
        if known is not None:
            with contextlib.suppress(ValueError):
                known[0].remove(follower)
            if not known[0]:
                del self.streams[key]

    def _wake(self) -> None:
        if self._blocked and self._client_id is not None:
            self._blocked = False
            task = asyncio.create_task(
                self.hub.writer.execute_command("CLIENT", "UNBLOCK", self._client_id)
            )
            self.hub._tasks.add(task)
            task.add_done_callback(self.hub._tasks.discard)

    async def _connect(self) -> AbstractConnection:
        if self._conn is None:
            conn = self.hub.reader.connection_pool.make_connection()
            await conn.connect()
            await conn.send_command("CLIENT", "ID")
            self._client_id = int(await conn.read_response())
            self._conn = conn
        return self._conn

    async def _loop(self) -> None:
        try:
            while self.streams:
                conn = await self._connect()
                # Read after the connect: its round trips may have seen every follower
                # leave, and an XREAD of no stream is a syntax error.
                keys = list(self.streams)
                if not keys:
                    break
                ids = [b"%d-%d" % self.streams[k][1][0] for k in keys]
                await conn.send_command(
                    "XREAD", "COUNT", 1000, "BLOCK", TAIL_BLOCK_MS, "STREAMS", *keys, *ids
                )
                self._blocked = True
                resp: Any = await conn.read_response()
                self._blocked = False
                # RESP3 (redis-py's default protocol here) answers a map, RESP2 a list.
                streams = resp.items() if isinstance(resp, dict) else resp or ()
                for raw_key, entries in streams:
                    key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
                    known = self.streams.get(key)
                    if known is None:
                        continue
                    items = []
                    for raw_id, flat in entries:
                        sid = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
                        at = _sid(sid)
                        fields = dict(zip(flat[::2], flat[1::2], strict=True))
                        items.append(
                            (
                                at,
                                Entry(
                                    _text(fields, "t"), at[0] % FOREIGN_OFFSET, _text(fields, "d")
                                ),
                            )
                        )
                    if items:
                        known[1][0] = items[-1][0]
                        for follower in known[0]:
                            follower.put(items)
        except (RedisError, OSError) as exc:
            log.warning("redis.tail_failed", error=str(exc)[:200])
            error = RedisUnavailable(str(exc))
            failed, self.streams = self.streams, {}  # they end; later joins start afresh
            for followers, _at in failed.values():
                for follower in followers:
                    follower.fail(error)
            broken, self._conn = self._conn, None
            if broken is not None:
                await broken.disconnect(nowait=True)
        finally:
            self._blocked = False
        # A follower that joined while this reader was ending (its `join` saw it still
        # running) would otherwise wait with nobody reading its stream.
        if self.streams:
            asyncio.get_running_loop().call_soon(self._ensure_reader)

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._conn is not None:
            await self._conn.disconnect()
            self._conn = None


def _after(
    entries: Iterable[tuple[tuple[int, int], Entry]], pos: tuple[int, int]
) -> tuple[list[Entry], tuple[int, int], bool]:
    """What a follower gets of `entries` (by stream position): those after `pos`, up to
    and with a terminal one, fences left out. Returns them, the last position read, and
    whether the answer ended."""
    batch: list[Entry] = []
    for sid, item in entries:
        if sid <= pos:
            continue
        pos = sid
        if item.type == FENCE:
            continue
        batch.append(item)
        if item.type in TERMINAL_TYPES:
            return batch, pos, True
    return batch, pos, False


def _sid(sid: str) -> tuple[int, int]:
    ms, _, seq = sid.partition("-")
    return int(ms), int(seq or 0)


def _pack(*args: bytes) -> bytes:
    """A command in RESP (what redis-py's pack_command makes, without its overhead)."""
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def _xadd_head(key: str) -> bytes:
    """`XADD key MAXLEN ~ 50000` packed, counting the 5 arguments that follow it (id,
    "t", type, "d", data: 10 in all)."""
    k = key.encode()
    return b"*10\r\n" + _pack(b"XADD", k, b"MAXLEN", b"~", b"%d" % MAXLEN)[4:]


try:  # the reader's "not yet" value: redis-py's own, so its parser feeds the same reader
    from redis._parsers.hiredis import NOT_ENOUGH_DATA as _PARTIAL
except ImportError:  # another redis-py: every reply through read_response
    _PARTIAL = None


async def _replies(conn: AbstractConnection, n: int) -> list[Any]:
    """The next `n` replies; a refused command's as its ResponseError. With hiredis
    they come straight off its reader, one await per read from the socket rather than
    per reply (a batch's replies mostly arrive in one read): `read_response` per reply
    was a third of the writer's CPU (bench/profile.py --redis)."""
    parser: Any = conn._parser
    reader = getattr(parser, "_reader", None)
    out: list[Any] = []
    if _PARTIAL is None or reader is None or not hasattr(parser, "read_from_socket"):
        for _ in range(n):
            try:
                out.append(await conn.read_response())
            except ResponseError as exc:
                out.append(exc)
        return out
    while len(out) < n:
        reply = reader.gets()
        if reply is _PARTIAL:
            await parser.read_from_socket()  # raises ConnectionError at the end of the stream
        elif isinstance(reply, RedisConnectionError):  # e.g. Redis still loading its data
            raise reply
        else:
            out.append(reply)  # a refused XADD is a ResponseError here, not raised
    return out


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
