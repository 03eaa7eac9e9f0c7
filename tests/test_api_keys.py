"""API keys and the OpenAI-compatible endpoints (issue 19), with the official `openai`
SDK as the client, against real `vedika serve` processes on SQLite and PostgreSQL and
the fake upstream (docs/api.md)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import openai
import pytest
import websockets
from sqlalchemy import update
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import (
    DATABASES,
    NO_SIGN_IN_LIMITS,
    a_database,
    search_env,
)
from tests.fakes.search import FakeSearch
from tests.fakes.upstream import FakeUpstream, fake_reply
from tests.support.client import Api, Socket, text_of
from tests.support.server import VedikaServer, serving
from vedika.protocol import utcnow
from vedika.store.tables import api_keys

PASSWORD = "correct horse battery staple"
ACCOUNT_DAILY = 40  # fake-pricey costs 19: two answers, then no coins for a third


@pytest.fixture(scope="module", params=DATABASES)
def keys_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    upstream,
    models_file,
    search: FakeSearch,
) -> Iterator[tuple[VedikaServer, str]]:
    data_dir = tmp_path_factory.mktemp(f"apikeys-{request.param}")
    with (
        a_database(request.param, data_dir) as url,
        serving(
            data_dir,
            upstream,
            models_file,
            db=url,
            VEDIKA_ACCOUNT_DAILY_CREDITS=str(ACCOUNT_DAILY),
            VEDIKA_API_KEYS_PER_ACCOUNT="3",
            **NO_SIGN_IN_LIMITS,
            **search_env(search),
        ) as srv,
    ):
        yield srv, url


@pytest.fixture
def srv(keys_server: tuple[VedikaServer, str]) -> VedikaServer:
    return keys_server[0]


async def signed_in(srv: VedikaServer) -> Api:
    """A device signed in to a new account (bearer session)."""
    api = await Api(srv.url).__aenter__()
    email = f"k-{time.monotonic_ns()}@example.org"
    r = await api.http.post("/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    api.session_id = r.json()["session_id"]
    api.http.headers["Authorization"] = f"Bearer {api.session_id}"
    return api


@contextlib.asynccontextmanager
async def another(srv: VedikaServer) -> AsyncIterator[Api]:
    api = await signed_in(srv)
    try:
        yield api
    finally:
        await api.http.aclose()


@pytest.fixture
async def account(srv: VedikaServer) -> AsyncIterator[Api]:
    async with another(srv) as api:
        yield api


async def new_key(api: Api, name: str = "laptop", **fields: Any) -> dict[str, Any]:
    r = await api.http.post("/auth/api-keys", json={"name": name, **fields})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def sdk(srv: VedikaServer, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=key, base_url=srv.url + "/v1", max_retries=0, timeout=30)


def ask(model: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


async def test_keys_are_shown_once_listed_without_secret_and_revoked(
    srv: VedikaServer, account: Api
) -> None:
    created = await new_key(account, "ci runner", expires_in_days=30)
    key = created["key"]
    assert key.startswith("vk_") and len(key) == 46 and created["prefix"] == key[:10]
    listed = (await account.http.get("/auth/api-keys")).json()["api_keys"]
    assert [k["id"] for k in listed] == [created["id"]]
    assert "key" not in listed[0] and listed[0]["last_used_at"] is None
    assert listed[0]["name"] == "ci runner" and listed[0]["expires_at"] is not None

    # The key acts as its account everywhere: the REST API and the balance.
    with_key = httpx.AsyncClient(base_url=srv.url, headers={"Authorization": f"Bearer {key}"})
    async with with_key:
        me = await with_key.get("/auth/me")
        assert me.status_code == 200, me.text
        assert (
            me.json()["account"]["account_id"]
            == (await account.http.get("/auth/me")).json()["account"]["account_id"]
        )
        # ...but it cannot make or list keys.
        refused = await with_key.post("/auth/api-keys", json={"name": "more"})
        assert refused.status_code == 403 and refused.json()["error"] == "api_key_not_allowed"
        listed = (await account.http.get("/auth/api-keys")).json()["api_keys"]
        assert listed[0]["last_used_at"] is not None  # written on first use

        gone = await account.http.delete(f"/auth/api-keys/{created['id']}")
        assert gone.status_code == 200 and gone.json()["revoked"] is True
        again = await account.http.delete(f"/auth/api-keys/{created['id']}")
        assert again.status_code == 404
        after = await with_key.get("/auth/me")
        assert after.status_code == 401 and after.json()["error"] == "api_key_revoked"
    assert (await account.http.get("/auth/api-keys")).json()["api_keys"] == []


async def test_keys_need_a_signed_in_session_and_have_a_cap(
    srv: VedikaServer, account: Api
) -> None:
    async with Api(srv.url) as anonymous:
        r = await anonymous.http.post("/auth/api-keys", json={"name": "x"})
        assert r.status_code == 401 and r.json()["error"] == "not_signed_in"
    assert (await account.http.post("/auth/api-keys", json={"name": "  "})).status_code == 400
    for i in range(3):
        await new_key(account, f"k{i}")
    over = await account.http.post("/auth/api-keys", json={"name": "fourth"})
    assert over.status_code == 400 and over.json()["error"] == "too_many_api_keys"
    too_long = await account.http.post(
        "/auth/api-keys", json={"name": "x", "expires_in_days": 3650}
    )
    assert too_long.status_code == 400
    # Another account cannot revoke them.
    async with another(srv) as other:
        mine = (await account.http.get("/auth/api-keys")).json()["api_keys"][0]["id"]
        assert (await other.http.delete(f"/auth/api-keys/{mine}")).status_code == 404


async def test_models_list_has_best_and_every_served_model(srv: VedikaServer, account: Api) -> None:
    key = (await new_key(account))["key"]
    async with sdk(srv, key) as client:
        models = [m.id async for m in client.models.list()]
    served = [m["id"] for m in (await account.http.get("/routing/models")).json()["models"]]
    assert models[0] == "best" and models[1:] == served and "fake-coder" in models


async def test_non_streaming_completion_is_a_stored_turn_with_vedika_fields(
    srv: VedikaServer, account: Api
) -> None:
    key = (await new_key(account))["key"]
    async with sdk(srv, key) as client:
        done = await client.chat.completions.create(
            model="fake-fast", messages=[{"role": "user", "content": "hello from the sdk"}]
        )
    assert done.choices[0].message.content == "".join(fake_reply("fake-fast", "hello from the sdk"))
    assert done.choices[0].finish_reason == "stop" and done.model == "fake-fast"
    ext = done.model_extra["vedika"] if done.model_extra else {}
    assert ext["model"] == "fake-fast" and ext["routing"]["reason"]
    conv = await account.conversation(ext["conversation_id"])  # stored under the account
    assert [m["role"] for m in conv["messages"]] == ["user", "assistant"]
    assert conv["messages"][1]["content"] == done.choices[0].message.content


async def test_web_sources_and_citations_travel_in_the_extension(
    srv: VedikaServer, account: Api, search: FakeSearch
) -> None:
    key = (await new_key(account))["key"]
    async with sdk(srv, key) as client:
        done = await client.chat.completions.create(
            **ask("best", "How deep is Lake Veyra?"), extra_body={"vedika": {"web": True}}
        )
        stream = await client.chat.completions.create(
            **ask("fake-fast", "How deep is Lake Veyra?"),
            stream=True,
            extra_body={"vedika": {"web": True}},
        )
        last = [c async for c in stream][-1]
    page = f"{search.base_url}/pages/lake-veyra"
    ext = done.model_extra["vedika"] if done.model_extra else {}
    assert ext["sources"] == ["web"] and ext["citations"][0]["url"] == page
    assert ext["model"] == done.model != "best"
    streamed = last.model_extra["vedika"] if last.model_extra else {}
    assert streamed["citations"][0]["url"] == page


async def test_streaming_best_reports_the_chosen_model_and_history_is_context(
    srv: VedikaServer, account: Api, upstream: FakeUpstream
) -> None:
    key = (await new_key(account))["key"]
    async with sdk(srv, key) as client:
        stream = await client.chat.completions.create(
            model="best",
            stream=True,
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "first question"},
                {"role": "assistant", "content": "first answer"},
                {"role": "user", "content": "write a python function to debug"},
            ],
        )
        chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    last = chunks[-1]
    ext = last.model_extra["vedika"] if last.model_extra else {}
    assert last.choices[0].finish_reason == "stop"
    assert ext["model"] == last.model and last.model != "best"
    assert ext["routing"]["selected_model"] == last.model and ext["routing"]["reason"]
    conv = await account.conversation(ext["conversation_id"])
    question, answer = conv["messages"][0]["content"], conv["messages"][1]
    assert question.startswith("Earlier in this conversation:\nSystem: Be brief.\nUser: first")
    assert question.endswith("Question: write a python function to debug")
    assert answer["content"] == text and answer["status"] == "complete"


async def test_idempotency_key_makes_a_retry_the_same_turn(srv: VedikaServer, account: Api) -> None:
    key = (await new_key(account))["key"]
    headers = {"Idempotency-Key": f"retry-{time.monotonic_ns()}"}
    async with sdk(srv, key) as client:
        first = await client.chat.completions.create(
            **ask("fake-fast", "only once"), extra_headers=headers
        )
        second = await client.chat.completions.create(
            **ask("fake-fast", "only once"), extra_headers=headers
        )
    assert first.id == second.id
    assert first.choices[0].message.content == second.choices[0].message.content
    listed = (await account.http.get("/ai/conversations")).json()["conversations"]
    assert len(listed) == 1 and listed[0]["message_count"] == 2


async def test_store_false_keeps_no_conversation(srv: VedikaServer, account: Api) -> None:
    key = (await new_key(account))["key"]
    async with sdk(srv, key) as client:
        done = await client.chat.completions.create(
            **ask("fake-fast", "forget me"), extra_body={"vedika": {"store": False}}
        )
        stream = await client.chat.completions.create(
            **ask("fake-fast", "forget me too"),
            stream=True,
            extra_body={"vedika": {"store": False}},
        )
        streamed = [c async for c in stream]
    assert done.choices[0].message.content and streamed[-1].choices[0].finish_reason == "stop"
    for _ in range(50):
        listed = (await account.http.get("/ai/conversations")).json()["conversations"]
        if not listed:
            break
        await asyncio.sleep(0.1)
    assert listed == []


async def test_errors_in_openai_shape(
    srv: VedikaServer, account: Api, keys_server: tuple[VedikaServer, str]
) -> None:
    # No key, a made-up key.
    async with sdk(srv, "vk_" + "A" * 43) as client:
        with pytest.raises(openai.AuthenticationError) as bad:
            await client.chat.completions.create(**ask("fake-fast", "hi"))
    assert bad.value.status_code == 401 and bad.value.code == "invalid_api_key"
    assert bad.value.body["type"] == "authentication_error"  # type: ignore[index]
    async with httpx.AsyncClient(base_url=srv.url) as bare:
        raw = await bare.post("/v1/chat/completions", json=ask("fake-fast", "hi"))
    assert raw.status_code == 401 and raw.json()["error"]["code"] == "missing_api_key"
    assert set(raw.json()["error"]) == {"message", "type", "code", "param"}

    # Expired (set in the database before its first use).
    expired = await new_key(account, "old")
    engine = create_async_engine(keys_server[1])
    async with engine.begin() as conn:
        await conn.execute(
            update(api_keys)
            .where(api_keys.c.id == expired["id"])
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
    await engine.dispose()
    async with sdk(srv, expired["key"]) as client:
        with pytest.raises(openai.AuthenticationError) as old:
            await client.models.list()
    assert old.value.code == "api_key_expired"

    # Revoked.
    revoked = await new_key(account, "gone")
    await account.http.delete(f"/auth/api-keys/{revoked['id']}")
    async with sdk(srv, revoked["key"]) as client:
        with pytest.raises(openai.AuthenticationError) as rev:
            await client.chat.completions.create(**ask("fake-fast", "hi"))
    assert rev.value.code == "api_key_revoked"

    key = (await new_key(account, "live"))["key"]
    async with sdk(srv, key) as client:
        with pytest.raises(openai.NotFoundError) as unknown:
            await client.chat.completions.create(**ask("no-such-model", "hi"))
        assert unknown.value.code == "model_not_found" and unknown.value.param == "model"
        with pytest.raises(openai.BadRequestError) as invalid:
            await client.chat.completions.create(model="fake-fast", messages=[])
        assert invalid.value.body["type"] == "invalid_request_error"  # type: ignore[index]
        with pytest.raises(openai.BadRequestError) as long_key:
            await client.chat.completions.create(
                **ask("fake-fast", "hi"), extra_headers={"Idempotency-Key": "k" * 200}
            )
        assert long_key.value.code == "validation_error"
        with pytest.raises(openai.BadRequestError) as no_user:
            await client.chat.completions.create(
                model="fake-fast", messages=[{"role": "system", "content": "only this"}]
            )
        assert no_user.value.code == "no_user_message"

        # Another account's conversation is not found (never "not yours").
        async with another(srv) as other:
            theirs = await other.http.post(
                "/ai/chat", json={"message": "mine", "model_id": "fake-fast"}
            )
            conversation_id = theirs.json()["conversation_id"]
        with pytest.raises(openai.NotFoundError) as foreign:
            await client.chat.completions.create(
                **ask("fake-fast", "let me in"),
                extra_body={"vedika": {"conversation_id": conversation_id}},
            )
        assert foreign.value.code == "conversation_not_found"

        # Out of coins: the account's allowance, as the account's.
        for _ in range(2):
            await client.chat.completions.create(**ask("fake-pricey", "spend"))
        with pytest.raises(openai.APIStatusError) as broke:
            await client.chat.completions.create(**ask("fake-pricey", "spend more"))
        assert broke.value.status_code == 402 and broke.value.code == "credits_exhausted"
        assert broke.value.body["type"] == "insufficient_quota"  # type: ignore[index]
    balance = (await account.http.get("/coins/balance")).json()
    assert balance["vedika_coins_remaining"] == ACCOUNT_DAILY - 2 * 19, balance


async def test_closing_the_stream_stops_the_generation(
    srv: VedikaServer, account: Api, upstream: FakeUpstream
) -> None:
    key = (await new_key(account))["key"]
    hung_up = upstream.hung_up()
    async with sdk(srv, key) as client:
        stream = await client.chat.completions.create(
            **ask("fake-slow", "a long slow answer please"), stream=True
        )
        got = []
        async for c in stream:
            got.append(c)
            if sum(1 for x in got if x.choices and x.choices[0].delta.content) >= 3:
                break
        await stream.close()
    ext = got[0].model_extra["vedika"] if got[0].model_extra else {}
    status = None
    for _ in range(100):
        conv = await account.conversation(ext["conversation_id"])
        status = conv["messages"][1]["status"]
        if status != "streaming" and upstream.hung_up() > hung_up:
            break
        await asyncio.sleep(0.1)
    assert status in ("stopped", "interrupted"), status
    assert upstream.hung_up() == hung_up + 1
    full = "".join(fake_reply("fake-slow", "a long slow answer please"))
    assert len(conv["messages"][1]["content"]) < len(full)


async def test_a_key_works_on_the_socket(srv: VedikaServer, account: Api) -> None:
    key = (await new_key(account))["key"]
    async with Socket(srv.ws_url) as ws:
        events = await ws.ask(key, "over the socket", model_id="fake-fast")
    assert text_of(events) == "".join(fake_reply("fake-fast", "over the socket"))
    conversation_id = events[-1]["conversation_id"]
    assert (await account.conversation(conversation_id))["messages"][0]["content"] == (
        "over the socket"
    )
    # A revoked key offered at the handshake is refused before any event.
    revoked = await new_key(account, "bye")
    await account.http.delete(f"/auth/api-keys/{revoked['id']}")
    with pytest.raises(websockets.exceptions.InvalidStatus):
        await websockets.connect(
            srv.ws_url, additional_headers={"Authorization": f"Bearer {revoked['key']}"}
        )
