"""Models as the rest of Vedika sees them: the catalogue plus a provider per endpoint."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from vedika.errors import ModelNotConfigured
from vedika.models.catalogue import (
    OFFLINE,
    Catalogue,
    Endpoint,
    ModelInfo,
    endpoints_from_settings,
    guess_model,
    load_models_file,
    v1_url,
)
from vedika.models.providers import Provider, build_provider
from vedika.models.providers.base import Timeouts
from vedika.models.providers.offline import Offline
from vedika.models.router import Choice, choose
from vedika.models.transport import TransportError, Upstream
from vedika.settings import Settings

log = structlog.get_logger(__name__)

OLLAMA_DEFAULT = "http://127.0.0.1:11434"


class ModelService:
    def __init__(self, settings: Settings, client: Upstream | None = None) -> None:
        self.settings = settings
        self.client = client or Upstream()
        self.timeouts = Timeouts(
            connect=settings.upstream_connect_timeout, idle=settings.upstream_idle_timeout
        )
        endpoints = endpoints_from_settings(settings)
        models: list[ModelInfo] = []
        if settings.models_file:
            file_endpoints, models = load_models_file(settings.models_file)
            endpoints = file_endpoints + [
                e for e in endpoints if e.name not in {f.name for f in file_endpoints}
            ]
        self.catalogue = Catalogue(endpoints, models)
        self.providers: dict[str, Provider] = {}
        for endpoint in endpoints:
            self._add_endpoint(endpoint)
        offline = Offline(Endpoint(name="offline", kind="offline"), self.client, self.timeouts)
        offline.delay_seconds = settings.offline_delay_ms / 1000
        self.providers["offline"] = offline
        for model in models:
            if model.endpoint not in self.providers:
                model.available = False
            model.provider = model.provider or model.endpoint

    def _add_endpoint(self, endpoint: Endpoint) -> None:
        self.catalogue.endpoints[endpoint.name] = endpoint
        self.providers[endpoint.name] = build_provider(endpoint, self.client, self.timeouts)

    async def discover(self) -> None:
        """Ask every endpoint which models it serves; mark unreachable ones unavailable."""
        if (
            self.settings.ollama_autodetect
            and "ollama" not in self.providers
            and await self._ollama_running()
        ):
            self._add_endpoint(
                Endpoint(name="ollama", kind="openai", base_url=v1_url(OLLAMA_DEFAULT))
            )
        results = await asyncio.gather(
            *(
                self._discover_one(name, p)
                for name, p in self.providers.items()
                if name != "offline"
            )
        )
        for name, ids in results:
            declared = [m for m in self.catalogue.real_models() if m.endpoint == name]
            for model in declared:
                model.available = ids is not None
            if ids is None or not self.catalogue.endpoints[name].discover:
                continue
            for model_id in ids:
                if self.catalogue.get(model_id) is None:
                    self.catalogue.add(guess_model(model_id, self.catalogue.endpoints[name]))
        log.info("models.discovered", available=[m.id for m in self.catalogue.available()])

    async def _discover_one(self, name: str, provider: Provider) -> tuple[str, list[str] | None]:
        try:
            return name, await provider.list_models()
        except (TransportError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("models.discovery_failed", endpoint=name, error=str(exc)[:200])
            return name, None

    async def _ollama_running(self) -> bool:
        with contextlib.suppress(TransportError):
            await self.client.get_json(f"{OLLAMA_DEFAULT}/api/tags", headers={}, timeout=0.5)
            return True
        return False

    async def close(self) -> None:
        await self.client.close()

    def resolve(self, model_id: str, text: str, query_type: str | None) -> Choice:
        """A model for this message: `best` routes, an id must exist and be available."""
        if model_id == "best":
            return choose(text, self.catalogue.available(), query_type)
        model = self.catalogue.get(model_id)
        if model is None or (model is OFFLINE and self.catalogue.available() != [OFFLINE]):
            raise ModelNotConfigured(
                f"There is no model called {model_id!r} here. Pick one from /routing/models "
                "or use 'best'."
            )
        if not model.available:
            raise ModelNotConfigured(
                f"The model {model.name} is not reachable right now. Pick another or use 'best'.",
                retryable=True,
                status=503,
                code="model_unavailable",
            )
        return Choice(
            model=model, reason=f"You picked {model.name}.", confidence=1.0, category="user"
        )

    def provider_for(self, model: ModelInfo) -> Provider:
        return self.providers[model.endpoint]
