"""Operations: health, Prometheus metrics, and the browser's config."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import ORJSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from vedika import __version__
from vedika.identity.deps import ServicesDep
from vedika.metrics import METRICS

router = APIRouter(tags=["operations"])


@router.get("/health")
async def health(services: ServicesDep) -> Response:
    """`{status, version, database, redis}`; 503 when the database is unreachable."""
    database = "ok"
    try:
        async with services.store.read() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:
        database = "unavailable"
    ok = database == "ok"
    status = "ok" if ok and services.generations.accepting else ("draining" if ok else "degraded")
    return ORJSONResponse(
        {
            "status": status,
            "version": __version__,
            "database": database,
            "redis": "not_configured",
            "instance_id": services.instance_id,
            "live_generations": len(services.generations.live),
        },
        status_code=200 if ok else 503,
    )


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(METRICS.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/api/config")
async def browser_config(services: ServicesDep, request: Request) -> dict[str, Any]:
    """What a browser needs for this environment."""
    base = str(request.base_url).rstrip("/")
    ws = base.replace("https://", "wss://").replace("http://", "ws://") + "/ws"
    return {
        "environment": services.settings.env,
        "api_base_url": base,
        "websocket_url": ws,
        "features": {
            "streaming": True,
            "websocket": True,
            "sse": True,
            "web_search": False,
            "file_upload": False,
            "modes": ["search"],
            "offline_only": [m.id for m in services.models.catalogue.available()] == ["offline"],
        },
    }
