"""Providers against the fake upstream over real HTTP: text, usage, errors, auth."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.fakes.modes import BAD_JSON
from tests.fakes.upstream import fake_reply
from vedika.errors import (
    ModelNotConfigured,
    ProviderBadResponse,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from vedika.models.catalogue import Endpoint
from vedika.models.providers import (
    Delta,
    GenerationRequest,
    ToolCall,
    ToolSpec,
    build_provider,
    provider_kinds,
)
from vedika.models.providers.base import Timeouts
from vedika.models.transport import TransportError, Upstream

MESSAGES = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "tell me a fact"},
]


async def run(kind: str, base_url: str, model: str, key: str = "k-123") -> list[Delta]:
    client = Upstream()
    try:
        provider = build_provider(
            Endpoint(name="fake", kind=kind, base_url=base_url, api_key=key),
            client,
            Timeouts(connect=2, idle=1),
        )
        return [d async for d in provider.stream(GenerationRequest(model=model, messages=MESSAGES))]
    finally:
        await client.close()


def test_registry_has_the_built_in_kinds() -> None:
    assert {"openai", "anthropic", "offline"} <= set(provider_kinds())
    with pytest.raises(ValueError, match="known kinds"):
        build_provider(Endpoint(name="x", kind="nope"), None, Timeouts())  # type: ignore[arg-type]


@pytest.mark.parametrize(("kind", "suffix"), [("openai", "/v1"), ("anthropic", "")])
async def test_stream_text_and_usage(upstream, kind: str, suffix: str) -> None:
    deltas = await run(kind, upstream.base_url + suffix, "fake-fast")
    assert "".join(d.text for d in deltas) == "".join(fake_reply("fake-fast", "tell me a fact"))
    assert any(d.finish_reason == "stop" for d in deltas)
    assert [d.output_tokens for d in deltas if d.output_tokens][-1] == len(
        fake_reply("fake-fast", "tell me a fact")
    )
    assert any(d.input_tokens for d in deltas)
    sent = upstream.requests()[-1]
    if kind == "openai":
        assert sent["authorization"] == "Bearer k-123"
        assert sent["stream_options"] == {"include_usage": True}
    else:
        assert sent["_headers"]["x-api-key"] == "k-123" and sent["system"] == "be brief"
        assert [m["role"] for m in sent["messages"]] == ["user"]


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
@pytest.mark.parametrize(
    ("model", "error"),
    [
        ("fake-500", ProviderUnavailable),
        ("fake-429", ProviderRateLimited),
        ("fake-cut", ProviderUnavailable),
        ("fake-eof", ProviderUnavailable),
        ("fake-hang", ProviderTimeout),
        ("fake-malformed", ProviderBadResponse),
        ("fake-error-event", ProviderBadResponse),
        ("not-a-fake", ModelNotConfigured),
    ],
)
async def test_faults_map_to_provider_errors(
    upstream, kind: str, model: str, error: type[Exception]
) -> None:
    base = upstream.base_url + ("/v1" if kind == "openai" else "")
    with pytest.raises(error) as info:
        await run(kind, base, model)
    assert info.value.message.endswith(".")  # type: ignore[attr-defined]
    if model == "fake-429":
        assert "7 seconds" in info.value.message  # type: ignore[attr-defined]


async def test_offline_provider_explains_how_to_connect() -> None:
    provider = build_provider(Endpoint(name="offline", kind="offline"), Upstream(), Timeouts())
    provider.delay_seconds = 0  # type: ignore[attr-defined]
    request = GenerationRequest(model="offline", messages=MESSAGES)
    text = "".join([d.text async for d in provider.stream(request)])
    assert "No language model is connected" in text and "OPENAI_BASE_URL" in text


# ---------------------------------------------------------------- tool calling

TOOLS = [
    ToolSpec(
        "web_search",
        "Search the web.",
        {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    ),
    ToolSpec("fetch_url", "Read a page.", {"type": "object", "properties": {}}),
]


async def stream_with(
    kind: str, base_url: str, model: str, messages: list[dict[str, Any]], **extra: Any
) -> list[Delta]:
    client = Upstream()
    try:
        provider = build_provider(
            Endpoint(name="fake", kind=kind, base_url=base_url, api_key="k"),
            client,
            Timeouts(connect=2, idle=2),
        )
        assert provider.supports_tools
        request = GenerationRequest(model=model, messages=messages, tools=TOOLS, **extra)
        return [d async for d in provider.stream(request)]
    finally:
        await client.close()


def calls_of(deltas: list[Delta]) -> list[ToolCall]:
    return [c for d in deltas if d.tool_calls for c in d.tool_calls]


@pytest.mark.parametrize(("kind", "suffix"), [("openai", "/v1"), ("anthropic", "")])
async def test_tool_calls_round_trip(upstream, kind: str, suffix: str) -> None:
    """Streamed tool-call fragments become whole calls; results go back in the
    provider's own shape; `tool_choice: none` gets text."""
    base = upstream.base_url + suffix
    question = "how deep is the lake"
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": question},
    ]
    deltas = await stream_with(kind, base, "fake-agent", messages)
    text = "".join(d.text for d in deltas)
    calls = calls_of(deltas)
    assert text == "Let me look that up."
    assert [(c.name, c.arguments, c.bad_arguments) for c in calls] == [
        ("web_search", {"query": question}, None)
    ]
    assert [d.finish_reason for d in deltas if d.finish_reason] == ["tool_calls"]
    assert any(d.output_tokens for d in deltas)
    sent = upstream.requests()[-1]
    if kind == "openai":
        assert sent["tools"][0] == {
            "type": "function",
            "function": {
                "name": "web_search",
                "description": "Search the web.",
                "parameters": TOOLS[0].parameters,
            },
        }
    else:
        assert sent["tools"][0]["input_schema"] == TOOLS[0].parameters

    messages += [
        {"role": "assistant", "content": text, "tool_calls": calls},
        {
            "role": "tool",
            "tool_call_id": calls[0].id,
            "name": "web_search",
            "content": "[1] A page\nURL: https://example.org/deep\nThe lake is deep.",
        },
    ]
    deltas = await stream_with(kind, base, "fake-agent", messages)
    assert [(c.name, c.arguments) for c in calls_of(deltas)] == [
        ("fetch_url", {"url": "https://example.org/deep"})
    ]
    sent = upstream.requests()[-1]
    if kind == "openai":
        assistant, result = sent["messages"][2:4]
        assert assistant["tool_calls"][0]["id"] == calls[0].id
        assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {
            "query": question
        }
        assert result == {
            "role": "tool",
            "tool_call_id": calls[0].id,
            "content": messages[-1]["content"],
        }
    else:
        assistant, result = sent["messages"][1:3]
        assert assistant["content"][0] == {"type": "text", "text": text}
        assert assistant["content"][1]["type"] == "tool_use"
        assert assistant["content"][1]["input"] == {"query": question}
        assert result["role"] == "user"
        assert result["content"][0]["type"] == "tool_result"
        assert result["content"][0]["tool_use_id"] == calls[0].id

    deltas = await stream_with(kind, base, "fake-agent", messages, tool_choice="none")
    assert not calls_of(deltas)
    assert "".join(d.text for d in deltas).startswith(f"Agent answer to: {question}.")
    choice = upstream.requests()[-1]["tool_choice"]
    assert choice == ("none" if kind == "openai" else {"type": "none"})


