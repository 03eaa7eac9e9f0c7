"""`GET /health`, answered before the framework.

Each call used to cost a database round trip and FastAPI's whole request path; now the
checks come from vedika.health.HealthProbe (at most one per second) and the answer is
written straight to the ASGI `send`, inside the request-id and security-header layer.
The body is the same: `{status, version, database, redis, instance_id,
live_generations}`, 503 when the database or Redis (when configured) is unreachable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from vedika import __version__

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from vedika.services import Services

_JSON = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]


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


class HealthFirst:
    """`GET`/`HEAD /health` without an `Origin` (load balancers, probes) is answered
    here; anything else goes to `app` (a browser's cross-origin call gets its CORS
    headers there)."""

    def __init__(self, app: ASGIApp, owner: Starlette) -> None:
        self.app = app
        self.owner = owner  # its state holds the services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != "/health"
            or scope["method"] not in ("GET", "HEAD")
            or any(name == b"origin" for name, _ in scope["headers"])
        ):
            await self.app(scope, receive, send)
            return
        status, report = await health_report(self.owner.state.services)
        body = orjson.dumps(report)
        headers = [*_JSON, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )
