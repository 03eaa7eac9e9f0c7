"""The fast lane: the hottest calls answered before the framework.

A page load asks for the models, the session, the balance and the conversation list;
a sidebar click opens a conversation; an API client starts a turn. Through FastAPI's
whole request path (a dozen ASGI layers, dependency solving, the route table scanned
in order, the body read through three receive wrappers) each of these cost about
250 µs of CPU before the handler ran: more than a GET's own database read, and a
quarter of a turn's CPU once its database work was one trip (bench/rest.py,
docs/benchmarks/). Here they are answered straight from the ASGI call, inside the
request-id and security-header layer, by the same functions the framework's routes
use.

The framework stays the authority. The fast lane takes only the plain, valid form of
a call: no `Origin` (a browser's cross-origin call gets its CORS headers in the
framework), a query it fully understands (only its route's own parameters, nothing
percent-encoded), and for a POST a JSON body of a declared length within the JSON cap.

- A GET changes nothing: on any error at all (no session, a wrong device, a
  conversation not found, the database away) it goes to the framework, which answers
  as it always has. An error costs two tries, a success one.
- A POST goes to the framework, with its body, when its handler raises `Defer`: the
  body does not validate, or the session does not check out, before anything was done.
  An error after that (no coins, too many answers, the database away...) is answered
  here with the framework's own error renderer (vedika.api.errors.error_answer): the
  call may have changed something, so it is never tried twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vedika.api.deps import COOKIE, resolve_session, session_id_from
from vedika.api.errors import error_answer
from vedika.api.middleware import unstorable
from vedika.api.responses import dumps
from vedika.errors import error_body
from vedika.identity.sessions import DeviceSession

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from vedika.services import Services

_JSON = [(b"content-type", b"application/json")]
# Parameters every call with a session may carry (vedika.api.deps.current_session).
SESSION_PARAMS = frozenset({"session_id", "device_id"})

Headers = tuple[tuple[bytes, bytes], ...]
# (status, JSON body) or (status, JSON body, headers of this answer)
Answer = tuple[int, bytes] | tuple[int, bytes, Headers]


class Defer(Exception):
    """Raised by a handler, before it has done anything, to leave the call to the
    framework."""


class HotCall:
    """One call in the fast lane: its services, query, (for `/{name}` routes) the last
    path segment, and (for a POST) its body."""

    __slots__ = ("_fields", "_headers", "body", "param", "query", "scope", "services")

    def __init__(
        self,
        services: Services,
        scope: Scope,
        query: dict[str, str],
        param: str | None,
        body: bytes = b"",
    ) -> None:
        self.services = services
        self.scope = scope
        self.query = query
        self.param = param
        self.body = body
        self._headers: dict[bytes, bytes] | None = None
        self._fields: dict[str, Any] | None = None

    def header(self, name: bytes) -> str | None:
        if self._headers is None:
            self._headers = dict(self.scope["headers"])
        value = self._headers.get(name)
        return value.decode("latin-1") if value is not None else None

    def json(self) -> dict[str, Any]:
        """The body as a JSON object; Defer when it is not one."""
        if self._fields is None:
            try:
                fields = orjson.loads(self.body)
            except orjson.JSONDecodeError:
                raise Defer from None
            if not isinstance(fields, dict):
                raise Defer
            self._fields = fields
        return self._fields

    def _body_text(self, name: str) -> str | None:
        if not self.body:
            return None
        value = self.json().get(name)
        return value if isinstance(value, str) else None

    def session_id(self) -> str | None:
        """As vedika.api.deps.current_session reads it: bearer, cookie, query, then
        the JSON body."""
        cookie = self.header(b"cookie")
        sid = session_id_from(
            self.header(b"authorization"),
            cookie_parser(cookie).get(COOKIE) if cookie else None,
            self.query.get("session_id"),
        )
        return sid if sid is not None else self._body_text("session_id")

    async def session(self) -> DeviceSession:
        """The caller's live session, checked against a `device_id` sent along; raises
        as the framework's dependency does."""
        device_id = self.query.get("device_id") or self.header(b"x-device-id")
        if device_id is None:
            device_id = self._body_text("device_id")
        return await resolve_session(self.services.store, self.session_id(), device_id)


Handler = Callable[[HotCall], Awaitable[Answer | None]]


@dataclass(frozen=True, slots=True)
class HotRoute:
    handler: Handler
    params: frozenset[str]  # the query parameters it understands
    head: bool = False  # HEAD too (probes)
    headers: Headers = ()  # besides its content type and length


