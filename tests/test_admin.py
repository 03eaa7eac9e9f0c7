"""The admin role and mail (issue 17): the first account and VEDIKA_ADMIN_EMAILS are
admins, everyone else gets 403 and anonymous callers 401; disabling refuses a user
everywhere (REST, the fast lane, the socket, sign-in); grants go through the ledger and
the audit log; usage and model health after real turns against the fake upstream;
password reset against a real SMTP server on loopback (aiosmtpd). Real `vedika serve`
processes on SQLite and PostgreSQL (docs/accounts.md)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import (
    DATABASES,
    NO_SIGN_IN_LIMITS,
    a_database,
)
from tests.support.client import Api, Socket
from tests.support.server import VedikaServer, serving
from tests.support.smtp import SmtpServer, body_of
from vedika.protocol import utcnow
from vedika.store import tables
from vedika.store.tables import password_resets

PASSWORD = "correct horse battery staple"
CSRF = {"X-Requested-With": "fetch"}
ACCOUNT_DAILY = 100
ENV_ADMIN = "boss@example.org"
RESETS_PER_HOUR = 3


class World:
    def __init__(self, srv: VedikaServer, url: str, smtp: SmtpServer) -> None:
        self.srv, self.url, self.smtp = srv, url, smtp
        self.first_email = ""
        self.first_session = ""


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture(scope="module", params=DATABASES)
def world(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    upstream: Any,
    models_file: Path,
    smtp: SmtpServer,
) -> Iterator[World]:
    """A fresh server with mail to `smtp`, and its first account (an admin)."""
    data_dir = tmp_path_factory.mktemp(f"admin-{request.param}")
    with (
        a_database(request.param, data_dir) as url,
        serving(
            data_dir,
            upstream,
            models_file,
            db=url,
            **NO_SIGN_IN_LIMITS,
            VEDIKA_ACCOUNT_DAILY_CREDITS=str(ACCOUNT_DAILY),
            VEDIKA_ADMIN_EMAILS=f" Other@Example.org , {ENV_ADMIN.upper()} ",
            VEDIKA_RATE_PASSWORD_RESETS_PER_HOUR=str(RESETS_PER_HOUR),
            VEDIKA_PUBLIC_URL="https://vedika.example.org/",
            **smtp.env(),
        ) as srv,
    ):
        w = World(srv, url, smtp)
        first = httpx.post(
            f"{srv.url}/auth/register",
            json={"email": new_email("first"), "password": PASSWORD},
            headers=CSRF,
        )
        assert first.status_code == 201, first.text
        w.first_email = first.json()["account"]["email"]
        w.first_session = first.json()["session_id"]
        yield w


def new_email(tag: str) -> str:
    return f"{tag}-{time.monotonic_ns()}@example.org"


async def signed_up(srv: VedikaServer, email: str | None = None) -> Api:
    """A new device signed up with a new account (bearer)."""
    api = Api(srv.url)
    await api.__aenter__()
    r = await api.http.post(
        "/auth/register", json={"email": email or new_email("user"), "password": PASSWORD}
    )
    assert r.status_code == 201, r.text
    api.session_id = r.json()["session_id"]
    api.http.headers["Authorization"] = f"Bearer {api.session_id}"
    api.email = r.json()["account"]["email"]  # type: ignore[attr-defined]
    api.account_id = r.json()["account"]["account_id"]  # type: ignore[attr-defined]
    return api


@pytest.fixture
async def admin(world: World) -> AsyncIterator[Api]:
    """The first account, signed in on a device of its own (bearer)."""
    async with Api(world.srv.url) as api:
        api.session_id = world.first_session
        api.http.headers["Authorization"] = f"Bearer {api.session_id}"
        yield api


@pytest.fixture
async def user(world: World) -> AsyncIterator[Api]:
    api = await signed_up(world.srv)
    try:
        yield api
    finally:
        await api.__aexit__()


async def test_roles_first_account_env_admins_users_and_anonymous(
    world: World, admin: Api, user: Api
) -> None:
    me = (await admin.http.get("/auth/me")).json()
    assert me["role"] == "admin" and me["account"]["email"] == world.first_email
    assert (await user.http.get("/auth/me")).json()["role"] == "user"

    boss = await signed_up(world.srv, ENV_ADMIN)  # listed in upper case, with spaces
    try:
        assert (await boss.http.get("/auth/me")).json()["role"] == "admin"
        listed = await boss.http.get("/admin/users", params={"q": "first-"})
        assert listed.status_code == 200, listed.text
        assert [u["email"] for u in listed.json()["users"]] == [world.first_email]
        assert listed.json()["users"][0]["role"] == "admin"
    finally:
        await boss.__aexit__()

    for method, path in [
        ("GET", "/admin/users"),
        ("GET", "/admin/usage"),
        ("GET", "/admin/models/health"),
        ("GET", "/admin/audit"),
        ("POST", f"/admin/users/{user.account_id}/disable"),  # type: ignore[attr-defined]
    ]:
        r = await user.http.request(method, path)
        assert r.status_code == 403 and r.json()["error"] == "admin_only", (path, r.text)
    async with Api(world.srv.url) as anonymous:
        r = await anonymous.http.get("/admin/users")
        assert r.status_code == 401 and r.json()["error"] == "not_signed_in"
    async with httpx.AsyncClient(base_url=world.srv.url) as nobody:
        assert (await nobody.get("/admin/users")).status_code == 401
    # Cookie-authenticated changes need X-Requested-With, as the account endpoints do.
    async with httpx.AsyncClient(base_url=world.srv.url) as browser:
        browser.cookies.set("vedika_session", world.first_session)
        target = f"/admin/users/{user.account_id}/coins"  # type: ignore[attr-defined]
        forged = await browser.post(target, json={"amount": 5})
        assert forged.status_code == 403 and forged.json()["error"] == "csrf_refused"
        ok = await browser.post(target, json={"amount": 5}, headers=CSRF)
        assert ok.status_code == 200, ok.text


async def _race(base_url: str, n: int) -> list[str]:
    """`n` registrations at once; the role each account got."""
    async with httpx.AsyncClient(base_url=base_url, headers=CSRF, timeout=60) as h:

        async def register(i: int) -> str:
            r = await h.post(
                "/auth/register", json={"email": new_email(f"racer{i}"), "password": PASSWORD}
            )
            assert r.status_code == 201, r.text
            sid = r.json()["session_id"]
            me = await h.get("/auth/me", headers={"Authorization": f"Bearer {sid}"})
            return me.json()["role"]  # type: ignore[no-any-return]

        return list(await asyncio.gather(*(register(i) for i in range(n))))


@pytest.mark.parametrize("db", DATABASES)
def test_of_registrations_racing_on_a_fresh_server_one_is_first(
    db: str, tmp_path: Path, upstream: Any, models_file: Path
) -> None:
    with (
        a_database(db, tmp_path) as url,
        serving(
            tmp_path,
            upstream,
            models_file,
            db=url,
            VEDIKA_RATE_LOGINS_PER_MINUTE="0",
            VEDIKA_RATE_LOGINS_PER_ACCOUNT_HOUR="0",
        ) as srv,
    ):
        roles_got = asyncio.run(_race(srv.url, 6))
    assert sorted(roles_got) == ["admin"] + ["user"] * 5


async def test_paging_and_search(world: World, admin: Api) -> None:
    tag = f"page{time.monotonic_ns()}"
    made = [await signed_up(world.srv, f"{tag}-{i}@example.org") for i in range(3)]
    for api in made:
        await api.__aexit__()
    first = (await admin.http.get("/admin/users", params={"q": tag, "limit": 2})).json()
    assert [u["email"] for u in first["users"]] == [f"{tag}-2@example.org", f"{tag}-1@example.org"]
    rest = await admin.http.get(
        "/admin/users", params={"q": tag, "limit": 2, "cursor": first["next_cursor"]}
    )
    assert [u["email"] for u in rest.json()["users"]] == [f"{tag}-0@example.org"]
    assert rest.json()["next_cursor"] is None
    row = rest.json()["users"][0]
    assert row["balance"]["remaining"] == ACCOUNT_DAILY and row["last_seen"] is not None
    assert not row["disabled"]
    # LIKE wildcards are searched for, not obeyed.
    none = (await admin.http.get("/admin/users", params={"q": "%"})).json()
    assert none["users"] == []
    bad = await admin.http.get("/admin/users", params={"cursor": "'; drop"})
    assert bad.status_code == 400


async def test_disabled_account_is_refused_everywhere(world: World, admin: Api, user: Api) -> None:
    uid = user.account_id  # type: ignore[attr-defined]
    email = user.email  # type: ignore[attr-defined]
    conversation = (await user.http.post("/ai/chat", json={"message": "hi"})).json()
    made = await user.http.post("/auth/api-keys", json={"name": "script"})
    assert made.status_code == 201, made.text
    key = {"Authorization": f"Bearer {made.json()['key']}"}
    assert (await user.http.get("/v1/models", headers=key)).status_code == 200  # cached now
    r = await admin.http.post(f"/admin/users/{uid}/disable")
    assert r.status_code == 200 and r.json()["disabled"] is True

    def refused(r: httpx.Response) -> None:
        assert r.status_code == 403 and r.json()["error"] == "account_disabled", r.text

    refused(await user.http.get("/coins/balance"))  # the fast lane
    refused(await user.http.get("/ai/conversations"))  # the fast lane
    refused(await user.http.get(f"/ai/conversations/{conversation['conversation_id']}"))
    refused(await user.http.post("/ai/chat", json={"message": "still here?"}))
    refused(await user.http.post("/ai/chat/start", json={"message": "still here?"}))
    refused(await user.http.get("/auth/me"))
    refused(await user.http.get("/auth/device-session/validate"))
    refused(await user.http.get("/files"))
    # Its API keys too, in OpenAI's error shape on /v1, and in ours elsewhere.
    by_key = await user.http.get("/v1/models", headers=key)
    assert by_key.status_code == 403, by_key.text
    assert by_key.json()["error"]["code"] == "account_disabled"
    refused(await user.http.get("/coins/balance", headers=key))
    async with Socket(world.srv.ws_url) as ws:
        await ws.send_chat(user, "over the socket")
        event = await ws.recv()
        assert event["type"] == "stream_error" and event["code"] == "account_disabled", event
    async with Api(world.srv.url) as other:
        refused(await other.http.post("/auth/login", json={"email": email, "password": PASSWORD}))
        wrong = await other.http.post("/auth/login", json={"email": email, "password": "nope" * 3})
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_credentials"
    listed = (await admin.http.get("/admin/users", params={"q": email})).json()["users"]
    assert listed[0]["disabled"] is True

    self_disable = await admin.http.post(f"/admin/users/{await admin_id(admin)}/disable")
    assert self_disable.status_code == 400
    unknown = await admin.http.post("/admin/users/0190a000-0000-7000-8000-000000000000/enable")
    assert unknown.status_code == 404 and unknown.json()["error"] == "user_not_found"

    assert (await admin.http.post(f"/admin/users/{uid}/enable")).status_code == 200
    assert (await user.http.get("/coins/balance")).status_code == 200
    assert (await user.http.get("/v1/models", headers=key)).status_code == 200
    audit = (await admin.http.get("/admin/audit")).json()["entries"]
    mine = [e for e in audit if e["target"] == uid]
    assert [e["action"] for e in mine] == ["enable", "disable"]
    assert mine[0]["admin"]["email"] == world.first_email and mine[0]["detail"]["email"] == email


async def admin_id(api: Api) -> str:
    r = await api.http.get("/auth/me")
    return r.json()["account"]["account_id"]  # type: ignore[no-any-return]


async def test_grant_shows_in_balance_ledger_and_audit(world: World, admin: Api, user: Api) -> None:
    uid = user.account_id  # type: ignore[attr-defined]
    assert (await user.balance())["vedika_coins_remaining"] == ACCOUNT_DAILY
    r = await admin.http.post(f"/admin/users/{uid}/coins", json={"amount": 25, "reason": "thanks"})
    assert r.status_code == 200, r.text
    assert r.json()["balance"]["remaining"] == ACCOUNT_DAILY + 25
    assert (await user.balance())["vedika_coins_remaining"] == ACCOUNT_DAILY + 25
    txns = (await user.http.get("/coins/transactions")).json()
    grants = [t for t in txns["transactions"] if t["type"] == "grant"]
    assert [g["amount"] for g in grants] == [25]
    entry = (await admin.http.get("/admin/audit", params={"limit": 1})).json()["entries"][0]
    assert entry["action"] == "grant_coins" and entry["target"] == uid
    assert entry["detail"]["amount"] == 25 and entry["detail"]["reason"] == "thanks"
    for bad in ({"amount": 0}, {"amount": -5}, {"amount": "lots"}, {}):
        r = await admin.http.post(f"/admin/users/{uid}/coins", json=bad)
        assert r.status_code == 400, (bad, r.text)
    assert (await user.balance())["vedika_coins_remaining"] == ACCOUNT_DAILY + 25

    # Closing the account: the audit log keeps the action, not the email.
    email = user.email  # type: ignore[attr-defined]
    r = await user.http.request("DELETE", "/auth/account", json={"password": PASSWORD})
    assert r.status_code == 200, r.text
    entries = (await admin.http.get("/admin/audit", params={"limit": 200})).json()["entries"]
    kept = [e for e in entries if e["target"] == uid]
    assert kept and all(e["detail"]["email"] == "(deleted account)" for e in kept)
    assert email not in str(entries)


def _today(usage: dict[str, Any]) -> dict[str, Any]:
    return usage["days"][-1]  # type: ignore[no-any-return]


def _model(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(m for m in report["models"] if m["model"] == name)


async def test_usage_and_health_after_real_turns(admin: Api, user: Api) -> None:
    before = (await admin.http.get("/admin/usage", params={"days": 3})).json()
    health_before = (await admin.http.get("/admin/models/health")).json()
    assert len(before["days"]) == 3
    for i in range(2):
        r = await user.http.post("/ai/chat", json={"message": f"q {i}", "model_id": "fake-pricey"})
        assert r.status_code == 200, r.text
    failed = await user.http.post("/ai/chat", json={"message": "boom", "model_id": "fake-500"})
    assert failed.status_code >= 400
    await asyncio.sleep(0.2)
    after = (await admin.http.get("/admin/usage", params={"days": 3})).json()
    today, was = _today(after), _today(before)
    assert today["turns"] - was["turns"] == 3
    pricey, pricey_was = (
        today["models"]["fake-pricey"],
        was["models"].get("fake-pricey", {"turns": 0, "tokens": 0, "coins": 0}),
    )
    assert pricey["turns"] - pricey_was["turns"] == 2
    assert pricey["coins"] - pricey_was["coins"] == 38  # 19 a message
    assert pricey["tokens"] > pricey_was["tokens"]
    assert today["models"]["fake-500"]["coins"] == 0  # charged, then refunded
    assert after["totals"]["turns"] - before["totals"]["turns"] == 3

    health = (await admin.http.get("/admin/models/health")).json()
    p_now, p_was = _model(health, "fake-pricey"), _model(health_before, "fake-pricey")
    assert p_now["answers"] - p_was["answers"] == 2 and p_now["errors"] == p_was["errors"]
    assert p_now["latency_ms"]["p50"] is not None
    assert 0 <= p_now["latency_ms"]["p50"] <= p_now["latency_ms"]["p95"] < 30_000
    f_now, f_was = _model(health, "fake-500"), _model(health_before, "fake-500")
    assert f_now["errors"] - f_was["errors"] == 1 and f_now["error_rate"] > 0
    assert (await admin.http.get("/admin/usage", params={"days": 0})).status_code == 400


TOKEN = re.compile(r"/reset-password\?token=([A-Za-z0-9_-]+)")


async def forgot(api: Api, email: str) -> httpx.Response:
    return await api.http.post("/auth/password/forgot", json={"email": email})


async def test_forgot_and_reset_by_mail(world: World, user: Api) -> None:
    email = user.email  # type: ignore[attr-defined]
    config = (await user.http.get("/api/config")).json()
    assert config["features"]["password_reset"] is True
    async with Api(world.srv.url) as laptop, Api(world.srv.url) as stranger:
        r = await laptop.http.post("/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200
        laptop.http.headers["Authorization"] = f"Bearer {r.json()['session_id']}"
        notice = world.smtp.wait_for(email, "New sign-in")
        assert "https://vedika.example.org/reset-password" in body_of(notice)

        known = await forgot(stranger, email.upper())
        unknown = await forgot(stranger, new_email("nobody"))
        assert known.status_code == unknown.status_code == 202
        assert known.json() == unknown.json()
        mail = world.smtp.wait_for(email, "new Vedika password")
        assert mail["From"] == "Vedika <vedika@test.invalid>"
        found = TOKEN.search(body_of(mail))
        assert found and "https://vedika.example.org/reset-password?token=" in body_of(mail)
        token = found.group(1)

        short = await stranger.http.post(
            "/auth/password/reset", json={"token": token, "password": "short"}
        )
        assert short.status_code == 400 and short.json()["error"] == "password_too_short"
        new_password = "a whole new password"
        done = await stranger.http.post(
            "/auth/password/reset", json={"token": token, "password": new_password}
        )
        assert done.status_code == 200 and done.json()["sessions_ended"] == 2, done.text
        for api in (user, laptop):
            gone = await api.http.get("/auth/me")
            assert gone.status_code == 401 and gone.json()["error"] == "session_expired"
        again = await stranger.http.post(
            "/auth/password/reset", json={"token": token, "password": "yet another one"}
        )
        assert again.status_code == 400 and again.json()["error"] == "invalid_reset_token"
        old = await stranger.http.post("/auth/login", json={"email": email, "password": PASSWORD})
        assert old.status_code == 401
        new = await stranger.http.post(
            "/auth/login", json={"email": email, "password": new_password}
        )
        assert new.status_code == 200

        # An expired token is refused.
        assert (await forgot(stranger, email)).status_code == 202
        expired = TOKEN.search(body_of(world.smtp.wait_for(email, "new Vedika password", n=2)))
        assert expired
        engine = create_async_engine(world.url)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    update(password_resets)
                    .where(password_resets.c.used_at.is_(None))
                    .values(expires_at=utcnow() - timedelta(seconds=1))
                )
        finally:
            await engine.dispose()
        late = await stranger.http.post(
            "/auth/password/reset", json={"token": expired.group(1), "password": "too late now"}
        )
        assert late.status_code == 400 and late.json()["error"] == "invalid_reset_token"
        bogus = await stranger.http.post(
            "/auth/password/reset", json={"token": "x" * 43, "password": "whatever you say"}
        )
        assert bogus.status_code == 400 and bogus.json()["error"] == "invalid_reset_token"

        # Per email, known or not: the same limit, the same 429.
        for address in (email, new_email("nobody")):
            codes = [(await forgot(stranger, address)).status_code for _ in range(RESETS_PER_HOUR)]
            assert codes[-1] == 429 or codes == [202] * RESETS_PER_HOUR
            over = await forgot(stranger, address)
            assert over.status_code == 429 and over.headers["Retry-After"]
        # Without X-Requested-With or a bearer: refused as a cross-site request.
        async with httpx.AsyncClient(base_url=world.srv.url) as bare:
            plain = await bare.post("/auth/password/forgot", json={"email": email})
        assert plain.status_code == 403 and plain.json()["error"] == "csrf_refused"
    assert world.smtp.to("nobody") == []

    # Closing the account takes its reset tokens along.
    async with Api(world.srv.url) as again_:
        r = await again_.http.post("/auth/login", json={"email": email, "password": new_password})
        again_.http.headers["Authorization"] = f"Bearer {r.json()['session_id']}"
        gone = await again_.http.request("DELETE", "/auth/account", json={"password": new_password})
        assert gone.status_code == 200, gone.text
    engine = create_async_engine(world.url)
    try:
        async with engine.connect() as conn:
            left = (await conn.execute(select(func.count()).select_from(password_resets))).scalar()
    finally:
        await engine.dispose()
    assert left == 0


def test_without_smtp_reset_is_unavailable(
    tmp_path: Path, upstream: Any, models_file: Path
) -> None:
    with serving(tmp_path, upstream, models_file) as srv:
        config = httpx.get(f"{srv.url}/api/config").json()
        assert config["features"]["password_reset"] is False
        for path, body in [
            ("/auth/password/forgot", {"email": "ana@example.org"}),
            ("/auth/password/reset", {"token": "t" * 43, "password": "long enough pass"}),
        ]:
            r = httpx.post(f"{srv.url}{path}", json=body, headers=CSRF)
            assert r.status_code == 503 and r.json()["error"] == "password_reset_unavailable"
        # Sign-in still works without mail (no notice to send).
        r = httpx.post(
            f"{srv.url}/auth/register",
            json={"email": "ana@example.org", "password": PASSWORD},
            headers=CSRF,
        )
        assert r.status_code == 201
        login = httpx.post(
            f"{srv.url}/auth/login",
            json={"email": "ana@example.org", "password": PASSWORD},
            headers=CSRF,
        )
        assert login.status_code == 200


async def test_walkthrough_two_devices_a_grant_and_closing_the_account(
    world: World, admin: Api
) -> None:
    """Issue 17 end to end: two anonymous questions on device 1, sign up there (they are
    claimed), sign in on device 2 (they are there), the admin grants coins (both devices
    see them), the person closes the account: no row of any table names it any more
    (every table with an owner or account column, so tables added later are checked
    too), except the admin's audit entry, which keeps the action without the email."""
    async with Api(world.srv.url) as one, Api(world.srv.url) as two:
        asked = []
        for question in ("What do herons eat?", "Where do herons nest?"):
            r = await one.http.post("/ai/chat", json={"message": question})
            assert r.status_code == 200, r.text
            asked.append(r.json()["conversation_id"])
        email = new_email("walk")
        up = await one.http.post(
            "/auth/register", json={"email": email, "password": PASSWORD, "name": "Ana"}
        )
        assert up.status_code == 201, up.text
        assert up.json()["claimed_conversations"] == 2
        account_id = up.json()["account"]["account_id"]
        for api, body in ((one, up.json()), (two, None)):
            if body is None:
                r = await two.http.post("/auth/login", json={"email": email, "password": PASSWORD})
                assert r.status_code == 200, r.text
                body = r.json()
            api.session_id = body["session_id"]
            api.http.headers["Authorization"] = f"Bearer {api.session_id}"
        listed = (await two.http.get("/ai/conversations")).json()["conversations"]
        assert {c["conversation_id"] for c in listed} == set(asked)
        assert (await two.conversation(asked[0]))["messages"][0]["content"] == asked_text(0)

        # Things an account owns besides its conversations: a key, a share link.
        key = await two.http.post("/auth/api-keys", json={"name": "laptop"})
        assert key.status_code == 201, key.text
        shared = await two.http.post(f"/ai/conversations/{asked[1]}/share", json={})
        assert shared.status_code == 201, shared.text

        before = (await one.balance())["vedika_coins_remaining"]
        r = await admin.http.post(
            f"/admin/users/{account_id}/coins", json={"amount": 40, "reason": "walkthrough"}
        )
        assert r.status_code == 200, r.text
        assert (await one.balance())["vedika_coins_remaining"] == before + 40
        assert (await two.balance())["vedika_coins_remaining"] == before + 40

        gone = await two.http.request("DELETE", "/auth/account", json={"password": PASSWORD})
        assert gone.status_code == 200 and gone.json()["deleted"] is True
        assert (await one.http.get("/auth/me")).status_code == 401
        assert (await admin.http.get(f"/shared/{shared.json()['share_id']}")).status_code in (
            404,
            410,
        )

    owner = f"account@{account_id}"
    engine = create_async_engine(world.url)
    try:
        async with engine.connect() as conn:
            left: dict[str, int] = {}
            for table in tables.metadata.sorted_tables:
                for column, value in (
                    ("device_id", owner),
                    ("account_id", account_id),
                    ("conversation_id", asked[0]),
                    ("conversation_id", asked[1]),
                ):
                    if column not in table.c or table.name == "first_account":
                        continue  # first_account keeps the first admin's id, not this one's
                    n = (
                        await conn.execute(
                            select(func.count()).select_from(table).where(table.c[column] == value)
                        )
                    ).scalar_one()
                    if n:
                        left[f"{table.name}.{column}"] = n
            assert left == {}
            emails = (
                await conn.execute(
                    select(tables.admin_audit.c.detail, tables.admin_audit.c.target).where(
                        tables.admin_audit.c.target == account_id
                    )
                )
            ).all()
            assert emails, "the grant stays in the audit log"
            assert email not in repr(emails)
            assert (
                await conn.execute(
                    select(func.count())
                    .select_from(tables.accounts)
                    .where(tables.accounts.c.id == account_id)
                )
            ).scalar_one() == 0
    finally:
        await engine.dispose()