@pytest.mark.parametrize(("kind", "suffix"), [("openai", "/v1"), ("anthropic", "")])
async def test_several_calls_and_arguments_that_are_not_json(
    upstream, kind: str, suffix: str
) -> None:
    messages = [{"role": "user", "content": "break things"}]
    calls = calls_of(
        await stream_with(kind, upstream.base_url + suffix, "fake-agent-fail", messages)
    )
    assert [c.name for c in calls] == ["fetch_url", "calculator", "no_such_tool", "calculator"]
    assert len({c.id for c in calls}) == 4
    assert calls[3].arguments == {} and calls[3].bad_arguments == BAD_JSON
    assert calls[2].arguments == {"x": 1} and calls[2].bad_arguments is None


def test_only_real_models_write_and_call_tools() -> None:
    kinds = provider_kinds()
    assert kinds["openai"].supports_tools and kinds["anthropic"].supports_tools
    assert not kinds["offline"].supports_tools and not kinds["offline"].generative


# ---------------------------------------------------------------- the transport


async def test_transport_sorts_failures_and_pools_connections(upstream) -> None:
    """Refused -> connect, a bad status on discovery -> status; a finished stream's
    connection goes back to the pool and the next request reuses it."""
    client = Upstream()
    try:
        with pytest.raises(TransportError) as refused:
            await client.get_json("http://127.0.0.1:9/v1/models", headers={}, timeout=2)
        assert refused.value.kind == "connect"
        with pytest.raises(TransportError) as missing:
            await client.get_json(upstream.base_url + "/nope", headers={}, timeout=2)
        assert missing.value.kind == "status" and missing.value.status == 404
        provider = openai_fake(upstream, client)
        request = GenerationRequest(model="fake-fast", messages=MESSAGES)
        for _ in range(3):
            assert [d async for d in provider.stream(request)]
        assert await pooled_soon(client) == 1  # one kept-alive connection served all three
    finally:
        await client.close()


