"""Accounts (issue 17, in part): email + password, claiming a device's history, coins by
plan, your sessions and data, CSRF, brute force; against real `vedika serve` processes
on SQLite and PostgreSQL (docs/accounts.md)."""

from __future__ import annotations

import statistics
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import (
    DATABASES,
    NO_SIGN_IN_LIMITS,
    a_database,
)
from tests.support.client import Api
from tests.support.server import VedikaServer, serving
from vedika.ids import account_owner
from vedika.store.tables import (
    accounts,
    coin_days,
    coin_ledger,
    conversations,
    device_sessions,
    files,
    idempotency_keys,
    messages,
    passages,
    preferences,
)

PASSWORD = "correct horse battery staple"
CSRF = {"X-Requested-With": "fetch"}
ACCOUNT_DAILY = 50


@pytest.fixture(scope="module", params=DATABASES)
def accounts_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, upstream, models_file
) -> Iterator[tuple[VedikaServer, str, Path]]:
    """A server of its own (sign-in limits off, an account allowance that differs from
    the anonymous one), and its database URL, to read the tables."""
    data_dir = tmp_path_factory.mktemp(f"accounts-{request.param}")
    with (
        a_database(request.param, data_dir) as url,
        serving(
            data_dir,
            upstream,
            models_file,
            db=url,
            VEDIKA_ACCOUNT_DAILY_CREDITS=str(ACCOUNT_DAILY),
            **NO_SIGN_IN_LIMITS,
        ) as srv,
    ):
        yield srv, url, data_dir


@pytest.fixture
def srv(accounts_server: tuple[VedikaServer, str, Path]) -> VedikaServer:
    return accounts_server[0]


@pytest.fixture
async def device(srv: VedikaServer) -> AsyncIterator[Api]:
    async with Api(srv.url) as client:
        yield client


@pytest.fixture
async def device2(srv: VedikaServer) -> AsyncIterator[Api]:
    async with Api(srv.url) as client:
        yield client


def new_email(tag: str) -> str:
    return f"{tag}-{time.monotonic_ns()}@example.org"


async def sign(api: Api, path: str, **body: Any) -> dict[str, Any]:
    """Register or log in as the device `api` (bearer); the device then uses the new,
    signed-in session."""
    r = await api.http.post(path, json=body)
    assert r.status_code in (200, 201), r.text
    out = r.json()
    api.session_id = out["session_id"]
    api.http.headers["Authorization"] = f"Bearer {api.session_id}"
    return out  # type: ignore[no-any-return]


async def ask(api: Api, message: str, **fields: Any) -> str:
    r = await api.http.post("/ai/chat", json={"message": message, **fields})
    assert r.status_code == 200, r.text
    return r.json()["conversation_id"]  # type: ignore[no-any-return]


async def listed(api: Api) -> dict[str, Any]:
    r = await api.http.get("/ai/conversations")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_register_and_login_answer_alike_for_unknown_email_and_wrong_password(
    device: Api, srv: VedikaServer
) -> None:
    email = new_email("Ana")
    out = await sign(device, "/auth/register", email=f"  {email.upper()} ", password=PASSWORD)
    assert out["account"]["email"] == email.lower() and out["plan"] == "account"
    assert out["account_id"] == out["account"]["account_id"]
    assert out["daily_credits"] == ACCOUNT_DAILY
    again = await device.http.post("/auth/register", json={"email": email, "password": PASSWORD})
    assert again.status_code == 409 and again.json()["error"] == "email_taken"
    short = await device.http.post(
        "/auth/register", json={"email": new_email("b"), "password": "short"}
    )
    assert short.status_code == 400 and short.json()["error"] == "password_too_short"
    bad = await device.http.post("/auth/register", json={"email": "no-at", "password": PASSWORD})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_email"

    async def attempt(mail: str, password: str) -> tuple[httpx.Response, float]:
        began = time.perf_counter()
        r = await device.http.post("/auth/login", json={"email": mail, "password": password})
        return r, time.perf_counter() - began

    # One of each in turn, so that a busy moment of the machine (CI runs shards side by
    # side) slows both kinds alike: three of one kind then three of the other once
    # measured a load spike as a difference.
    wrong, unknown = [], []
    for _ in range(3):
        wrong.append(await attempt(email, "not the password"))
        unknown.append(await attempt(new_email("nobody"), PASSWORD))
    bodies = {(r.status_code, r.json()["error"], r.json()["message"]) for r, _ in wrong + unknown}
    assert len(bodies) == 1 and next(iter(bodies))[:2] == (401, "invalid_credentials")
    # An unknown email is verified against a dummy hash: it costs what a wrong password
    # costs (Argon2id, tens of ms), not the few ms of a lookup alone.
    slow, fast = statistics.median(t for _, t in wrong), statistics.median(t for _, t in unknown)
    assert fast > slow * 0.4, (slow, fast)

    me = await device.http.get("/auth/me")
    assert me.status_code == 200 and me.json()["account"]["email"] == email.lower()
    replaced = device.session_id
    again_in = await sign(device, "/auth/login", email=email.title(), password=PASSWORD)
    assert again_in["account"]["account_id"] == out["account_id"]
    assert again_in["device_id"] == out["device_id"]
    # Signing in over a signed-in session replaces it.
    old = await device.http.get("/auth/me", headers=auth(replaced))
    assert old.status_code == 401


