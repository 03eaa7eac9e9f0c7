"""Self-tests of the fake LLM upstream (tests/fakes/upstream.py), over real loopback HTTP."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakes.upstream import (
    LONG_TOKENS,
    MODELS,
    SENTENCE,
    XSS_PAYLOADS,
    FakeUpstream,
    fake_reply,
    model_delay_ms,
    split_model,
)

PROMPT = "What is the capital of France?"
MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "earlier question"},
    {"role": "assistant", "content": "earlier answer"},
    {"role": "user", "content": PROMPT},
]
WORDS = 2 + 2 + 2 + 6


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(delay_ms=1) as up:
        yield up


def _client(upstream: FakeUpstream, read: float = 10.0) -> httpx.AsyncClient:
    timeout = httpx.Timeout(10.0, read=read)
    return httpx.AsyncClient(base_url=upstream.base_url, trust_env=False, timeout=timeout)


def _chat(model: str, stream: bool = True, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": MESSAGES, "stream": stream, **extra}


async def _sse_lines(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], **kw: Any
) -> tuple[httpx.Response, list[str]]:
    lines: list[str] = []
    async with client.stream("POST", path, json=body, **kw) as response:
        async for line in response.aiter_lines():
            lines.append(line)
    return response, lines


def _data(lines: list[str]) -> list[str]:
    return [line[len("data: ") :] for line in lines if line.startswith("data: ")]


def _openai_text(payloads: list[str]) -> str:
    text = ""
    for payload in payloads:
        if payload == "[DONE]":
            continue
        for choice in json.loads(payload)["choices"]:
            text += choice["delta"].get("content") or ""
    return text


# ---------------------------------------------------------------------------- pure helpers


def test_fake_reply_shape() -> None:
    tokens = fake_reply("fake-steady", "hello big world")
    assert tokens[:7] == ["Answer", " to", ":", " ", "hello", " big", " world"]
    assert tokens[7:9] == [".", " "]
    assert "".join(tokens) == f"Answer to: hello big world. {SENTENCE}"
    assert 30 <= len(fake_reply("fake-steady", PROMPT)) <= 40
    assert fake_reply("fake-steady@5", PROMPT) == fake_reply("fake-steady", PROMPT)
    assert fake_reply("fake-anything", PROMPT) == fake_reply("fake-steady", PROMPT)
    assert len(fake_reply("fake-long", PROMPT)) == LONG_TOKENS
    assert fake_reply("fake-cut", PROMPT) == fake_reply("fake-steady", PROMPT)[:5]
    assert fake_reply("fake-hang-mid", PROMPT) == fake_reply("fake-steady", PROMPT)[:3]
    assert fake_reply("fake-500", PROMPT) == fake_reply("gpt-4o", PROMPT) == []
    xss = "".join(fake_reply("fake-xss", "anything"))
    assert all(p in xss for p in XSS_PAYLOADS)
    md = "".join(fake_reply("fake-markdown", "x"))
    assert "```python" in md and "| --- |" in md and "https://example.com" in md


def test_model_suffix() -> None:
    assert split_model("fake-steady@5") == ("fake-steady", 5.0)
    assert split_model("fake-slow") == ("fake-slow", None)
    assert model_delay_ms("fake-slow") == 200
    assert model_delay_ms("fake-fast", 20) == 0
    assert model_delay_ms("fake-slow@3") == 3
    assert model_delay_ms("fake-steady", 7) == 7


# ---------------------------------------------------------------------------- OpenAI


def test_ready_url(upstream: FakeUpstream) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", upstream.base_url)
    assert upstream.openai_base_url == upstream.base_url + "/v1"


async def test_models_list(upstream: FakeUpstream) -> None:
    async with _client(upstream) as client:
        response = await client.get("/v1/models")
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == list(MODELS)
    assert {"fake-steady", "fake-cut", "fake-xss", "fake-markdown"} <= set(MODELS)
    assert body["data"][0] == {
        "id": "fake-steady",
        "object": "model",
        "created": 0,
        "owned_by": "fake",
    }


async def test_steady_stream_with_usage(upstream: FakeUpstream) -> None:
    body = _chat("fake-steady", stream_options={"include_usage": True})
    async with _client(upstream) as client:
        response, lines = await _sse_lines(client, "/v1/chat/completions", body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    payloads = _data(lines)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    expected = fake_reply("fake-steady", PROMPT)
    assert _openai_text(payloads) == "".join(expected)
    for chunk in chunks:
        assert set(chunk) == {"id", "object", "created", "model", "choices", "usage"}
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["model"] == "fake-steady"
        assert chunk["id"] == chunks[0]["id"]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    finish = chunks[-2]["choices"][0]
    assert finish["finish_reason"] == "stop" and finish["delta"] == {}
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-2])
    usage = chunks[-1]
    assert usage["choices"] == []
    assert usage["usage"] == {
        "prompt_tokens": WORDS,
        "completion_tokens": len(expected),
        "total_tokens": WORDS + len(expected),
    }


async def test_stream_without_usage(upstream: FakeUpstream) -> None:
    async with _client(upstream) as client:
        _, lines = await _sse_lines(client, "/v1/chat/completions", _chat("fake-fast"))
    payloads = _data(lines)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert all("usage" not in c and c["choices"] for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert _openai_text(payloads) == "".join(fake_reply("fake-fast", PROMPT))


async def test_non_stream(upstream: FakeUpstream) -> None:
    async with _client(upstream) as client:
        response = await client.post("/v1/chat/completions", json=_chat("fake-steady", False))
    body = response.json()
    assert response.status_code == 200
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == "".join(fake_reply("fake-steady", PROMPT))
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["prompt_tokens"] == WORDS


async def test_error_statuses(upstream: FakeUpstream) -> None:
    async with _client(upstream) as client:
        r429 = await client.post("/v1/chat/completions", json=_chat("fake-429"))
        r500 = await client.post("/v1/chat/completions", json=_chat("fake-500"))
        r404 = await client.post("/v1/chat/completions", json=_chat("gpt-4o"))
    assert r429.status_code == 429
    assert r429.headers["retry-after"] == "7"
    assert r429.json()["error"]["code"] == "rate_limit_exceeded"
    assert r500.status_code == 500
    assert r500.json()["error"]["type"] == "server_error"
    assert r404.status_code == 404
    assert r404.json()["error"]["code"] == "model_not_found"


async def test_cut_is_a_protocol_error(upstream: FakeUpstream) -> None:
    seen: list[str] = []
    async with _client(upstream) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            async with client.stream(
                "POST", "/v1/chat/completions", json=_chat("fake-cut")
            ) as response:
                assert response.status_code == 200
                async for line in response.aiter_lines():
                    seen.append(line)
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post("/v1/chat/completions", json=_chat("fake-cut", False))
    assert "[DONE]" not in _data(seen)
    assert _openai_text(_data(seen)) == "".join(fake_reply("fake-cut", PROMPT))


async def test_eof_ends_without_finish(upstream: FakeUpstream) -> None:
    async with _client(upstream) as client:
        _, lines = await _sse_lines(client, "/v1/chat/completions", _chat("fake-eof"))
    payloads = _data(lines)
    assert "[DONE]" not in payloads
    assert all(json.loads(p)["choices"][0]["finish_reason"] is None for p in payloads)
    assert _openai_text(payloads) == "".join(fake_reply("fake-eof", PROMPT))


async def test_hang_and_hang_mid(upstream: FakeUpstream) -> None:
    async with _client(upstream, read=0.3) as client:
        seen: list[str] = []
        with pytest.raises(httpx.ReadTimeout):
            async with client.stream(
                "POST", "/v1/chat/completions", json=_chat("fake-hang")
            ) as response:
                assert response.status_code == 200
                async for line in response.aiter_lines():
                    seen.append(line)
        assert seen == []
        with pytest.raises(httpx.ReadTimeout):
            async with client.stream(
                "POST", "/v1/chat/completions", json=_chat("fake-hang-mid")
            ) as response:
                async for line in response.aiter_lines():
                    seen.append(line)
    assert _openai_text(_data(seen)) == "".join(fake_reply("fake-hang-mid", PROMPT))


async def test_malformed_line_then_normal(upstream: FakeUpstream) -> None:
    async with _client(upstream) as client:
        _, lines = await _sse_lines(client, "/v1/chat/completions", _chat("fake-malformed"))
    payloads = _data(lines)
    assert "{not json" in payloads
    assert payloads.index("{not json") == 1 + 3
    assert payloads[-1] == "[DONE]"
    good = [p for p in payloads if p != "{not json"]
    assert _openai_text(good) == "".join(fake_reply("fake-malformed", PROMPT))


async def test_comments(upstream: FakeUpstream) -> None:
    async with _client(upstream) as client:
        _, lines = await _sse_lines(client, "/v1/chat/completions", _chat("fake-comments"))
    assert lines[0] == ": ping"
    assert ": keep-alive" in lines
    payloads = _data(lines)
    assert payloads[-1] == "[DONE]"
    assert _openai_text(payloads) == "".join(fake_reply("fake-comments", PROMPT))


async def test_error_event(upstream: FakeUpstream) -> None:
    async with _client(upstream) as client:
        response, lines = await _sse_lines(
            client, "/v1/chat/completions", _chat("fake-error-event")
        )
    assert response.status_code == 200
    payloads = _data(lines)
    assert json.loads(payloads[-1]) == {
        "error": {"message": "upstream exploded", "type": "server_error"}
    }
    assert "[DONE]" not in payloads
    assert _openai_text(payloads[:-1]) == "".join(fake_reply("fake-error-event", PROMPT))


@pytest.mark.parametrize("model", ["fake-xss", "fake-markdown", "fake-long@0", "fake-slow@0"])
async def test_scripted_texts_match(upstream: FakeUpstream, model: str) -> None:
    async with _client(upstream) as client:
        _, lines = await _sse_lines(client, "/v1/chat/completions", _chat(model))
    assert _openai_text(_data(lines)) == "".join(fake_reply(model, PROMPT))


async def test_many_concurrent_streams(upstream: FakeUpstream) -> None:
    expected = "".join(fake_reply("fake-steady", PROMPT))
    limits = httpx.Limits(max_connections=200)
    async with httpx.AsyncClient(
        base_url=upstream.base_url, trust_env=False, limits=limits, timeout=10.0
    ) as client:

        async def one() -> str:
            _, lines = await _sse_lines(client, "/v1/chat/completions", _chat("fake-steady"))
            return _openai_text(_data(lines))

        results = await asyncio.gather(*(one() for _ in range(100)))
    assert results == [expected] * 100


# ---------------------------------------------------------------------------- Anthropic


def _anthropic_events(lines: list[str]) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    event = ""
    for line in lines:
        if line.startswith("event: "):
            event = line[len("event: ") :]
        elif line.startswith("data: "):
            data = json.loads(line[len("data: ") :])
            assert data["type"] == event
            events.append((event, data))
    return events


async def test_anthropic_stream(upstream: FakeUpstream) -> None:
    body = {
        "model": "fake-steady",
        "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": PROMPT}]}],
        "max_tokens": 100,
        "stream": True,
    }
    headers = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
    async with _client(upstream) as client:
        response, lines = await _sse_lines(client, "/v1/messages", body, headers=headers)
    assert response.status_code == 200
    events = _anthropic_events(lines)
    names = [name for name, _ in events]
    assert names[:2] == ["message_start", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names) <= {
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    }
    expected = fake_reply("fake-steady", PROMPT)
    deltas = [d["delta"] for n, d in events if n == "content_block_delta"]
    assert all(d["type"] == "text_delta" for d in deltas)
    assert "".join(d["text"] for d in deltas) == "".join(expected)
    assert events[0][1]["message"]["usage"]["input_tokens"] == 2 + 6
    message_delta = events[-2][1]
    assert message_delta["delta"]["stop_reason"] == "end_turn"
    assert message_delta["usage"]["output_tokens"] == len(expected)


async def test_anthropic_errors_and_cut(upstream: FakeUpstream) -> None:
    def body(model: str) -> dict[str, Any]:
        messages = [{"role": "user", "content": PROMPT}]
        return {"model": model, "messages": messages, "max_tokens": 10, "stream": True}

    async with _client(upstream) as client:
        r429 = await client.post("/v1/messages", json=body("fake-429"))
        r500 = await client.post("/v1/messages", json=body("fake-500"))
        r404 = await client.post("/v1/messages", json=body("claude-3"))
        seen: list[str] = []
        with pytest.raises(httpx.RemoteProtocolError):
            async with client.stream("POST", "/v1/messages", json=body("fake-cut")) as response:
                async for line in response.aiter_lines():
                    seen.append(line)
    assert r429.status_code == 429 and r429.headers["retry-after"] == "7"
    assert r429.json()["error"]["type"] == "rate_limit_error"
    assert r500.status_code == 500 and r500.json()["type"] == "error"
    assert r404.status_code == 404
    texts = [d["delta"]["text"] for n, d in _anthropic_events(seen) if n == "content_block_delta"]
    assert texts == fake_reply("fake-cut", PROMPT)


# ---------------------------------------------------------------------------- recording


async def test_requests_recorded(upstream: FakeUpstream) -> None:
    upstream.reset()
    assert upstream.requests() == []
    async with _client(upstream) as client:
        await client.post(
            "/v1/chat/completions",
            json=_chat("fake-fast", False, temperature=0.5),
            headers={"Authorization": "Bearer sk-test"},
        )
        await client.post("/v1/chat/completions", json=_chat("fake-500"))
        await client.get("/v1/models")
    recorded = upstream.requests()
    assert [r["model"] for r in recorded] == ["fake-fast", "fake-500"]
    first = recorded[0]
    assert first["messages"] == MESSAGES
    assert first["temperature"] == 0.5
    assert first["authorization"] == "Bearer sk-test"
    assert first["_path"] == "/v1/chat/completions"
    assert recorded[1]["authorization"] is None
    upstream.reset()
    assert upstream.requests() == []


# ---------------------------------------------------------------------------- modes, audio


async def test_agent_model_streams_tool_call_fragments(upstream: FakeUpstream) -> None:
    body = _chat("fake-agent", tools=[{"type": "function", "function": {"name": "web_search"}}])
    async with _client(upstream) as client:
        _response, lines = await _sse_lines(client, "/v1/chat/completions", body)
    chunks = [json.loads(d) for d in _data(lines) if d != "[DONE]"]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert "".join(d.get("content") or "" for d in deltas) == "Let me look that up."
    pieces = [t for d in deltas for t in d.get("tool_calls") or []]
    assert pieces[0]["id"] and pieces[0]["function"]["name"] == "web_search"
    arguments = "".join(p["function"].get("arguments", "") for p in pieces)
    assert json.loads(arguments) == {"query": PROMPT} and len(pieces) >= 3
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    # without tools (or with tool_choice none) it answers in text
    async with _client(upstream) as client:
        _response, lines = await _sse_lines(client, "/v1/chat/completions", _chat("fake-agent"))
    assert _openai_text(_data(lines)).startswith(f"Agent answer to: {PROMPT}.")


async def test_research_model_plans_then_reports(upstream: FakeUpstream) -> None:
    plan = [{"role": "system", "content": "Give sub-questions."}, *MESSAGES[1:]]
    async with _client(upstream) as client:
        _r, lines = await _sse_lines(
            client,
            "/v1/chat/completions",
            {"model": "fake-research", "messages": plan, "stream": True},
        )
        assert '"sub_questions"' in _openai_text(_data(lines))
        report = [{"role": "system", "content": "Sources:\n[1] A page (example.org)\ntext"}]
        body = {"model": "fake-research", "messages": [*report, MESSAGES[-1]], "stream": True}
        _r, lines = await _sse_lines(client, "/v1/chat/completions", body)
    text = _openai_text(_data(lines))
    assert text.startswith("## Summary") and "- A page [1]" in text


async def test_audio_endpoints(upstream: FakeUpstream) -> None:
    async with _client(upstream) as client:
        r = await client.post(
            "/v1/audio/transcriptions",
            data={"model": "fake-whisper"},
            files={"file": ("a.wav", b"RIFF....WAVEVEDIKA-SAY:hello there\n", "audio/wav")},
        )
        assert r.json() == {"text": "hello there", "language": "en"}
        r = await client.post(
            "/v1/audio/transcriptions",
            data={"model": "fake-whisper-fail"},
            files={"file": ("a", b"x")},
        )
        assert r.status_code == 500
        r = await client.post(
            "/v1/audio/speech", json={"model": "tts", "input": "hi", "voice": "nova"}
        )
        assert r.headers["content-type"] == "audio/mpeg" and r.content == b"ID3FAKE-AUDIO:nova:hi"
