"""The floor: the least a relay can do (QUALITY.md's lean relay, ~30 lines).

For each `{"message", "model_id"}` received on a WebSocket, stream an OpenAI-style
chat completion from the upstream and forward each delta as one JSON frame
(`content_chunk` with a number), then `stream_complete`. No events, no store, no
replay buffer: Vedika's overhead is measured against this. Upstream reading is
aiohttp (C HTTP parser) when installed, else raw asyncio streams; SSE is split on
bytes with one orjson parse per event; uvloop when installed.

    python -m bench.floor --upstream http://127.0.0.1:PORT [--port 0] [--client raw]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import orjson
from websockets.asyncio.server import ServerConnection, serve


def _deltas(buf: bytes, out: list[str]) -> bytes:
    *events, rest = buf.split(b"\n\n")
    for ev in events:
        if ev.startswith(b"data: {"):
            choices = orjson.loads(ev[6:]).get("choices")
            if choices and (text := choices[0]["delta"].get("content")):
                out.append(text)
    return rest


async def aiohttp_stream(session: Any, url: str, body: bytes) -> AsyncIterator[str]:
    async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
        buf, out = b"", []
        async for piece in r.content.iter_any():
            buf = _deltas(buf + piece, out)
            for text in out:
                yield text
            out.clear()


async def raw_stream(host: str, port: int, path: str, body: bytes) -> AsyncIterator[str]:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    try:
        await reader.readuntil(b"\r\n\r\n")  # the fake always answers 200, chunked
        buf, out = b"", []
        while size := int((await reader.readuntil(b"\r\n"))[:-2], 16):
            buf = _deltas(buf + (await reader.readexactly(size + 2))[:-2], out)
            for text in out:
                yield text
            out.clear()
    finally:
        writer.close()


async def main(upstream: str, host: str, port: int, client: str) -> None:
    url = upstream.rstrip("/") + "/v1/chat/completions"
    parts = urlsplit(url)
    session: Any = None
    if client == "aiohttp":
        import aiohttp

        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    def stream(body: bytes) -> AsyncIterator[str]:
        if session is not None:
            return aiohttp_stream(session, url, body)
        return raw_stream(parts.hostname or "", parts.port or 80, parts.path, body)

    async def relay(ws: ServerConnection) -> None:
        with contextlib.suppress(Exception):
            async for raw in ws:
                msg = orjson.loads(raw)
                body = orjson.dumps(
                    {
                        "model": msg["model_id"],
                        "messages": [{"role": "user", "content": msg["message"]}],
                        "stream": True,
                    }
                )
                n = 0
                async for text in stream(body):
                    n += 1
                    chunk = {"type": "content_chunk", "content": text, "chunk_id": n}
                    await ws.send(orjson.dumps(chunk).decode())
                await ws.send(orjson.dumps({"type": "stream_complete", "total_chunks": n}).decode())

    async with serve(relay, host, port, backlog=4096, max_size=2**20) as server:
        bound = next(iter(server.sockets)).getsockname()[1]
        print(f"READY ws://{host}:{bound}/ws client={client}", flush=True)
        await asyncio.Future()


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    default = "raw"
    with contextlib.suppress(ImportError):
        import aiohttp  # noqa: F401

        default = "aiohttp"
    parser.add_argument("--client", choices=["aiohttp", "raw"], default=default)
    args = parser.parse_args()
    loop_factory = None
    with contextlib.suppress(ImportError):
        import uvloop

        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main(args.upstream, args.host, args.port, args.client))


if __name__ == "__main__":
    cli()
