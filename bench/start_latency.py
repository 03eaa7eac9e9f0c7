"""Measure what a user waits for: `/ai/chat/start` -> 201, and -> first chunk.

Starts the fake upstream (fake-fast: no pacing, so the figures are Vedika's own
overhead plus one loopback upstream request) and a real `vedika serve` on SQLite,
then runs N sequential turns: POST /ai/chat/start, open /ws, attach, wait for the
first content_chunk. Prints p50/p90/p99 in milliseconds.

    .venv/bin/python -m bench.start_latency [--turns 200] [--model fake-fast]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import websockets
from tests.fakes.upstream import FakeUpstream
from tests.support.server import VedikaServer


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(base: str, turns: int, model: str) -> dict[str, list[float]]:
    accept, first, first_sse = [], [], []
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        sid = (await http.post("/auth/device-session", json={})).json()["session_id"]
        http.headers["Authorization"] = f"Bearer {sid}"
        ws_url = base.replace("http", "ws") + "/ws"
        async with websockets.connect(ws_url) as ws:
            await ws.recv()
            for i in range(turns):
                t0 = time.perf_counter()
                r = await http.post("/ai/chat/start", json={"message": f"q{i}", "model_id": model})
                t1 = time.perf_counter()
                body = r.json()
                await ws.send(
                    json.dumps(
                        {
                            "routeKey": "stream_chat",
                            "session_id": sid,
                            "message_id": body["message_id"],
                        }
                    )
                )
                while True:
                    event = json.loads(await ws.recv())
                    if event["type"] == "content_chunk" and "t2" not in locals():
                        t2 = time.perf_counter()
                    if event["type"] in ("stream_complete", "stream_error"):
                        break
                accept.append((t1 - t0) * 1000)
                first.append((t2 - t0) * 1000)
                del t2
            for i in range(min(turns, 50)):
                t0 = time.perf_counter()
                r = await http.post("/ai/chat/start", json={"message": f"s{i}", "model_id": model})
                async with http.stream("GET", f"/ai/chat/stream/{r.json()['message_id']}") as s:
                    async for line in s.aiter_lines():
                        if line.startswith("event: content_chunk"):
                            first_sse.append((time.perf_counter() - t0) * 1000)
                            break
    return {
        "start_201": accept,
        "start_to_first_chunk_ws": first,
        "start_to_first_chunk_sse": first_sse,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--model", default="fake-fast")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeUpstream(delay_ms=0) as fake:
        srv = VedikaServer(
            {
                "VEDIKA_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/v.db",
                "VEDIKA_DATA_DIR": tmp,
                "OPENAI_BASE_URL": fake.base_url,
                "VEDIKA_OLLAMA_AUTODETECT": "false",
                "VEDIKA_LOG_LEVEL": "warning",
                "VEDIKA_DAILY_CREDITS": "100000",
            },
            log_path=Path(tmp) / "server.log",
        ).start()
        try:
            results = asyncio.run(run(srv.url, args.turns, args.model))
        finally:
            srv.stop()
    print(f"{'metric':32} {'n':>5} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'mean':>8}")
    for name, values in results.items():
        print(
            f"{name:32} {len(values):5d} {pct(values, 0.5):8.2f} {pct(values, 0.9):8.2f} "
            f"{pct(values, 0.99):8.2f} {statistics.mean(values):8.2f}"
        )


if __name__ == "__main__":
    main()
