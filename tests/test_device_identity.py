"""A device id is a name, not a credential (issue 12, finding 1).

Before: `POST /auth/device-session {"device_id": A}` bound a new session to A's device,
so whoever knew A's id read A's conversations and spent A's coins. Now re-binding an
existing device needs its secret (body or cookie) or a live session of it; otherwise
the caller gets a new, empty device.
"""

from __future__ import annotations

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.client import Api
from vedika.identity.devices import DEVICE_COOKIE
from vedika.store.tables import devices

SECRET = "only device A knows the tangerine code"


async def _new_session(base_url: str, **body: object) -> httpx.Response:
    """A session created by a client that holds nothing but what it sends."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as h:
        return await h.post("/auth/device-session", json=body)


async def _owner_with_history(server) -> tuple[httpx.Response, str]:
    """Device A (its creation response) with one finished conversation."""
    created = await _new_session(server.url, device_id=f"device_a_{id(server)}_{SECRET[:4]}")
    assert created.status_code == 201, created.text
    a = created.json()
    headers = {"Authorization": f"Bearer {a['session_id']}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as h:
        r = await h.post("/ai/chat", json={"message": SECRET})
        assert r.status_code == 200, r.text
        return created, r.json()["conversation_id"]


async def _sees(base_url: str, session_id: str, conversation_id: str) -> bool:
    headers = {"Authorization": f"Bearer {session_id}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as h:
        listed = (await h.get("/ai/conversations")).json()["conversations"]
        opened = await h.get(f"/ai/conversations/{conversation_id}")
        in_list = any(c["conversation_id"] == conversation_id for c in listed)
        assert in_list == (opened.status_code == 200)
        return in_list


async def test_device_id_alone_gets_a_new_empty_device(server) -> None:
    created, conversation_id = await _owner_with_history(server)
    a = created.json()
    assert a["device_secret"] and len(a["device_secret"]) >= 43

    stolen = await _new_session(server.url, device_id=a["device_id"])
    assert stolen.status_code == 201, stolen.text
    b = stolen.json()
    assert b["device_id"] != a["device_id"]
    assert b["device_secret"] != a["device_secret"]
    assert not await _sees(server.url, b["session_id"], conversation_id)

    # The attacker's turns are charged to its own device, never to A's.
    before = await _balance(server.url, a["session_id"])
    headers = {"Authorization": f"Bearer {b['session_id']}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as h:
        # A client that keeps sending the id it asked for (the original web client
        # does) still matches its own session, and still sees nothing of A's.
        r = await h.get("/ai/conversations", params={"device_id": a["device_id"]})
        assert r.status_code == 200 and r.json()["conversations"] == []
        r = await h.post("/ai/chat", json={"message": "spend", "model_id": "fake-pricey"})
        assert r.status_code == 200, r.text
        gone = await h.delete(
            f"/ai/conversations/{conversation_id}", params={"device_id": a["device_id"]}
        )
        assert gone.status_code == 404
    assert await _balance(server.url, a["session_id"]) == before
    assert await _sees(server.url, a["session_id"], conversation_id)


async def test_proof_rebinds_the_device(server) -> None:
    created, conversation_id = await _owner_with_history(server)
    a = created.json()

    # 1. The secret returned once at creation, in the body (API clients).
    r = await _new_session(server.url, device_id=a["device_id"], device_secret=a["device_secret"])
    assert r.status_code == 201 and r.json()["device_id"] == a["device_id"]
    assert "device_secret" not in r.json()  # shown once only
    assert await _sees(server.url, r.json()["session_id"], conversation_id)

    # 2. The HttpOnly device cookie (the pages), with or without the id in the body.
    cookie = created.cookies.get(DEVICE_COOKIE)
    assert cookie and a["device_secret"] in cookie
    assert "httponly" in created.headers.get_list("set-cookie")[-1].lower()
    for body in ({"device_id": a["device_id"]}, {}):
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as h:
            h.cookies.set(DEVICE_COOKIE, cookie)
            r = await h.post("/auth/device-session", json=body)
        assert r.status_code == 201 and r.json()["device_id"] == a["device_id"], body

    # 3. A live session of the device, sent along.
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as h:
        r = await h.post(
            "/auth/device-session",
            json={"device_id": a["device_id"]},
            headers={"Authorization": f"Bearer {a['session_id']}"},
        )
    assert r.status_code == 201 and r.json()["device_id"] == a["device_id"]

    # A wrong secret, or another device's cookie, proves nothing.
    r = await _new_session(server.url, device_id=a["device_id"], device_secret="x" * 43)
    assert r.json()["device_id"] != a["device_id"]
    async with Api(server.url) as other:
        r = await other.http.post(
            "/auth/device-session", json={"device_id": a["device_id"]}
        )  # other's bearer is a live session, but of another device
        assert r.json()["device_id"] != a["device_id"]


async def test_device_from_before_secrets(server, backend) -> None:
    """A device created before migration 0004 has no secret: only a live session of
    it re-binds it, and that issues one."""
    created, conversation_id = await _owner_with_history(server)
    a = created.json()
    engine = create_async_engine(backend[0])
    async with engine.begin() as conn:
        await conn.execute(
            update(devices).where(devices.c.device_id == a["device_id"]).values(secret_hash=None)
        )
    await engine.dispose()

    r = await _new_session(server.url, device_id=a["device_id"], device_secret=a["device_secret"])
    assert r.json()["device_id"] != a["device_id"]  # the old secret no longer exists

    async with httpx.AsyncClient(base_url=server.url, timeout=30) as h:
        r = await h.post(
            "/auth/device-session",
            json={"device_id": a["device_id"]},
            headers={"Authorization": f"Bearer {a['session_id']}"},
        )
    body = r.json()
    assert body["device_id"] == a["device_id"] and body["device_secret"]
    again = await _new_session(
        server.url, device_id=a["device_id"], device_secret=body["device_secret"]
    )
    assert again.json()["device_id"] == a["device_id"]
    assert await _sees(server.url, again.json()["session_id"], conversation_id)


async def _balance(base_url: str, session_id: str) -> int:
    headers = {"Authorization": f"Bearer {session_id}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as h:
        return int((await h.get("/coins/balance")).json()["vedika_coins_remaining"])
