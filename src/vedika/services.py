"""The services one app instance is made of, built once in create_app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from redis.asyncio import Redis

from vedika.chat.generation import Generations
from vedika.chat.hub import StreamHub
from vedika.chat.reaper import Reaper
from vedika.chat.turns import TurnService
from vedika.models.service import ModelService
from vedika.scale.ratelimit import RateLimiter
from vedika.scale.stop_bus import StopBus
from vedika.settings import Settings
from vedika.sources.service import SourcesService
from vedika.store.engine import Store
from vedika.voice.deepgram import DeepgramKeys


@dataclass(slots=True)
class Services:
    settings: Settings
    store: Store
    hub: StreamHub
    models: ModelService
    turns: TurnService
    generations: Generations
    reaper: Reaper
    http: httpx.AsyncClient
    instance_id: str
    limiter: RateLimiter
    stop_bus: StopBus | None = None
    redis: Redis | None = None
    sources: SourcesService | None = None  # attached files, web search, retrieval
    deepgram: DeepgramKeys | None = None  # short-lived Deepgram keys (the project is cached)
