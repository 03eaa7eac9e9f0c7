"""What reading the upstream costs, per token, by client (the biggest hot spot found).

    .venv/bin/python -m bench.upstream_clients [--streams 100] [--seconds 8]

Each client runs in its own process pinned to the server core and reads `--streams`
concurrent 200-token answers from the fake upstream (20 ms per token, on the other
core). The figure is that process's CPU time per token received:

- `vedika`: Vedika's own provider (`OpenAICompatible.stream` over
  `vedika.models.transport.Upstream` (aiohttp) + the lean SSE splitter + one orjson
  parse per event), built as `vedika.models.service.ModelService` builds it;
- `aiohttp`: aiohttp's C parser, SSE split on bytes, one orjson parse per event (the
  floor's reader; needs the `bench` extra);
- `raw`: an `asyncio.Protocol` that decodes the chunked body itself (bench/wire.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import procs
from bench.load import prompt


async def _drive(
    kind: str, upstream: str, streams: int, seconds: float, words: int
) -> dict[str, Any]:
    p = prompt(words)
    duration = p.n_tokens * 0.02
    counts = {"tokens": 0}
    body = {"model": "fake-steady", "messages": [{"role": "user", "content": p.text}]}
    stream_one: Any
    if kind == "vedika":
        from vedika.models.catalogue import Endpoint
        from vedika.models.providers import GenerationRequest
        from vedika.models.providers.base import Timeouts
        from vedika.models.providers.openai_compat import OpenAICompatible
        from vedika.models.transport import Upstream

        client = Upstream()
        provider = OpenAICompatible(
            Endpoint(name="fake", kind="openai", base_url=upstream + "/v1"), client, Timeouts()
        )

        async def stream_one() -> None:
            req = GenerationRequest(model="fake-steady", messages=body["messages"])
            async for delta in provider.stream(req):
                if delta.text:
                    counts["tokens"] += 1

    elif kind == "aiohttp":
        import aiohttp

        from bench.floor import aiohttp_stream

        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        raw = json.dumps({**body, "stream": True}).encode()

        async def stream_one() -> None:
            async for _text in aiohttp_stream(session, upstream + "/v1/chat/completions", raw):
                counts["tokens"] += 1

    else:
        from bench.wire import SSEClient

        host, port = upstream.removeprefix("http://").split(":")

        async def stream_one() -> None:
            def on_delta(_text: str, _t: int) -> None:
                counts["tokens"] += 1

            conn = await SSEClient.post(
                host, int(port), "/v1/chat/completions", {**body, "stream": True}, on_delta
            )
            await conn.done

    async def slot(i: int) -> None:
        await asyncio.sleep(duration * i / streams)
        while time.perf_counter() < end:
            await stream_one()

    end = time.perf_counter() + duration + seconds + duration
    tasks = [asyncio.create_task(slot(i)) for i in range(streams)]
    await asyncio.sleep(duration * 1.5)  # all slots running
    c0, n0, t0 = time.process_time(), counts["tokens"], time.perf_counter()
    await asyncio.sleep(seconds)
    c1, n1, t1 = time.process_time(), counts["tokens"], time.perf_counter()
    await asyncio.gather(*tasks)
    tokens = n1 - n0
    return {
        "client": kind,
        "streams": streams,
        "tokens": tokens,
        "tokens_per_s": tokens / (t1 - t0),
        "cpu_us_per_token": (c1 - c0) / tokens * 1e6 if tokens else None,
        "core_busy": (c1 - c0) / (t1 - t0),
    }


def child(kind: str, upstream: str, streams: int, seconds: float, words: int) -> None:
    loop_factory = None
    with contextlib.suppress(ImportError):
        import uvloop

        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        print(json.dumps(runner.run(_drive(kind, upstream, streams, seconds, words))))


def measure(
    upstream: str,
    cpus: list[str],
    streams: int,
    seconds: float,
    clients: list[str],
    words: int = 175,
) -> list[dict[str, Any]]:
    """Run each client in its own process on `cpus`; their figures (or errors)."""
    out = []
    for kind in clients:
        cmd = [sys.executable, "-m", "bench.upstream_clients", "--child", kind]
        cmd += ["--upstream", upstream, "--streams", str(streams), "--seconds", str(seconds)]
        cmd += ["--words", str(words)]
        if cpus:
            cmd = ["taskset", "-c", ",".join(cpus), *cmd]
        res = subprocess.run(
            cmd, cwd=procs.ROOT, env=procs.python_env(), capture_output=True, text=True
        )
        if res.returncode:
            tail = (res.stderr.strip().splitlines() or ["?"])[-1]
            out.append({"client": kind, "error": tail[:300]})
            continue
        out.append(json.loads(res.stdout.strip().splitlines()[-1]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--clients", default="vedika,aiohttp,raw")
    parser.add_argument("--words", type=int, default=175, help="175: 200-token answers")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--upstream", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.upstream, args.streams, args.seconds, args.words)
        return
    server_cpus, gen_cpus, _ = procs.cores()
    tmp = Path(tempfile.mkdtemp(prefix="vedika-clients-"))
    up = procs.fake_upstream(20.0, gen_cpus, tmp / "upstream.log").start_ready()
    try:
        clients = args.clients.split(",")
        for r in measure(up.url, server_cpus, args.streams, args.seconds, clients, args.words):
            if "error" in r:
                print(f"{r['client']:8} failed: {r['error']}")
                continue
            print(
                f"{r['client']:8} {r['streams']} streams: {r['tokens_per_s']:8.0f} tokens/s, "
                f"{r['cpu_us_per_token']:6.1f} us CPU per token, core busy {r['core_busy']:.2f}"
            )
    finally:
        up.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
