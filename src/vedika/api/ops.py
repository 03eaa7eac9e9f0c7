"""Operations: health, Prometheus metrics, and the browser's config."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from vedika.api.deps import ServicesDep
from vedika.api.health import health_report
from vedika.api.responses import JSONResponse
from vedika.errors import NotFound
from vedika.metrics import METRICS
from vedika.modes import mode_names
from vedika.settings import Settings
from vedika.sources.library import upload_limits
from vedika.status import gather

router = APIRouter(tags=["operations"])


@router.get("/health")
async def health(services: ServicesDep) -> Response:
    """`{status, version, database, redis, instance_id, live_generations}`; 503 when the
    database or Redis (when configured) is unreachable, so a load balancer stops sending
    new turns here. Checked at most once a second; calls without an `Origin` are
    answered before this route (vedika.api.fastlane, vedika.api.health)."""
    status, report = await health_report(services)
    return JSONResponse(report, status_code=status)


@router.get("/metrics", include_in_schema=False)
async def metrics(services: ServicesDep, request: Request) -> Response:
    """Prometheus metrics, for the scraper only (VEDIKA_METRICS_TOKEN, docs/deployment.md)."""
    if not metrics_allowed(services.settings, request.headers.get("authorization")):
        # 404, not 401: a public server does not even say there is something here.
        raise NotFound("There is nothing at this address.")
    return Response(generate_latest(METRICS.registry), media_type=CONTENT_TYPE_LATEST)


def metrics_allowed(settings: Settings, authorization: str | None) -> bool:
    """With a token: only `Authorization: Bearer <token>`. Without: development only."""
    if settings.metrics_token is None or not settings.metrics_token.get_secret_value():
        return settings.env == "development"
    expected = f"Bearer {settings.metrics_token.get_secret_value()}".encode()
    return hmac.compare_digest((authorization or "").strip().encode(), expected)


def docs_exposed(settings: Settings) -> bool:
    """/docs and /openapi.json: VEDIKA_EXPOSE_DOCS, or on in development only."""
    if settings.expose_docs is not None:
        return settings.expose_docs
    return settings.env == "development"


@router.get("/api/config")
async def browser_config(services: ServicesDep, request: Request) -> dict[str, Any]:
    """What a browser needs for this environment."""
    base = str(request.base_url).rstrip("/")
    ws = base.replace("https://", "wss://").replace("http://", "ws://") + "/ws"
    # What is connected, for the operator: in development only (a public server does
    # not describe its models' addresses to anonymous visitors).
    status = gather(services, base).public() if services.settings.env == "development" else None
    return {
        "environment": services.settings.env,
        "status": status,
        "api_base_url": base,
        "websocket_url": ws,
        "features": {
            "streaming": True,
            "websocket": True,
            "sse": True,
            "web_search": bool(services.sources and services.sources.web_search),
            "web_search_provider": services.sources.web_search if services.sources else None,
            "file_upload": services.sources is not None,
            "uploads": upload_limits(services.settings) if services.sources else None,
            "default_sources": services.settings.default_sources,
            "modes": mode_names(),
            "agent_tools": [
                t.name
                for t in services.generations.env.tools.offered(services.settings, services.sources)
            ],
            "transcription": services.settings.transcribe_url is not None,
            "speech": services.settings.speech_url is not None,
            "password_reset": services.settings.mail_enabled,
            "limits": {
                "transcribe_max_bytes": services.settings.transcribe_max_bytes,
                "speech_max_chars": services.settings.speech_max_chars,
            },
            "offline_only": [m.id for m in services.models.catalogue.available()] == ["offline"],
        },
    }
