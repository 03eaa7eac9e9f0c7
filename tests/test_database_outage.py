"""The database goes away and comes back: clear 503s, nothing charged, no answer left
streaming, and service resumes on its own."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.client import Api, Socket
from tests.support.server import serving
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres


async def test_database_outage_and_recovery(tmp_path, upstream, models_file, fresh_pg) -> None:
    proxy = TcpProxy("127.0.0.1", 5432).start()
    proxied = fresh_pg.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    try:
        with serving(tmp_path, upstream, models_file, db=proxied) as srv:
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
                assert events[-1]["type"] == "stream_complete"
                proxy.restore()
                for _ in range(50):
                    if (await api.http.get("/health")).status_code == 200:
                        break
                    await asyncio.sleep(0.2)
                # The refused turn charged nothing; the one in flight was charged once.
                assert (await api.balance())["credits_remaining"] == before - 1
                # Its final write failed while the database was away; the reaper settles it.
                stored = await api.wait_status(
                    events[0]["conversation_id"], events[0]["message_id"], timeout=30
                )
                assert stored["status"] in ("complete", "interrupted")
                assert events[-1]["full_response"].startswith(stored["content"])
                ok = await api.start("after the outage", model_id="fake-fast")
                assert (await api.wait_status(ok["conversation_id"], ok["message_id"]))[
                    "status"
                ] == "complete"
    finally:
        proxy.close()
