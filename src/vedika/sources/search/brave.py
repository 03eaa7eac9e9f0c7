"""Brave Search API, by key (VEDIKA_BRAVE_API_KEY)."""

from __future__ import annotations

from vedika.settings import Settings
from vedika.sources.search.base import SearchError, SearchProvider, SearchResult, register, result

API = "https://api.search.brave.com/res/v1/web/search"


@register
class Brave(SearchProvider):
    name = "brave"

    @classmethod
    def configured(cls, settings: Settings) -> bool:
        return settings.brave_api_key is not None and bool(
            settings.brave_api_key.get_secret_value()
        )

    async def search(self, query: str, *, limit: int) -> list[SearchResult]:
        key = self.settings.brave_api_key.get_secret_value() if self.settings.brave_api_key else ""
        body = await self._get_json(
            "GET",
            API,
            params={"q": query, "count": str(min(limit, 20))},
            headers={"Accept": "application/json", "X-Subscription-Token": key},
        )
        web = body.get("web") if isinstance(body, dict) else None
        items = web.get("results") if isinstance(web, dict) else None
        if not isinstance(items, list):
            raise SearchError("The brave search sent results in an unknown shape.")
        out = [
            found
            for item in items
            if isinstance(item, dict)
            and (found := result(item.get("url"), item.get("title"), item.get("description")))
        ]
        return out[:limit]
