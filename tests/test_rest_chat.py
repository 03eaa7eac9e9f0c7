"""REST chat: start, blocking chat, idempotency, coins, conversations, ownership, errors."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from tests.fakes.upstream import fake_reply
from tests.support.client import Api, Socket


async def test_start_answers_at_once_with_the_contract_fields(server, api: Api) -> None:
    r = await api.http.post("/ai/chat/start", json={"message": "Write a poem about rain"})
    assert r.status_code == 201
    body = r.json()
    assert r.headers["x-conversation-id"] == body["conversation_id"]
    for key in (
        "conversation_id",
        "message_id",
        "user_message_id",
        "model",
        "model_name",
        "routing",
        "transaction_id",
        "vedika_coins_remaining",
        "vedika_coins_used",
        "status",
        "message",
        "websocket_route",
        "stream_url",
    ):
        assert key in body, key
    assert body["websocket_route"] == "stream_chat"
    assert set(body["routing"]) == {"selected_model", "reason", "confidence"}
    assert body["routing"]["reason"]


async def test_best_routes_code_questions_to_the_coder(server, api: Api) -> None:
    body = await api.start("Why does my python function raise a KeyError traceback?")
    assert body["model"] == "fake-coder"
    assert "coding" in body["routing"]["reason"]


async def test_blocking_chat_and_alias(server, api: Api) -> None:
    for path in ("/ai/chat", "/api/chat"):
        r = await api.http.post(path, json={"message": "block me", "model_id": "fake-fast"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["response"] == "".join(fake_reply("fake-fast", "block me"))
        assert (
            body["credits"]["remaining"]
            == body["credits"]["daily_total"] - body["credits"]["used_today"]
        )
        assert r.headers["x-conversation-id"] == body["conversation_id"]


async def test_a_conversation_counts_the_tokens_of_its_answers(server, api: Api) -> None:
    """The ending stores the answer and adds its tokens to its conversation (on
    PostgreSQL as one statement, vedika.store.conversations.finish_counted)."""
    first = await api.http.post("/ai/chat", json={"message": "count me", "model_id": "fake-fast"})
    assert first.status_code == 200, first.text
    cid = first.json()["conversation_id"]
    second = await api.http.post(
        "/ai/chat", json={"message": "and me", "model_id": "fake-fast", "conversation_id": cid}
    )
    assert second.status_code == 200, second.text
    spent = [r.json()["tokens_used"] for r in (first, second)]
    assert all(t > 0 for t in spent)
    for _ in range(50):  # the ending is stored just after the reply is sent
        conv = await api.conversation(cid)
        answers = [m for m in conv["messages"] if m["role"] == "assistant"]
        if all(m["status"] == "complete" for m in answers):
            break
        await asyncio.sleep(0.05)
    assert [m["tokens_used"] for m in answers] == spent
    listed = (await api.http.get("/ai/conversations", params={"limit": 50})).json()
    (row,) = [c for c in listed["conversations"] if c["conversation_id"] == cid]
    assert row["total_tokens"] == sum(spent)
    assert row["message_count"] == 4


async def test_idempotent_retry_is_one_message_and_one_charge(server, api: Api) -> None:
    key = str(uuid.uuid4())
    payload = {"message": "only once", "model_id": "fake-fast", "client_message_id": key}
    first = await api.http.post("/ai/chat/start", json=payload)
    second = await api.http.post("/ai/chat/start", json=payload)
    assert first.status_code == 201 and second.status_code == 200
    a, b = first.json(), second.json()
    assert (a["conversation_id"], a["message_id"]) == (b["conversation_id"], b["message_id"])
    conv = await api.conversation(a["conversation_id"])
    assert len(conv["messages"]) == 2
    txns = (await api.http.get("/coins/transactions")).json()["transactions"]
    assert [t["amount"] for t in txns if t["message_id"] == a["message_id"]] == [-1]
    clash = await api.http.post("/ai/chat/start", json={**payload, "message": "different"})
    assert clash.status_code == 409 and clash.json()["error"] == "idempotency_conflict"


async def test_concurrent_retries_with_one_key_create_one_turn(server, api: Api) -> None:
    payload = {
        "message": "race me",
        "model_id": "fake-fast",
        "client_message_id": str(uuid.uuid4()),
    }
    results = await asyncio.gather(
        *(api.http.post("/ai/chat/start", json=payload) for _ in range(5))
    )
    assert all(r.status_code in (200, 201) for r in results), [r.text for r in results]
    assert len({r.json()["message_id"] for r in results}) == 1
    txns = (await api.http.get("/coins/transactions")).json()["transactions"]
    assert sum(t["amount"] for t in txns if t["type"] == "charge") == -1


async def test_last_coin_race_accepts_exactly_one(server, api: Api) -> None:
    first = await api.start("spend most", model_id="fake-pricey")  # 19 of 20 coins
    assert first["vedika_coins_remaining"] == 1
    results = await asyncio.gather(
        *(
            api.http.post("/ai/chat/start", json={"message": f"race {i}", "model_id": "fake-fast"})
            for i in range(5)
        )
    )
    codes = sorted(r.status_code for r in results)
    assert codes == [201, 402, 402, 402, 402], codes
    refused = next(r for r in results if r.status_code == 402).json()
    assert refused["error"] == "credits_exhausted" and "midnight UTC" in refused["message"]
    assert "exhausted" in refused["message"]  # what the original web client looks for
    bal = await api.balance()
    assert bal["credits_remaining"] == 0 and bal["credits_used"] == 20
    (event,) = await api.ask("one more", model_id="fake-fast")
    assert event["type"] == "credits_exhausted" and event["vedika_coins_remaining"] == 0
    assert "exhausted" in event["message"]


async def test_conversation_list_cursor_search_rename_delete(server, api: Api) -> None:
    ids = []
    for word in ("alpha", "bravo", "charlie"):
        body = await api.start(f"tell me about {word}", model_id="fake-fast")
        ids.append(body["conversation_id"])
        await api.wait_status(body["conversation_id"], body["message_id"])
    page = (await api.http.get("/ai/conversations", params={"limit": 2})).json()
    assert page["total"] == 3 and page["owner_id"] == api.device_id
    assert [c["conversation_id"] for c in page["conversations"]] == ids[::-1][:2]
    rest = (
        await api.http.get("/ai/conversations", params={"limit": 2, "cursor": page["next_cursor"]})
    ).json()
    assert [c["conversation_id"] for c in rest["conversations"]] == [ids[0]]
    assert rest["next_cursor"] is None
    found = (await api.http.get("/ai/conversations", params={"q": "BRAVO"})).json()
    assert [c["conversation_id"] for c in found["conversations"]] == [ids[1]]
    by_text = (await api.http.get("/ai/conversations", params={"q": "deterministic"})).json()
    assert by_text["total"] == 3  # matches the answers' text
    r = await api.http.patch(f"/ai/conversations/{ids[0]}", json={"title": "Renamed"})
    assert r.status_code == 200 and (await api.conversation(ids[0]))["title"] == "Renamed"
    gone = await api.http.delete(f"/ai/conversations/{ids[0]}")
    # 200 with JSON, not 204: the original web client parses every answer as JSON.
    assert gone.status_code == 200 and gone.json()["success"] is True
    assert gone.json()["conversation_id"] == ids[0]
    assert (await api.http.get(f"/ai/conversations/{ids[0]}")).status_code == 404
    bad = await api.http.get("/ai/conversations", params={"cursor": "!!nope"})
    assert bad.status_code == 400 and bad.json()["error"] == "bad_cursor"


async def test_another_devices_ids_are_404_and_nothing_changes(
    server, api: Api, other: Api
) -> None:
    mine = await api.start("private matter", model_id="fake-fast")
    cid, mid = mine["conversation_id"], mine["message_id"]
    await api.wait_status(cid, mid)
    h = other.http
    checks = [
        await h.get(f"/ai/conversations/{cid}"),
        await h.patch(f"/ai/conversations/{cid}", json={"title": "pwned"}),
        await h.delete(f"/ai/conversations/{cid}"),
        await h.get(f"/ai/chat/stream/{mid}"),
        await h.post("/ai/chat/stop", json={"message_id": mid}),
        await h.post("/ai/chat/start", json={"message": "continue it", "conversation_id": cid}),
    ]
    for r in checks:
        assert r.status_code == 404, (r.request.url, r.status_code, r.text)
        assert "private matter" not in r.text
        assert set(r.json()) >= {"error", "message", "status_code"}
    conv = await api.conversation(cid)
    assert conv["title"] != "pwned" and len(conv["messages"]) == 2
    async with Socket(api.ws_url) as ws:
        (err,) = await ws.ask(other, conversation_id=cid)
        assert err["type"] == "stream_error" and err["code"] == "conversation_not_found"
        (err,) = await ws.ask(other, message_id=mid)
        assert err["type"] == "stream_error" and "private" not in str(err)


async def test_session_rules(server, api: Api) -> None:
    h = api.http
    assert (
        await h.get("/ai/conversations", headers={"Authorization": "Bearer nope"})
    ).status_code == 401
    r = await h.get("/ai/conversations", headers={"Authorization": ""})
    assert r.status_code == 401 and r.json()["error"] == "session_required"
    r = await h.get("/ai/conversations", params={"device_id": "dev_someone_else"})
    assert r.status_code == 403 and r.json()["error"] == "device_mismatch"
    ok = await h.get(f"/auth/device-session/validate?session_id={api.session_id}")
    assert ok.status_code == 200 and ok.json()["device_id"] == api.device_id
    assert (await h.get("/auth/device-session/validate?session_id=forged")).status_code == 401
    by_header = await h.get("/auth/device-session/validate")  # Bearer: no id in the URL
    assert by_header.status_code == 200 and by_header.json()["session_id"] == api.session_id
    async with httpx.AsyncClient(base_url=server.url) as bare:
        nothing = await bare.get("/auth/device-session/validate")
    assert nothing.status_code == 401 and nothing.json()["error"] == "session_expired"
    created = await h.post("/auth/device-session", json={"device_id": "my-device-123"})
    body = created.json()
    assert created.status_code == 201 and body["device_id"] == "my-device-123"
    assert len(body["session_id"]) >= 43  # 256 bits, URL-safe
    cookie = created.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    for key in (
        "daily_credits",
        "credits_remaining",
        "daily_vedika_coins",
        "vedika_coins_remaining",
        "vedika_coins",
        "expires_at",
        "plan",
        "max_conversations",
        "message",
    ):
        assert key in body


async def test_bad_input_gets_the_error_shape_never_500(server, api: Api) -> None:
    h = api.http
    cases = [
        await h.post(
            "/ai/chat/start", content=b"{not json", headers={"content-type": "application/json"}
        ),
        await h.post("/ai/chat/start", json={}),
        await h.post("/ai/chat/start", json={"message": None}),
        await h.post("/ai/chat/start", json={"message": ["a"]}),
        await h.post("/ai/chat/start", json={"message": "   "}),
        await h.post("/ai/chat/start", json={"message": "x" * 33_000}),
        await h.post("/ai/chat/start", json={"message": "hi", "mode": "telepathy"}),
        await h.post("/ai/chat/start", json={"message": "hi", "model_id": "no-such-model"}),
        await h.post("/routing/preferences", json={"model_id": "no-such-model"}),
    ]
    for r in cases:
        assert r.status_code == 400, (r.status_code, r.text)
        body = r.json()
        assert body["status_code"] == 400 and body["error"] and body["message"]
        assert "Traceback" not in r.text and "/src/" not in r.text
    big = await h.post(
        "/ai/chat/start", content=b"x" * 3_000_000, headers={"content-type": "application/json"}
    )
    assert big.status_code == 413 and big.json()["error"] == "payload_too_large"
    assert (await h.get("/nope")).json()["error"] == "not_found"


async def test_models_preferences_and_stats(server, api: Api) -> None:
    models = (await api.http.get("/routing/models")).json()
    ids = {m["id"] for m in models["models"]}
    assert {"fake-steady", "fake-pricey", "fake-coder"} <= ids and "best" not in ids
    assert models["total_count"] == len(models["models"])
    pricey = next(m for m in models["models"] if m["id"] == "fake-pricey")
    assert pricey["coins_per_message"] == 19 and pricey["name"] == "Pricey Fake"
    assert (await api.http.get("/api/models")).json() == models
    r = await api.http.post("/routing/preferences", json={"model_id": "fake-fast"})
    assert r.json()["current_preference"] == {
        "model_id": "fake-fast",
        "preference_type": "user_override",
    }
    stats = (await api.http.get("/routing/stats")).json()
    assert stats["preferred_model"] == "fake-fast" and stats["preference_type"] == "user_override"
    # With no model_id, the preference applies.
    assert (await api.start("no model given"))["model"] == "fake-fast"
    await api.http.delete("/routing/preferences")
    stats = (await api.http.get("/routing/stats")).json()
    assert stats["preference_type"] == "auto_select"


async def test_ops_endpoints(server, api: Api) -> None:
    health = (await api.http.get("/health")).json()
    assert health["status"] == "ok" and health["database"] == "ok"
    metrics = (await api.http.get("/metrics")).text
    assert "vedika_generations_started_total" in metrics
    config = (await api.http.get("/api/config")).json()
    assert config["websocket_url"].endswith("/ws") and config["environment"] == "development"
    r = await api.http.get("/health")
    # With an Origin the call goes through the framework (CORS); the answer is the same.
    routed = (await api.http.get("/health", headers={"Origin": "http://elsewhere.example"})).json()
    assert routed.keys() == health.keys() and routed["instance_id"] == health["instance_id"]
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-request-id"]
    schema = (await api.http.get("/openapi.json")).json()
    assert "/ai/chat/start" in schema["paths"]


async def test_routing_calls_with_a_device_id_only(server, api: Api) -> None:
    """The original web client calls /routing/stats and /routing/preferences with its
    device id and no session (issue 13): served, in its shapes."""
    device = f"device_seed_{api.device_id[-8:]}"
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as h:
        stats = await h.get("/routing/stats", params={"device_id": device})
        assert stats.status_code == 200, stats.text
        body = stats.json()
        assert body["has_preference"] is False and body["usage_count"] == 0
        listed = (await h.get("/routing/models")).json()["models"]
        assert isinstance(body["available_models"], list) and body["available_models"]
        assert {m["id"] for m in body["available_models"]} <= {m["id"] for m in listed}
        assert set(body["available_models"][0]) == set(listed[0])
        saved = await h.post(
            "/routing/preferences", params={"device_id": device}, json={"model_id": "fake-fast"}
        )
        assert saved.status_code == 200 and saved.json()["success"] is True
        now = (await h.get("/routing/stats", params={"device_id": device})).json()
        assert now["preferred_model"] == "fake-fast" and now["preference_type"] == "user_override"
        reset = await h.delete("/routing/preferences", params={"device_id": device})
        assert reset.json()["current_preference"]["preference_type"] == "auto_select"
        # Nothing to name a device: still a clear 401, not a 500 or someone else's data.
        bare = await h.get("/routing/stats")
        assert bare.status_code == 401 and bare.json()["error"] == "session_required"
    # The id-only preference is that id's: the session's device is untouched.
    mine = (await api.http.get("/routing/stats")).json()
    assert mine["preferred_model"] != "fake-fast" or mine["preference_type"] != "user_override"
