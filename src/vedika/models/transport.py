"""HTTP to the model providers: one aiohttp session for every model call.

Reading a streamed answer is the hottest loop in Vedika (one network read per
token, times every live answer). aiohttp parses HTTP with a C parser (llhttp) and
hands back the bytes that arrived in one call; httpx/httpcore/h11 do the same in
pure Python, with an anyio cancel scope per read. Measured on the benchmark machine
(bench/upstream_clients.py, `make bench`): about a quarter of the CPU per relayed
token. Everything else (web search, page fetching, audio) stays on httpx, where the
per-request cost does not matter and the SSRF-safe transport lives.

Providers see only this module: `stream()` for a streamed POST, `get_json()` for
discovery, and one error type whose `kind` says what failed.
"""

from __future__ import annotations

import asyncio
import functools
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp
import orjson

Failure = Literal["timeout", "connect", "broken", "status"]


class TransportError(Exception):
    """The request failed below the HTTP status level (or, for `get_json`, with a
    status other than 200). `kind`: timeout, connect, broken, status."""

    def __init__(self, kind: Failure, detail: str = "", status: int | None = None) -> None:
        super().__init__(detail or kind)
        self.kind: Failure = kind
        self.status = status


class Response:
    """A streamed response: status and headers first, then the body in pieces.

    `idle` bounds each wait for the next piece. aiohttp's own `sock_read` timeout does
    that by cancelling and re-arming a timer on every read the socket makes: 1.8 us a
    read, one read per token per answer. Here one timer runs per `idle` period
    instead: each piece read only notes the time, and the timer, when it fires, moves
    itself to `idle` after the last piece, or ends the body with a timeout if none came
    since. Bytes that arrived since its last look but were not read yet count as a
    piece when it looks (the silence must be the upstream's, not a slow reader's), and
    a body received whole never times out."""

    __slots__ = (
        "_idle",
        "_last",
        "_loop",
        "_read",
        "_resp",
        "_seen",
        "_timer",
        "headers",
        "status",
    )

    def __init__(self, resp: aiohttp.ClientResponse, idle: float) -> None:
        self._resp = resp
        self.status = resp.status
        self.headers = resp.headers
        self._idle = idle
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()
        self._read = 0  # bytes of the body read through `chunks`
        self._seen = 0  # bytes of the body received, at the timer's last look
        self._timer: asyncio.TimerHandle | None = self._loop.call_at(
            self._last + idle, self._check_idle
        )

    def _check_idle(self) -> None:
        content = self._resp.content
        self._timer = None
        if content.is_eof():
            return  # all of it is in: nothing more to wait for
        now = self._loop.time()
        total = content.total_bytes
        if total != self._seen and total > self._read:  # new bytes, not read yet
            self._last = now
        self._seen = total
        due = self._last + self._idle
        if now < due:
            self._timer = self._loop.call_at(due, self._check_idle)
            return
        # Wakes a read that is waiting (or fails the next one), as aiohttp's would.
        content.set_exception(TimeoutError(f"nothing received for {self._idle:g} s"))

    def done(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def read(self) -> bytes:
        try:
            return await self._resp.read()
        except (aiohttp.ClientError, OSError) as exc:
            raise _translate(exc) from None

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives: whatever one read returned, however many events."""
        content = self._resp.content
        clock = self._loop.time
        try:
            while True:
                chunk = await content.readany()
                if not chunk:
                    return
                self._last = clock()
                self._read += len(chunk)
                yield chunk
        except (aiohttp.ClientError, OSError) as exc:  # OSError covers TimeoutError
            # aiohttp raises a broken connection's error ahead of the bytes it still
            # holds: what the upstream sent before it broke is part of the answer.
            rest = _still_buffered(content)
            if rest:
                yield rest
            raise _translate(exc) from None


@functools.lru_cache(maxsize=256)
def proxy_for(scheme: str, host: str) -> str | None:
    """The proxy `HTTP_PROXY` / `HTTPS_PROXY` name for this scheme, unless `NO_PROXY`
    covers `host`: what httpx and aiohttp's `trust_env` do, read once per host (the
    environment does not change under a running server)."""
    proxy = urllib.request.getproxies_environment().get(scheme)
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]  # not in typeshed
    if not proxy or bypass(host):
        return None
    return proxy


class Upstream:
    """The shared client. The aiohttp session is made on first use, inside the
    running event loop, and kept for the life of the process (keep-alive pooling)."""

    def __init__(self, *, max_connections: int = 2000) -> None:
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._ending: set[asyncio.Task[None]] = set()  # bodies read to their end (stream)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=0),
                # HTTP(S)_PROXY / NO_PROXY apply (proxy_for): aiohttp's own trust_env
                # reads them in a worker thread on every request.
                trust_env=False,
            )
        return self._session

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None,
        headers: dict[str, str],
        connect: float,
        idle: float,
    ) -> AsyncIterator[Response]:
        """Send the request; `connect` bounds the connection, `connect + idle` the wait
        for the headers, `idle` every wait for the next piece of the body (Response);
        no total limit, since a long answer may legitimately stream for minutes."""
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=None)
        try:
            parts = urlsplit(url)
            async with asyncio.timeout(connect + idle):
                resp = await self._client().request(
                    method,
                    url,
                    data=body,
                    headers=headers,
                    timeout=timeout,
                    allow_redirects=False,
                    proxy=proxy_for(parts.scheme, parts.hostname or ""),
                )
        except (aiohttp.ClientError, OSError, ValueError) as exc:  # ValueError: a bad URL
            raise _translate(exc) from None
        # Only the request itself is translated here: what the caller raises inside
        # its `async with` passes through unchanged.
        response = Response(resp, idle)
        try:
            yield response
        except BaseException:
            # Stopped or failed mid-body: close the connection, which is how an
            # upstream (vLLM, Ollama, ...) learns to stop generating.
            resp.close()
            raise
        finally:
            response.done()
        # Back to the pool when the body was read to its end. A stream's last event
        # (`[DONE]`) often comes ahead of the body's end, the empty chunk that the
        # upstream writes apart (another TCP segment, another TLS record), and released
        # before it, aiohttp closes the connection: the next call would connect (and
        # shake hands) anew. So the end is awaited apart from the answer, briefly.
        if resp.content.is_eof():
            resp.release()
        else:
            task = asyncio.create_task(_release_at_end(resp))
            self._ending.add(task)
            task.add_done_callback(self._ending.discard)

    async def get_json(self, url: str, *, headers: dict[str, str], timeout: float) -> Any:
        """GET a JSON document (discovery). Raises TransportError, also for a status
        other than 200 or a body that is not JSON."""
        async with self.stream(
            "GET", url, body=None, headers=headers, connect=timeout, idle=timeout
        ) as resp:
            raw = await asyncio.wait_for(resp.read(), timeout)
            if resp.status != 200:
                raise TransportError("status", f"HTTP {resp.status}", status=resp.status)
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise TransportError("broken", "not JSON") from None

    async def close(self) -> None:
        for task in list(self._ending):
            task.cancel()
        if self._session is not None:
            await self._session.close()
            self._session = None


END_WAIT_S = 2.0  # how long a finished answer's body may take to end, pooled after
END_MAX_BYTES = 65_536  # what it may still send; more, and the connection is closed


async def _release_at_end(resp: aiohttp.ClientResponse) -> None:
    """The connection back to the pool once the body ends (normally at once: only the
    last empty chunk was missing); closed if the upstream sends on, or fails."""
    content, left = resp.content, END_MAX_BYTES
    try:
        async with asyncio.timeout(END_WAIT_S):
            while left > 0 and (chunk := await content.readany()):
                left -= len(chunk)
    except (aiohttp.ClientError, OSError):  # OSError covers TimeoutError
        resp.close()
        return
    except BaseException:
        resp.close()
        raise
    if left > 0:
        resp.release()
    else:
        resp.close()


def _still_buffered(content: aiohttp.StreamReader) -> bytes:
    """The bytes a failed body still holds (aiohttp's `readany` and `read_nowait` raise
    the error first; its `_read_nowait` returns them)."""
    take = getattr(content, "_read_nowait", None)
    if take is None:  # an aiohttp without it: the bytes are lost, as before
        return b""
    try:
        return bytes(take(-1))
    except Exception:  # e.g. its timer's own timeout: nothing more to give
        return b""


def _translate(exc: Exception) -> TransportError:
    """aiohttp's and the OS's exceptions -> TransportError."""
    # ServerTimeoutError (connect or read) is also an asyncio.TimeoutError.
    if isinstance(exc, asyncio.TimeoutError):
        return TransportError("timeout", str(exc))
    if isinstance(exc, aiohttp.ClientConnectorError):
        return TransportError("connect", str(exc))
    if isinstance(exc, ValueError):  # a malformed URL
        return TransportError("connect", str(exc))
    return TransportError("broken", str(exc))
