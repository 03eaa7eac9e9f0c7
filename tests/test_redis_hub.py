"""RedisHub on a real Redis: local subscribers get only what Redis acknowledged.

The generating instance's own clients must never hold an entry the Redis stream does
not (a SIGKILL would leave them with a chunk no reaper stores), and once another
instance fenced the stream, nothing more from here reaches them but its terminal event.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis
from redis.asyncio import Redis
from structlog.testing import capture_logs

from vedika.scale.hub import Entry
from vedika.scale.redis_hub import RedisHub, key_for

REDIS = "redis://127.0.0.1:6379/0"

pytestmark = pytest.mark.redis


def chunk(i: int) -> Entry:
    return Entry("content_chunk", i, f'{{"content":"c{i}"}}')


@pytest.fixture
async def hubs() -> AsyncIterator[tuple[RedisHub, RedisHub]]:
    made: list[RedisHub] = []
    for _ in range(2):
        hub = RedisHub(writer=Redis.from_url(REDIS), reader=Redis.from_url(REDIS), retention=60)
        hub.start()
        made.append(hub)
    yield made[0], made[1]
    for hub in made:
        await hub.close()
        await hub.writer.aclose()
        await hub.reader.aclose()


async def test_a_local_subscriber_never_gets_an_entry_before_redis_has_it(hubs) -> None:
    hub, _ = hubs
    mid = f"order-{uuid.uuid4().hex}"
    look = redis.Redis.from_url(REDIS)  # blocking on purpose: Redis as it is on arrival
    hub.open(mid)
    early: list[str] = []

    async def follow() -> list[Entry]:
        seen: list[Entry] = []
        async for batch in hub.subscribe(mid):
            stored = {f[b"d"].decode() for _id, f in look.xrange(key_for(mid))}
            early.extend(e.data for e in batch if e.data not in stored)
            seen.extend(batch)
        return seen

    task = asyncio.create_task(follow())
    await asyncio.sleep(0)
    hub.publish(mid, Entry("stream_start", 0, "start"))
    for i in range(1, 301):
        hub.publish(mid, chunk(i))
        if i % 7 == 0:
            await asyncio.sleep(0)
    hub.publish(mid, Entry("stream_complete", 300, "done"))
    seen = await asyncio.wait_for(task, 10)
    look.close()
    assert early == []
    assert [e.data for e in seen] == ["start"] + [chunk(i).data for i in range(1, 301)] + ["done"]


async def test_after_a_fence_only_the_other_instance_terminal_reaches_local_subscribers(
    hubs,
) -> None:
    hub, other = hubs
    superseded: list[set[str]] = []
    hub.on_superseded = superseded.append
    mid = f"fence-{uuid.uuid4().hex}"
    hub.open(mid)
    for i in range(1, 4):
        hub.publish(mid, chunk(i))
    await hub.barrier()
    seen: list[Entry] = []

    async def follow() -> None:
        async for batch in hub.subscribe(mid):
            seen.extend(batch)

    task = asyncio.create_task(follow())
    await other.fence(mid)  # another instance's reaper
    for i in range(4, 6):
        hub.publish(mid, chunk(i))
    await hub.barrier()
    assert superseded == [{mid}]
    # The reaper stores what Redis holds (no fence, none of the refused chunks) ...
    assert [e.data for e in await other.read(mid)] == [chunk(i).data for i in range(1, 4)]
    # ... and its terminal event is what the subscriber here gets, right after chunk 3.
    await other.finish_foreign(mid, lambda last: Entry("stream_error", last, "reaped"))
    await asyncio.wait_for(task, 10)
    assert [e.data for e in seen] == [chunk(i).data for i in range(1, 4)] + ["reaped"]
    hub.publish(mid, chunk(6))  # the generation is told to stop; this goes nowhere
    await hub.barrier()
    assert [e.data for e in await other.read(mid)][-1] == "reaped"


async def test_followers_on_another_instance_share_one_reader(hubs) -> None:
    """B's subscribers of two answers, joining at different points, each get their
    events once and in order; a stream that joins while B's reader blocks on another
    one is read at once, not after the block times out."""
    a, b = hubs
    first, second = f"tail-{uuid.uuid4().hex}", f"tail-{uuid.uuid4().hex}"
    for mid in (first, second):
        a.open(mid)
        a.publish(mid, Entry("stream_start", 0, f"start-{mid}"))
        a.publish(mid, chunk(1))
    await a.barrier()

    async def collect(mid: str, after: int = 0) -> list[str]:
        out: list[str] = []
        async for batch in b.subscribe(mid, after):
            out.extend(e.data for e in batch)
        return out

    early = asyncio.create_task(collect(first))
    await asyncio.sleep(0.2)  # B's reader now blocks on `first` alone
    loop = asyncio.get_running_loop()
    joined = loop.time()
    late = asyncio.create_task(collect(second, after=1))
    resumed = asyncio.create_task(collect(first, after=1))
    await asyncio.sleep(0.05)
    for i in range(2, 41):
        for mid in (first, second):
            a.publish(mid, chunk(i))
        await asyncio.sleep(0.001)
    for mid in (first, second):
        a.publish(mid, Entry("stream_complete", 40, f"done-{mid}"))
    got_late = await asyncio.wait_for(late, 5)
    took = loop.time() - joined
    rest = [chunk(i).data for i in range(2, 41)]
    assert await asyncio.wait_for(early, 5) == [
        f"start-{first}",
        chunk(1).data,
        *rest,
        f"done-{first}",
    ]
    assert await asyncio.wait_for(resumed, 5) == [*rest, f"done-{first}"]
    assert got_late == [*rest, f"done-{second}"]
    assert took < 0.9, took  # TAIL_BLOCK_MS is 1 s: the join interrupted the block
    assert b.tails.streams == {}  # every follower left


async def test_a_generation_that_settled_first_ends_its_stream_above_the_fence(hubs) -> None:
    """The reaper fenced the stream but lost the race to settle the row: the
    generation's own terminal event (refused below the fence) goes above it, to every
    subscriber, here and elsewhere."""
    hub, other = hubs
    superseded: list[set[str]] = []
    hub.on_superseded = superseded.append
    mid = f"won-{uuid.uuid4().hex}"
    hub.open(mid)
    hub.publish(mid, chunk(1))
    await hub.barrier()
    local = asyncio.create_task(collect_all(hub, mid))
    remote = asyncio.create_task(collect_all(other, mid))
    await asyncio.sleep(0.1)
    await other.fence(mid)
    hub.publish(mid, Entry("stream_complete", 1, "complete"))
    await hub.barrier()
    assert await asyncio.wait_for(local, 5) == [chunk(1).data, "complete"]
    assert await asyncio.wait_for(remote, 5) == [chunk(1).data, "complete"]
    assert superseded == []  # a refused terminal event does not stop anything
    # The reaper, having lost, writes nothing; a late one finds the stream ended.
    await other.finish_foreign(mid, lambda last: Entry("stream_error", last, "reaped"))
    assert [e.data for e in await other.read(mid)] == [chunk(1).data, "complete"]


async def collect_all(hub: RedisHub, mid: str) -> list[str]:
    out: list[str] = []
    async for batch in hub.subscribe(mid):
        out.extend(e.data for e in batch)
    return out


async def test_the_shared_reader_outlives_followers_that_leave_while_it_connects(hubs) -> None:
    """A follower that leaves while the instance's reader is still connecting leaves it
    with nothing to read: it stops quietly (it once sent an XREAD of no stream, a
    syntax error that failed every follower joining meanwhile), and the next follower
    is served."""
    a, b = hubs
    with capture_logs() as logs:
        gone = b.tails.join(key_for(f"gone-{uuid.uuid4().hex}"), (0, 0))
        await asyncio.sleep(0)  # the reader task starts: it awaits its connection
        b.tails.leave(key_for("x"), gone)  # not its key: nothing changes
        assert b.tails.streams
        for key in list(b.tails.streams):
            b.tails.leave(key, gone)
        assert b.tails.streams == {}
        task = b.tails._task
        assert task is not None
        await asyncio.wait_for(task, 5)
    assert [e for e in logs if e["event"] == "redis.tail_failed"] == []

    mid = f"after-{uuid.uuid4().hex}"
    a.open(mid)
    a.publish(mid, chunk(1))
    await a.barrier()

    async def collect() -> list[str]:
        return [e.data async for batch in b.subscribe(mid, 1) for e in batch]

    follower = asyncio.create_task(collect())
    await asyncio.sleep(0.05)
    a.publish(mid, chunk(2))
    a.publish(mid, Entry("stream_complete", 2, "done"))
    assert await asyncio.wait_for(follower, 5) == [chunk(2).data, "done"]


async def test_a_fence_before_the_first_event_refuses_the_whole_answer(hubs) -> None:
    """The reaper of another instance may fence an answer before its slow (not dead)
    instance published anything: the fence then makes the stream, so nothing of the
    answer reaches Redis or a client after the reaper stored none of it."""
    hub, other = hubs
    superseded: list[set[str]] = []
    hub.on_superseded = superseded.append
    mid = f"early-fence-{uuid.uuid4().hex}"
    await other.fence(mid)  # nothing published yet
    assert await other.writer.ttl(key_for(mid)) > 0  # the fence's stream expires
    hub.open(mid)
    seen: list[Entry] = []

    async def follow() -> None:
        async for batch in hub.subscribe(mid):
            seen.extend(batch)

    task = asyncio.create_task(follow())
    hub.publish(mid, Entry("stream_start", 0, "start"))
    hub.publish(mid, chunk(1))
    await hub.barrier()
    assert superseded == [{mid}]
    assert await other.read(mid) == []  # what the reaper stores: nothing, as it should
    await other.finish_foreign(mid, lambda last: Entry("stream_error", last, "reaped"))
    await asyncio.wait_for(task, 10)
    assert [e.data for e in seen] == ["reaped"]  # no chunk the stored answer lacks


@pytest.mark.parametrize("parser", ["hiredis", "python"])
async def test_a_batch_of_replies_is_read_whole_and_in_order(parser: str) -> None:
    """The writer's replies (`_replies`): a batch larger than one socket read, with a
    refused XADD in the middle kept as its error, in order, with hiredis's reader read
    directly and with redis-py's own parser."""
    from redis._parsers import _AsyncRESP2Parser
    from redis.exceptions import ResponseError

    from vedika.scale.redis_hub import _pack, _replies

    kwargs = {"parser_class": _AsyncRESP2Parser} if parser == "python" else {}
    client = Redis.from_url(REDIS, **kwargs)
    pool = client.connection_pool
    conn = pool.connection_class(**pool.connection_kwargs)
    await conn.connect()
    key = f"vedika:test:replies:{uuid.uuid4().hex}".encode()
    try:
        n = 3000  # replies of ~20 bytes: several reads of the socket
        cmds = [_pack(b"XADD", key, b"%d-1" % (i + 1), b"t", b"x") for i in range(n)]
        cmds.insert(1500, _pack(b"XADD", key, b"1-1", b"t", b"x"))  # below the top: refused
        await conn.send_packed_command(b"".join(cmds), check_health=False)
        replies = await _replies(conn, n + 1)
        assert len(replies) == n + 1
        assert isinstance(replies[1500], ResponseError)
        ids = [r for i, r in enumerate(replies) if i != 1500]
        assert ids == [b"%d-1" % (i + 1) for i in range(n)]
        await conn.send_packed_command(_pack(b"PING"), check_health=False)
        assert await _replies(conn, 1) == [b"PONG"]  # nothing left over in the reader
    finally:
        await client.delete(key)
        await conn.disconnect()
        await client.aclose()


