"""Delay from `publish` to a local subscriber of the generating instance, RedisHub.

    .venv/bin/python -m bench.hub_latency [--streams 50] [--tokens 200] [--rate 50]

One process, as in a server: `streams` answers publish `tokens` chunks each at `rate`
a second, each followed by one local subscriber; prints p50/p99/max of the delay (ms)
and the process CPU per chunk. Needs Redis (VEDIKA_REDIS_URL or 127.0.0.1:6379);
`--memory` measures the MemoryHub (the floor) instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
import uuid

import orjson
from redis.asyncio import Redis

from vedika.scale.hub import Entry, MemoryHub, StreamHub
from vedika.scale.redis_hub import RedisHub


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(int(q * len(xs)), len(xs) - 1)]


async def main(streams: int, tokens: int, rate: float, url: str | None) -> dict[str, float]:
    hub: StreamHub = MemoryHub(retention=60)
    if url:
        hub = RedisHub(writer=Redis.from_url(url), reader=Redis.from_url(url), retention=60)
    hub.start()
    sent: dict[tuple[str, int], int] = {}
    delays: list[float] = []

    async def follow(mid: str) -> None:
        async for batch in hub.subscribe(mid):
            now = time.perf_counter_ns()
            for e in batch:
                if e.type == "content_chunk":
                    delays.append((now - sent[(mid, e.chunk_id)]) / 1e6)

    async def answer(i: int) -> None:
        await asyncio.sleep(i / streams / rate)  # spread the streams over one gap
        mid = f"lat-{uuid.uuid4().hex}"
        hub.open(mid)
        task = asyncio.create_task(follow(mid))
        await asyncio.sleep(0)
        for k in range(1, tokens + 1):
            data = orjson.dumps({"type": "content_chunk", "content": "word ", "chunk_id": k})
            sent[(mid, k)] = time.perf_counter_ns()
            hub.publish(mid, Entry("content_chunk", k, data.decode()))
            await asyncio.sleep(1 / rate)
        hub.publish(mid, Entry("stream_complete", tokens, "{}"))
        await task

    cpu0 = time.process_time()
    await asyncio.gather(*(answer(i) for i in range(streams)))
    cpu = time.process_time() - cpu0
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(hub.close(), 2)
    return {
        "p50_ms": pct(delays, 0.5),
        "p99_ms": pct(delays, 0.99),
        "max_ms": max(delays),
        "chunks": len(delays),
        "cpu_us_per_chunk": cpu / len(delays) * 1e6,
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=50)
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--memory", action="store_true", help="the MemoryHub instead (the floor)")
    args = ap.parse_args()
    url = None if args.memory else os.environ.get("VEDIKA_REDIS_URL", "redis://127.0.0.1:6379/0")
    out = asyncio.run(main(args.streams, args.tokens, args.rate, url))
    print(orjson.dumps(out).decode())