class HotRoutes:
    """A table of hot routes by method: exact paths, and paths ending in one `{name}`
    segment."""

    def __init__(self) -> None:
        self._exact: dict[tuple[str, str], HotRoute] = {}
        self._prefixed: dict[tuple[str, str], HotRoute] = {}  # "/a/b/" for "/a/b/{name}"

    def add(self, method: str, path: str, route: HotRoute) -> None:
        if path.endswith("}"):
            self._prefixed[method, path[: path.rindex("/") + 1]] = route
        else:
            self._exact[method, path] = route

    def find(self, method: str, path: str) -> tuple[HotRoute | None, str | None]:
        """The route for `path` and its `{name}` segment (None for an exact path)."""
        route = self._exact.get((method, path))
        if route is not None:
            return route, None
        cut = path.rfind("/") + 1
        route = self._prefixed.get((method, path[:cut]))
        if route is not None and cut < len(path):
            return route, path[cut:]
        return None, None


ROUTES = HotRoutes()  # the API's, filled by `hot` as its modules are imported


def hot(
    path: str,
    *,
    method: str = "GET",
    params: frozenset[str] = frozenset(),
    head: bool = False,
    headers: Headers = (),
    routes: HotRoutes = ROUTES,
) -> Callable[[Handler], Handler]:
    """Register `handler` for `method` `path` (a last segment `{name}` matches one
    segment), beside a framework route of the same path, which it must answer like."""

    def register(handler: Handler) -> Handler:
        routes.add(method, path, HotRoute(handler, params, head, headers))
        return handler

    return register


def _query(raw: bytes, allowed: frozenset[str]) -> dict[str, str] | None:
    """The query as a dict, or None when it is not plainly one the route understands:
    an unknown or repeated name, or anything encoded (`%`, `+`), left to the framework's
    own decoding and validation."""
    if not raw:
        return {}
    if b"%" in raw or b"+" in raw:
        return None
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    query = dict(pairs)
    if len(query) != len(pairs) or not query.keys() <= allowed:
        return None
    return query


def _declared_json(scope: Scope, limit: int) -> int | None:
    """A POST's body length when it is plainly JSON of a declared length within `limit`
    and comes without an `Origin`; else None. A GET qualifies with no body at all (0)."""
    length: int | None = None
    json = False
    for name, value in scope["headers"]:
        if name == b"origin" or name == b"transfer-encoding":
            return None
        if name == b"content-length":
            if not value.isdigit():
                return None
            length = int(value)
        elif name == b"content-type":
            json = value.split(b";", 1)[0].strip().lower() == b"application/json"
    if scope["method"] != "POST":
        return 0 if length is None else None
    return length if json and length is not None and length <= limit else None


async def _read(receive: Receive, length: int) -> bytes | None:
    """The whole body, or None if the client went away or sent other than it said."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > length:
            return None
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts) if size == length else None


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` for the framework after the body was read here: the body, then the
    client's own messages (a disconnect)."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


class FastLane:
    """Answers the registered hot calls (see the module's docstring); passes everything
    else to `app` unchanged."""

    def __init__(
        self, app: ASGIApp, owner: Starlette, routes: HotRoutes = ROUTES, body_limit: int = 0
    ) -> None:
        self.app = app
        self.owner = owner  # its state holds the services
        self.routes = routes
        self.body_limit = body_limit  # the JSON cap (vedika.api.middleware.BodyLimit's)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        route, param = self.routes.find("GET" if method == "HEAD" else method, scope["path"])
        length = _declared_json(scope, self.body_limit) if route is not None else None
        query = _query(scope["query_string"], route.params) if route is not None else None
        if (
            route is None
            or length is None
            or query is None
            or (method == "HEAD" and not route.head)
            or unstorable(scope) is not None
        ):
            await self.app(scope, receive, send)
            return
        services = self.owner.state.services
        body = b""
        if length:
            read = await _read(receive, length)
            if read is None:  # gone, or not what it declared: nobody to answer
                return
            body = read
        call = HotCall(services, scope, query, param, body)
        try:
            answer = await route.handler(call)
        except Defer:
            answer = None
        except Exception as exc:
            if method != "POST":
                answer = None  # a GET is safely asked again, of the framework
            else:
                status, err = error_answer(exc, services)
                extra = tuple((k.lower().encode(), v.encode()) for k, v in err.headers.items())
                answer = (status, dumps(error_body(err)), extra)
        if answer is None:
            await self.app(scope, _replay(body, receive) if body else receive, send)
            return
        await self._send(scope, send, route, answer)

    @staticmethod
    async def _send(scope: Scope, send: Send, route: HotRoute, answer: Answer) -> None:
        status, body, *more = answer
        headers = [*_JSON, *route.headers, *(more[0] if more else ())]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        head = scope["method"] == "HEAD"
        await send({"type": "http.response.body", "body": b"" if head else body})