async def test_claim_on_sign_up_then_see_it_from_a_second_device(device: Api, device2: Api) -> None:
    first = await ask(device, "What do herons eat?")
    second = await ask(device, "Where do herons nest?")
    anonymous_session = device.session_id
    email = new_email("claim")
    out = await sign(device, "/auth/register", email=email, password=PASSWORD, name="Ana")
    assert out["claimed_conversations"] == 2 and out["device_id"] == device.device_id
    page = await listed(device)
    assert {c["conversation_id"] for c in page["conversations"]} == {first, second}
    assert page["owner_type"] == "account" and page["owner_id"] == out["account_id"]
    # The anonymous session of that device is still a session, of an empty device now.
    old = httpx.AsyncClient(base_url=device.base_url, headers=auth(anonymous_session))
    async with old:
        assert (await old.get("/ai/conversations")).json()["conversations"] == []

    assert (await listed(device2))["conversations"] == []
    signed = await sign(device2, "/auth/login", email=email, password=PASSWORD)
    assert signed["claimed_conversations"] == 0 and signed["device_id"] == device2.device_id
    assert {c["conversation_id"] for c in (await listed(device2))["conversations"]} == {
        first,
        second,
    }
    opened = await device2.conversation(first)
    assert opened["messages"][0]["content"] == "What do herons eat?"
    # Claimed once: signing in again on the first device moves nothing more.
    again = await sign(device, "/auth/login", email=email, password=PASSWORD)
    assert again["claimed_conversations"] == 0 and (await listed(device))["total"] == 2

    # One balance per account, shared by its devices, at the account plan's allowance.
    before = await device.balance()
    assert before["daily_credits"] == ACCOUNT_DAILY and before["plan"] == "account"
    await ask(device2, "A pricey one", model_id="fake-pricey")
    after = await device.balance()
    assert after["credits_used"] == before["credits_used"] + 19
    assert (await device2.balance())["credits_remaining"] == after["credits_remaining"]


