"""Lean asyncio clients for the load generator: WebSocket, SSE over HTTP/1.1, plain HTTP.

Each one is an `asyncio.Protocol` that parses bytes in `data_received` and hands
complete messages to a callback with the arrival time (`time.perf_counter_ns()`, one
reading per read from the socket: messages that arrived together share it). There
are no per-message tasks, queues or futures, so one generator core can drive many
thousands of frames per second; `bytes_in` counts what came over the wire.
"""

from __future__ import annotations

import asyncio
import base64
import os
import zlib
from collections.abc import Callable
from time import perf_counter_ns

import orjson

OnMessage = Callable[[bytes, int], None]
_DEFLATE_TAIL = b"\x00\x00\xff\xff"


def _mask(data: bytes, key: bytes) -> bytes:
    n = len(data)
    if not n:
        return b""
    keys = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(keys, "big")).to_bytes(n, "big")


def _frame(opcode: int, data: bytes) -> bytes:
    n = len(data)
    head = bytearray([0x80 | opcode])
    if n < 126:
        head.append(0x80 | n)
    elif n < 65536:
        head.append(0x80 | 126)
        head += n.to_bytes(2, "big")
    else:
        head.append(0x80 | 127)
        head += n.to_bytes(8, "big")
    key = os.urandom(4)
    return bytes(head) + key + _mask(data, key)


