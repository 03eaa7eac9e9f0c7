"""`GET /health`, answered in the fast lane (vedika.api.fastlane).

Each call used to cost a database round trip and FastAPI's whole request path; now the
checks come from vedika.health.HealthProbe (at most one per second) and the answer is
written straight to the ASGI `send`, inside the request-id and security-header layer.
The body is the same: `{status, version, database, redis, instance_id,
live_generations}`, 503 when the database or Redis (when configured) is unreachable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vedika import __version__
from vedika.api.fastlane import HotCall, hot
from vedika.api.responses import dumps

if TYPE_CHECKING:
    from vedika.services import Services


async def health_report(services: Services) -> tuple[int, dict[str, Any]]:
    """(status code, body) of `GET /health`, for this fast path and the route alike."""
    database, redis = await services.health.state()
    ok = database == "ok" and redis != "unavailable"
    accepting = services.generations.accepting
    return 200 if ok else 503, {
        "status": "ok" if ok and accepting else ("draining" if ok else "degraded"),
        "version": __version__,
        "database": database,
        "redis": redis,
        "instance_id": services.instance_id,
        "live_generations": len(services.generations.live),
    }


@hot("/health", head=True, headers=((b"cache-control", b"no-store"),))
async def hot_health(call: HotCall) -> tuple[int, bytes]:
    status, report = await health_report(call.services)
    return status, dumps(report)
