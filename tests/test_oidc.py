"""Single sign-on with OpenID Connect (issue 17) against a real, certified OpenID
Provider on loopback (npm `oidc-provider`, tests/support/oidc_provider.py): the full
authorization code flow with PKCE over HTTP, as a browser does it (cookies, redirects,
the provider's login and consent forms); claiming; no account joined on an email
alone; connecting; SSO-only accounts; tampered state and nonce; on SQLite and
PostgreSQL (docs/accounts.md)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import (
    DATABASES,
    NO_SIGN_IN_LIMITS,
    a_database,
)
from tests.support.oidc_provider import OidcProvider, oidc_provider
from tests.support.server import VedikaServer, free_port, serving
from vedika.protocol import utcnow
from vedika.store.tables import accounts, oidc_flows, oidc_identities

PASSWORD = "correct horse battery staple"
CSRF = {"X-Requested-With": "fetch"}


@pytest.fixture(scope="module", params=DATABASES)
def sso(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, upstream, models_file
) -> Iterator[tuple[VedikaServer, OidcProvider, str]]:
    """A server with two providers configured, the real one (`test`) and one nobody
    answers for (`down`), and its database URL."""
    data_dir = tmp_path_factory.mktemp(f"oidc-{request.param}")
    port = free_port()
    down = {  # a provider nobody answers for
        "id": "down",
        "name": "Down ID",
        "issuer": f"http://127.0.0.1:{free_port()}",
        "client_id": "x",
    }
    with (
        a_database(request.param, data_dir) as url,
        oidc_provider([f"http://127.0.0.1:{port}/auth/oidc/test/callback"]) as op,
        serving(
            data_dir,
            upstream,
            models_file,
            db=url,
            port=port,
            VEDIKA_OIDC_PROVIDERS=json.dumps([op.setting(), down]),
            **NO_SIGN_IN_LIMITS,
        ) as srv,
    ):
        yield srv, op, url


@pytest.fixture
def srv(sso: tuple[VedikaServer, OidcProvider, str]) -> VedikaServer:
    return sso[0]


def unique(tag: str) -> str:
    return f"{tag}-{time.monotonic_ns()}"


def _is_callback(url: str) -> bool:
    return "/auth/oidc/" in url and "/callback" in url


async def to_callback(browser: httpx.AsyncClient, first: str, login: str) -> str:
    """Follow `first` (a start URL, or the provider's authorization URL) through the
    provider's login and consent forms, as a browser; the callback URL it sends back."""
    r = await browser.get(first)
    for _ in range(20):
        if r.is_redirect:
            location = str(r.url.join(r.headers["location"]))
            if _is_callback(location):
                return location
            r = await browser.get(location)
            continue
        assert r.status_code == 200, (r.status_code, r.url, r.text[:300])
        page = r.text
        start = page.index('action="') + len('action="')
        action = r.url.join(page[start : page.index('"', start)].replace("&amp;", "&"))
        if 'name="login"' in page:
            data = {"prompt": "login", "login": login, "password": "anything"}
        else:
            data = {"prompt": "consent"}
        r = await browser.post(action, data=data)
    raise AssertionError("the provider never sent the browser back")


async def sign_in(browser: httpx.AsyncClient, login: str, next_path: str = "/") -> httpx.Response:
    """The whole sign-in: start, the provider's forms, the callback (not followed)."""
    callback = await to_callback(browser, f"/auth/oidc/test/start?next={next_path}", login)
    return await browser.get(callback)


def error_of(r: httpx.Response) -> str | None:
    assert r.status_code == 302, (r.status_code, r.text[:300])
    location = urlsplit(r.headers["location"])
    if location.path != "/signin":
        return None
    return parse_qs(location.query)["error"][0]


def browser_of(srv: VedikaServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=srv.url, timeout=30)


async def test_providers_listed_and_unknown_ones_are_404(srv: VedikaServer) -> None:
    async with browser_of(srv) as browser:
        r = await browser.get("/auth/oidc/providers")
        assert r.status_code == 200
        assert r.json() == [{"id": "test", "name": "Test ID"}, {"id": "down", "name": "Down ID"}]
        for path in ("/auth/oidc/nope/start", "/auth/oidc/nope/callback?state=x&code=y"):
            missing = await browser.get(path)
            assert missing.status_code == 404 and missing.json()["error"] == "unknown_provider"
        # A provider that cannot be reached: back to the sign-in page, which says so.
        down = await browser.get("/auth/oidc/down/start")
        assert error_of(down) == "oidc_provider_unavailable"
        # The authorization URL: code flow, PKCE S256, state, nonce, our redirect URI.
        started = await browser.get("/auth/oidc/test/start?next=/x")
        assert started.status_code == 302
        query = parse_qs(urlsplit(started.headers["location"]).query)
        assert query["response_type"] == ["code"] and query["code_challenge_method"] == ["S256"]
        assert query["redirect_uri"] == [f"{srv.url}/auth/oidc/test/callback"]
        assert len(query["code_challenge"][0]) == 43 and query["state"] and query["nonce"]
        assert "openid" in query["scope"][0].split()
        assert started.cookies.get("vedika_oidc")


async def test_sign_in_creates_an_account_and_claims_the_device(
    srv: VedikaServer, sso: tuple[VedikaServer, OidcProvider, str]
) -> None:
    login = unique("ana")
    async with browser_of(srv) as browser:
        made = await browser.post("/auth/device-session", json={})
        device_id = made.json()["device_id"]
        asked = await browser.post("/ai/chat", json={"message": "What do herons eat?"})
        assert asked.status_code == 200, asked.text
        conversation = asked.json()["conversation_id"]

        done = await sign_in(browser, login, next_path="/chat/somewhere")
        assert error_of(done) is None and done.headers["location"] == "/chat/somewhere"
        me = (await browser.get("/auth/me")).json()
        assert me["account"]["email"] == f"{login}@example.test"
        assert me["account"]["name"] == f"Test {login}"
        assert me["has_password"] is False
        assert [i["provider"] for i in me["identities"]] == ["test"]
        assert me["session"]["device_id"] == device_id and me["session"]["plan"] == "account"
        listed = (await browser.get("/ai/conversations")).json()
        assert [c["conversation_id"] for c in listed["conversations"]] == [conversation]
        assert listed["owner_type"] == "account"
        exported = (await browser.get("/auth/export")).json()
        assert [(i["provider"], i["email"]) for i in exported["identities"]] == [
            ("test", f"{login}@example.test")
        ]

        # No password: password sign-in says so (not "wrong password").
        r = await browser.post(
            "/auth/login",
            json={"email": f"{login}@example.test", "password": PASSWORD},
            headers=CSRF,
        )
        assert r.status_code == 401 and r.json()["error"] == "password_not_set"

    # The same identity on another browser: the same account, its conversations there.
    async with browser_of(srv) as other:
        again = await sign_in(other, login)
        assert error_of(again) is None and again.headers["location"] == "/"
        me2 = (await other.get("/auth/me")).json()
        assert me2["account"]["account_id"] == me["account"]["account_id"]
        assert me2["session"]["device_id"] != device_id
        listed = (await other.get("/ai/conversations")).json()
        assert [c["conversation_id"] for c in listed["conversations"]] == [conversation]

    engine = create_async_engine(sso[2])
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(oidc_identities).where(oidc_identities.c.subject == login)
                )
            ).all()
            assert [(r.provider, r.account_id) for r in rows] == [
                ("test", me["account"]["account_id"])
            ]
            hash_ = (
                await conn.execute(
                    select(accounts.c.password_hash).where(
                        accounts.c.id == me["account"]["account_id"]
                    )
                )
            ).scalar_one()
            assert hash_ == ""
    finally:
        await engine.dispose()


