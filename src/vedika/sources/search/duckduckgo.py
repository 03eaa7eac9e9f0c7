"""DuckDuckGo through the `ddgs` package: web search with no key and no server of the
operator's own (`pip install 'vedika[ddgs]'`, `VEDIKA_SEARCH_PROVIDER=duckduckgo`).

Only when chosen by name, never by `auto`: it sends every search query to a third
party, which an operator should decide, not a package that happens to be installed.
`ddgs` reads DuckDuckGo's HTML results page with its own HTTP client (blocking), so a
search runs in a thread; `VEDIKA_DUCKDUCKGO_URL` points it elsewhere (the tests' fake).
"""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Any

from vedika.settings import Settings
from vedika.sources.search.base import SearchError, SearchProvider, SearchResult, register, result

REGION = "wt-wt"  # no region: results as DuckDuckGo ranks them worldwide


@register
class DuckDuckGo(SearchProvider):
    name = "duckduckgo"

    @classmethod
    def configured(cls, settings: Settings) -> bool:
        return importlib.util.find_spec("ddgs") is not None

    async def search(self, query: str, *, limit: int) -> list[SearchResult]:
        found = await asyncio.to_thread(self._search, query)
        out = [r for item in found if (r := result(item.href, item.title, item.body))]
        return out[:limit]

    def _search(self, query: str) -> list[Any]:
        from ddgs.engines.duckduckgo import Duckduckgo  # an optional extra
        from ddgs.exceptions import DDGSException

        engine = Duckduckgo(timeout=int(self.settings.search_timeout))
        engine.search_url = self.settings.duckduckgo_url
        try:
            return engine.search(query, region=REGION) or []
        except DDGSException as exc:
            raise SearchError(f"The duckduckgo search failed ({type(exc).__name__}).") from None
        except Exception as exc:  # its HTTP client's errors are its own (primp)
            raise SearchError(
                f"The duckduckgo search could not be reached ({type(exc).__name__})."
            ) from None
