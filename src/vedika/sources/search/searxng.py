"""SearXNG, self-hosted (VEDIKA_SEARXNG_URL), through its JSON API (`format=json`,
which the instance must enable in `search.formats`)."""

from __future__ import annotations

from vedika.settings import Settings
from vedika.sources.search.base import SearchError, SearchProvider, SearchResult, register, result


@register
class SearXNG(SearchProvider):
    name = "searxng"

    @classmethod
    def configured(cls, settings: Settings) -> bool:
        return bool(settings.searxng_url)

    async def search(self, query: str, *, limit: int) -> list[SearchResult]:
        body = await self._get_json(
            "GET",
            f"{self.settings.searxng_url}/search",
            params={"q": query, "format": "json", "safesearch": "1"},
            headers={"Accept": "application/json"},
        )
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise SearchError("The searxng search sent results in an unknown shape.")
        out: list[SearchResult] = []
        for item in body["results"]:
            if isinstance(item, dict):
                found = result(item.get("url"), item.get("title"), item.get("content"))
                if found and all(found.url != r.url for r in out):
                    out.append(found)
            if len(out) >= limit:
                break
        return out
