"""Web search: the SearXNG provider against the fake, the per-query cache, fetching the
top pages through the safe fetcher, and web citations."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.fakes.search import FakeSearch
from tests.sources.test_fetcher import LoopbackOnly
from vedika.netpolicy import NetPolicy
from vedika.settings import Settings
from vedika.sources.fetcher import FetchLimits, SafeFetcher
from vedika.sources.isolation import Isolation
from vedika.sources.retrieval import Retriever
from vedika.sources.search import CachedSearch, SearchError, pick, provider_names
from vedika.sources.web import WebSearch


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


def web(search: FakeSearch, http: httpx.AsyncClient) -> tuple[WebSearch, LoopbackOnly]:
    provider = pick(settings(searxng_url=search.base_url), http)
    assert provider is not None and provider.name == "searxng"
    net = LoopbackOnly()
    fetcher = SafeFetcher(NetPolicy.from_entries(["127.0.0.1/32"]), FetchLimits(), network=net)
    iso = Isolation(workers=2, timeout=30, memory_bytes=512 << 20)
    ws = WebSearch(
        CachedSearch(provider, 600), fetcher, iso, results=5, timeout=20, cache_seconds=600
    )
    return ws, net


def test_registry_and_picking(http: httpx.AsyncClient) -> None:
    assert {"searxng", "brave", "tavily"} <= set(provider_names())
    assert pick(settings(), http) is None
    both = settings(searxng_url="http://127.0.0.1:1", brave_api_key="k")
    assert pick(both, http).name == "searxng"  # type: ignore[union-attr]
    assert pick(settings(brave_api_key="k"), http).name == "brave"  # type: ignore[union-attr]
    assert pick(settings(tavily_api_key="k"), http).name == "tavily"  # type: ignore[union-attr]
    assert pick(settings(search_provider="brave"), http) is None  # asked for, no key
    assert pick(settings(searxng_url="http://x.test", search_provider="none"), http) is None


async def test_searxng_results_and_cache(search: FakeSearch, http: httpx.AsyncClient) -> None:
    provider = pick(settings(searxng_url=search.base_url), http)
    assert provider is not None
    cached = CachedSearch(provider, ttl=600)
    search.reset()
    first = await cached.search("lake veyra ferry", limit=5)
    again = await cached.search("  Lake   Veyra FERRY ", limit=5)
    assert first == again and first[0].url.endswith("/pages/lake-veyra")
    assert search.queries() == ["lake veyra ferry"]  # the second came from the cache
    hostile = await provider.search("hostile kite", limit=5)
    assert "<" not in hostile[0].title and "Hostile" in hostile[0].title


async def test_search_errors_are_sentences(http: httpx.AsyncClient) -> None:
    provider = pick(settings(searxng_url="http://127.0.0.1:9"), http)
    assert provider is not None
    with pytest.raises(SearchError, match="could not be reached"):
        await provider.search("anything", limit=3)


async def test_pages_are_fetched_safely_and_traps_dropped(
    search: FakeSearch, http: httpx.AsyncClient
) -> None:
    ws, net = web(search, http)
    docs = await ws.gather("lake veyra depth trap")
    await ws.fetcher.aclose()
    urls = [d.url for d in docs]
    assert all("redirect" not in u for u in urls)  # redirects to other loopbacks: dropped
    veyra = next(d for d in docs if d.url.endswith("/pages/lake-veyra"))
    assert veyra.fetched and "312 metres" in veyra.text and veyra.site == "127.0.0.1"
    assert "Cookie" not in veyra.text  # main text only
    assert set(net.attempts) == {"127.0.0.1"}


async def test_web_citations(search: FakeSearch, http: httpx.AsyncClient) -> None:
    ws, _net = web(search, http)
    retriever = Retriever(store=None, index=None, web=ws, passages=3)  # type: ignore[arg-type]
    got = await retriever.retrieve(
        device_id="d",
        conversation_id="c",
        question="How deep is Lake Veyra?",
        sources=["web"],
        attachments=[],
    )
    await ws.fetcher.aclose()
    first = got.citations[0]
    assert first.index == 1 and first.url and first.url.endswith("/pages/lake-veyra")
    assert first.title == "Lake Veyra: facts for visitors" and first.site == "127.0.0.1"
    assert "312 metres" in (first.snippet or "")
    assert "URL: " in got.context() and "[1] Lake Veyra" in got.context()


async def test_hostile_pages_stay_text(search: FakeSearch, http: httpx.AsyncClient) -> None:
    ws, _net = web(search, http)
    docs = await ws.gather("hostile kite festival")
    await ws.fetcher.aclose()
    hostile = docs[0]
    assert hostile.url.endswith("/pages/hostile")
    assert "<script" not in hostile.title and "onerror" not in hostile.title
    assert "99 tails" in hostile.text


async def test_duckduckgo_through_ddgs_against_the_fake(
    search: FakeSearch, http: httpx.AsyncClient
) -> None:
    """The optional keyless provider (the `ddgs` package) reads DuckDuckGo's HTML page,
    here the fake's copy of it; `auto` never picks it (a third party sees the queries)."""
    assert pick(settings(), http) is None  # installed, but not chosen by `auto`
    chosen = settings(search_provider="duckduckgo", duckduckgo_url=f"{search.base_url}/ddg/html/")
    provider = pick(chosen, http)
    assert provider is not None and provider.name == "duckduckgo"
    search.reset()
    found = await provider.search("lake veyra ferry", limit=5)
    assert found and found[0].url == f"{search.base_url}/pages/lake-veyra"
    assert found[0].title and "duckduckgo.com/y.js" not in " ".join(r.url for r in found)
    assert search.queries() == ["lake veyra ferry"]
    broken = pick(
        settings(search_provider="duckduckgo", duckduckgo_url="http://127.0.0.1:9/x"), http
    )
    assert broken is not None
    with pytest.raises(SearchError, match="duckduckgo"):
        await broken.search("anything", limit=5)