async def test_never_joined_to_an_existing_account_by_email_then_connect(
    srv: VedikaServer,
) -> None:
    email = f"{unique('bo')}@example.test"
    async with browser_of(srv) as owner:
        await owner.post("/auth/device-session", json={})
        up = await owner.post(
            "/auth/register", json={"email": email, "password": PASSWORD}, headers=CSRF
        )
        assert up.status_code == 201, up.text
        account_id = up.json()["account_id"]
        # Someone signs in at the provider with that email: no account is joined.
        async with browser_of(srv) as intruder:
            await intruder.post("/auth/device-session", json={})
            r = await sign_in(intruder, email)
            assert error_of(r) == "account_exists"
            assert (await intruder.get("/auth/me")).status_code == 401  # not signed in
            # A JSON-only caller gets the 409 itself.
            callback = await to_callback(intruder, "/auth/oidc/test/start", email)
            r = await intruder.get(callback, headers={"Accept": "application/json"})
            assert r.status_code == 409 and r.json()["error"] == "account_exists"
            assert "password" in r.json()["message"]

        # Connect needs the session and the CSRF header.
        refused = await owner.post("/auth/oidc/test/connect?next=/settings")
        assert refused.status_code == 403 and refused.json()["error"] == "csrf_refused"
        async with browser_of(srv) as anonymous:
            await anonymous.post("/auth/device-session", json={})
            nobody = await anonymous.post("/auth/oidc/test/connect", headers=CSRF)
            assert nobody.status_code == 401 and nobody.json()["error"] == "not_signed_in"

        started = await owner.post("/auth/oidc/test/connect?next=/settings", headers=CSRF)
        assert started.status_code == 200, started.text
        callback = await to_callback(owner, started.json()["authorization_url"], email)
        done = await owner.get(callback)
        assert error_of(done) is None and done.headers["location"] == "/settings"
        me = (await owner.get("/auth/me")).json()
        assert me["has_password"] is True
        assert [(i["provider"], i["email"]) for i in me["identities"]] == [("test", email)]

    # Connected: the identity now signs in to that account, from anywhere.
    async with browser_of(srv) as elsewhere:
        r = await sign_in(elsewhere, email)
        assert error_of(r) is None
        assert (await elsewhere.get("/auth/me")).json()["account"]["account_id"] == account_id

    # An identity connected to one account cannot be connected to another.
    async with browser_of(srv) as second:
        await second.post("/auth/device-session", json={})
        other = await second.post(
            "/auth/register",
            json={"email": f"{unique('cy')}@example.test", "password": PASSWORD},
            headers=CSRF,
        )
        assert other.status_code == 201
        started = await second.post("/auth/oidc/test/connect", headers=CSRF)
        callback = await to_callback(second, started.json()["authorization_url"], email)
        assert error_of(await second.get(callback)) == "identity_taken"

    # Closing the account deletes its identities: the identity then makes a new account.
    async with browser_of(srv) as closing:
        assert error_of(await sign_in(closing, email)) is None
        gone = await closing.request(
            "DELETE", "/auth/account", json={"password": PASSWORD}, headers=CSRF
        )
        assert gone.status_code == 200, gone.text
    async with browser_of(srv) as later:
        assert error_of(await sign_in(later, email)) is None
        me = (await later.get("/auth/me")).json()
        assert me["account"]["account_id"] != account_id and me["has_password"] is False


