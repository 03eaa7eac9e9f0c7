"""What a SIGKILL loses (issue 16, in part): with Redis nothing a client saw, alone at
most one flush interval.

Two instances on PostgreSQL and Redis: A is killed mid-answer; B's reaper stores every
chunk that reached Redis, within the configured bound, and a client of A resumes on B
to get the rest once. One instance on SQLite: killed and restarted, it kept all but at
most ~1 s of what it streamed (the default flush interval).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.conftest import drop_pg_database, fresh_pg_database
from tests.fakes.upstream import FakeUpstream
from tests.support.client import Api, Socket, assert_invariants, chunks_of, text_of
from tests.support.server import VedikaServer, server_env, serving, sqlite_url, started

TOKEN_MS = 100  # ten chunks a second: "1 s of text" is ten chunks
MODEL = "fake-long"  # 400 tokens: 40 s, far longer than any test here waits
REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module")
def paced() -> Iterator[FakeUpstream]:
    with FakeUpstream(delay_ms=TOKEN_MS) as fake:
        yield fake


@pytest.fixture
def pg_url() -> Iterator[str]:
    url = fresh_pg_database()
    yield url
    drop_pg_database(url)


async def stored_message(srv: VedikaServer, api: Api, cid: str, mid: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=srv.url, headers=api.http.headers) as h:
        conv = (await h.get(f"/ai/conversations/{cid}")).json()
    return next(m for m in conv["messages"] if m["message_id"] == mid)


def remaining(balance: dict[str, Any]) -> int:
    return int(balance["vedika_coins_remaining"])


@pytest.mark.postgres
@pytest.mark.redis
async def test_sigkill_with_redis_stores_every_chunk_that_reached_it(
    tmp_path, pg_url, paced, models_file
) -> None:
    # B reaps an answer 5 s after its last heartbeat, looking every 0.5 s.
    stale, interval = 5.0, 0.5
    timers = {
        "VEDIKA_HEARTBEAT_STALE_SECONDS": str(stale),
        "VEDIKA_REAPER_INTERVAL": str(interval),
        "VEDIKA_FLUSH_SECONDS": "1",
    }
    with (
        serving(
            tmp_path, paced, models_file, db=pg_url, log="b.log", **timers, VEDIKA_REDIS_URL=REDIS
        ) as b,
        # A never flushes (30 s): its row keeps "" and the accept's heartbeat, so all
        # the stored text below can only come from the Redis stream.
        serving(
            tmp_path,
            paced,
            models_file,
            db=pg_url,
            log="a.log",
            VEDIKA_FLUSH_SECONDS="30",
            VEDIKA_REDIS_URL=REDIS,
        ) as a,
    ):
        async with Api(a.url) as api:
            before = remaining(await api.balance())
            start = await api.start("keep what was seen", model_id=MODEL)
            cid, mid = start["conversation_id"], start["message_id"]
            charged = remaining(await api.balance())
            assert charged < before
            # A client of A that saw three chunks, then lost its socket.
            early = await api.ask(message_id=mid, limit=3)
            # A client of B that watches until A dies.
            async with Socket(b.ws_url) as watcher:
                await watcher.send_chat(api, message_id=mid)
                seen = await watcher.until_terminal(limit=10)
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(None, a.stop, signal.SIGKILL)
                killed = time.monotonic()
                seen += await watcher.until_terminal(timeout=20)
                reaped_after = time.monotonic() - killed
            # B's reaper settled it, and the client of B got its terminal event live.
            done = assert_invariants(seen)
            assert done["type"] == "stream_error" and done["code"] == "interrupted"
            # From A's last heartbeat (its accept) that is at most stale + interval; the
            # kill came later still. A second of slack for the shared machine.
            assert reaped_after <= stale + interval + 1.0, reaped_after
            api.http.base_url = httpx.URL(b.url)  # A is gone
            stored = await stored_message(b, api, cid, mid)
            assert stored["status"] == "interrupted"
            assert len(chunks_of(seen)) >= 10
            assert stored["content"] == text_of(seen)  # all of it, from Redis
            assert stored["chunk_count"] == len(chunks_of(seen))
            # Charged once, and kept: text was delivered.
            assert remaining(await api.balance()) == charged
            # The client of A resumes on B: the rest once, then one terminal event.
            rest = await api.ask(message_id=mid, resume_from=3, on=b)
            end = assert_invariants(rest, first_chunk=4, expect_start=False)
            assert end["type"] == "stream_error" and end["code"] == "interrupted"
            assert text_of(early) + text_of(rest) == stored["content"]
            # The same over SSE, from the same point.
            async with httpx.AsyncClient(base_url=b.url, headers=api.http.headers) as h:
                sse = (await h.get(f"/ai/chat/stream/{mid}", params={"after": 3})).text
            assert sse.count("event: stream_error") == 1
            assert sse.count("event: content_chunk") == stored["chunk_count"] - 3
            assert "event: stream_start" not in sse


def _ts(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))


async def test_sigkill_alone_loses_at_most_a_second(tmp_path, paced, models_file) -> None:
    env = server_env(sqlite_url(tmp_path / "v.db"), tmp_path, paced, models_file)
    del env["VEDIKA_FLUSH_SECONDS"]  # the default interval is what is being measured
    with started(env, log_path=tmp_path / "server.log") as srv:
        async with Api(srv.url) as api:
            async with Socket(srv.ws_url) as ws:
                seen = await ws.ask(api, "lose little", model_id=MODEL, limit=1)
                loop = asyncio.get_running_loop()
                deadline = loop.time() + 2.0  # about two seconds of streaming
                while loop.time() < deadline:
                    seen += await ws.until_terminal(limit=1)
                srv.stop(signal.SIGKILL)
            cid, mid = seen[0]["conversation_id"], seen[0]["message_id"]
            srv.start()
            stored = await api.wait_status(cid, mid, timeout=5)
    chunks = chunks_of(seen)
    kept = stored["chunk_count"]
    assert stored["status"] == "interrupted"
    assert len(chunks) >= 15  # it did stream for about two seconds
    assert kept > 0  # a flush happened while it streamed
    # The stored text is exactly chunks 1..kept of what was seen: a prefix, no gap.
    assert stored["content"] == "".join(c["content"] for c in chunks[:kept])
    # What is missing was published within one flush interval (1 s) before the last
    # chunk seen: by the chunks' own timestamps, and by their count at ten a second.
    lost = chunks[kept:]
    if lost:
        span = (_ts(lost[-1]) - _ts(lost[0])).total_seconds()
        assert span <= 1.0 + 0.3, span
    assert len(lost) <= 1.0 * 1000 / TOKEN_MS + 3, len(lost)


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.parametrize(
    ("idle", "noticed"),
    [
        # Thawed, A reads the tokens the upstream sent meanwhile: Redis refuses them.
        ("30", "redis.entries_refused"),
        # Thawed, A's idle timer fires first: its settle finds the row settled.
        ("1.5", "generation.superseded"),
    ],
    ids=["entries-refused", "settle-finds-it-settled"],
)
async def test_a_reaped_generation_stops(tmp_path, pg_url, models_file, idle, noticed) -> None:
    """A is frozen (SIGSTOP) mid-answer until B's reaper settles the answer, then thawed:
    A notices (Redis refuses its entries, or its settle finds the row settled), cancels
    its upstream call and sends nothing more; its client and B's both get exactly one
    terminal event, the one the database holds, and exactly the stored text."""
    stale, interval = 2.0, 0.5
    with (
        FakeUpstream(delay_ms=TOKEN_MS) as fake,
        serving(
            tmp_path,
            fake,
            models_file,
            db=pg_url,
            log="b.log",
            VEDIKA_HEARTBEAT_STALE_SECONDS=str(stale),
            VEDIKA_REAPER_INTERVAL=str(interval),
            VEDIKA_REDIS_URL=REDIS,
        ) as b,
        serving(
            tmp_path,
            fake,
            models_file,
            db=pg_url,
            log="a.log",
            VEDIKA_FLUSH_SECONDS="0.5",
            VEDIKA_UPSTREAM_IDLE_TIMEOUT=idle,
            VEDIKA_REDIS_URL=REDIS,
        ) as a,
    ):
        assert a.proc is not None
        async with Api(a.url) as api, Socket(a.ws_url) as mine, Socket(b.ws_url) as theirs:
            start = await api.start("freeze me mid-answer", model_id=MODEL)
            cid, mid = start["conversation_id"], start["message_id"]
            await mine.send_chat(api, message_id=mid)
            on_a = await mine.until_terminal(limit=5)
            await theirs.send_chat(api, message_id=mid)
            on_b = await theirs.until_terminal(limit=5)
            hung_up = fake.hung_up()
            os.kill(a.proc.pid, signal.SIGSTOP)
            try:
                # B's reaper takes A for dead and settles the answer.
                on_b += await theirs.until_terminal(timeout=stale + 10)
            finally:
                os.kill(a.proc.pid, signal.SIGCONT)
            on_a += await mine.until_terminal(timeout=20)
            # Nothing after the terminal event on A's socket.
            with pytest.raises(TimeoutError):
                await mine.recv(timeout=1.5)
            # A cancelled its upstream call instead of reading it to the end (40 s).
            for _ in range(50):
                if fake.hung_up() > hung_up:
                    break
                await asyncio.sleep(0.1)
            assert fake.hung_up() == hung_up + 1
        api.http.base_url = httpx.URL(b.url)
        stored = await stored_message(b, api, cid, mid)
        assert stored["status"] == "interrupted"
        for seen in (on_a, on_b):
            done = assert_invariants(seen)
            assert done["type"] == "stream_error" and done["code"] == "interrupted", done
            assert text_of(seen) == stored["content"]
            assert len(chunks_of(seen)) == stored["chunk_count"] >= 5
        a_log = (tmp_path / "a.log").read_text()
        assert noticed in a_log
        assert "generation.superseded" in a_log
        assert "generation.crashed" not in a_log
