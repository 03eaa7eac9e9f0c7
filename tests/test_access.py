"""Access matrix: every id-taking call x {owner, other device, no session, expired}.

Only the owner sees or changes anything; another device gets 404 (never the data),
no session or an expired one gets 401, and nothing changes.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import websockets
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.client import Api, Socket
from vedika.identity.sessions import CACHE_SECONDS
from vedika.store.tables import device_sessions

SECRET = "the secret plan is purple"


async def expire(db_url: str, session_id: str, at: datetime | None = None) -> None:
    engine = create_async_engine(db_url)
    async with engine.begin() as conn:
        await conn.execute(
            update(device_sessions)
            .where(device_sessions.c.session_id == session_id)
            .values(expires_at=at or datetime(2020, 1, 1, tzinfo=UTC))
        )
    await engine.dispose()


async def forget(db_url: str, session_id: str) -> None:
    engine = create_async_engine(db_url)
    async with engine.begin() as conn:
        await conn.execute(
            delete(device_sessions).where(device_sessions.c.session_id == session_id)
        )
    await engine.dispose()


@pytest.fixture
async def owned(server, api: Api) -> dict[str, str]:
    start = await api.start(SECRET, model_id="fake-fast")
    await api.wait_status(start["conversation_id"], start["message_id"])
    return {"cid": start["conversation_id"], "mid": start["message_id"]}


def calls(cid: str, mid: str) -> list[tuple[str, str, dict | None]]:
    return [
        ("GET", f"/ai/conversations/{cid}", None),
        ("PATCH", f"/ai/conversations/{cid}", {"title": "hijacked"}),
        ("GET", f"/ai/chat/stream/{mid}", None),
        ("POST", "/ai/chat/stop", {"message_id": mid}),
        ("POST", "/ai/chat/stop", {"conversation_id": cid}),
        ("POST", "/ai/chat/start", {"message": "continue", "conversation_id": cid}),
        ("POST", "/ai/chat", {"message": "continue", "conversation_id": cid}),
        # branches (issue 18)
        ("POST", f"/ai/conversations/{cid}/active", {"message_id": mid}),
        ("POST", "/ai/chat/start", {"message": "again", "conversation_id": cid, "regenerate": mid}),
        ("POST", "/ai/chat/start", {"message": "on", "conversation_id": cid, "parent_id": mid}),
        ("DELETE", f"/ai/conversations/{cid}", None),
    ]


@pytest.mark.parametrize("who", ["other", "none", "expired"])
async def test_rest_matrix(server, backend, api: Api, other: Api, owned, who: str) -> None:
    headers: dict[str, str] = {}
    if who == "other":
        headers = {"Authorization": f"Bearer {other.session_id}"}
    elif who == "expired":
        await expire(backend[0], other.session_id)
        headers = {"Authorization": f"Bearer {other.session_id}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as h:
        for method, path, body in calls(owned["cid"], owned["mid"]):
            r = await h.request(method, path, json=body)
            expected = 404 if who == "other" else 401
            assert r.status_code == expected, (who, method, path, r.status_code, r.text)
            assert SECRET not in r.text and "purple" not in r.text
            assert set(r.json()) >= {"error", "message", "status_code"}
    conv = await api.conversation(owned["cid"])  # nothing changed
    assert conv["title"] != "hijacked" and len(conv["messages"]) == 2
    assert conv["messages"][0]["content"] == SECRET


async def test_owner_can(server, api: Api, owned) -> None:
    for method, path, body in calls(owned["cid"], owned["mid"])[:4]:
        r = await api.http.request(method, path, json=body)
        assert r.status_code == 200, (method, path, r.text)


@pytest.mark.parametrize("who", ["other", "expired"])
async def test_socket_matrix(server, backend, other: Api, owned, who: str) -> None:
    if who == "expired":
        await expire(backend[0], other.session_id)
    async with Socket(server.ws_url) as ws:
        probes = [
            {"routeKey": "stream_chat", "conversation_id": owned["cid"]},
            {"routeKey": "stream_chat", "message_id": owned["mid"]},
            {"routeKey": "stream_chat", "message_id": owned["mid"], "resume_from": 1},
            {"routeKey": "stream_chat", "conversation_id": owned["cid"], "message": SECRET},
            {"routeKey": "stream_chat", "conversation_id": owned["cid"], "message": "more"},
            {
                "routeKey": "stream_chat",
                "conversation_id": owned["cid"],
                "message": "again",
                "regenerate": owned["mid"],
            },
            {"routeKey": "stop_stream", "message_id": owned["mid"]},
        ]
        for probe in probes:
            await ws.send(**probe, session_id=other.session_id)
            event = await ws.recv()
            assert event["type"] == "stream_error", event
            assert event["code"] in (
                ("conversation_not_found", "message_not_found")
                if who == "other"
                else ("session_expired",)
            ), event
            assert "purple" not in str(event)


async def test_forged_session_at_the_handshake_is_refused_before_any_event(server) -> None:
    url = server.ws_url + "?session_id=forged-session-id"
    with pytest.raises(websockets.InvalidStatus) as info:  # the upgrade itself is refused
        async with websockets.connect(url):
            pass
    assert info.value.response.status_code == 403


async def test_origin_is_checked_on_the_socket(server) -> None:
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(
            server.ws_url, additional_headers={"Origin": "https://evil.example"}
        ):
            pass
    own = server.url  # the server's own pages are always allowed
    async with Socket(server.ws_url, origin=own) as ws:
        await ws.send(routeKey="ping")
        assert (await ws.recv())["type"] == "pong"


async def test_cors_only_for_configured_origins(server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as h:
        evil = await h.options(
            "/ai/conversations",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert "access-control-allow-origin" not in evil.headers
        plain = await h.get("/routing/models", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in plain.headers


# The server keeps sessions it found in memory for CACHE_SECONDS (identity/sessions.py).
# A request takes well under SLACK seconds here.
SLACK = 1.0


async def test_a_session_deleted_while_in_use_is_refused_within_the_cache_bound(
    server, backend, api: Api
) -> None:
    async with Socket(f"{server.ws_url}?session_id={api.session_id}") as ws:
        probe = {"routeKey": "stream_chat", "message_id": "no-such-answer"}
        assert (await api.http.get("/ai/conversations")).status_code == 200
        await ws.send(**probe)
        assert (await ws.recv())["code"] == "message_not_found"  # the session was found
        await forget(backend[0], api.session_id)
        deleted = time.monotonic()
        rest = socket = None
        while (rest is None or socket is None) and time.monotonic() - deleted < 10:
            if rest is None and (await api.http.get("/ai/conversations")).status_code == 401:
                rest = time.monotonic() - deleted
            if socket is None:
                await ws.send(**probe)
                if (await ws.recv())["code"] == "session_expired":
                    socket = time.monotonic() - deleted
            await asyncio.sleep(0.05)
        assert rest is not None and rest <= CACHE_SECONDS + SLACK, rest
        assert socket is not None and socket <= CACHE_SECONDS + SLACK, socket


async def test_a_session_is_never_accepted_past_its_expiry(server, backend, api: Api) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=CACHE_SECONDS * 0.6)
    await expire(backend[0], api.session_id, at=expires)
    assert (await api.http.get("/ai/conversations")).status_code == 200  # found and kept
    await asyncio.sleep(max((expires - datetime.now(UTC)).total_seconds(), 0) + 0.05)
    # Still within the time a found session is kept, but it has expired.
    assert (await api.http.get("/ai/conversations")).status_code == 401
