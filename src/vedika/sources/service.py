"""The sources bundle one app instance holds (`Services.sources`)."""

from __future__ import annotations

import httpx

from vedika.netpolicy import NetPolicy
from vedika.settings import Settings
from vedika.sources.embeddings import Embedder
from vedika.sources.fetcher import FetchLimits, SafeFetcher
from vedika.sources.index import PassageIndex
from vedika.sources.isolation import Isolation
from vedika.sources.library import FileLibrary
from vedika.sources.retrieval import Retrieved, Retriever
from vedika.sources.search import CachedSearch, pick
from vedika.sources.web import WebSearch
from vedika.store.engine import Store


class SourcesService:
    """Files, web search and retrieval, built from settings. `http` is the ordinary
    client for operator endpoints (search API, embeddings); pages from the web go
    through `fetcher`, the safe one."""

    def __init__(self, settings: Settings, store: Store, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.policy = NetPolicy.from_entries(settings.fetch_allow)
        self.fetcher = SafeFetcher(
            self.policy,
            FetchLimits(
                max_bytes=settings.fetch_max_bytes,
                timeout=settings.fetch_timeout,
                max_redirects=settings.fetch_max_redirects,
            ),
        )
        # Two pools of VEDIKA_PARSE_WORKERS each: uploads in one (a device holds at most
        # all but one of its workers), web pages in the other (`isolation`, used by web
        # search and the fetch_url tool), so uploads can never starve page reading.
        memory = settings.parse_memory_mb * 1024 * 1024
        self.file_isolation = Isolation(
            workers=settings.parse_workers, timeout=settings.parse_timeout, memory_bytes=memory
        )
        self.isolation = Isolation(
            workers=settings.parse_workers, timeout=settings.parse_timeout, memory_bytes=memory
        )
        embedder = None
        if settings.embeddings_url:
            key = settings.embeddings_api_key
            embedder = Embedder(
                http,
                settings.embeddings_url,
                settings.embeddings_model,
                key.get_secret_value() if key else None,
            )
        self.index = PassageIndex(store, embedder)
        self.library = FileLibrary(settings, store, self.index, self.file_isolation)
        provider = pick(settings, http)
        self.web = (
            WebSearch(
                CachedSearch(provider, settings.search_cache_seconds),
                self.fetcher,
                self.isolation,
                results=settings.search_results,
                timeout=settings.search_timeout,
                cache_seconds=settings.search_cache_seconds,
            )
            if provider is not None
            else None
        )
        self.retriever = Retriever(
            store=store, index=self.index, web=self.web, passages=settings.source_passages
        )

    @property
    def web_search(self) -> str | None:
        """The web search provider's name, or None when web search is off."""
        return self.web.provider if self.web is not None else None

    async def retrieve(
        self,
        *,
        device_id: str,
        conversation_id: str,
        question: str,
        sources: list[str],
        attachments: list[str],
        passages: int | None = None,
        pages: int | None = None,
    ) -> Retrieved:
        return await self.retriever.retrieve(
            device_id=device_id,
            conversation_id=conversation_id,
            question=question,
            sources=sources,
            attachments=attachments,
            passages=passages,
            pages=pages,
        )

    async def close(self) -> None:
        await self.fetcher.aclose()
