"""The model catalogue: what can answer, from configuration and from discovery.

Models come from three places, in this order of precedence:
1. the operator's TOML file (`VEDIKA_MODELS_FILE`): endpoints and described models;
2. discovery: `/v1/models` of the OpenAI-compatible upstream (`OPENAI_BASE_URL`),
   of an Ollama (`OLLAMA_HOST`, or one found on 127.0.0.1:11434), and of Anthropic
   (`ANTHROPIC_API_KEY`), each listed under its own id;
3. the offline model, available only when nothing else is.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vedika.settings import Settings

CATEGORIES = ("code", "analysis", "creative", "chat", "general")


@dataclass(slots=True)
class Endpoint:
    """Where a provider lives: a kind from the provider registry plus its address."""

    name: str
    kind: str
    base_url: str = ""
    api_key: str | None = None
    discover: bool = True


@dataclass(slots=True)
class ModelInfo:
    id: str
    name: str
    endpoint: str
    upstream_id: str
    description: str = ""
    speed: str = "medium"
    cost: str = "low"
    best_for: list[str] = field(default_factory=lambda: ["general questions"])
    context_window: int = 8192
    coins_per_message: int = 1
    good_at: dict[str, float] = field(default_factory=dict)
    available: bool = True
    provider: str = ""

    def public(self) -> dict[str, Any]:
        """The `/routing/models` shape (API.md section 4)."""
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "speed": self.speed,
            "cost": self.cost,
            "best_for": self.best_for,
            "provider": self.provider or self.endpoint,
            "context_window": self.context_window,
            "coins_per_message": self.coins_per_message,
            "available": self.available,
        }


OFFLINE = ModelInfo(
    id="offline",
    name="Offline (no model connected)",
    endpoint="offline",
    upstream_id="offline",
    description="Explains how to connect a language model; answers from sources once they exist.",
    speed="fast",
    cost="free",
    best_for=["checking that Vedika works"],
    context_window=1_000_000,
    coins_per_message=0,
    good_at={c: 0.1 for c in CATEGORIES},
    provider="offline",
)


class CatalogueError(Exception):
    """The models file is invalid; the message says where."""


class Catalogue:
    """Known models by id, plus the endpoints they are served from."""

    def __init__(self, endpoints: list[Endpoint], models: list[ModelInfo]) -> None:
        self.endpoints = {e.name: e for e in endpoints}
        self._models: dict[str, ModelInfo] = {}
        for model in models:
            self._models.setdefault(model.id, model)

    def add(self, model: ModelInfo) -> None:
        self._models.setdefault(model.id, model)

    def get(self, model_id: str) -> ModelInfo | None:
        if model_id == OFFLINE.id:
            return OFFLINE
        return self._models.get(model_id)

    def real_models(self) -> list[ModelInfo]:
        return list(self._models.values())

    def available(self) -> list[ModelInfo]:
        """Models that can answer now; the offline model when nothing else can."""
        live = [m for m in self._models.values() if m.available]
        return live or [OFFLINE]

    def listed(self) -> list[ModelInfo]:
        """What `/routing/models` shows: every configured model, or the offline one."""
        models = list(self._models.values())
        if not any(m.available for m in models):
            models.append(OFFLINE)
        return models


def endpoints_from_settings(settings: Settings) -> list[Endpoint]:
    endpoints: list[Endpoint] = []
    if settings.openai_base_url or settings.openai_api_key:
        endpoints.append(
            Endpoint(
                name="openai",
                kind="openai",
                base_url=v1_url(settings.openai_base_url or "https://api.openai.com/v1"),
                api_key=_secret(settings.openai_api_key),
            )
        )
    if settings.anthropic_api_key:
        endpoints.append(
            Endpoint(
                name="anthropic",
                kind="anthropic",
                base_url=settings.anthropic_base_url,
                api_key=_secret(settings.anthropic_api_key),
            )
        )
    if settings.ollama_host:
        endpoints.append(
            Endpoint(name="ollama", kind="openai", base_url=v1_url(settings.ollama_host))
        )
    return endpoints


def v1_url(url: str) -> str:
    """`http://host:port` -> `http://host:port/v1`; URLs with a path are kept as given."""
    url = url.rstrip("/")
    rest = url.split("://", 1)[-1]
    return url if "/" in rest else url + "/v1"


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def load_models_file(path: Path) -> tuple[list[Endpoint], list[ModelInfo]]:
    """Parse the operator's TOML catalogue (see docs/configuration.md)."""
    import os

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogueError(
            f"VEDIKA_MODELS_FILE points to {path}, which does not exist."
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"{path} is not valid TOML: {exc}.") from None
    endpoints: list[Endpoint] = []
    for i, raw in enumerate(data.get("endpoints", [])):
        try:
            key_env = raw.get("api_key_env")
            endpoints.append(
                Endpoint(
                    name=str(raw["name"]),
                    kind=str(raw.get("kind", "openai")),
                    base_url=v1_url(str(raw["base_url"]))
                    if raw.get("kind", "openai") == "openai"
                    else str(raw["base_url"]).rstrip("/"),
                    api_key=os.environ.get(key_env) if key_env else raw.get("api_key"),
                    discover=bool(raw.get("discover", True)),
                )
            )
        except KeyError as exc:
            raise CatalogueError(f"{path}: endpoint #{i + 1} needs a {exc.args[0]!r}.") from None
    models: list[ModelInfo] = []
    for i, raw in enumerate(data.get("models", [])):
        try:
            model_id = str(raw["id"])
            good_at = raw.get("good_at", {})
            if isinstance(good_at, list):
                good_at = {c: 1.0 for c in good_at}
            unknown = set(good_at) - set(CATEGORIES)
            if unknown:
                raise CatalogueError(
                    f"{path}: model {model_id!r} has unknown good_at {sorted(unknown)}; "
                    f"use {', '.join(CATEGORIES)}."
                )
            coins = int(raw.get("coins_per_message", 1))
            if coins < 0:
                raise CatalogueError(f"{path}: model {model_id!r} has negative coins_per_message.")
            models.append(
                ModelInfo(
                    id=model_id,
                    name=str(raw.get("name", model_id)),
                    endpoint=str(raw["endpoint"]),
                    upstream_id=str(raw.get("upstream_id", model_id)),
                    description=str(raw.get("description", "")),
                    speed=str(raw.get("speed", "medium")),
                    cost=str(raw.get("cost", "low")),
                    best_for=[str(b) for b in raw.get("best_for", ["general questions"])],
                    context_window=int(raw.get("context_window", 8192)),
                    coins_per_message=coins,
                    good_at={str(k): float(v) for k, v in good_at.items()},
                )
            )
        except KeyError as exc:
            raise CatalogueError(f"{path}: model #{i + 1} needs a {exc.args[0]!r}.") from None
        except (TypeError, ValueError) as exc:
            raise CatalogueError(f"{path}: model #{i + 1} has a bad value: {exc}.") from None
    return endpoints, models


