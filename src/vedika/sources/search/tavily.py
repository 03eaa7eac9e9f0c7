"""Tavily Search API, by key (VEDIKA_TAVILY_API_KEY)."""

from __future__ import annotations

from vedika.settings import Settings
from vedika.sources.search.base import SearchError, SearchProvider, SearchResult, register, result

API = "https://api.tavily.com/search"


@register
class Tavily(SearchProvider):
    name = "tavily"

    @classmethod
    def configured(cls, settings: Settings) -> bool:
        return settings.tavily_api_key is not None and bool(
            settings.tavily_api_key.get_secret_value()
        )

    async def search(self, query: str, *, limit: int) -> list[SearchResult]:
        key = (
            self.settings.tavily_api_key.get_secret_value() if self.settings.tavily_api_key else ""
        )
        body = await self._get_json(
            "POST",
            API,
            json={"query": query, "max_results": min(limit, 20), "search_depth": "basic"},
            headers={"Authorization": f"Bearer {key}"},
        )
        items = body.get("results") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise SearchError("The tavily search sent results in an unknown shape.")
        out = [
            found
            for item in items
            if isinstance(item, dict)
            and (found := result(item.get("url"), item.get("title"), item.get("content")))
        ]
        return out[:limit]
