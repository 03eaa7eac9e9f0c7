"""create_app(settings) -> the ASGI app. No work happens at import time.

The composition root: the lifespan builds the services (vedika.services), the app
mounts the API (vedika.api) and the pages (vedika.web), and on shutdown drains
answers in flight (finish within VEDIKA_DRAIN_SECONDS or be stored as interrupted).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

from vedika import __version__
from vedika.api import routers
from vedika.api.errors import install_error_handlers
from vedika.api.fastlane import FastLane
from vedika.api.middleware import BodyLimit, BodyRule, RequestContext, UnstorableUrl
from vedika.api.openapi import install_openapi
from vedika.api.ops import docs_exposed
from vedika.api.responses import JSONResponse
from vedika.api.socket import SocketFirst
from vedika.heap import settle_heap
from vedika.logs import configure_logging
from vedika.services import build_services
from vedika.settings import Settings, load_settings
from vedika.status import BANNER_ENV, banner, gather

log = structlog.get_logger(__name__)


class VedikaApp(FastAPI):
    """FastAPI with the body cap and request context outside everything else,
    so even Starlette's own error responses carry the security headers."""

    body_limit: int = 2_000_000
    upload_limit: int = 2_000_000  # POST /files: several files of up to VEDIKA_MAX_FILE_BYTES
    audio_limit: int = 2_000_000  # POST /ai/transcribe: one recording
    hsts: bool = False

    def build_middleware_stack(self) -> ASGIApp:
        inner = super().build_middleware_stack()
        multipart = b"multipart/form-data"
        limited = BodyLimit(
            inner,
            self.body_limit,
            rules={
                ("POST", "/files"): BodyRule(self.upload_limit, multipart),
                ("POST", "/ai/transcribe"): BodyRule(self.audio_limit, multipart),
            },
        )
        # /ws first (it needs no HTTP layer), the hot GETs next (inside the security
        # headers): vedika.api.fastlane.
        inner_http = FastLane(UnstorableUrl(limited), self, body_limit=self.body_limit)
        return SocketFirst(RequestContext(inner_http, hsts=self.hsts), self)


def create_app(settings: Settings | None = None, *, own_process: bool = False) -> FastAPI:
    """The app. `own_process`: it is all this process serves (`vedika serve`, the ASGI
    entry point for workers), so its heap may be settled once it is up (vedika.heap)."""
    settings = settings or load_settings()
    configure_logging(settings.log_level, settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await build_services(settings)
        app.state.services = services
        await services.models.discover()
        # One process owns every answer (MemoryHub): any left `streaming` died with a
        # previous run. With several instances, only stale heartbeats say that.
        await services.reaper.reap(everything=not services.hub.distributed)
        services.hub.start()
        if services.stop_bus:
            services.stop_bus.start()
        services.generations.start_background()
        services.reaper.start()
        services.search_index.start()
        if own_process:
            settle_heap()
        log.info(
            "vedika.started",
            version=__version__,
            env=settings.env,
            instance_id=services.instance_id,
        )
        if os.environ.get(BANNER_ENV):  # `vedika serve` asked for it, with its address
            print(banner(gather(services, os.environ[BANNER_ENV])), flush=True)
        try:
            yield
        finally:
            log.warning("vedika.draining", live=len(services.generations.live))
            await services.generations.drain(settings.drain_seconds)
            await services.reaper.close()
            await services.search_index.close()
            if services.stop_bus:
                await services.stop_bus.close()
            await services.hub.close()
            if services.redis is not None:
                await services.redis.aclose()
            if services.sources is not None:
                await services.sources.close()
            await services.http.aclose()
            await services.models.close()
            await services.store.close()
            log.warning("vedika.stopped")

    # /docs and /openapi.json only where VEDIKA_EXPOSE_DOCS says (development by
    # default): a public server need not hand out a map of itself. FastAPI's own /docs
    # (CDN assets, inline script) and /redoc are never mounted; see vedika.web.docs.
    docs = docs_exposed(settings)
    app = VedikaApp(
        title="Vedika",
        version=__version__,
        description="A self-hostable AI answer engine. The WebSocket protocol is in "
        "docs/protocol.md.",
        lifespan=lifespan,
        default_response_class=JSONResponse,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.body_limit = settings.max_body_bytes
    uploads = settings.max_file_bytes * settings.max_files_per_message + 1_000_000
    app.upload_limit = max(settings.max_body_bytes, uploads)
    app.audio_limit = max(settings.max_body_bytes, settings.transcribe_max_bytes + 64_000)
    app.hsts = settings.env != "development"
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials="*" not in settings.cors_origins,
        allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=[
            "Authorization",
            "Content-Type",
            "X-Device-ID",
            "X-Request-ID",
            "Last-Event-ID",
        ],
        expose_headers=["x-conversation-id", "x-request-id", "Retry-After"],
    )
    install_error_handlers(app)
    install_openapi(app)
    for router in routers():
        app.include_router(router)
    _install_web(app, docs=docs)
    return app


def _install_web(app: FastAPI, *, docs: bool) -> None:
    try:
        from vedika.web import install_web
        from vedika.web.docs import install_docs
    except ImportError:
        return
    install_web(app)
    if docs:
        install_docs(app)  # its assets are the pages' static files
