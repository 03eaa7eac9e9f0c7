"""The search-provider seam: one small method, a registry, and a per-query cache.

A provider turns a query into results (url, title, snippet) and raises SearchError
with a sentence when it fails. Providers register like model providers; `pick`
chooses by VEDIKA_SEARCH_PROVIDER, or the first configured one for `auto`.
Provider endpoints are the operator's (a SearXNG on the intranet, a commercial API),
so they use the ordinary HTTP client; the pages they point to go through the safe
fetcher.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import ClassVar

import httpx
import structlog

from vedika.settings import Settings
from vedika.sources.cache import TTLCache

log = structlog.get_logger(__name__)

_TAGS = re.compile(r"<[^>]{0,500}>")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


class SearchError(Exception):
    """The search provider failed; the message says how, for a person."""


@dataclass(frozen=True, slots=True)
class SearchResult:
    url: str
    title: str
    snippet: str


def clean_text(value: object, limit: int) -> str:
    """Plain text from a provider's field: tags and control characters gone, entities
    decoded, whitespace collapsed. It stays text: the pages escape it when they show it."""
    text = html.unescape(_TAGS.sub("", str(value or "")))
    text = " ".join(_CONTROL.sub(" ", text).split())
    return text[:limit]


def result(url: object, title: object, snippet: object) -> SearchResult | None:
    link = str(url or "").strip()
    if not link.lower().startswith(("http://", "https://")) or len(link) > 2048:
        return None
    return SearchResult(link, clean_text(title, 300) or link, clean_text(snippet, 1000))


class SearchProvider:
    name: ClassVar[str]

    def __init__(self, settings: Settings, client: httpx.AsyncClient) -> None:
        self.settings = settings
        self.client = client

    @classmethod
    def configured(cls, settings: Settings) -> bool:
        """Whether the settings name what this provider needs (a URL, a key)."""
        raise NotImplementedError

    async def search(self, query: str, *, limit: int) -> list[SearchResult]:
        raise NotImplementedError

    async def _get_json(self, method: str, url: str, **kwargs: object) -> object:
        try:
            resp = await self.client.request(method, url, timeout=8.0, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            raise SearchError(
                f"The {self.name} search could not be reached ({type(exc).__name__})."
            ) from None
        if resp.status_code != 200:
            raise SearchError(f"The {self.name} search answered with status {resp.status_code}.")
        try:
            return resp.json()
        except ValueError:
            raise SearchError(f"The {self.name} search sent something that is not JSON.") from None


_PROVIDERS: dict[str, type[SearchProvider]] = {}
AUTO_ORDER = ("searxng", "brave", "tavily")  # self-hosted first
NAMED_ONLY = frozenset({"duckduckgo"})  # never picked by `auto`: a third party sees the queries


def register(cls: type[SearchProvider]) -> type[SearchProvider]:
    _PROVIDERS[cls.name] = cls
    return cls


def provider_names() -> list[str]:
    return list(_PROVIDERS)


def pick(settings: Settings, client: httpx.AsyncClient) -> SearchProvider | None:
    """The provider the settings ask for, or None (web search off)."""
    wanted = settings.search_provider
    if wanted == "none":
        return None
    if wanted != "auto":
        cls = _PROVIDERS.get(wanted)
        if cls is None or not cls.configured(settings):
            log.error(
                "sources.search_unconfigured",
                provider=wanted,
                message=f"VEDIKA_SEARCH_PROVIDER={wanted} but its URL or API key is not set; "
                "web search is off.",
            )
            return None
        return cls(settings, client)
    preferred = [n for n in AUTO_ORDER if n in _PROVIDERS]
    others = [n for n in _PROVIDERS if n not in preferred and n not in NAMED_ONLY]
    for name in preferred + others:
        cls = _PROVIDERS[name]
        if cls.configured(settings):
            return cls(settings, client)
    return None


class CachedSearch:
    """Results per (provider, query) for `ttl` seconds, at most `size` queries (LRU).
    Each instance keeps its own cache; with several instances a query may be asked once
    per instance."""

    def __init__(self, provider: SearchProvider, ttl: float, size: int = 512) -> None:
        self.provider = provider
        self._cache: TTLCache[tuple[str, int], list[SearchResult]] = TTLCache(ttl, size)

    @property
    def name(self) -> str:
        return self.provider.name

    async def search(self, query: str, *, limit: int) -> list[SearchResult]:
        key = (" ".join(query.lower().split()), limit)
        hit = self._cache.get(key)
        if hit is None:
            hit = await self.provider.search(query, limit=limit)
            self._cache.put(key, hit)
        return hit