def openai_fake(upstream: Any, client: Upstream, idle: float = 2) -> Any:
    """The fake upstream as an OpenAI-compatible provider on `client`."""
    return build_provider(
        Endpoint(name="fake", kind="openai", base_url=upstream.base_url + "/v1"),
        client,
        Timeouts(connect=2, idle=idle),
    )


async def pooled_soon(client: Upstream) -> int:
    """The connections idle in the client's pool, once they are there (within 2 s): an
    answer's connection goes back when its body has ended, which may come after the
    answer's last event (vedika.models.transport: a CI run once looked too soon)."""
    session = client._client()
    assert session.connector is not None
    for _ in range(100):
        idle = sum(len(conns) for conns in session.connector._conns.values())
        if idle:
            return idle
        await asyncio.sleep(0.02)
    return 0


async def test_a_body_ending_after_its_last_event_keeps_its_connection(upstream) -> None:
    """`[DONE]`, then the chunked body's end 50 ms later (fake-late-end): the answer is
    complete at `[DONE]`, and its connection still goes back to the pool once the body
    ends (released at `[DONE]`, aiohttp closed it and every call connected anew)."""
    client = Upstream()
    try:
        provider = openai_fake(upstream, client)
        request = GenerationRequest(model="fake-late-end", messages=MESSAGES)
        for _ in range(3):
            text = "".join([d.text async for d in provider.stream(request)])
            assert text == "".join(fake_reply("fake-late-end", "tell me a fact"))
            assert await pooled_soon(client) == 1
    finally:
        await client.close()


async def test_an_abandoned_stream_hangs_up_on_the_upstream(upstream) -> None:
    """Stopping an answer (the generation task cancelled, or its iterator closed) must
    close the upstream connection: that is how vLLM or Ollama learn to stop generating
    and free the GPU, instead of writing the rest of the answer into the void."""
    client = Upstream()
    try:
        provider = openai_fake(upstream, client, idle=30)
        before = upstream.hung_up()
        deltas = provider.stream(GenerationRequest(model="fake-hang-mid", messages=MESSAGES))
        assert (await anext(deltas)).text or (await anext(deltas)).text
        await deltas.aclose()
        for _ in range(100):
            if upstream.hung_up() > before:
                break
            await asyncio.sleep(0.02)
        assert upstream.hung_up() == before + 1
    finally:
        await client.close()