def asked_text(i: int) -> str:
    return ("What do herons eat?", "Where do herons nest?")[i]


async def test_granted_coins_pay_after_the_day_and_outlive_midnight(
    world: World, admin: Api, user: Api
) -> None:
    """A grant is kept until spent: the day's allowance pays first; a turn it cannot pay
    in full is paid from the grant (`charge_granted`); at midnight the day's allowance
    comes back whole and what is left of the grant is still there."""
    uid = user.account_id  # type: ignore[attr-defined]
    r = await admin.http.post(f"/admin/users/{uid}/coins", json={"amount": 30, "reason": "x"})
    assert r.status_code == 200, r.text

    async def pricey() -> int:
        r = await user.http.post("/ai/chat", json={"message": "hi", "model_id": "fake-pricey"})
        return r.status_code

    for _ in range(5):  # 95 of the day's 100
        assert await pricey() == 200
    bal = await user.balance()
    assert (bal["expiring_soon"], bal["granted_remaining"]) == (5, 30)
    assert bal["vedika_coins_remaining"] == 35
    assert await pricey() == 200  # 19 > the day's 5: the grant pays it whole
    bal = await user.balance()
    assert (bal["expiring_soon"], bal["granted_remaining"], bal["vedika_coins_remaining"]) == (
        5,
        11,
        16,
    )
    txns = (await user.http.get("/coins/transactions")).json()["transactions"]
    assert (txns[0]["type"], txns[0]["amount"]) == ("charge_granted", -19)
    assert await pricey() == 402  # neither the day (5) nor the grant (11) pays 19
    assert (await user.balance())["vedika_coins_remaining"] == 16

    # Midnight: the stored day becomes yesterday's.
    engine = create_async_engine(world.url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                update(tables.coin_days)
                .where(tables.coin_days.c.device_id == f"account@{uid}")
                .values(day="2000-01-01")
            )
    finally:
        await engine.dispose()
    bal = await user.balance()
    assert (bal["daily_credits"], bal["expiring_soon"], bal["granted_remaining"]) == (
        ACCOUNT_DAILY,
        ACCOUNT_DAILY,
        11,
    )
    assert bal["vedika_coins_remaining"] == ACCOUNT_DAILY + 11
