"""The one safe URL fetcher: every URL Vedika fetches on a user's behalf goes through it.

    policy.check_url(url)            scheme, user@host, literal addresses in any spelling
        -> httpx (no redirects followed, no proxies from the environment)
        -> GuardedBackend.connect_tcp  resolve once, check every address, connect to the
                                       checked address (TLS SNI and Host keep the name)
        -> redirects: each hop goes through check_url and the guard again
        -> body read raw and decompressed here, with caps on bytes and time

Operator-configured endpoints (model providers, SearXNG, embeddings) are trusted and
use the ordinary client; this fetcher is for addresses that come from the world.
"""

from __future__ import annotations

import asyncio
import re
import socket
import zlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any

import httpcore
import httpx

from vedika import __version__
from vedika.netpolicy import Blocked, FetchError, IPAddress, NetPolicy, parse_host_ip

Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

USER_AGENT = f"Vedika/{__version__} (self-hosted answer engine)"
PAGE_TYPES = ("text/html", "application/xhtml+xml", "text/plain")
_REDIRECTS = (301, 302, 303, 307, 308)
_META_CHARSET = re.compile(rb"<meta[^>]+charset=[\"']?([A-Za-z0-9_.:-]+)", re.I)


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver gives for `host`."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[IPAddress] = []
    for info in infos:
        ip = ip_address(str(info[4][0]).split("%", 1)[0])
        if ip not in seen:
            seen.append(ip)
    return seen


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, with the address check at connect time.

    The name is resolved once; every address it resolves to must pass the policy
    (a name that also points somewhere private is refused as a whole), and the
    connection goes to the address that was checked, never to a second lookup.
    """

    def __init__(
        self,
        policy: NetPolicy,
        resolver: Resolver = system_resolver,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.policy = policy
        self.resolver = resolver
        self.inner = inner or httpcore.AnyIOBackend()

    async def pick(self, host: str, port: int) -> IPAddress:
        trusted = self.policy.host_trusted(host)
        literal = parse_host_ip(host)
        if literal is not None:
            addresses = [literal]
        else:
            try:
                addresses = await self.resolver(host, port)
            except OSError:
                raise FetchError(f"The name {host} could not be resolved.") from None
            if not addresses:
                raise FetchError(f"The name {host} has no address.")
        for ip in addresses:
            self.policy.check_address(ip, host, trusted_host=trusted)
        return addresses[0]

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        ip = await self.pick(host, port)
        return await self.inner.connect_tcp(
            str(ip),
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise Blocked("Unix sockets are never fetched.")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def guarded_transport(backend: GuardedBackend, limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    transport = httpx.AsyncHTTPTransport(trust_env=False, limits=limits)
    # httpx has no public parameter for the network backend; its pool is httpcore's,
    # so we hand it one whose connections go through the guard. A test proves a name
    # resolving to loopback is refused, so a change here cannot go unnoticed.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=backend,
    )
    return transport


@dataclass(frozen=True, slots=True)
class FetchLimits:
    max_bytes: int = 3_000_000  # after decompression
    timeout: float = 8.0  # the whole fetch, redirects included
    max_redirects: int = 5


@dataclass(slots=True)
class Fetched:
    url: str  # after redirects
    status: int
    content_type: str  # the media type alone, lower case
    charset: str | None
    body: bytes

    def text(self) -> str:
        charset = self.charset
        if charset is None and self.content_type != "text/plain":
            found = _META_CHARSET.search(self.body[:4096])
            charset = found.group(1).decode("ascii") if found else None
        try:
            return self.body.decode(charset or "utf-8", errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")


class SafeFetcher:
    """GET a URL safely. Raises `FetchError` (or its subclass `Blocked`) with a
    sentence a person can read; never reaches an address the policy refuses."""

    def __init__(
        self,
        policy: NetPolicy,
        limits: FetchLimits | None = None,
        *,
        resolver: Resolver = system_resolver,
        network: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.policy = policy
        self.limits = limits or FetchLimits()
        self.backend = GuardedBackend(policy, resolver, network)
        pool = httpx.Limits(max_connections=64, max_keepalive_connections=16)
        self.client = httpx.AsyncClient(
            transport=guarded_transport(self.backend, pool),
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(self.limits.timeout, connect=min(5.0, self.limits.timeout)),
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"},
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def fetch(self, url: str, *, types: tuple[str, ...] = PAGE_TYPES) -> Fetched:
        try:
            async with asyncio.timeout(self.limits.timeout):
                return await self._fetch(url, types)
        except TimeoutError:
            raise FetchError(
                f"The page took longer than {self.limits.timeout:g} s to fetch."
            ) from None
        except httpx.InvalidURL:
            raise Blocked("That is not a valid URL.") from None
        except httpx.HTTPError as exc:
            raise FetchError(f"The page could not be fetched ({type(exc).__name__}).") from None

    async def _fetch(self, url: str, types: tuple[str, ...]) -> Fetched:
        current = self.policy.check_url(url)
        accept = ",".join(types) + ";q=1.0,*/*;q=0.1" if types else "*/*"
        for _hop in range(self.limits.max_redirects + 1):
            async with self.client.stream("GET", current, headers={"Accept": accept}) as resp:
                if resp.status_code in _REDIRECTS:
                    location = resp.headers.get("location")
                    if not location:
                        raise FetchError("The page redirected without saying where.")
                    current = self.policy.check_url(current.join(location))
                    continue
                if resp.status_code != 200:
                    raise FetchError(f"The page answered with status {resp.status_code}.")
                media, charset = _content_type(resp.headers.get("content-type", ""))
                if types and media not in types:
                    raise FetchError(f"That address is a {media or 'file'}, not a web page.")
                declared = resp.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self.limits.max_bytes:
                    raise _too_large(self.limits.max_bytes)
                body = await read_capped(
                    resp.aiter_raw(),
                    resp.headers.get("content-encoding", ""),
                    self.limits.max_bytes,
                )
                return Fetched(str(resp.url), resp.status_code, media, charset, body)
        raise FetchError(f"The page redirected more than {self.limits.max_redirects} times.")


def _content_type(value: str) -> tuple[str, str | None]:
    media, _, params = value.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, val = param.strip().partition("=")
        if key.lower() == "charset" and val:
            charset = val.strip("\"' ").lower()
    return media.strip().lower(), charset


def _too_large(limit: int) -> FetchError:
    return FetchError(f"The page is larger than {limit:,} bytes (after decompression).")


def _decoder(encoding: str) -> Any:
    value = encoding.strip().lower()
    if value in ("", "identity"):
        return None
    if value in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if value == "deflate":
        return _Deflate()
    raise FetchError(f"The page uses a content encoding Vedika does not read ({value}).")


class _Deflate:
    """`deflate` is zlib-wrapped by the standard and raw by some servers: accept both."""

    def __init__(self) -> None:
        self._d: Any = None
        self.unconsumed_tail = b""

    def decompress(self, data: bytes, max_length: int) -> bytes:
        if self._d is None:
            raw = not (
                len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] * 256 + data[1]) % 31 == 0
            )
            self._d = zlib.decompressobj(-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
        out: bytes = self._d.decompress(data, max_length)
        self.unconsumed_tail = self._d.unconsumed_tail
        return out

    def flush(self) -> bytes:
        return self._d.flush() if self._d is not None else b""


async def read_capped(chunks: Any, encoding: str, limit: int) -> bytes:
    """The body, decompressed here so its decompressed size is capped as it grows
    (a gzip bomb stops at `limit`, it never inflates in memory first)."""
    decoder = _decoder(encoding)
    out = bytearray()
    raw = 0
    try:
        async for chunk in chunks:
            raw += len(chunk)
            if raw > limit:
                raise _too_large(limit)
            if decoder is None:
                out += chunk
            else:
                out += decoder.decompress(chunk, limit - len(out) + 1)
                if decoder.unconsumed_tail:
                    raise _too_large(limit)
            if len(out) > limit:
                raise _too_large(limit)
        if decoder is not None:
            out += decoder.flush()
    except zlib.error:
        raise FetchError("The page's compressed body is corrupt.") from None
    if len(out) > limit:
        raise _too_large(limit)
    return bytes(out)