class CountingHub(RedisHub):
    """A RedisHub that counts its writer's round trips."""

    batches = 0

    async def _send(self, batch: list[tuple[str, Entry]]) -> list[object]:
        self.batches += 1
        return await super()._send(batch)


@pytest.mark.parametrize("gap_ms", [0.0, 5.0])
async def test_a_busy_writer_batches_what_its_gap_brings(gap_ms: float) -> None:
    """200 events published as fast as the loop's timer allows (0.5 ms or more apart):
    sent at once (gap 0) they take a round trip each or nearly; with a 5 ms gap, one
    round trip per 5 ms of publishing. Either way every event
    reaches Redis and the local subscriber, in order."""
    hub = CountingHub(
        writer=Redis.from_url(REDIS),
        reader=Redis.from_url(REDIS),
        retention=60,
        batch_gap=gap_ms / 1000,
    )
    hub.start()
    mid = f"batch-{uuid.uuid4().hex}"
    try:
        hub.open(mid)
        got: list[int] = []

        async def follow() -> None:
            async for batch in hub.subscribe(mid, 0):
                got.extend(e.chunk_id for e in batch)
                if got and got[-1] == 200:
                    return

        reader = asyncio.create_task(follow())
        loop = asyncio.get_running_loop()
        started = loop.time()
        for i in range(1, 201):
            hub.publish(mid, chunk(i))
            await asyncio.sleep(0.0005)
        await asyncio.wait_for(reader, 5)
        elapsed_ms = (loop.time() - started) * 1000
        assert got == list(range(1, 201))
        assert [e.chunk_id for e in await hub.read(mid)] == list(range(1, 201))
        if gap_ms:  # one a gap, give or take the first and the last
            assert hub.batches <= elapsed_ms / gap_ms + 3, (hub.batches, elapsed_ms)
        else:
            assert hub.batches >= 60, hub.batches
    finally:
        await hub.close()
