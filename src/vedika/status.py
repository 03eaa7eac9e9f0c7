"""What this server is connected to, in one place: the banner `vedika serve` prints at
start, and the status section the pages show the operator (in development).

A newcomer runs `make run` with nothing configured; the server works (the offline
model, no web search) but should say so, and what to do next, before anyone wonders
why an answer "finds 0 sources".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

from vedika.redact import mask_secrets

if TYPE_CHECKING:  # `vedika serve` imports this module before anything heavy
    from vedika.services import Services

# Set by `vedika serve` to the address it listens on: the app prints the banner once its
# models are discovered (tests and embedders that build the app themselves print none).
BANNER_ENV = "VEDIKA_SERVE_BANNER_URL"

NO_MODEL = (
    "Connect a model: set OPENAI_BASE_URL (vLLM, llama.cpp server, any OpenAI-compatible "
    "endpoint) and/or OPENAI_API_KEY, ANTHROPIC_API_KEY, or start Ollama; until then the "
    "offline model answers (docs/configuration.md)."
)
NO_SEARCH = (
    "Turn on web search: set VEDIKA_SEARXNG_URL (a SearXNG of your own), "
    "VEDIKA_BRAVE_API_KEY, VEDIKA_TAVILY_API_KEY, or VEDIKA_SEARCH_PROVIDER=duckduckgo "
    "after pip install 'vedika[ddgs]' (no key needed; docs/sources.md)."
)


@dataclass(frozen=True, slots=True)
class ModelSource:
    endpoint: str  # the provider's name (openai, anthropic, ollama, a models-file name)
    where: str  # its address, credentials masked
    models: list[str]


@dataclass(slots=True)
class Status:
    url: str | None
    environment: str
    database: str
    models: list[ModelSource] = field(default_factory=list)
    search: str | None = None
    next_steps: list[str] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        return asdict(self)


def database_label(url: str) -> str:
    """`SQLite at var/vedika.db`, `PostgreSQL vedika on db:5432`: no credentials."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"SQLite at {parsed.database or ':memory:'}"
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    return mask_secrets(f"PostgreSQL {parsed.database or ''} on {where}".replace("  ", " "))


def gather(services: Services, url: str | None = None) -> Status:
    settings = services.settings
    catalogue = services.models.catalogue
    sources: list[ModelSource] = []
    for name, endpoint in catalogue.endpoints.items():
        ids = [m.id for m in catalogue.available() if m.endpoint == name and m.id != "offline"]
        if ids:
            sources.append(ModelSource(name, mask_secrets(endpoint.base_url or name), ids))
    search = services.sources.web_search if services.sources else None
    steps = []
    if not sources:
        steps.append(NO_MODEL)
    if not search:
        steps.append(NO_SEARCH)
    return Status(
        url=url,
        environment=settings.env,
        database=database_label(settings.effective_database_url),
        models=sources,
        search=search,
        next_steps=steps,
    )


def banner(status: Status) -> str:
    """A few lines for the terminal: where, on what, with what, and what next."""
    lines = [f"Vedika is serving at {status.url}" if status.url else "Vedika is serving"]
    lines.append(f"  database  {status.database}")
    if status.models:
        for source in status.models:
            shown = ", ".join(source.models[:6]) + (" ..." if len(source.models) > 6 else "")
            lines.append(f"  models    {shown}  (from {source.endpoint}: {source.where})")
    else:
        lines.append("  models    none connected: the offline model answers")
    lines.append(f"  search    {status.search or 'off (no web search provider)'}")
    for step in status.next_steps:
        lines.append(f"  next      {step}")
    return "\n".join(lines)
