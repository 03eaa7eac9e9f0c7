"""The upstream's idle limit (vedika.models.transport): it bounds each wait for the next
piece of a body and the wait for the headers, never the whole of a body that keeps
coming. Real upstreams on loopback that pace, stall or stay silent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from vedika.models.transport import TransportError, Upstream

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _piece(n: int) -> bytes:
    event = b'data: {"n": %d}\n\n' % n
    return b"%x\r\n%s\r\n" % (len(event), event)


async def _serve(handle: Handler) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def _paced(pieces: int, gap: float) -> Handler:
    """An upstream that sends `pieces` events `gap` seconds apart, then ends the body."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(HEAD)
        for n in range(pieces):
            writer.write(_piece(n))
            await writer.drain()
            await asyncio.sleep(gap)
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        writer.close()

    return handle


async def _read(port: int, idle: float) -> AsyncIterator[bytes]:
    upstream = Upstream()
    try:
        async with upstream.stream(
            "POST", f"http://127.0.0.1:{port}/v1", body=b"{}", headers={}, connect=2, idle=idle
        ) as resp:
            async for piece in resp.chunks():
                yield piece
    finally:
        await upstream.close()


async def test_a_body_that_keeps_coming_outlives_its_idle_limit() -> None:
    # 8 gaps of 0.15 s: 1.2 s in all, against an idle limit of 0.4.
    server, port = await _serve(_paced(8, 0.15))
    try:
        got = b"".join([piece async for piece in _read(port, idle=0.4)])
        assert got.count(b"data:") == 8
    finally:
        server.close()


async def test_a_stalled_body_times_out_after_its_idle_limit_with_what_came() -> None:
    release = asyncio.Event()

    async def stalling(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(HEAD)
        for n in range(3):
            writer.write(_piece(n))
            await writer.drain()
            await asyncio.sleep(0.1)
        await release.wait()  # then nothing
        writer.close()

    server, port = await _serve(stalling)
    got = b""
    try:
        start = time.monotonic()
        with pytest.raises(TransportError) as err:
            async for piece in _read(port, idle=0.4):
                got += piece
        waited = time.monotonic() - start
        assert err.value.kind == "timeout"
        assert got.count(b"data:") == 3
        # The last piece came ~0.2 s in: the limit runs from it, not from the start.
        assert 0.55 <= waited < 2.0, waited
    finally:
        release.set()
        server.close()


async def test_no_headers_time_out_after_connect_and_idle() -> None:
    release = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await release.wait()
        writer.close()

    server, port = await _serve(silent)
    upstream = Upstream()
    try:
        start = time.monotonic()
        with pytest.raises(TransportError) as err:
            async with upstream.stream(
                "POST", f"http://127.0.0.1:{port}/v1", body=b"{}", headers={}, connect=0.2, idle=0.3
            ):
                pass
        assert err.value.kind == "timeout"
        assert 0.45 <= time.monotonic() - start < 2.0
    finally:
        release.set()
        await upstream.close()
        server.close()


async def test_a_reader_slower_than_the_limit_loses_nothing() -> None:
    # The upstream sends every 0.25 s; the reader takes 0.5 s (longer than the idle
    # limit) before each read. The silence is the reader's, not the upstream's.
    server, port = await _serve(_paced(3, 0.25))
    got = b""
    try:
        async for piece in _read(port, idle=0.3):
            got += piece
            await asyncio.sleep(0.5)  # the reader, slower than the limit
        assert got.count(b"data:") == 3
    finally:
        server.close()
