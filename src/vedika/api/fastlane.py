"""The fast lane: the hot GETs answered before the framework.

A page load asks for the models, the session, the balance and the conversation list;
a sidebar click opens a conversation. Through FastAPI's whole request path (a dozen
ASGI layers, dependency solving, the route table scanned in order) each of these cost
about 250 µs of CPU before the handler ran: more than the handler's own database read
(bench/rest.py, docs/benchmarks/). Here they are answered straight from the ASGI call,
inside the request-id and security-header layer, by the same functions that build the
framework routes' bodies.

The framework stays the authority. The fast lane answers only the plain, valid form of
a call: a GET without a body and without an `Origin` (a browser's cross-origin call
gets its CORS headers in the framework), with a query it fully understands (only its
route's own parameters, nothing percent-encoded). Anything else, and any error at all
(no session, a wrong device, a conversation not found, the database away), goes to the
framework, which answers as it always has, in the API's one error shape. A GET changes
nothing, so handing it over after a failed try is safe; an error costs two tries, a
success one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from vedika.api.deps import COOKIE, resolve_session, session_id_from
from vedika.api.middleware import unstorable
from vedika.identity.sessions import DeviceSession

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from vedika.services import Services

_JSON = [(b"content-type", b"application/json")]
# Parameters every call with a session may carry (vedika.api.deps.current_session).
SESSION_PARAMS = frozenset({"session_id", "device_id"})


class HotCall:
    """One call in the fast lane: its services, query and (for `/{name}` routes) the
    last path segment."""

    __slots__ = ("_headers", "param", "query", "scope", "services")

    def __init__(
        self, services: Services, scope: Scope, query: dict[str, str], param: str | None
    ) -> None:
        self.services = services
        self.scope = scope
        self.query = query
        self.param = param
        self._headers: dict[bytes, bytes] | None = None

    def header(self, name: bytes) -> str | None:
        if self._headers is None:
            self._headers = dict(self.scope["headers"])
        value = self._headers.get(name)
        return value.decode("latin-1") if value is not None else None

    def session_id(self) -> str | None:
        """As vedika.api.deps.current_session reads it: bearer, cookie, then query."""
        cookie = self.header(b"cookie")
        return session_id_from(
            self.header(b"authorization"),
            cookie_parser(cookie).get(COOKIE) if cookie else None,
            self.query.get("session_id"),
        )

    async def session(self) -> DeviceSession:
        """The caller's live session, checked against a `device_id` sent along; raises
        as the framework's dependency does (and the call then goes there)."""
        device_id = self.query.get("device_id") or self.header(b"x-device-id")
        return await resolve_session(self.services.store, self.session_id(), device_id)


# A handler answers (status, JSON body), or None to leave the call to the framework.
Handler = Callable[[HotCall], Awaitable[tuple[int, bytes] | None]]


@dataclass(frozen=True, slots=True)
class HotRoute:
    handler: Handler
    params: frozenset[str]  # the query parameters it understands
    head: bool = False  # HEAD too (probes)
    headers: tuple[tuple[bytes, bytes], ...] = ()  # besides its content type and length


class HotRoutes:
    """A table of hot routes: exact paths, and paths ending in one `{name}` segment."""

    def __init__(self) -> None:
        self._exact: dict[str, HotRoute] = {}
        self._prefixed: dict[str, HotRoute] = {}  # "/a/b/" for "/a/b/{name}"

    def add(self, path: str, route: HotRoute) -> None:
        if path.endswith("}"):
            self._prefixed[path[: path.rindex("/") + 1]] = route
        else:
            self._exact[path] = route

    def find(self, path: str) -> tuple[HotRoute | None, str | None]:
        """The route for `path` and its `{name}` segment (None for an exact path)."""
        route = self._exact.get(path)
        if route is not None:
            return route, None
        cut = path.rfind("/") + 1
        route = self._prefixed.get(path[:cut])
        if route is not None and cut < len(path):
            return route, path[cut:]
        return None, None


ROUTES = HotRoutes()  # the API's, filled by `hot` as its modules are imported


def hot(
    path: str,
    *,
    params: frozenset[str] = frozenset(),
    head: bool = False,
    headers: tuple[tuple[bytes, bytes], ...] = (),
    routes: HotRoutes = ROUTES,
) -> Callable[[Handler], Handler]:
    """Register `handler` for GET `path` (a last segment `{name}` matches one segment).
    Beside a framework route of the same path, which it must answer like."""

    def register(handler: Handler) -> Handler:
        routes.add(path, HotRoute(handler, params, head, headers))
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


def _plain(scope: Scope) -> bool:
    """No `Origin` (CORS is the framework's) and no body (a GET has none)."""
    for name, _ in scope["headers"]:
        if name in (b"origin", b"content-length", b"transfer-encoding"):
            return False
    return True


class FastLane:
    """Answers the registered hot GETs (see the module's docstring); passes everything
    else to `app` unchanged."""

    def __init__(self, app: ASGIApp, owner: Starlette, routes: HotRoutes = ROUTES) -> None:
        self.app = app
        self.owner = owner  # its state holds the services
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route, answer = await self._try(scope) if scope["type"] == "http" else (None, None)
        if route is None or answer is None:
            await self.app(scope, receive, send)
            return
        status, body = answer
        headers = [*_JSON, *route.headers, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        head = scope["method"] == "HEAD"
        await send({"type": "http.response.body", "body": b"" if head else body})

    async def _try(self, scope: Scope) -> tuple[HotRoute | None, tuple[int, bytes] | None]:
        method = scope["method"]
        if method != "GET" and method != "HEAD":
            return None, None
        route, param = self.routes.find(scope["path"])
        if route is None or (method == "HEAD" and not route.head) or not _plain(scope):
            return None, None
        query = _query(scope["query_string"], route.params)
        if query is None or unstorable(scope) is not None:
            return None, None
        call = HotCall(self.owner.state.services, scope, query, param)
        try:
            return route, await route.handler(call)
        except Exception:  # the framework answers it, errors and all
            return None, None
