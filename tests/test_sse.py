"""The SSE fallback carries the same events and resumes with Last-Event-ID."""

from __future__ import annotations

import json

from tests.fakes.upstream import fake_reply
from tests.support.client import Api, assert_invariants, text_of


async def read_sse(
    api: Api,
    message_id: str,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> list[dict]:
    events = []
    async with api.http.stream(
        "GET", f"/ai/chat/stream/{message_id}", headers=headers, params=params
    ) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        event_id = None
        async for line in resp.aiter_lines():
            if line.startswith("id: "):
                event_id = int(line[4:])
            if line.startswith("data: "):
                event = json.loads(line[6:])
                if event["type"] == "content_chunk":
                    assert event_id == event["chunk_id"]
                events.append(event)
    return events


async def test_sse_streams_the_answer(server, api: Api) -> None:
    start = await api.start("sse please", model_id="fake-steady")
    events = await read_sse(api, start["message_id"])
    done = assert_invariants(events)
    assert (
        done["full_response"] == text_of(events) == "".join(fake_reply("fake-steady", "sse please"))
    )


async def test_sse_resumes_from_last_event_id(server, api: Api) -> None:
    start = await api.start("resume me", model_id="fake-steady")
    events = await read_sse(api, start["message_id"], headers={"Last-Event-ID": "6"})
    done = assert_invariants(events, first_chunk=7, expect_start=False)
    full = "".join(fake_reply("fake-steady", "resume me"))
    assert done["full_response"] == full
    assert full.endswith(text_of(events)) and len(text_of(events)) < len(full)
    again = await read_sse(api, start["message_id"], params={"after": "3"})
    assert again[0]["chunk_id"] == 4


async def test_sse_of_another_device_is_404(server, api: Api, other: Api) -> None:
    start = await api.start("mine", model_id="fake-fast")
    r = await other.http.get(f"/ai/chat/stream/{start['message_id']}")
    assert r.status_code == 404 and r.json()["error"] == "message_not_found"
