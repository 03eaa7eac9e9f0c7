"""The provider seam: one small streaming method, and a registry of kinds.

A provider turns a GenerationRequest into a stream of Deltas and maps every
failure to a ProviderError subclass (see vedika.errors). It takes its HTTP client
from outside, so tests point it at the fake upstream over real HTTP.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import ClassVar

import httpx

from vedika.models.catalogue import Endpoint


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
class GenerationRequest:
    model: str  # the id the upstream knows
    messages: list[dict[str, str]]  # [{role: system|user|assistant, content}]
    max_tokens: int | None = None
    temperature: float | None = None
    extra: dict[str, object] = field(default_factory=dict)
    passages: list[ContextPassage] = field(default_factory=list)


@dataclass(slots=True)
class Delta:
    """A piece of the answer: text, and/or usage, and/or why it finished."""

    text: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None
    finish_reason: str | None = None


@dataclass(slots=True)
class Timeouts:
    connect: float = 10.0
    idle: float = 60.0  # longest silence between two pieces of the stream


class Provider:
    kind: ClassVar[str]
    supports_streaming: ClassVar[bool] = True
    supports_tools: ClassVar[bool] = False

    def __init__(self, endpoint: Endpoint, client: httpx.AsyncClient, timeouts: Timeouts) -> None:
        self.endpoint = endpoint
        self.client = client
        self.timeouts = timeouts

    def stream(self, req: GenerationRequest) -> AsyncIterator[Delta]:
        """Yield the answer as it arrives; raise a ProviderError on failure."""
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


def build_provider(endpoint: Endpoint, client: httpx.AsyncClient, timeouts: Timeouts) -> Provider:
    try:
        cls = _KINDS[endpoint.kind]
    except KeyError:
        known = ", ".join(sorted(_KINDS))
        raise ValueError(
            f"Endpoint {endpoint.name!r} has kind {endpoint.kind!r}; known kinds: {known}."
        ) from None
    return cls(endpoint, client, timeouts)


ProviderFactory = Callable[[Endpoint, httpx.AsyncClient, Timeouts], Provider]
