"""The database goes away and comes back: clear 503s, nothing charged, no answer left
streaming, an answer's ending stored once the database is back (or, after a long
outage, an `interrupted` ending the client is told and the store agrees with), and
service resumes on its own."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.fakes.upstream import FakeUpstream
from tests.support.client import Api, Events, Socket, text_of
from tests.support.server import VedikaServer, serving
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres

WAITING = "vedika_endings_waiting_for_database"


@contextmanager
def behind_a_proxy(
    tmp_path: Path, upstream: FakeUpstream, models_file: Path, db: str, **extra: str
) -> Iterator[tuple[VedikaServer, TcpProxy]]:
    """A server whose database connections go through a proxy the test can cut."""
    proxy = TcpProxy("127.0.0.1", 5432).start()
    proxied = db.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    try:
        with serving(tmp_path, upstream, models_file, db=proxied, **extra) as srv:
            yield srv, proxy
    finally:
        proxy.close()


async def gauge(api: Api, name: str) -> float:
    """A metric's value from /metrics (open in development, as the tests run)."""
    body = (await api.http.get("/metrics")).text
    line = next(x for x in body.splitlines() if x.startswith(name + " "))
    return float(line.split()[1])


async def until_gauge(api: Api, name: str, value: float, timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while await gauge(api, name) != value:
        assert asyncio.get_running_loop().time() < deadline, f"{name} never reached {value}"
        await asyncio.sleep(0.05)


async def test_an_ending_waits_for_the_database_and_is_stored(
    tmp_path, upstream, models_file, fresh_pg
) -> None:
    """A short outage as an answer ends: the terminal event waits until the ending is
    stored, then the client and the store agree it is complete, word for word."""
    with behind_a_proxy(tmp_path, upstream, models_file, fresh_pg) as (srv, proxy):
        async with Api(srv.url) as api:
            async with Socket(srv.ws_url) as ws:
                events: Events = await ws.ask(
                    api, "a short outage", model_id="fake-steady", limit=2
                )
                proxy.cut()
                # The answer streams to its end; its ending is tried again and waits.
                await until_gauge(api, WAITING, 1)
                await asyncio.sleep(1)  # a few more tries fail
                assert not any(e["type"] == "stream_complete" for e in events)
                proxy.restore()
                events += await ws.until_terminal(timeout=30)
            end = events[-1]
            assert end["type"] == "stream_complete", end
            assert await gauge(api, WAITING) == 0
            # Stored before the terminal event went out: no wait for a reaper.
            conv = await api.conversation(end["conversation_id"])
            stored = next(m for m in conv["messages"] if m["message_id"] == end["message_id"])
            assert stored["status"] == "complete"
            assert stored["content"] == end["full_response"] == text_of(events)


async def test_database_outage_and_recovery(tmp_path, upstream, models_file, fresh_pg) -> None:
    """An outage longer than an ending may wait (VEDIKA_HEARTBEAT_STALE_SECONDS, 3 s
    here): the client is told `interrupted`, and once the database is back the reaper
    stores exactly that, with every word the client saw."""
    with behind_a_proxy(
        tmp_path, upstream, models_file, fresh_pg, VEDIKA_HEARTBEAT_STALE_SECONDS="3"
    ) as (srv, proxy):
        async with Api(srv.url) as api:
            before = (await api.balance())["credits_remaining"]
            # An answer in flight when the database goes away.
            async with Socket(srv.ws_url) as ws:
                events = await ws.ask(api, "through the outage", model_id="fake-slow", limit=2)
                proxy.cut()
                r = await api.http.post(
                    "/ai/chat/start", json={"message": "now?", "model_id": "fake-fast"}
                )
                assert r.status_code == 503, r.text
                body = r.json()
                assert body["error"] == "database_unavailable" and "retry" in body["message"]
                assert r.headers["retry-after"]
                assert (await api.http.get("/health")).status_code == 503
                events += await ws.until_terminal(timeout=30)  # the stream itself goes on
            end = events[-1]
            assert end["type"] == "stream_error" and end["code"] == "interrupted", end
            assert end["retryable"] is True
            streamed = text_of(events)
            assert streamed.startswith("Answer to: through the outage.")
            proxy.restore()
            for _ in range(50):
                if (await api.http.get("/health")).status_code == 200:
                    break
                await asyncio.sleep(0.2)
            # The refused turn charged nothing; the one in flight was charged once.
            assert (await api.balance())["credits_remaining"] == before - 1
            # Its ending could not be stored; the reaper settles it as the client was told.
            stored = await api.wait_status(end["conversation_id"], end["message_id"], timeout=30)
            assert stored["status"] == "interrupted"
            assert stored["content"] == streamed
            assert await gauge(api, WAITING) == 0
            ok = await api.start("after the outage", model_id="fake-fast")
            assert (await api.wait_status(ok["conversation_id"], ok["message_id"]))[
                "status"
            ] == "complete"
