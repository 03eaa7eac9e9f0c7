"""create_app(settings) -> the ASGI app. No work happens at import time.

The lifespan builds the store, hub, model service, generations and reaper, and on
shutdown drains answers in flight (finish within VEDIKA_DRAIN_SECONDS or be
stored as interrupted).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from redis.asyncio import Redis
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp

from vedika import __version__
from vedika.chat import routes_rest, routes_sse, routes_ws
from vedika.chat.generation import STREAM_LOST, Generations
from vedika.chat.hub import MemoryHub, StreamHub
from vedika.chat.reaper import Reaper
from vedika.chat.turns import TurnService
from vedika.credits import routes as credit_routes
from vedika.errors import ServiceUnavailable, VedikaError, error_body
from vedika.identity import routes as identity_routes
from vedika.ids import uuid7
from vedika.logs import configure_logging
from vedika.middleware import BodyLimit, BodyRule, RequestContext, UnstorableUrl
from vedika.models import routes as model_routes
from vedika.models.service import ModelService
from vedika.modes.tools import load_tool_modules
from vedika.modes.tools import registry as tool_registry
from vedika.openapi import install_openapi
from vedika.ops import docs_exposed
from vedika.ops import router as ops_router
from vedika.responses import JSONResponse
from vedika.scale.ratelimit import MemoryLimiter, RateLimiter, RedisLimiter
from vedika.scale.redis_hub import RedisHub
from vedika.scale.stop_bus import StopBus
from vedika.services import Services
from vedika.settings import Settings, load_settings
from vedika.sources import routes as source_routes
from vedika.sources.service import SourcesService
from vedika.status import BANNER_ENV, banner, gather
from vedika.store.engine import Store, make_engine
from vedika.voice import routes as voice_routes
from vedika.voice.deepgram import DeepgramKeys

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
        return routes_ws.SocketFirst(RequestContext(UnstorableUrl(limited), hsts=self.hsts), self)


def _validation_details(exc: RequestValidationError) -> list[dict[str, object]]:
    out = []
    for err in exc.errors()[:20]:
        loc = [str(x) for x in err.get("loc", ()) if x != "body"]
        out.append({"field": ".".join(loc) or "body", "problem": err.get("msg", "invalid")})
    return out


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(VedikaError)
    async def _vedika(_req: Request, exc: VedikaError) -> JSONResponse:
        return JSONResponse(error_body(exc), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(exc)
        first = details[0] if details else {"field": "body", "problem": "invalid"}
        err = VedikaError(
            f"The request is invalid: {first['field']}: {first['problem']}.",
            code="validation_error",
            status=400,
            details=details,
        )
        return JSONResponse(error_body(err), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}
        message = {
            404: "There is nothing at this address.",
            405: "This address does not accept that method.",
        }.get(exc.status_code, str(exc.detail))
        err = VedikaError(
            message, code=codes.get(exc.status_code, "http_error"), status=exc.status_code
        )
        return JSONResponse(
            error_body(err), status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(DBAPIError)
    @app.exception_handler(ConnectionError)
    async def _db_down(_req: Request, exc: Exception) -> JSONResponse:
        log.warning("database.unavailable", error=str(exc)[:300])
        err = ServiceUnavailable(
            "The database is unavailable right now; nothing was changed. Please retry shortly.",
            code="database_unavailable",
            headers={"Retry-After": "5"},
        )
        return JSONResponse(error_body(err), status_code=503, headers=err.headers)

    @app.exception_handler(Exception)
    async def _crash(_req: Request, exc: Exception) -> JSONResponse:
        log.error("http.crashed", exc_info=exc)
        err = VedikaError("Something went wrong on our side. Please retry.")
        return JSONResponse(error_body(err), status_code=500)


async def build_services(settings: Settings) -> Services:
    instance_id = f"inst_{uuid7()}"
    store = Store(make_engine(settings.effective_database_url))
    http = httpx.AsyncClient(
        limits=httpx.Limits(max_connections=2000, max_keepalive_connections=200),
        timeout=httpx.Timeout(30.0, connect=settings.upstream_connect_timeout),
    )
    models = ModelService(settings)
    redis: Redis | None = None
    hub: StreamHub
    limiter: RateLimiter
    if settings.redis_url:
        redis = Redis.from_url(
            settings.redis_url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=10
        )
        # Blocking XREADs hold a connection each: they get a pool of their own.
        reader = Redis.from_url(
            settings.redis_url, socket_connect_timeout=2, socket_timeout=None, max_connections=5000
        )
        hub = RedisHub(writer=redis, reader=reader, retention=settings.stream_retention_seconds)
        limiter = RedisLimiter(redis)
    else:
        hub = MemoryHub(retention=settings.stream_retention_seconds)
        limiter = MemoryLimiter()
    sources = SourcesService(settings, store, http)
    load_tool_modules(settings.agent_tool_modules)
    generations = Generations(
        store=store,
        hub=hub,
        models=models,
        settings=settings,
        instance_id=instance_id,
        sources=sources,
        tools=tool_registry(),
    )
    reaper = Reaper(
        store=store,
        hub=hub,
        generations=generations,
        interval=settings.reaper_interval,
        # A live generation refreshes its heartbeat every flush; one that has missed
        # several (and at least VEDIKA_HEARTBEAT_STALE_SECONDS) is presumed dead. Too
        # short a limit would reap answers of an instance that is merely busy.
        stale_after=max(3 * settings.flush_seconds, settings.heartbeat_stale_seconds),
    )
    stop_bus = None
    if isinstance(hub, RedisHub) and redis is not None:
        hub.on_failure = lambda mids: generations.fail(mids, STREAM_LOST)
        stop_bus = StopBus(redis, generations.stop)
    return Services(
        settings=settings,
        store=store,
        hub=hub,
        models=models,
        turns=TurnService(store, models, settings, instance_id),
        generations=generations,
        reaper=reaper,
        http=http,
        instance_id=instance_id,
        limiter=limiter,
        stop_bus=stop_bus,
        redis=redis,
        sources=sources,
        deepgram=DeepgramKeys(settings, http),
    )


def create_app(settings: Settings | None = None) -> FastAPI:
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
    for router in (
        identity_routes.router,
        credit_routes.router,
        model_routes.router,
        routes_rest.router,
        routes_sse.router,
        routes_ws.router,
        source_routes.router,
        voice_routes.router,
        ops_router,
    ):
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