class WSClient(asyncio.Protocol):
    """A WebSocket client connection (RFC 6455; optional permessage-deflate)."""

    def __init__(self, host: str, path: str, deflate: bool = False) -> None:
        self.host = host
        self.path = path
        self.deflate = deflate
        self.on_message: OnMessage | None = None
        self.transport: asyncio.Transport | None = None
        self.open: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.bytes_in = 0
        self.handshake_bytes = 0
        self.compressed = False
        self._inflate: zlib._Decompress | None = None
        self._buf = b""
        self._frags: list[bytes] = []
        self._frag_rsv1 = False
        self._upgraded = False

    @classmethod
    async def connect(
        cls, host: str, port: int, path: str = "/ws", deflate: bool = False, timeout: float = 30
    ) -> WSClient:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(
            lambda: cls(f"{host}:{port}", path, deflate), host, port
        )
        await asyncio.wait_for(asyncio.shield(proto.open), timeout)
        return proto

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        ext = "Sec-WebSocket-Extensions: permessage-deflate\r\n" if self.deflate else ""
        transport.write(
            (
                f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\n{ext}\r\n"
            ).encode()
        )

    def data_received(self, data: bytes) -> None:
        t = perf_counter_ns()
        self.bytes_in += len(data)
        buf = self._buf + data if self._buf else data
        pos = 0
        if not self._upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self._buf = buf
                return
            head = buf[:end].decode("latin-1")
            self.handshake_bytes = end + 4  # bytes_in - handshake_bytes: the frames
            pos = end + 4
            if not head.startswith("HTTP/1.1 101"):
                self._fail(ConnectionError(head.split("\r\n", 1)[0]))
                return
            self._upgraded = True
            if "permessage-deflate" in head.lower():
                self.compressed = True
                self._inflate = zlib.decompressobj(wbits=-15)
            if not self.open.done():
                self.open.set_result(None)
        n_buf = len(buf)
        while n_buf - pos >= 2:
            b0 = buf[pos]
            n = buf[pos + 1] & 0x7F
            hdr = 2
            if n == 126:
                if n_buf - pos < 4:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                hdr = 4
            elif n == 127:
                if n_buf - pos < 10:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                hdr = 10
            if n_buf - pos < hdr + n:
                break
            payload = buf[pos + hdr : pos + hdr + n]
            pos += hdr + n
            opcode = b0 & 0x0F
            if opcode <= 2:  # continuation, text, binary
                if not b0 & 0x80:
                    if opcode:
                        self._frag_rsv1 = bool(b0 & 0x40)
                    self._frags.append(payload)
                    continue
                rsv1 = bool(b0 & 0x40)
                if self._frags:
                    self._frags.append(payload)
                    payload = b"".join(self._frags)
                    self._frags.clear()
                    rsv1 = self._frag_rsv1
                if rsv1 and self._inflate is not None:
                    payload = self._inflate.decompress(payload + _DEFLATE_TAIL)
                if self.on_message is not None:
                    self.on_message(payload, t)
            elif opcode == 9 and self.transport is not None:  # ping -> pong
                self.transport.write(_frame(10, payload))
            elif opcode == 8:
                self.close()
        self._buf = buf[pos:]

    def send_text(self, text: str | bytes) -> None:
        data = text.encode() if isinstance(text, str) else text
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_frame(1, data))

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_frame(8, (1000).to_bytes(2, "big")))
            self.transport.close()

    def _fail(self, exc: BaseException) -> None:
        if not self.open.done():
            self.open.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.open.done():
            self.open.set_exception(exc or ConnectionError("closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(None)


class _HTTPBody:
    """Incremental HTTP/1.1 response parser: head, then a chunked or sized body."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.head_done = False
        self.chunked = False
        self.length: int | None = None
        self.done = False
        self._buf = b""
        self._need = 0
        self._crlf = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Body bytes decoded from `data` (empty list while the head is incomplete)."""
        buf = self._buf + data if self._buf else data
        pos = 0
        if not self.head_done:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self._buf = buf
                return []
            lines = buf[:end].decode("latin-1").split("\r\n")
            self.status = int(lines[0].split(" ", 2)[1])
            for line in lines[1:]:
                name, _, value = line.partition(":")
                self.headers[name.strip().lower()] = value.strip()
            self.head_done = True
            self.chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
            if not self.chunked and "content-length" in self.headers:
                self.length = int(self.headers["content-length"])
                self._need = self.length
                if self._need == 0:
                    self.done = True
            pos = end + 4
        out: list[bytes] = []
        if not self.chunked:
            piece = buf[pos:]
            if self.length is not None:
                piece = piece[: self._need]
                self._need -= len(piece)
                if self._need <= 0:
                    self.done = True
            if piece:
                out.append(piece)
            self._buf = b""
            return out
        n = len(buf)
        while pos < n:
            if self._crlf:
                k = min(self._crlf, n - pos)
                pos += k
                self._crlf -= k
                continue
            if self._need:
                k = min(self._need, n - pos)
                out.append(buf[pos : pos + k])
                pos += k
                self._need -= k
                if not self._need:
                    self._crlf = 2
                continue
            nl = buf.find(b"\r\n", pos)
            if nl < 0:
                break
            size = int(buf[pos:nl].split(b";", 1)[0], 16)
            pos = nl + 2
            if size == 0:
                self.done = True
                pos = n
                break
            self._need = size
        self._buf = buf[pos:]
        return out


class SSEClient(asyncio.Protocol):
    """POSTs one OpenAI-style streaming request and reports each content delta.

    `on_delta(text, t_ns)` for every delta with text; `done` resolves at `[DONE]`
    or at the end of the body (with an exception on an HTTP error).
    """

    def __init__(self, request: bytes, on_delta: Callable[[str, int], None]) -> None:
        self.request = request
        self.on_delta = on_delta
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.bytes_in = 0
        self._http = _HTTPBody()
        self._sse = b""

    @classmethod
    async def post(
        cls,
        host: str,
        port: int,
        path: str,
        body: dict[str, object],
        on_delta: Callable[[str, int], None],
    ) -> SSEClient:
        raw = orjson.dumps(body)
        req = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Accept: text/event-stream\r\nContent-Length: {len(raw)}\r\nConnection: close\r\n\r\n"
        ).encode() + raw
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(lambda: cls(req, on_delta), host, port)
        return proto

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        t = perf_counter_ns()
        self.bytes_in += len(data)
        pieces = self._http.feed(data)
        if self._http.head_done and self._http.status != 200 and not self.done.done():
            self.done.set_exception(ConnectionError(f"HTTP {self._http.status}"))
            return
        if not pieces:
            return
        buf = self._sse + b"".join(pieces) if self._sse else b"".join(pieces)
        events = buf.split(b"\n\n")
        self._sse = events.pop()
        for event in events:
            if not event.startswith(b"data: "):
                continue
            payload = event[6:]
            if payload == b"[DONE]":
                self._finish()
                return
            obj = orjson.loads(payload)
            choices = obj.get("choices")
            if choices:
                text = (choices[0].get("delta") or {}).get("content")
                if text:
                    self.on_delta(text, t)
        if self._http.done:
            self._finish()

    def _finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.done.done():
            if exc is None:
                self.done.set_result(None)
            else:
                self.done.set_exception(exc)


class HTTPConn(asyncio.Protocol):
    """A keep-alive HTTP/1.1 connection for sequential requests (probes, history)."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.transport: asyncio.Transport | None = None
        self._parser = _HTTPBody()
        self._body: list[bytes] = []
        self._waiter: asyncio.Future[tuple[int, dict[str, str], bytes]] | None = None

    @classmethod
    async def connect(cls, host: str, port: int) -> HTTPConn:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(lambda: cls(f"{host}:{port}"), host, port)
        return proto

    async def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> tuple[int, dict[str, str], bytes]:
        assert self.transport is not None and self._waiter is None
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        length = f"Content-Length: {len(body)}\r\n" if body or method in ("POST", "PUT") else ""
        self._parser = _HTTPBody()
        self._body = []
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n{extra}{length}\r\n".encode() + body
        )
        try:
            return await self._waiter
        finally:
            self._waiter = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._body.extend(self._parser.feed(data))
        if self._parser.done and self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(
                (self._parser.status, self._parser.headers, b"".join(self._body))
            )

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc or ConnectionError("connection closed"))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
