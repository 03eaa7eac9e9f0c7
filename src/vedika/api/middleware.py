"""Pure-ASGI middleware: request ids and access logs, security headers, body caps.

Pure ASGI (not BaseHTTPMiddleware) so streaming responses pass through untouched.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vedika.errors import BadRequest, PayloadTooLarge, VedikaError, error_body
from vedika.ids import request_id as new_request_id
from vedika.metrics import METRICS
from vedika.protocol import UNSTORABLE as _UNSTORABLE

log = structlog.get_logger("vedika.access")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; media-src 'self' blob:; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
# /docs serves a vendored Swagger UI started from a static file (vedika.web.docs): it
# needs nothing the pages' policy does not allow, and no host but this one.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
# Polled by load balancers and scrapers: not logged, no request id bound to log lines.
QUIET_PATHS = frozenset({"/health", "/metrics"})
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"permissions-policy", b"camera=(), geolocation=(), microphone=(self)"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class RequestContext:
    """A request id on every request and log line; security headers on every response."""

    def __init__(self, app: ASGIApp, hsts: bool = False) -> None:
        self.app = app
        # Built once: every response gets the same headers but its request id.
        tail = list(SECURITY_HEADERS)
        if hsts:
            tail.append((b"strict-transport-security", b"max-age=31536000"))
        self._headers = [(b"content-security-policy", CSP.encode()), *tail]
        self._docs_headers = [(b"content-security-policy", DOCS_CSP.encode()), *tail]
        self._counted: dict[tuple[str, int], Any] = {}  # (method, status) -> counter

    def _count(self, method: str, status: int, elapsed: float) -> None:
        counter = self._counted.get((method, status))
        if counter is None:  # prometheus' labels() takes a lock and builds a key each time
            counter = METRICS.requests.labels(method=method, status=str(status))
            if len(self._counted) < 256:  # methods x statuses are few; a flood of odd ones is not
                self._counted[(method, status)] = counter
        counter.inc()
        METRICS.request_seconds.observe(elapsed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = (_header(scope, b"x-request-id") or new_request_id())[:64]
        path: str = scope.get("path", "")
        quiet = path in QUIET_PATHS or path.startswith("/static")
        if not quiet:
            structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        extra = self._docs_headers if path == "/docs" else self._headers

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                headers.extend(extra)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            self._count(scope["method"], status, elapsed)
            if not quiet:
                log.info(
                    "http",
                    method=scope["method"],
                    path=path,
                    status=status,
                    ms=round(elapsed * 1000, 1),
                )
                structlog.contextvars.clear_contextvars()


class UnstorableUrl:
    """`400` for a path or query holding NUL or an unpaired surrogate (`%00`, `%ED%A0%80`):
    no id or parameter of ours can hold one, and PostgreSQL would refuse it with an
    error that reads as the database being down. Request bodies are checked by their
    models (vedika.protocol.Text)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        where = unstorable(scope) if scope["type"] == "http" else None
        if where is None:
            await self.app(scope, receive, send)
            return
        exc = BadRequest(
            f"The request is invalid: {where}: it holds a NUL character or an unpaired "
            "surrogate, which no Vedika id or parameter can.",
            code="validation_error",
        )
        await send_error(send, exc)


def unstorable(scope: Scope) -> str | None:
    """Where the request's address holds unstorable text: `path`, a query parameter's
    name, or None."""
    if _UNSTORABLE.search(scope.get("path", "")):
        return "path"
    query: bytes = scope.get("query_string", b"")
    if b"%" not in query and b"\x00" not in query:
        return None
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True, errors="surrogatepass")
    for name, value in pairs:
        if _UNSTORABLE.search(name) or _UNSTORABLE.search(value):
            return "query" if _UNSTORABLE.search(name) else name
    return None


@dataclass(frozen=True, slots=True)
class BodyRule:
    """A route that takes a larger body than JSON calls do, and the only kind it takes."""

    limit: int
    content_type: bytes  # e.g. b"multipart/form-data"


class BodyLimit:
    """Refuse request bodies over their route's cap with 413, without reading them whole.

    Every body is capped at `limit` (JSON calls) unless its exact method and path have a
    rule (uploads) and it is of that rule's content type: a JSON body sent to the
    upload route gets the JSON cap, so nothing unauthenticated can make the server hold
    an upload-sized body it will only parse (the session is looked up first)."""

    def __init__(
        self, app: ASGIApp, limit: int, rules: dict[tuple[str, str], BodyRule] | None = None
    ) -> None:
        self.app = app
        self.limit = limit
        self.rules = rules or {}

    def limit_for(self, scope: Scope) -> int:
        rule = self.rules.get((scope["method"], scope["path"]))
        if rule is None:
            return self.limit
        content_type = (_header(scope, b"content-type") or "").encode("latin-1").lower()
        return rule.limit if content_type.startswith(rule.content_type) else self.limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _drain(receive, int(declared))
            await _too_large(send, limit)
            return
        received = 0
        started = False

        async def guarded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.app(scope, guarded_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _too_large(send, limit)


class _TooLarge(PayloadTooLarge):
    """Raised from `receive` mid-body. A PayloadTooLarge, so when the app is reading the
    body itself (a dependency, a form parser) its error handler answers 413 in the API's
    shape; when nothing inside handles it, BodyLimit does."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"The request body is larger than {limit:,} bytes.")


DRAIN_MAX = 32 * 1024 * 1024


async def _drain(receive: Receive, declared: int) -> None:
    """Read and drop a refused body (up to DRAIN_MAX), so the client sees our 413
    instead of a reset while it is still sending. Past that, the connection closes."""
    if declared > DRAIN_MAX:
        return
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return


async def _too_large(send: Send, limit: int) -> None:
    exc = PayloadTooLarge(f"The request body is larger than {limit:,} bytes.")
    await send_error(send, exc, close=True)  # the rest of the body is not read


async def send_error(send: Send, exc: VedikaError, *, close: bool = False) -> None:
    """Answer with `exc` in the API's error shape, from below the app's handlers."""
    body = orjson.dumps(error_body(exc))
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> Any:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None
