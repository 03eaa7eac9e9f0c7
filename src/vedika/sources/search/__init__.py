"""Web search providers. Importing this package registers the built-ins; `auto`
tries SearXNG, then Brave, then Tavily (DuckDuckGo only when named: it sends the
queries to a third party)."""

from vedika.sources.search import brave, duckduckgo, searxng, tavily  # noqa: F401
from vedika.sources.search.base import (
    CachedSearch,
    SearchError,
    SearchProvider,
    SearchResult,
    pick,
    provider_names,
    register,
)

__all__ = [
    "CachedSearch",
    "SearchError",
    "SearchProvider",
    "SearchResult",
    "pick",
    "provider_names",
    "register",
]
