"""Hostile sizes and shapes, floods and limits: clear errors, the process survives."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
import websockets

from tests.support.client import Api, Socket
from tests.support.server import serving


async def healthy(server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as h:
        assert (await h.get("/health")).json()["status"] == "ok"


def raw_post(port: int, path: str, declared: int, send: int) -> bytes:
    """POST declaring `declared` bytes, sending `send` of them; returns what came back."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {declared}\r\n\r\n".encode()
        )
        chunk = b"x" * 65536
        sent = 0
        try:
            while sent < send:
                s.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass  # the server may close early: that is allowed, a crash is not
        try:
            return s.recv(4096)
        except OSError:
            return b""


async def test_100_mb_body_is_refused_and_the_process_survives(server) -> None:
    reply = await asyncio.to_thread(
        raw_post, server.port, "/ai/chat/start", 100 * 1024 * 1024, 8 * 1024 * 1024
    )
    assert reply == b"" or reply.startswith(b"HTTP/1.1 413")
    await healthy(server)


async def test_1_mb_message_and_nested_json(server, api: Api) -> None:
    r = await api.http.post("/ai/chat/start", json={"message": "y" * 1_000_000})
    assert r.status_code == 400 and r.json()["error"] == "message_too_long"
    nested = b'{"message": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    r = await api.http.post(
        "/ai/chat/start", content=nested, headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and set(r.json()) >= {"error", "message"}
    async with Socket(server.ws_url) as ws:
        await ws.ws.send('{"routeKey": "stream_chat", "x": ' + "[" * 50_000 + "]" * 50_000 + "}")
        assert (await ws.recv())["code"] == "bad_request"
    await healthy(server)


async def test_huge_socket_frame_closes_with_1009(server) -> None:
    async with websockets.connect(server.ws_url, max_size=None) as ws:
        await ws.recv()
        await ws.send("x" * (2 * 1024 * 1024))
        with pytest.raises(websockets.ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009
    await healthy(server)


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "string",
        42,
        {"message": None},
        {"message": {"a": 1}},
        {"message": True},
        {"message": "ok", "sources": "web"},
        {"message": "ok", "attachments": [1, 2]},
        {"message": "ok", "conversation_id": ["x"]},
        {"message": "ok", "client_message_id": 5},
        {"message": "ok", "interaction_mode": "telepathy"},
        {"message": "ok", "query_type": 9},
    ],
)
async def test_wrong_shapes_are_400_never_500(server, api: Api, body) -> None:
    for path in ("/ai/chat/start", "/ai/chat"):
        r = await api.http.post(path, json=body)
        assert r.status_code == 400, (path, body, r.status_code, r.text)
        assert r.json()["status_code"] == 400


@pytest.fixture
def limited(tmp_path, upstream, models_file):
    with serving(
        tmp_path,
        upstream,
        models_file,
        VEDIKA_RATE_MESSAGES_PER_MINUTE="3",
        VEDIKA_MAX_CONCURRENT_ANSWERS="1",
        VEDIKA_RATE_SOCKET_MESSAGES_PER_10S="5",
        VEDIKA_RATE_SESSIONS_PER_MINUTE="3",
    ) as srv:
        yield srv


async def test_limits(limited) -> None:
    async with Api(limited.url) as api:
        first = await api.start("slow one", model_id="fake-slow")
        r = await api.http.post("/ai/chat/start", json={"message": "second at once"})
        assert r.status_code == 429 and r.json()["error"] == "too_many_answers"
        assert r.headers["retry-after"]
        # An idempotent retry is not limited twice.
        await api.http.post("/ai/chat/stop", json={"message_id": first["message_id"]})
        key = {"message": "keyed", "model_id": "fake-fast", "client_message_id": "k-1"}
        assert (await api.http.post("/ai/chat/start", json=key)).status_code == 201
        for _ in range(3):
            assert (await api.http.post("/ai/chat/start", json=key)).status_code == 200
        await asyncio.sleep(0.3)
        r = await api.http.post(
            "/ai/chat/start", json={"message": "third", "model_id": "fake-fast"}
        )
        assert r.status_code == 201, r.text
        await asyncio.sleep(0.3)
        r = await api.http.post(
            "/ai/chat/start", json={"message": "fourth", "model_id": "fake-fast"}
        )
        assert r.status_code == 429 and r.json()["error"] == "rate_limited"
        assert "wait" in r.json()["message"] and int(r.headers["retry-after"]) >= 1
        async with Socket(limited.ws_url) as ws:
            for _ in range(5):
                await ws.send(routeKey="ping")
                assert (await ws.recv())["type"] == "pong"
            await ws.send(routeKey="ping")
            assert (await ws.recv())["code"] == "rate_limited"
    codes = [
        (await httpx.AsyncClient().post(f"{limited.url}/auth/device-session", json={})).status_code
        for _ in range(3)
    ]
    assert codes[-1] == 429  # Api() above used one of the three


async def test_production_cookies_headers_and_cors(tmp_path, upstream, models_file) -> None:
    with serving(
        tmp_path,
        upstream,
        models_file,
        VEDIKA_ENV="production",
        VEDIKA_CORS_ORIGINS="https://app.example.com",
    ) as srv:
        async with httpx.AsyncClient(base_url=srv.url) as h:
            r = await h.post("/auth/device-session", json={})
            cookie = r.headers["set-cookie"].lower()
            assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie
            assert r.headers["strict-transport-security"].startswith("max-age=")
            assert r.headers["x-frame-options"] == "DENY"
            assert r.headers["referrer-policy"] == "strict-origin-when-cross-origin"
            pre = await h.options(
                "/ai/conversations",
                headers={
                    "Origin": "https://app.example.com",
                    "Access-Control-Request-Method": "GET",
                    "Access-Control-Request-Headers": "authorization",
                },
            )
            assert pre.headers["access-control-allow-origin"] == "https://app.example.com"
            assert pre.headers["access-control-allow-credentials"] == "true"
            bad = await h.options(
                "/ai/conversations",
                headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
            )
            assert "access-control-allow-origin" not in bad.headers
        async with Socket(srv.ws_url, origin="https://app.example.com") as ws:
            await ws.send(routeKey="ping")
            assert (await ws.recv())["type"] == "pong"
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(
                srv.ws_url, additional_headers={"Origin": "https://evil.example"}
            ):
                pass
