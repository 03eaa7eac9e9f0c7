"""What an upstream sent before it broke the connection reaches the answer.

aiohttp's `readany` raises a connection's error as soon as it is set, before the bytes
still in its buffer: a server slower to read than the upstream was to send its last
tokens and close lost those tokens (CI, under load: `fake-cut` kept 1 of 5). Here an
upstream on loopback sends three events and closes mid-body, and the reader starts
only after both arrived."""

from __future__ import annotations

import asyncio

import pytest

from vedika.models.transport import TransportError, Upstream

EVENTS = [b'data: {"n": %d}\n\n' % i for i in range(3)]


async def _cutting_server() -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
        writer.write(head + b"transfer-encoding: chunked\r\n\r\n")
        for event in EVENTS:
            writer.write(b"%x\r\n%s\r\n" % (len(event), event))
        await writer.drain()
        writer.close()  # no last chunk: the body is cut

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_the_bytes_before_a_cut_are_read_before_its_error() -> None:
    server, port = await _cutting_server()
    upstream = Upstream()
    got = b""
    try:
        async with upstream.stream(
            "POST", f"http://127.0.0.1:{port}/v1", body=b"{}", headers={}, connect=5, idle=5
        ) as resp:
            await asyncio.sleep(0.2)  # the events and the close are in before any read
            with pytest.raises(TransportError) as err:
                async for piece in resp.chunks():
                    got += piece
        assert err.value.kind == "broken"
        assert got == b"".join(EVENTS)
    finally:
        await upstream.close()
        server.close()
        await server.wait_closed()
