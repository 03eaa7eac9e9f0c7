"""Web search providers. Importing this package registers the built-ins; `auto`
tries SearXNG, then Brave, then Tavily, then any other registered provider."""

from vedika.sources.search import brave, searxng, tavily  # noqa: F401
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
