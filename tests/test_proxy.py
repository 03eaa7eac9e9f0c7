"""Behind a real nginx: two `vedika serve` instances on PostgreSQL + Redis, and nginx
(a child process of the test) in front of them, configured with exactly the block
docs/deployment.md gives users (tests/support/nginx.py changes only the addresses).

Every client here talks to nginx only: the socket's upgrade, unbuffered SSE, the
client's address for rate limits, and what a client sees when an instance is killed
or restarted (it reconnects through nginx and resumes on the other instance).
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import drop_pg_database, fresh_pg_database
from tests.fakes.upstream import FakeUpstream, fake_reply
from tests.support.client import TERMINAL, Api, Socket, assert_invariants, text_of
from tests.support.nginx import Nginx, proxy_config
from tests.support.reconnecting import DROPPED, Followed, follow
from tests.support.server import ROOT, VedikaServer, server_env, serving

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

SYSTEM_REDIS = "redis://127.0.0.1:6379/0"
# The reaper's bound in these tests: an answer whose instance died is settled once its
# heartbeat is STALE seconds old, by a reaper that looks every REAPER seconds.
STALE, REAPER = 3.0, 0.5
CLUSTER_ENV = {
    "VEDIKA_REDIS_URL": SYSTEM_REDIS,
    "VEDIKA_TRUSTED_PROXIES": "127.0.0.1",  # nginx, as docs/deployment.md says
    "VEDIKA_HEARTBEAT_STALE_SECONDS": str(STALE),
    "VEDIKA_REAPER_INTERVAL": str(REAPER),
    "VEDIKA_DRAIN_SECONDS": "20",
    "VEDIKA_DAILY_CREDITS": "1000000",
}


@dataclass
class Cluster:
    a: VedikaServer
    b: VedikaServer
    nginx: Nginx

    def up(self) -> None:
        """Both instances running (a test before may have stopped or killed one)."""
        for srv in (self.a, self.b):
            if srv.proc is None or srv.proc.poll() is not None:
                srv.proc = None
                srv.start()


@pytest.fixture(scope="module")
def paced() -> Iterator[FakeUpstream]:
    """30 ms a token: an answer streams for about a second (fake-slow: 200 ms)."""
    with FakeUpstream(delay_ms=30) as fake:
        yield fake


@contextmanager
def running_cluster(tmp: Path, upstream: FakeUpstream, models_file: Path, **extra: str):
    """Two instances on a fresh database (migrated once, by the first start; restarts
    skip it, as in production) and nginx in front of them."""
    pg = fresh_pg_database()
    env = server_env(pg, tmp, upstream, models_file, **(CLUSTER_ENV | extra))
    a = VedikaServer(env, log_path=tmp / "a.log")
    b = VedikaServer(env, log_path=tmp / "b.log", args=("--no-migrate",))
    nginx = Nginx(tmp / "nginx", [f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"])
    try:
        a.start()
        a.args = ("--no-migrate",)
        b.start()
        nginx.start()
        yield Cluster(a, b, nginx)
    finally:
        nginx.stop()
        a.stop()
        b.stop()
        drop_pg_database(pg)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, paced, models_file) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("proxy"), paced, models_file) as c:
        yield c


@pytest.fixture
def proxy(cluster: Cluster) -> Cluster:
    cluster.up()
    return cluster


def test_the_config_is_the_documented_one() -> None:
    """Only the three marked lines differ from docs/deployment.md's block, and
    deploy/nginx.conf is that block too."""
    from tests.support.nginx import documented_config

    doc = documented_config().splitlines()
    ours = proxy_config(["127.0.0.1:1", "127.0.0.1:2"], "127.0.0.1:3").splitlines()
    changed = [(d, o) for d, o in zip(doc, ours, strict=True) if d != o]
    assert [o.strip() for _, o in changed] == [
        "server 127.0.0.1:1 max_fails=1 fail_timeout=5s;",
        "server 127.0.0.1:2 max_fails=1 fail_timeout=5s;",
        "listen 127.0.0.1:3;",
    ]
    # docker-compose's nginx (deploy/nginx.conf) is the same block with its addresses.
    compose = proxy_config(["vedika-a:8000", "vedika-b:8000"], "80")
    assert (ROOT / "deploy" / "nginx.conf").read_text() == compose
    text = "\n".join(doc)
    for must in (
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_buffering off;",
        "proxy_read_timeout 1h;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_next_upstream error timeout;",
    ):
        assert must in text, must


async def test_a_websocket_answer_streams_through_nginx(proxy: Cluster) -> None:
    """The upgrade works, and a browser's Origin (with the proxy's port) is its own."""
    prompt = "through the proxy"
    async with Api(proxy.nginx.url) as api:
        async with Socket(proxy.nginx.ws_url, origin=proxy.nginx.url) as ws:
            events = await ws.ask(api, prompt, model_id="fake-steady")
        done = assert_invariants(events)
        assert (
            done["full_response"] == text_of(events) == "".join(fake_reply("fake-steady", prompt))
        )
        stored = await api.wait_status(events[0]["conversation_id"], events[0]["message_id"])
        assert stored["status"] == "complete" and stored["content"] == done["full_response"]


async def test_sse_is_not_buffered_by_nginx(proxy: Cluster) -> None:
    prompt = "drip"
    async with Api(proxy.nginx.url) as api:
        start = await api.start(prompt, model_id="fake-slow")  # 200 ms a token, ~5 s
        arrivals: list[tuple[float, str]] = []
        t0 = time.monotonic()
        async with api.http.stream("GET", f"/ai/chat/stream/{start['message_id']}") as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            async for line in r.aiter_lines():
                if line.startswith("event: "):
                    arrivals.append((time.monotonic() - t0, line[7:]))
    chunks = [t for t, kind in arrivals if kind == "content_chunk"]
    end = next(t for t, kind in arrivals if kind == "stream_complete")
    tokens = len(fake_reply("fake-slow", prompt))
    assert len(chunks) == tokens
    # Unbuffered: the first chunk arrives about 0.2 s in, long before the end (~5 s);
    # chunks arrive spread over the answer, not in one burst at the end.
    assert chunks[0] < 1.5 and end - chunks[0] > 3.0, arrivals[:3]
    assert chunks[len(chunks) // 2] < end - 1.5


async def test_the_clients_address_reaches_the_rate_limits(
    tmp_path, paced, models_file, fresh_pg
) -> None:
    """VEDIKA_TRUSTED_PROXIES=127.0.0.1 (nginx): limits count each client's own address
    (nginx's X-Forwarded-For), and a client cannot choose its address by sending one."""
    limits = {
        **CLUSTER_ENV,
        "VEDIKA_RATE_SESSIONS_PER_MINUTE": "3",
    }
    with (
        serving(tmp_path, paced, models_file, db=fresh_pg, log="ra.log", **limits) as a,
        serving(tmp_path, paced, models_file, db=fresh_pg, log="rb.log", **limits) as b,
        Nginx(tmp_path / "nginx", [f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"]) as nginx,
    ):
        # Clients on other loopback addresses (fresh ones: the limit window is shared in
        # Redis with other tests this minute); nginx reaches Vedika from 127.0.0.1.
        net = f"127.{random.randint(1, 250)}.{random.randint(0, 250)}"

        async def sessions(source: str, spoof: bool = False) -> list[int]:
            transport = httpx.AsyncHTTPTransport(local_address=source)
            codes = []
            async with httpx.AsyncClient(transport=transport) as h:
                for n in range(4):
                    headers = {"X-Forwarded-For": f"198.51.100.{n + 1}"} if spoof else {}
                    r = await h.post(f"{nginx.url}/auth/device-session", json={}, headers=headers)
                    codes.append(r.status_code)
            return codes

        assert await sessions(f"{net}.1") == [201, 201, 201, 429]
        # Another client is not limited by the first: the limits see it, not nginx.
        assert await sessions(f"{net}.2") == [201, 201, 201, 429]
        # A forged X-Forwarded-For does not buy a fresh window.
        assert await sessions(f"{net}.3", spoof=True) == [201, 201, 201, 429]


def _prompt(tag: str, i: int) -> str:
    return f"{tag} answer {i}"


async def _stored(nginx: Nginx, session_id: str, cid: str, mid: str) -> dict:
    """The stored answer, read through nginx."""
    async with httpx.AsyncClient(base_url=nginx.url, timeout=30) as h:
        r = await h.get(
            f"/ai/conversations/{cid}", headers={"Authorization": f"Bearer {session_id}"}
        )
    assert r.status_code == 200, r.text
    return next(m for m in r.json()["messages"] if m["message_id"] == mid)


async def _sessions(nginx: Nginx, n: int) -> list[str]:
    async with httpx.AsyncClient(base_url=nginx.url, timeout=30) as h:
        out = []
        for _ in range(n):
            h.cookies.clear()
            out.append((await h.post("/auth/device-session", json={})).json()["session_id"])
    return out


async def test_sigkill_under_streaming_clients(proxy: Cluster) -> None:
    """An instance is killed while clients stream through nginx: each reconnects through
    nginx (to the survivor), resumes from its last chunk, and ends with exactly one
    terminal event and the text the conversation stores; the dead instance's answers are
    settled within the reaper's bound."""
    nginx, n = proxy.nginx, 8
    sessions = await _sessions(nginx, n)
    prompts = [_prompt("kill", i) for i in range(n)]
    # Sockets opened one after the other: nginx's round robin puts half on each instance.
    sockets = [await Socket(nginx.ws_url).__aenter__() for _ in range(n)]
    firsts: list[list[dict]] = []
    for ws, sid, prompt in zip(sockets, sessions, prompts, strict=True):
        firsts.append(await ws.ask(sid, prompt, model_id="fake-slow", limit=2))
    killed_at = time.monotonic()
    proxy.a.stop(signal.SIGKILL)

    async def rest(ws: Socket, sid: str, events: list[dict]) -> tuple[Followed, float]:
        try:  # the answer goes on (on B), or its socket drops (on A)
            while events[-1]["type"] not in TERMINAL:
                events.append(await ws.recv(timeout=30))
            out = Followed(events=events, connections=1)
        except DROPPED as exc:
            out = await follow(
                nginx.ws_url,
                sid,
                message_id=events[0]["message_id"],
                seen=events,
                patience=STALE + 30,
            )
            out.failures.insert(0, type(exc).__name__)
        finally:
            await ws.__aexit__()
        return out, time.monotonic() - killed_at

    results = await asyncio.gather(
        *(rest(ws, sid, f) for ws, sid, f in zip(sockets, sessions, firsts, strict=True))
    )
    interrupted, differ = 0, []
    for (out, took), sid, prompt in zip(results, sessions, prompts, strict=True):
        done = assert_invariants(out.events)  # one start, chunks 1..n once each, one end
        cid, mid = out.ids()
        stored = await _stored(nginx, sid, cid, mid)
        if done["type"] == "stream_complete":  # it was on B
            assert done["full_response"] == out.text == "".join(fake_reply("fake-slow", prompt))
            assert stored["status"] == "complete"
        else:  # it was on A: reaped by B within the bound, partial text kept
            interrupted += 1
            assert out.connections >= 2 and out.failures  # it did reconnect through nginx
            assert done["code"] == "interrupted", done
            assert stored["status"] == "interrupted"
            assert took < STALE + 2 * REAPER + 5, took
        if stored["content"] != out.text:
            differ.append((done["type"], f"stored {stored['content']!r}", f"got {out.text!r}"))
    assert 0 < interrupted < n  # the kill hit some answers and spared others
    # What the client was shown is what the conversation keeps.
    assert not differ, differ


@pytest.fixture
def quiet_cluster(tmp_path, paced, models_file) -> Iterator[Cluster]:
    """Instances of their own with the usual heartbeat bound (10 s, tests/support/
    server.py): the rolling restart kills nothing, so nothing may be reaped. (With the
    kill test's 3 s, live answers get reaped when the two cores are saturated.)"""
    stale = server_env("", tmp_path, paced, models_file)["VEDIKA_HEARTBEAT_STALE_SECONDS"]
    with running_cluster(tmp_path, paced, models_file, VEDIKA_HEARTBEAT_STALE_SECONDS=stale) as c:
        yield c


@pytest.mark.slow
async def test_rolling_restart_under_100_streaming_clients(quiet_cluster: Cluster) -> None:
    """SIGTERM A (it drains), start A, then the same for B, while 100 clients stream
    answer after answer through nginx: every answer ends complete, its chunks once each
    and in order, its text the model's, and the stored text the streamed text."""
    proxy = quiet_cluster
    nginx = proxy.nginx
    sessions = await _sessions(nginx, 20)
    stop = asyncio.Event()
    answers: list[tuple[str, str, Followed]] = []

    async def client(i: int) -> None:
        k = 0
        while not stop.is_set():
            prompt = _prompt(f"rolling {i}", k)
            out = await follow(
                nginx.ws_url,
                sessions[i % 20],
                message=prompt,
                client_message_id=str(uuid.uuid4()),
                model_id="fake-steady",
                patience=60,
            )
            answers.append((sessions[i % 20], prompt, out))
            k += 1

    async def routed_to(srv: VedikaServer) -> None:
        """Wait until nginx sends requests to `srv` again (its fail_timeout passed)."""
        async with httpx.AsyncClient(timeout=5) as h:
            want = (await h.get(f"{srv.url}/health")).json()["instance_id"]
            for _ in range(200):
                if (await h.get(f"{nginx.url}/health")).json().get("instance_id") == want:
                    return
                await asyncio.sleep(0.05)
        raise AssertionError("nginx never sent a request to the restarted instance")

    async def restart(srv: VedikaServer) -> None:
        loop = asyncio.get_running_loop()
        code = await loop.run_in_executor(None, srv.stop, signal.SIGTERM, 40)
        # uvicorn re-raises the SIGTERM it handled once it has shut down cleanly
        assert code in (0, -signal.SIGTERM), f"instance exited with {code}"
        await loop.run_in_executor(None, srv.start)
        await routed_to(srv)

    clients = [asyncio.create_task(client(i)) for i in range(100)]
    try:
        await asyncio.sleep(1.5)
        await restart(proxy.a)
        await asyncio.sleep(1.0)
        await restart(proxy.b)
        await asyncio.sleep(1.0)
    finally:
        stop.set()
        await asyncio.gather(*clients)
    dropped = sum(1 for *_, out in answers if out.connections > 1)
    assert len(answers) >= 200 and dropped >= 20, (len(answers), dropped)
    for _sid, prompt, out in answers:
        done = assert_invariants(out.events)  # one start, chunks 1..n once each, one end
        assert done["type"] == "stream_complete", (done, out.failures)
        assert done["full_response"] == out.text == "".join(fake_reply("fake-steady", prompt))
    async with httpx.AsyncClient(base_url=nginx.url, timeout=30) as h:
        gate = asyncio.Semaphore(16)

        async def stored(sid: str, out: Followed) -> tuple[dict, Followed]:
            cid, mid = out.ids()
            async with gate:
                r = await h.get(
                    f"/ai/conversations/{cid}", headers={"Authorization": f"Bearer {sid}"}
                )
            return next(m for m in r.json()["messages"] if m["message_id"] == mid), out

        for row, out in await asyncio.gather(*(stored(sid, out) for sid, _, out in answers)):
            assert row["status"] == "complete" and row["content"] == out.text, (row, out.failures)
