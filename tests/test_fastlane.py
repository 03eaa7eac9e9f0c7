"""The hot GETs answer the same in the fast lane as through the framework, errors too.

A call with an `Origin` header always takes the framework's path (vedika.api.fastlane),
so each call is made both ways against the same server and the answers compared."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.client import Api

FRAMEWORK = {"Origin": "https://not-allowed.example"}
JSON_TYPE = {"Content-Type": "application/json"}


async def both(api: Api, path: str, **kw: Any) -> tuple[httpx.Response, httpx.Response]:
    fast = await api.http.get(path, **kw)
    headers = {**kw.pop("headers", {}), **FRAMEWORK}
    slow = await api.http.get(path, headers=headers, **kw)
    return fast, slow


async def test_hot_gets_answer_as_the_framework_does(server, api: Api) -> None:
    await api.ask("Why is the sky blue?")
    await api.ask("And the sunset?")
    listed = (await api.http.get("/ai/conversations")).json()["conversations"]
    cid = listed[0]["conversation_id"]
    paths = [
        "/health",
        "/routing/models",
        "/api/models",
        "/auth/device-session/validate",
        f"/auth/device-session/validate?session_id={api.session_id}",
        "/coins/balance",
        f"/coins/balance?device_id={api.device_id}",
        "/ai/conversations",
        "/ai/conversations?limit=1",
        "/ai/conversations?q=sunset",
        f"/ai/conversations/{cid}",
    ]
    for path in paths:
        fast, slow = await both(api, path)
        assert fast.status_code == slow.status_code == 200, (path, fast.text, slow.text)
        assert fast.json() == slow.json(), path
        assert fast.headers["content-type"] == "application/json"
        assert fast.headers["x-content-type-options"] == "nosniff"  # inside the headers layer
        assert fast.headers["x-request-id"]
    page = (await api.http.get("/ai/conversations?limit=1")).json()
    assert len(page["conversations"]) == 1 and page["next_cursor"] and page["total"] >= 2
    fast, slow = await both(api, "/ai/conversations", params={"cursor": page["next_cursor"]})
    assert fast.json() == slow.json() and fast.json()["conversations"][0]["conversation_id"]


async def test_the_session_may_come_as_cookie_or_query(server, api: Api) -> None:
    plain = httpx.AsyncClient(base_url=server.url, timeout=10)
    async with plain:
        by_query = await plain.get("/coins/balance", params={"session_id": api.session_id})
        plain.cookies.set("vedika_session", api.session_id)
        by_cookie = await plain.get("/coins/balance")
    by_bearer = await api.http.get("/coins/balance")
    assert by_query.status_code == by_cookie.status_code == by_bearer.status_code == 200
    assert by_query.json()["balance"] == by_bearer.json()["balance"]


async def test_errors_are_the_frameworks(server, api: Api, other: Api) -> None:
    theirs = (await other.start("Something of theirs"))["conversation_id"]
    anonymous = httpx.AsyncClient(base_url=server.url, timeout=10)
    async with anonymous:
        cases = [
            (anonymous, "/coins/balance", {}, 401, "session_required"),
            (anonymous, "/ai/conversations", {}, 401, "session_required"),
            (anonymous, "/auth/device-session/validate", {}, 401, "session_expired"),
            (
                anonymous,
                "/auth/device-session/validate",
                {"headers": {"Authorization": "Bearer nope"}},
                401,
                "session_expired",
            ),
            (api, "/coins/balance", {"params": {"device_id": other.device_id}}, 403, None),
            (api, f"/ai/conversations/{theirs}", {}, 404, "conversation_not_found"),
            (api, "/ai/conversations/no-such-id", {}, 404, "conversation_not_found"),
            (api, "/ai/conversations", {"params": {"limit": "0"}}, 400, "validation_error"),
            (api, "/ai/conversations", {"params": {"limit": "x"}}, 400, "validation_error"),
            (api, "/ai/conversations", {"params": {"cursor": "bm9wZQ"}}, 400, "bad_cursor"),
        ]
        for client, path, kw, status, code in cases:
            http = client if isinstance(client, httpx.AsyncClient) else client.http
            fast = await http.get(path, **kw)
            headers = {**kw.get("headers", {}), **FRAMEWORK}
            slow = await http.get(path, **{**kw, "headers": headers})
            assert fast.status_code == slow.status_code == status, (path, fast.text)
            assert fast.json() == slow.json(), path
            if code:
                assert fast.json()["error"] == code, (path, fast.text)


async def test_turns_answer_as_the_framework_does(server, api: Api) -> None:
    """POST /ai/chat/start and /ai/chat in the fast lane (no Origin) and through the
    framework: the same status, fields and headers; errors the same too."""
    for path in ("/ai/chat/start", "/ai/chat"):
        fast = await api.http.post(path, json={"message": "Why is the sky blue?"})
        slow = await api.http.post(
            path, json={"message": "Why is the sky blue?"}, headers=FRAMEWORK
        )
        assert fast.status_code == slow.status_code and fast.status_code in (200, 201), fast.text
        assert set(fast.json()) == set(slow.json()), path
        assert fast.headers["x-conversation-id"] == fast.json()["conversation_id"]
        assert fast.headers["x-request-id"] and fast.headers["x-content-type-options"]
    # An idempotent retry: 200 with the same ids, in either lane.
    key = {"message": "Once only", "client_message_id": "fast-lane-key-1"}
    first = await api.http.post("/ai/chat/start", json=key)
    again = await api.http.post("/ai/chat/start", json=key, headers=FRAMEWORK)
    third = await api.http.post("/ai/chat/start", json=key)
    assert (first.status_code, again.status_code, third.status_code) == (201, 200, 200)
    assert first.json()["message_id"] == again.json()["message_id"] == third.json()["message_id"]
    conversation = await api.conversation(first.json()["conversation_id"])
    assert [m["role"] for m in conversation["messages"]] == ["user", "assistant"]


async def test_turn_errors_are_the_frameworks(server, api: Api, other: Api) -> None:
    theirs = (await other.start("Something of theirs"))["conversation_id"]
    anonymous = httpx.AsyncClient(base_url=server.url, timeout=10)
    async with anonymous:
        cases = [
            (anonymous.post, {"json": {"message": "hi"}}, 401, "session_required"),
            (api.http.post, {"json": {"message": ""}}, 400, "empty_message"),
            (api.http.post, {"json": {"nothing": 1}}, 400, "validation_error"),
            (api.http.post, {"json": [1, 2]}, 400, "validation_error"),
            (api.http.post, {"content": b"{not json", "headers": JSON_TYPE}, 400, None),
            (
                api.http.post,
                {"json": {"message": "hi", "conversation_id": theirs}},
                404,
                "conversation_not_found",
            ),
            (
                api.http.post,
                {"json": {"message": "hi", "device_id": other.device_id}},
                403,
                "device_mismatch",
            ),
            (  # the session in the body, as the original clients send it
                anonymous.post,
                {"json": {"message": "hi", "session_id": api.session_id}},
                200,
                None,
            ),
        ]
        for post, kw, status, code in cases:
            fast = await post("/ai/chat", **kw)
            headers = {**kw.get("headers", {}), **FRAMEWORK}
            slow = await post("/ai/chat", **{**kw, "headers": headers})
            assert fast.status_code == slow.status_code == status, (kw, fast.text)
            if status >= 400:
                assert fast.json() == slow.json(), kw
            if code:
                assert fast.json()["error"] == code, (kw, fast.text)