def guess_model(model_id: str, endpoint: Endpoint) -> ModelInfo:
    """Sensible metadata for a discovered model that the operator did not describe."""
    lower = model_id.lower()
    good_at = {"general": 0.6, "chat": 0.6, "analysis": 0.5, "creative": 0.5, "code": 0.4}
    best_for = ["general questions"]
    if any(k in lower for k in ("coder", "code", "starcoder", "devstral", "codestral")):
        good_at |= {"code": 0.9}
        best_for = ["code", "debugging"]
    if any(k in lower for k in ("mini", "small", "haiku", "flash", "8b", "7b", "3b", "1b")):
        speed, cost = "fast", "low"
        good_at["chat"] = 0.8
    elif any(k in lower for k in ("opus", "70b", "405b", "large", "o1", "o3", "pro")):
        speed, cost = "slow", "high"
        good_at |= {"analysis": 0.9, "creative": 0.7}
        best_for = ["analysis", "long answers"]
    else:
        speed, cost = "medium", "medium"
    if "sonnet" in lower or "gpt-4" in lower or "gpt-5" in lower:
        good_at |= {"code": 0.85, "analysis": 0.85, "creative": 0.8}
        best_for = ["code", "analysis", "writing"]
    return ModelInfo(
        id=model_id,
        name=model_id,
        endpoint=endpoint.name,
        upstream_id=model_id,
        description=f"Served by {endpoint.name} ({endpoint.kind}).",
        speed=speed,
        cost=cost,
        best_for=best_for,
        good_at=good_at,
        provider=endpoint.name,
    )
