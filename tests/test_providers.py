"""Providers against the fake upstream over real HTTP: text, usage, errors, auth."""

from __future__ import annotations

import httpx
import pytest

from tests.fakes.upstream import fake_reply
from vedika.errors import (
    ModelNotConfigured,
    ProviderBadResponse,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from vedika.models.catalogue import Endpoint
from vedika.models.providers import Delta, GenerationRequest, build_provider, provider_kinds
from vedika.models.providers.base import Timeouts

MESSAGES = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "tell me a fact"},
]


async def run(kind: str, base_url: str, model: str, key: str = "k-123") -> list[Delta]:
    async with httpx.AsyncClient() as client:
        provider = build_provider(
            Endpoint(name="fake", kind=kind, base_url=base_url, api_key=key),
            client,
            Timeouts(connect=2, idle=1),
        )
        return [d async for d in provider.stream(GenerationRequest(model=model, messages=MESSAGES))]


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
    async with httpx.AsyncClient() as client:
        provider = build_provider(Endpoint(name="offline", kind="offline"), client, Timeouts())
        provider.delay_seconds = 0  # type: ignore[attr-defined]
        text = "".join(
            [
                d.text
                async for d in provider.stream(
                    GenerationRequest(model="offline", messages=MESSAGES)
                )
            ]
        )
    assert "No language model is connected" in text and "OPENAI_BASE_URL" in text
