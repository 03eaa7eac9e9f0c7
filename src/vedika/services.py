"""The services one app instance is made of, built once in create_app's lifespan.

This is the composition root's other half: `build_services` is the one place that
knows every concrete part (memory or Redis, which providers, which search). The parts
get what they use in their constructors; only the HTTP layer (vedika.api) reads this
container, through its request dependencies.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from redis.asyncio import Redis

from vedika.chat.generation import STREAM_LOST, Generations
from vedika.chat.reaper import Reaper
from vedika.chat.service import ChatService
from vedika.chat.turns import TurnService
from vedika.health import HealthProbe
from vedika.identity.oidc.discovery import Providers
from vedika.ids import uuid7
from vedika.models.service import ModelService
from vedika.modes import ModeEnv
from vedika.modes.tools import load_tool_modules
from vedika.modes.tools import registry as tool_registry
from vedika.scale.hub import MemoryHub, StreamHub
from vedika.scale.ratelimit import MemoryLimiter, RateLimiter, RedisLimiter
from vedika.scale.redis_hub import IDLE_TICK_S, RedisHub
from vedika.scale.stop_bus import StopBus
from vedika.settings import Settings
from vedika.sources.service import SourcesService
from vedika.store.engine import Store, make_engine
from vedika.store.search_queue import SearchIndexer
from vedika.voice.deepgram import DeepgramKeys


@dataclass(slots=True)
class Services:
    settings: Settings
    store: Store
    hub: StreamHub
    models: ModelService
    chat: ChatService  # accept, follow and stop answers (what the transports call)
    generations: Generations
    reaper: Reaper
    http: httpx.AsyncClient
    instance_id: str
    limiter: RateLimiter
    health: HealthProbe  # the database and Redis checks behind /health
    search_index: SearchIndexer  # SQLite's full-text index, written in batches
    stop_bus: StopBus | None = None
    redis: Redis | None = None
    sources: SourcesService | None = None  # attached files, web search, retrieval
    deepgram: DeepgramKeys | None = None  # short-lived Deepgram keys (the project is cached)
    oidc: Providers | None = None  # OpenID Connect sign-on: the providers, metadata cached


async def build_services(settings: Settings) -> Services:
    instance_id = f"inst_{uuid7()}"
    store = Store(
        make_engine(
            settings.effective_database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
        )
    )
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
        hub = RedisHub(
            writer=redis,
            reader=reader,
            retention=settings.stream_retention_seconds,
            batch_gap=settings.redis_batch_ms / 1000,
            idle_tick=min(IDLE_TICK_S, settings.heartbeat_stale_after / 2),
        )
        limiter = RedisLimiter(redis)
    else:
        hub = MemoryHub(retention=settings.stream_retention_seconds)
        limiter = MemoryLimiter()
    sources = SourcesService(settings, store, http)
    load_tool_modules(settings.agent_tool_modules)
    modes = ModeEnv(
        store=store, models=models, settings=settings, sources=sources, tools=tool_registry()
    )
    generations = Generations(
        store=store, hub=hub, settings=settings, instance_id=instance_id, modes=modes
    )
    reaper = Reaper(
        store=store,
        hub=hub,
        generations=generations,
        interval=settings.reaper_interval,
        # A death is settled within settings.reaped_within (13 s with the defaults).
        stale_after=settings.heartbeat_stale_after,
    )
    stop_bus = None
    if isinstance(hub, RedisHub) and redis is not None:
        hub.on_failure = lambda mids: generations.fail(mids, STREAM_LOST)
        hub.on_superseded = generations.supersede
        stop_bus = StopBus(redis, generations.stop)
    turns = TurnService(store, models, settings, instance_id)
    chat = ChatService(
        settings=settings,
        store=store,
        hub=hub,
        turns=turns,
        generations=generations,
        reaper=reaper,
        limiter=limiter,
        modes=modes,
        stop_bus=stop_bus,
    )
    return Services(
        settings=settings,
        store=store,
        hub=hub,
        models=models,
        chat=chat,
        generations=generations,
        reaper=reaper,
        http=http,
        instance_id=instance_id,
        limiter=limiter,
        stop_bus=stop_bus,
        redis=redis,
        sources=sources,
        deepgram=DeepgramKeys(settings, http),
        health=HealthProbe(store, redis, hub),
        search_index=SearchIndexer(store),
        oidc=Providers(
            settings.oidc_providers,
            http,
            ttl=settings.oidc_discovery_seconds,
            timeout=settings.oidc_timeout,
        ),
    )