async def test_tampered_state_nonce_and_replays_are_refused(
    srv: VedikaServer, sso: tuple[VedikaServer, OidcProvider, str]
) -> None:
    login = unique("eve")
    async with browser_of(srv) as browser:
        callback = await to_callback(browser, "/auth/oidc/test/start?next=//evil.example/", login)
        parts = urlsplit(callback)
        query = parse_qs(parts.query)
        state, code = query["state"][0], query["code"][0]
        base = f"{parts.path}?code={code}"
        # A state changed in transit, or none.
        assert error_of(await browser.get(f"{base}&state={state}x")) == "oidc_state_invalid"
        assert error_of(await browser.get(base)) == "oidc_state_invalid"
        # The right state from another browser (no cookie of the flow): refused, and
        # the flow is used up.
        async with browser_of(srv) as stranger:
            stolen = await stranger.get(f"{base}&state={state}")
            assert error_of(stolen) == "oidc_state_invalid"
        assert error_of(await browser.get(callback)) == "oidc_state_invalid"

        # A fresh flow whose nonce no longer matches the ID token's: refused.
        callback = await to_callback(browser, "/auth/oidc/test/start?next=//evil.example/", login)
        state = parse_qs(urlsplit(callback).query)["state"][0]
        engine = create_async_engine(sso[2])
        try:
            async with engine.begin() as conn:
                changed = await conn.execute(update(oidc_flows).values(nonce="not-the-nonce"))
                assert changed.rowcount >= 1
        finally:
            await engine.dispose()
        assert error_of(await browser.get(callback)) == "oidc_token_invalid"
        assert (await browser.get("/auth/me")).status_code == 401

        # A PKCE verifier that does not match the challenge sent: the provider refuses
        # the code (PKCE is enforced end to end).
        callback = await to_callback(browser, "/auth/oidc/test/start", login)
        engine = create_async_engine(sso[2])
        try:
            async with engine.begin() as conn:
                await conn.execute(update(oidc_flows).values(verifier="x" * 64))
        finally:
            await engine.dispose()
        assert error_of(await browser.get(callback)) == "oidc_token_invalid"
        assert (await browser.get("/auth/me")).status_code == 401

        # The provider refusing (the person cancelled) lands on the sign-in page too.
        start = await browser.get("/auth/oidc/test/start")
        state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
        denied = await browser.get(f"/auth/oidc/test/callback?error=access_denied&state={state}")
        assert error_of(denied) == "oidc_refused"

        # A good flow: `next` that is not a local path comes back as "/".
        done = await sign_in(browser, login, next_path="//evil.example/")
        assert error_of(done) is None and done.headers["location"] == "/"