def auth(session_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {session_id}"}


async def test_a_browser_signs_in_and_out_with_cookies(srv: VedikaServer) -> None:
    async with httpx.AsyncClient(base_url=srv.url, timeout=30) as browser:
        made = await browser.post("/auth/device-session", json={})
        device_id = made.json()["device_id"]
        # Cookie-authenticated state changes need the custom header (CSRF).
        refused = await browser.post(
            "/auth/register", json={"email": new_email("c"), "password": PASSWORD}
        )
        assert refused.status_code == 403 and refused.json()["error"] == "csrf_refused"
        forged = await browser.post(
            "/auth/register",
            json={"email": new_email("c"), "password": PASSWORD},
            headers={**CSRF, "Origin": "https://evil.example"},
        )
        assert forged.status_code == 403 and forged.json()["error"] == "csrf_refused"
        r = await browser.post("/ai/chat", json={"message": "before signing up"})
        assert r.status_code == 200, r.text
        up = await browser.post(
            "/auth/register", json={"email": new_email("c"), "password": PASSWORD}, headers=CSRF
        )
        assert up.status_code == 201 and up.json()["claimed_conversations"] == 1
        assert up.json()["device_id"] == device_id  # the device cookie named it
        assert browser.cookies["vedika_session"] == up.json()["session_id"]
        assert len((await browser.get("/ai/conversations")).json()["conversations"]) == 1

        refused = await browser.post("/auth/logout")
        assert refused.status_code == 403 and refused.json()["error"] == "csrf_refused"
        out = await browser.post("/auth/logout", headers=CSRF)
        assert out.status_code == 200, out.text
        fresh = out.json()
        assert fresh["plan"] == "anonymous" and fresh["account_id"] is None
        assert fresh["device_id"] != device_id and fresh["device_secret"]
        assert browser.cookies["vedika_session"] == fresh["session_id"]
        assert (await browser.get("/ai/conversations")).json()["conversations"] == []
        assert (await browser.get("/auth/me")).status_code == 401
        gone = await browser.get("/ai/conversations", headers=auth(up.json()["session_id"]))
        assert gone.status_code == 401


async def test_sessions_list_and_revoke(device: Api, device2: Api) -> None:
    email = new_email("sessions")
    await sign(device, "/auth/register", email=email, password=PASSWORD)
    await sign(device2, "/auth/login", email=email, password=PASSWORD)
    body = (await device.http.get("/auth/sessions")).json()
    assert body["total"] == 2
    assert [s["current"] for s in body["sessions"]].count(True) == 1
    assert all(device.session_id not in str(s) for s in body["sessions"])  # handles only
    other = next(s for s in body["sessions"] if not s["current"])
    assert other["device_id"] == device2.device_id

    assert (await device.http.delete("/auth/sessions/not-a-handle")).status_code == 404
    r = await device.http.delete(f"/auth/sessions/{other['id']}")
    assert r.status_code == 200 and r.json() == {"revoked": 1, "current": False}
    assert (await device2.http.get("/coins/balance")).status_code == 401
    assert (await device.http.get("/coins/balance")).status_code == 200

    await sign(device2, "/auth/login", email=email, password=PASSWORD)
    r = await device.http.delete("/auth/sessions")
    assert r.status_code == 200 and r.json()["revoked"] == 2
    for api in (device, device2):
        assert (await api.http.get("/auth/me")).status_code == 401


async def test_nobody_sees_another_accounts_data(device: Api, device2: Api, srv) -> None:
    await sign(device, "/auth/register", email=new_email("u"), password=PASSWORD)
    answered = await device.http.post("/ai/chat", json={"message": "The user's own question"})
    assert answered.status_code == 200, answered.text
    mine, answer_id = answered.json()["conversation_id"], answered.json()["message_id"]
    uploaded = await device.http.post(
        "/files", files=[("files", ("notes.md", b"# Notes\n\nOnly mine.\n", "text/markdown"))]
    )
    assert uploaded.status_code == 201, uploaded.text
    file_id = uploaded.json()["files"][0]["file_id"]
    my_handle = (await device.http.get("/auth/sessions")).json()["sessions"][0]["id"]

    async with Api(srv.url) as anonymous:
        await sign(device2, "/auth/register", email=new_email("v"), password=PASSWORD)
        for intruder in (device2, anonymous):
            assert (await intruder.http.get(f"/ai/conversations/{mine}")).status_code == 404
            assert (await intruder.http.delete(f"/ai/conversations/{mine}")).status_code == 404
            assert (await intruder.http.get(f"/files/{file_id}")).status_code == 404
            stream = await intruder.http.get(f"/ai/chat/stream/{answer_id}")
            assert stream.status_code == 404
            assert (await intruder.http.get("/ai/conversations")).json()["conversations"] == []
            assert (await intruder.http.get("/files")).json()["files"] == []
        r = await device2.http.delete(f"/auth/sessions/{my_handle}")
        assert r.status_code == 404
        assert my_handle not in str((await device2.http.get("/auth/sessions")).json())
        theirs = (await device2.http.get("/auth/export")).json()
        assert mine not in str(theirs) and file_id not in str(theirs)
        for path in ("/auth/sessions", "/auth/export", "/auth/me"):
            assert (await anonymous.http.get(path)).status_code == 401
    assert (await device.http.get(f"/ai/conversations/{mine}")).status_code == 200
    assert (await device.http.get(f"/ai/chat/stream/{answer_id}")).status_code == 200


async def test_export_then_delete_leaves_nothing(
    device: Api, accounts_server: tuple[VedikaServer, str, Path]
) -> None:
    _, db_url, data_dir = accounts_server
    anonymous_conversation = await ask(device, "Asked before signing up")
    out = await sign(device, "/auth/register", email=new_email("gone"), password=PASSWORD)
    account_id = out["account_id"]
    signed_conversation = await ask(
        device, "Asked once signed in", client_message_id="k-1", model_id="fake-pricey"
    )
    uploaded = await device.http.post(
        "/files", files=[("files", ("mine.md", b"# Mine\n\nThe otter's den.\n", "text/markdown"))]
    )
    assert uploaded.status_code == 201, uploaded.text
    file_id = uploaded.json()["files"][0]["file_id"]
    assert (
        await device.http.post("/routing/preferences", json={"model_id": "fake-coder"})
    ).is_success

    export = await device.http.get("/auth/export")
    assert export.status_code == 200
    assert "attachment" in export.headers["content-disposition"]
    data = export.json()
    assert data["account"]["account_id"] == account_id
    ids = {c["id"] for c in data["conversations"]}
    assert ids == {anonymous_conversation, signed_conversation}
    texts = [m["content"] for c in data["conversations"] for m in c["messages"]]
    assert "Asked before signing up" in texts and "Asked once signed in" in texts
    assert data["files"][0]["id"] == file_id
    assert "otter" in data["files"][0]["passages"][0]["text"]
    charges = [t for t in data["coin_transactions"] if t["kind"] == "charge"]
    assert [t["amount"] for t in charges] == [-19]
    assert data["preferences"][0]["model_id"] == "fake-coder"
    assert len(data["sessions"]) == 1 and data["sessions"][0]["current"]

    wrong = await device.http.request("DELETE", "/auth/account", json={"password": "nope nope"})
    assert wrong.status_code == 401
    gone = await device.http.request("DELETE", "/auth/account", json={"password": PASSWORD})
    assert gone.status_code == 200 and gone.json()["deleted"] is True
    assert (await device.http.get("/auth/me")).status_code == 401

    owner = account_owner(account_id)
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:

            async def count(table: Any, *where: Any) -> int:
                return int((await conn.execute(select(func.count()).where(*where))).scalar_one())

            assert await count(accounts, accounts.c.id == account_id) == 0
            assert await count(device_sessions, device_sessions.c.account_id == account_id) == 0
            for table in (
                conversations,
                files,
                passages,
                idempotency_keys,
                coin_days,
                coin_ledger,
                preferences,
            ):
                assert await count(table, table.c.device_id == owner) == 0, table.name
            assert (
                await count(
                    messages,
                    or_(
                        messages.c.conversation_id == anonymous_conversation,
                        messages.c.conversation_id == signed_conversation,
                    ),
                )
                == 0
            )
    finally:
        await engine.dispose()
    assert not list((data_dir / "files").rglob(f"*{file_id}*"))


async def test_sign_in_is_slowed_per_account_and_per_address(
    tmp_path: Path, upstream, models_file
) -> None:
    with serving(
        tmp_path,
        upstream,
        models_file,
        VEDIKA_RATE_LOGINS_PER_MINUTE="6",
        VEDIKA_RATE_LOGINS_PER_ACCOUNT_HOUR="3",
    ) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30, headers=CSRF) as h:

            async def login(email: str) -> int:
                r = await h.post("/auth/login", json={"email": email, "password": PASSWORD})
                return r.status_code

            victim, other = new_email("victim"), new_email("other")
            assert [await login(victim) for _ in range(4)] == [401, 401, 401, 429]
            # The address has now made 4 attempts of its 6: two more, then refused.
            assert [await login(other) for _ in range(3)] == [401, 401, 429]
            r = await h.post("/auth/login", json={"email": other, "password": PASSWORD})
            assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
