"""The provider seam: one small streaming method, and a registry of kinds.

A provider turns a GenerationRequest into a stream of Deltas and maps every
failure to a ProviderError subclass (see vedika.errors). It takes its HTTP client
(vedika.models.transport.Upstream) from outside, so tests point it at the fake
upstream over real HTTP.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson

from vedika.models.catalogue import Endpoint
from vedika.models.transport import Upstream


@dataclass(slots=True)
class ContextPassage:
    """A numbered source the answer may cite as [index] (also in the system prompt)."""

    index: int
    title: str
    text: str
    page: int | None = None
    section: str | None = None
    url: str | None = None


@dataclass(slots=True)
class ToolSpec:
    """A tool the model may call: a name, what it does, and a JSON Schema of its
    arguments (an object)."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(slots=True)
class ToolCall:
    """A complete tool call from the model. `arguments` is the parsed JSON object;
    when the model sent something that is not one, `arguments` is empty and
    `bad_arguments` holds what it sent."""

    id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    bad_arguments: str | None = None


@dataclass(slots=True)
class GenerationRequest:
    """What to ask a model.

    `messages` are `{role: system|user|assistant, content}`; with tools, an assistant
    message may also carry `tool_calls: [ToolCall]`, and `{role: "tool",
    tool_call_id, name, content, is_error?}` messages carry results. Each provider
    translates this neutral shape to its own wire format.
    """

    model: str  # the id the upstream knows
    messages: list[dict[str, Any]]
    max_tokens: int | None = None
    temperature: float | None = None
    extra: dict[str, object] = field(default_factory=dict)
    passages: list[ContextPassage] = field(default_factory=list)
    tools: list[ToolSpec] = field(default_factory=list)  # only for supports_tools providers
    tool_choice: str | None = None  # "none": the tools are known but must not be called


def has_tool_messages(messages: list[dict[str, Any]]) -> bool:
    """Whether the conversation holds tool calls or results (they need translating)."""
    return any(m["role"] == "tool" or m.get("tool_calls") for m in messages)


@dataclass(slots=True)
class Delta:
    """A piece of the answer: text, and/or usage, and/or why it finished. With tools,
    the complete tool calls come in one Delta just before the finishing one."""

    text: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None
    finish_reason: str | None = None
    tool_calls: list[ToolCall] | None = None


@dataclass(slots=True)
class Timeouts:
    connect: float = 10.0
    idle: float = 60.0  # longest silence between two pieces of the stream


class Provider:
    kind: ClassVar[str]
    supports_streaming: ClassVar[bool] = True
    # Accepts `GenerationRequest.tools` and answers with `Delta.tool_calls`.
    supports_tools: ClassVar[bool] = False
    # Writes text of its own (false for the offline answerer, which only quotes sources).
    generative: ClassVar[bool] = True

    def __init__(self, endpoint: Endpoint, client: Upstream, timeouts: Timeouts) -> None:
        self.endpoint = endpoint
        self.client = client
        self.timeouts = timeouts

    def stream(self, req: GenerationRequest) -> AsyncIterator[Delta]:
        """Yield the answer as it arrives; raise a ProviderError on failure.

        With `req.tools` (only when `supports_tools`), the model may answer with tool
        calls: they arrive assembled in one `Delta.tool_calls`, and `finish_reason` is
        then `"tool_calls"`."""
        raise NotImplementedError

    async def list_models(self) -> list[str]:
        """Model ids this endpoint serves (for discovery); [] when it cannot say."""
        return []


_KINDS: dict[str, type[Provider]] = {}


def register(cls: type[Provider]) -> type[Provider]:
    """Class decorator: make a provider kind available by its `kind` name."""
    _KINDS[cls.kind] = cls
    return cls


def provider_kinds() -> dict[str, type[Provider]]:
    return dict(_KINDS)


def build_provider(endpoint: Endpoint, client: Upstream, timeouts: Timeouts) -> Provider:
    try:
        cls = _KINDS[endpoint.kind]
    except KeyError:
        known = ", ".join(sorted(_KINDS))
        raise ValueError(
            f"Endpoint {endpoint.name!r} has kind {endpoint.kind!r}; known kinds: {known}."
        ) from None
    return cls(endpoint, client, timeouts)


ProviderFactory = Callable[[Endpoint, Upstream, Timeouts], Provider]


def parse_arguments(raw: str | dict[str, Any] | None) -> tuple[dict[str, Any], str | None]:
    """A tool call's arguments as sent (a JSON text, or already an object) ->
    `(arguments, bad)`: `bad` is the raw text when it is not a JSON object."""
    if isinstance(raw, dict):
        return raw, None
    text = (raw or "").strip()
    if not text:
        return {}, None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}, text[:2000]
    return (value, None) if isinstance(value, dict) else ({}, text[:2000])
