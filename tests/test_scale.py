"""Several instances on PostgreSQL and Redis: resume anywhere, stop anywhere, faults.

Two real `vedika serve` processes share a fresh PostgreSQL database (127.0.0.1:5432)
and Redis (127.0.0.1:6379; the outage test runs a private redis-server it can stop).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest

from tests.conftest import drop_pg_database, fresh_pg_database
from tests.fakes.upstream import FakeUpstream, fake_reply
from tests.support.client import Api, Socket, assert_invariants, chunks_of, text_of
from tests.support.redis_server import RedisServer
from tests.support.server import VedikaServer, serving

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

SYSTEM_REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module")
def paced() -> Iterator[FakeUpstream]:
    """An upstream slow enough (30 ms a token) to reconnect mid-answer."""
    with FakeUpstream(delay_ms=30) as fake:
        yield fake


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    url = fresh_pg_database()
    yield url
    drop_pg_database(url)


def instance(
    tmp: Path,
    name: str,
    pg_url: str,
    upstream: FakeUpstream,
    models_file: Path,
    redis_url: str = SYSTEM_REDIS,
    args: tuple[str, ...] = (),
    **extra: str,
) -> AbstractContextManager[VedikaServer]:
    """One instance on the shared database and Redis, logging to `tmp/name.log`."""
    env = {"VEDIKA_REDIS_URL": redis_url, **extra}
    return serving(tmp, upstream, models_file, db=pg_url, log=f"{name}.log", args=args, **env)


@pytest.fixture(scope="module")
def pair(tmp_path_factory, pg_url, paced, models_file) -> Iterator[tuple[VedikaServer, ...]]:
    tmp = tmp_path_factory.mktemp("pair")
    with (
        instance(tmp, "a", pg_url, paced, models_file) as a,
        instance(tmp, "b", pg_url, paced, models_file) as b,
    ):
        yield a, b


async def test_health_reports_redis(pair) -> None:
    a, _ = pair
    async with httpx.AsyncClient() as h:
        health = (await h.get(f"{a.url}/health")).json()
    assert health["redis"] == "ok" and health["database"] == "ok"


async def test_resume_on_the_other_instance_gets_the_rest_exactly_once(pair) -> None:
    a, b = pair
    prompt = "cross the river"
    async with Api(a.url) as api:
        first = await api.ask(prompt, model_id="fake-steady", limit=4)
        cid, mid = first[0]["conversation_id"], first[0]["message_id"]
        rest = await api.ask(message_id=mid, resume_from=4, on=b)
        done = assert_invariants(rest, first_chunk=5, expect_start=False)
        assert text_of(first) + text_of(rest) == done["full_response"]
        assert done["full_response"] == "".join(fake_reply("fake-steady", prompt))
        stored = await api.wait_status(cid, mid)
        assert stored["content"] == done["full_response"]
        # SSE on B, from the start, after the end: the whole answer again.
        async with httpx.AsyncClient(base_url=b.url, headers=api.http.headers) as h:
            r = await h.get(f"/ai/chat/stream/{mid}")
        assert r.text.count("event: stream_start") == 1
        assert r.text.count("event: stream_complete") == 1


async def test_a_stream_whose_end_never_reached_redis_ends_from_the_store(
    tmp_path, pg_url, paced, models_file
) -> None:
    """An instance that died after storing an answer's end, before its writer sent the
    last chunks and the terminal event to Redis, leaves a stream that never ends (once,
    in CI, a client behind nginx waited 120 s on one). A client following it on the
    other instance gets the stored rest once, and the end, when the stream has been
    silent as long as a heartbeat may be."""
    from redis.asyncio import Redis

    from vedika.scale.redis_hub import key_for

    quick = {"VEDIKA_HEARTBEAT_STALE_SECONDS": "1", "VEDIKA_FLUSH_SECONDS": "0.3"}
    with (
        instance(tmp_path, "a", pg_url, paced, models_file, **quick) as a,
        instance(tmp_path, "b", pg_url, paced, models_file, **quick) as b,
    ):
        async with Api(a.url) as api:
            prompt = "an end lost on the way"
            first = await api.ask(prompt, model_id="fake-steady", on=a)
            cid, mid = first[0]["conversation_id"], first[0]["message_id"]
            stored = await api.wait_status(cid, mid)
            n = stored["chunk_count"]
            assert stored["status"] == "complete" and n > 4
            redis = Redis.from_url(SYSTEM_REDIS)
            try:
                entries = await redis.xrange(key_for(mid))
                kinds = [fields[b"t"].decode() for _sid, fields in entries]
                assert kinds[-3:] == ["content_chunk", "content_chunk", "stream_complete"]
                await redis.xdel(key_for(mid), *(sid for sid, _f in entries[-3:]))
                await redis.expire(key_for(mid), 60)
            finally:
                await redis.aclose()

            loop = asyncio.get_running_loop()
            began = loop.time()
            whole = await api.ask(message_id=mid, on=b, timeout=20)
            waited = loop.time() - began
            types = [e["type"] for e in whole]
            assert types.count("stream_start") == 1 and types[-1] == "stream_complete"
            assert types.count("stream_complete") == 1
            end = whole[-1]
            ids = [e["chunk_id"] for e in chunks_of(whole)]
            assert ids == [*range(1, n - 1), n]  # the hub's chunks, then the stored rest
            assert text_of(whole) == stored["content"] == end["full_response"]
            assert waited < 10, waited  # a stale heartbeat (1 s) and a tick, not the TTL

            # A client that had every chunk Redis held resumes: the rest once, the end.
            rest = await api.ask(message_id=mid, resume_from=n - 2, on=b, timeout=20)
            assert [e["type"] for e in rest] == ["content_chunk", "stream_complete"]
            assert rest[0]["chunk_id"] == n
            assert rest[0]["content"] == text_of(chunks_of(first)[-2:])


async def test_start_on_one_instance_stream_right_away_on_the_other(pair) -> None:
    a, b = pair
    async with Api(a.url) as api:
        start = await api.start("quick handoff", model_id="fake-fast")
        events = await api.ask("quick handoff", conversation_id=start["conversation_id"], on=b)
    assert assert_invariants(events)["full_response"] == "".join(
        fake_reply("fake-fast", "quick handoff")
    )


async def test_stop_sent_to_the_other_instance(pair) -> None:
    a, b = pair
    async with Api(a.url) as api:
        start = await api.start("stop me from afar", model_id="fake-slow")
        async with Socket(a.ws_url) as ws:
            events = await ws.ask(api, message_id=start["message_id"], limit=2)
            async with httpx.AsyncClient(base_url=b.url, headers=api.http.headers) as h:
                r = await h.post("/ai/chat/stop", json={"message_id": start["message_id"]})
            assert r.status_code == 200 and r.json()["stopped"] is True
            events += await ws.until_terminal()
        done = assert_invariants(events)
        assert done["finish_reason"] == "stopped"
        stored = await api.wait_status(start["conversation_id"], start["message_id"])
        assert stored["status"] == "stopped" and stored["content"] == done["full_response"]


async def test_rate_limits_are_shared(tmp_path, pg_url, paced, models_file) -> None:
    # The test is the proxy here: its X-Forwarded-For is believed (VEDIKA_TRUSTED_PROXIES).
    limits = {"VEDIKA_RATE_SESSIONS_PER_MINUTE": "3", "VEDIKA_TRUSTED_PROXIES": "127.0.0.1"}
    with (
        instance(tmp_path, "ra", pg_url, paced, models_file, **limits) as a,
        instance(tmp_path, "rb", pg_url, paced, models_file, **limits) as b,
    ):
        # Other tests may have created sessions this minute: count from a fresh window by
        # using a distinct forwarded address.
        ip = f"203.0.113.{random.randint(1, 254)}"
        headers = {"X-Forwarded-For": ip}
        codes = []
        async with httpx.AsyncClient() as h:
            for srv in (a, b, a, b):
                r = await h.post(f"{srv.url}/auth/device-session", json={}, headers=headers)
                codes.append(r.status_code)
        assert codes[:3] == [201, 201, 201] and codes[3] == 429
        assert int(r.headers["retry-after"]) >= 1 and r.json()["error"] == "rate_limited"


async def test_sigterm_and_sigkill_mid_answer(tmp_path, pg_url, paced, models_file) -> None:
    with instance(tmp_path, "b2", pg_url, paced, models_file, VEDIKA_LOG_LEVEL="info") as b:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            prompt = f"survive {sig.name}"
            with instance(
                tmp_path, f"a-{sig.name}", pg_url, paced, models_file, VEDIKA_DRAIN_SECONDS="20"
            ) as a:
                async with Api(a.url) as api:
                    async with Socket(a.ws_url) as ws:
                        first = await ws.ask(api, prompt, model_id="fake-slow", limit=2)
                        cid, mid = first[0]["conversation_id"], first[0]["message_id"]
                        stopper = asyncio.get_running_loop().run_in_executor(None, a.stop, sig)
                        # whatever A still sends before its socket closes
                        with contextlib.suppress(Exception):
                            first += await ws.until_terminal(timeout=30)
                        await stopper
                    seen = len(chunks_of(first))
                    if first[-1]["type"] not in ("stream_complete", "stream_error"):
                        first += await api.ask(message_id=mid, resume_from=seen, on=b, timeout=40)
                    terminal = assert_invariants(first)
                    if sig is signal.SIGTERM:  # drained: the answer finished on A
                        assert terminal["type"] == "stream_complete"
                        assert terminal["full_response"] == "".join(fake_reply("fake-slow", prompt))
                    else:  # killed: B's reaper settles it, the partial text is kept
                        assert terminal["type"] == "stream_error"
                        assert terminal["code"] == "interrupted"
                    async with httpx.AsyncClient(base_url=b.url, headers=api.http.headers) as h:
                        conv = (await h.get(f"/ai/conversations/{cid}")).json()
                    stored = conv["messages"][-1]
                    status = "complete" if sig is signal.SIGTERM else "interrupted"
                    assert stored["status"] == status
                    assert text_of(first).startswith(stored["content"])


async def test_redis_outage_and_recovery(tmp_path, pg_url, paced, models_file) -> None:
    redis_srv = RedisServer().start()
    outage = instance(tmp_path, "outage", pg_url, paced, models_file, redis_url=redis_srv.url)
    try:
        with outage as srv:
            async with Api(srv.url) as api:
                async with Socket(srv.ws_url) as ws:
                    events = await ws.ask(api, "mid outage", model_id="fake-slow", limit=2)
                    redis_srv.stop()
                    events += await ws.until_terminal(timeout=30)
                err = assert_invariants(events)
                assert err["type"] == "stream_error" and err["retryable"] is True
                assert err["code"] == "stream_unavailable"
                r = await api.http.post(
                    "/ai/chat/start", json={"message": "now?", "model_id": "fake-fast"}
                )
                assert r.status_code == 503 and r.json()["error"] == "redis_unavailable"
                assert (await api.http.get("/health")).json()["redis"] == "unavailable"
                stored = await api.wait_status(
                    events[0]["conversation_id"], events[0]["message_id"]
                )
                assert stored["status"] == "error" and stored["content"] == text_of(events)
                redis_srv = RedisServer(port=redis_srv.port).start()
                for _ in range(100):
                    if (await api.http.get("/health")).json()["redis"] == "ok":
                        break
                    await asyncio.sleep(0.1)
                body = await api.start("after the outage", model_id="fake-fast")
                stored = await api.wait_status(body["conversation_id"], body["message_id"])
                assert stored["status"] == "complete"
    finally:
        redis_srv.stop()


async def test_200_concurrent_answers_with_reconnects(pair) -> None:
    a, b = pair
    servers = [a, b]
    rng = random.Random(7)
    async with httpx.AsyncClient(timeout=30) as http:
        sessions = []
        for i in range(20):  # 20 devices x 10 answers
            http.cookies.clear()  # the device cookie would bind the next session to it
            r = await http.post(f"{servers[i % 2].url}/auth/device-session", json={})
            sessions.append(r.json()["session_id"])

    async def one(i: int) -> tuple[str, str, str]:
        sid = sessions[i % 20]
        home = i % 2
        prompt = f"answer number {i}"
        reconnects = rng.randint(1, 3) if i % 10 == 0 else 0
        events: list[dict] = []
        async with Socket(servers[home].ws_url) as ws:
            limit = 3 if reconnects else None
            events += await ws.ask(sid, prompt, model_id="fake-steady", limit=limit, timeout=60)
        cid, mid = events[0]["conversation_id"], events[0]["message_id"]
        for k in range(reconnects):
            if events[-1]["type"] in ("stream_complete", "stream_error"):
                break
            target = servers[(home + k + 1) % 2]
            async with Socket(target.ws_url) as ws:
                limit = 2 if k < reconnects - 1 else None
                seen = len(chunks_of(events))
                events += await ws.ask(
                    sid, message_id=mid, resume_from=seen, limit=limit, timeout=60
                )
        if events[-1]["type"] not in ("stream_complete", "stream_error"):
            async with Socket(servers[home].ws_url) as ws:
                seen = len(chunks_of(events))
                events += await ws.ask(sid, message_id=mid, resume_from=seen, timeout=60)
        done = assert_invariants(events)  # contiguous ids: nothing lost, doubled, reordered
        assert done["type"] == "stream_complete", done
        assert done["full_response"] == "".join(fake_reply("fake-steady", prompt))
        return cid, mid, done["full_response"]

    results = await asyncio.gather(*(one(i) for i in range(200)))
    async with httpx.AsyncClient(base_url=a.url, timeout=30) as http:
        for i, (cid, mid, text) in enumerate(results):
            r = await http.get(
                f"/ai/conversations/{cid}", headers={"Authorization": f"Bearer {sessions[i % 20]}"}
            )
            stored = next(m for m in r.json()["messages"] if m["message_id"] == mid)
            assert stored["status"] == "complete" and stored["content"] == text


async def test_workers_share_answers_over_redis(tmp_path, pg_url, paced, models_file) -> None:
    """`vedika serve --workers 2`: answers started on one worker stream from either."""
    workers = instance(tmp_path, "workers", pg_url, paced, models_file, args=("--workers", "2"))
    with workers as srv:
        instances = set()
        # A fresh connection each time, so the kernel spreads them over the workers.
        # The server is healthy once one worker answers; the other may still be
        # starting (a loaded CI machine: 300 quick tries all met the first one).
        no_reuse = httpx.Limits(max_keepalive_connections=0)
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient(base_url=srv.url, limits=no_reuse) as h:
            while len(instances) < 2 and time.monotonic() < deadline:
                instances.add((await h.get("/health")).json()["instance_id"])
                await asyncio.sleep(0.01)
        assert len(instances) == 2  # two worker processes answer
        async with Api(srv.url) as api:
            for i in range(6):
                start = await api.start(f"worker turn {i}", model_id="fake-fast")
                events = await api.ask(message_id=start["message_id"])
                done = assert_invariants(events)
                assert done["full_response"] == "".join(fake_reply("fake-fast", f"worker turn {i}"))