async def test_an_unverified_email_makes_no_account(srv: VedikaServer) -> None:
    async with browser_of(srv) as browser:
        r = await sign_in(browser, unique("unverified"))
        assert error_of(r) == "oidc_email_unverified"
        assert (await browser.get("/auth/me")).status_code == 401


def test_the_provider_is_real(sso: tuple[VedikaServer, OidcProvider, str]) -> None:
    """The provider publishes what the flow relies on (not a hand-written fake)."""
    doc = httpx.get(f"{sso[1].issuer}/.well-known/openid-configuration").json()
    assert doc["issuer"] == sso[1].issuer
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert Path(__file__).parent.joinpath("support/oidc/package-lock.json").is_file()


async def test_an_account_without_a_password_closes_with_its_email(srv: VedikaServer) -> None:
    """An account made by single sign-on has no password to ask for: it confirms closing
    with its email; a wrong email, or a password, is refused and closes nothing."""
    login = unique("close")
    email = f"{login}@example.test"
    async with browser_of(srv) as browser:
        await browser.post("/auth/device-session", json={})
        assert error_of(await sign_in(browser, login)) is None
        for wrong in ({"email": "someone@example.test"}, {"password": PASSWORD}, {}):
            r = await browser.request("DELETE", "/auth/account", json=wrong, headers=CSRF)
            assert r.status_code == 401 and r.json()["error"] == "invalid_credentials", wrong
            assert (await browser.get("/auth/me")).status_code == 200
        r = await browser.request(
            "DELETE", "/auth/account", json={"email": email.upper()}, headers=CSRF
        )
        assert r.status_code == 200 and r.json()["deleted"] is True, r.text
        assert (await browser.get("/auth/me")).status_code == 401
    # The identity went with it: signing in again makes a new account.
    async with browser_of(srv) as other:
        await other.post("/auth/device-session", json={})
        assert error_of(await sign_in(other, login)) is None
        assert (await other.get("/ai/conversations")).json()["conversations"] == []


async def test_a_disabled_account_cannot_sign_in_with_its_provider(
    srv: VedikaServer, sso: tuple[VedikaServer, OidcProvider, str]
) -> None:
    """Disabled by an admin, an account made by single sign-on is refused at the
    callback as a password sign-in is (`account_disabled`), and nothing is signed in."""
    login = unique("off")
    async with browser_of(srv) as browser:
        await browser.post("/auth/device-session", json={})
        assert error_of(await sign_in(browser, login)) is None
        account_id = (await browser.get("/auth/me")).json()["account"]["account_id"]
    engine = create_async_engine(sso[2])
    try:
        async with engine.begin() as conn:
            await conn.execute(
                update(accounts).where(accounts.c.id == account_id).values(disabled_at=utcnow())
            )
    finally:
        await engine.dispose()
    async with browser_of(srv) as other:
        await other.post("/auth/device-session", json={})
        assert error_of(await sign_in(other, login)) == "account_disabled"
        assert (await other.get("/auth/me")).status_code == 401
