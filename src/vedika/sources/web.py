"""The web source: search, fetch the top pages concurrently, keep their main text.

Everything happens within one deadline (VEDIKA_SEARCH_TIMEOUT): a page not read by
then is represented by its search snippet, so web search adds at most the deadline
(in practice, the slowest fetch it waits for). A page the fetcher refuses (a private
address, a redirect to one) is dropped entirely: its link is never shown.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx
import structlog

from vedika.netpolicy import Blocked, FetchError
from vedika.sources.cache import TTLCache
from vedika.sources.fetcher import SafeFetcher
from vedika.sources.isolation import Isolation
from vedika.sources.parsers.base import ParseFailure
from vedika.sources.parsers.html import extract_page
from vedika.sources.search.base import CachedSearch, SearchError, SearchResult

log = structlog.get_logger(__name__)

EXTRACT_TIMEOUT = 10.0


@dataclass(slots=True)
class WebDocument:
    url: str
    title: str
    site: str
    text: str  # the page's main text, or the search snippet when it could not be read
    snippet: str
    rank: int  # the search engine's order, 0 first
    fetched: bool


def site_of(url: str) -> str:
    try:
        host = httpx.URL(url).host
    except (httpx.InvalidURL, ValueError):
        return ""
    return host[4:] if host.startswith("www.") else host


class WebSearch:
    def __init__(
        self,
        search: CachedSearch,
        fetcher: SafeFetcher,
        isolation: Isolation,
        *,
        results: int,
        timeout: float,
        cache_seconds: float,
    ) -> None:
        self.search = search
        self.fetcher = fetcher
        self.isolation = isolation
        self.results = results
        self.timeout = timeout
        self._pages: TTLCache[str, tuple[str | None, str]] = TTLCache(cache_seconds, 256)

    @property
    def provider(self) -> str:
        return self.search.name

    async def gather(self, query: str, *, limit: int | None = None) -> list[WebDocument]:
        """Search, then read the top `limit` (default VEDIKA_SEARCH_RESULTS) pages."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        try:
            async with asyncio.timeout(self.timeout):
                found = await self.search.search(query[:400], limit=limit or self.results)
        except (SearchError, TimeoutError) as exc:
            log.warning(
                "sources.search_failed", provider=self.provider, error=str(exc) or "timeout"
            )
            return []
        tasks = [asyncio.create_task(self._read(r)) for r in found]
        try:
            if tasks:
                await asyncio.wait(tasks, timeout=max(deadline - loop.time(), 0.5))
        finally:
            for task in tasks:
                if not task.done():
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        docs: list[WebDocument] = []
        for rank, (res, task) in enumerate(zip(found, tasks, strict=True)):
            outcome = None
            error = None if task.cancelled() else task.exception()
            if isinstance(error, Blocked):
                log.info("sources.page_blocked", url=res.url[:200], error=str(error))
                continue
            if error is not None:
                log.warning("sources.page_failed", url=res.url[:200], error=repr(error)[:300])
            elif not task.cancelled():
                outcome = task.result()
            title, text = outcome if outcome else (None, "")
            docs.append(
                WebDocument(
                    url=res.url,
                    title=res.title or title or res.url,
                    site=site_of(res.url),
                    text=text or res.snippet,
                    snippet=res.snippet,
                    rank=rank,
                    fetched=bool(text),
                )
            )
        return [d for d in docs if d.text]

    async def _read(self, res: SearchResult) -> tuple[str | None, str] | None:
        cached = self._pages.get(res.url)
        if cached is not None:
            return cached
        try:
            page = await self.fetcher.fetch(res.url)
        except Blocked:
            raise
        except FetchError as exc:
            log.info("sources.page_unreadable", url=res.url[:200], error=str(exc))
            return None
        if page.content_type == "text/plain":
            out: tuple[str | None, str] = (None, page.text()[:200_000])
        else:
            try:
                out = await self.isolation.run(
                    extract_page, page.text(), page.url, timeout=EXTRACT_TIMEOUT
                )
            except ParseFailure as exc:
                log.info("sources.page_unreadable", url=res.url[:200], error=exc.message)
                return None
        self._pages.put(res.url, out)
        return out
