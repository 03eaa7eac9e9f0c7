"""The fast lane answers only the plain form of a registered GET; everything else, and
every failure, reaches the framework untouched."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from vedika.api.fastlane import Answer, Defer, FastLane, HotCall, HotRoutes, hot
from vedika.errors import CreditsExhausted

Message = dict[str, Any]


class Framework:
    """Stands in for the app behind the fast lane: records what reached it."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.bodies: list[bytes] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.paths.append(scope["path"])
        if scope["method"] == "POST":
            self.bodies.append((await receive())["body"])
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b"framework"})


def lane_with_routes() -> tuple[FastLane, Framework, list[HotCall]]:
    routes = HotRoutes()
    seen: list[HotCall] = []

    @hot("/plain", routes=routes)
    async def plain(call: HotCall) -> tuple[int, bytes]:
        seen.append(call)
        return 200, b'{"ok":true}'

    @hot("/probe", head=True, headers=((b"cache-control", b"no-store"),), routes=routes)
    async def probe(call: HotCall) -> tuple[int, bytes]:
        return 503, b"{}"

    @hot("/items", params=frozenset({"limit", "session_id"}), routes=routes)
    async def items(call: HotCall) -> tuple[int, bytes] | None:
        seen.append(call)
        return None if call.query.get("limit") == "0" else (200, b"[]")

    @hot("/things/{thing_id}", routes=routes)
    async def thing(call: HotCall) -> tuple[int, bytes]:
        seen.append(call)
        if call.param == "broken":
            raise RuntimeError("the database went away")
        return 200, (call.param or "").encode()

    @hot("/turns", method="POST", routes=routes)
    async def turn(call: HotCall) -> Answer:
        seen.append(call)
        fields = call.json()  # Defer when the body is not a JSON object
        if "message" not in fields:
            raise Defer
        if fields["message"] == "no coins":
            raise CreditsExhausted("Today's Vedika coins are exhausted.")
        return 201, b"{}", ((b"x-conversation-id", b"c-1"),)

    framework = Framework()
    owner = SimpleNamespace(state=SimpleNamespace(services="the services"))
    lane = FastLane(framework, owner, routes, body_limit=100)  # type: ignore[arg-type]
    return lane, framework, seen


async def call(
    lane: FastLane,
    path: str,
    *,
    method: str = "GET",
    query: bytes = b"",
    headers: Any = (),
    body: bytes = b"",
) -> tuple[int, dict[bytes, bytes], bytes]:
    sent: list[Message] = []
    pieces = [body[:3], body[3:]] if body else [b""]

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:  # the body in two pieces, then the client leaves
        if pieces:
            piece = pieces.pop(0)
            return {"type": "http.request", "body": piece, "more_body": bool(pieces)}
        return {"type": "http.disconnect"}

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query,
        "headers": list(headers),
    }
    await lane(scope, receive, send)
    start, body = sent
    return start["status"], dict(start["headers"]), body["body"]


async def test_a_registered_get_is_answered_without_the_framework() -> None:
    lane, framework, seen = lane_with_routes()
    status, headers, body = await call(lane, "/plain")
    assert (status, body) == (200, b'{"ok":true}')
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"content-length"] == b"11"
    assert framework.paths == []
    assert seen[0].services == "the services"


async def test_route_headers_status_and_head() -> None:
    lane, framework, _ = lane_with_routes()
    status, headers, body = await call(lane, "/probe", method="HEAD")
    assert (status, body, headers[b"cache-control"]) == (503, b"", b"no-store")
    assert headers[b"content-length"] == b"2"  # the length of the GET's body
    await call(lane, "/plain", method="HEAD")  # not registered for HEAD
    assert framework.paths == ["/plain"]


@pytest.mark.parametrize(
    ("method", "path", "query", "headers"),
    [
        ("POST", "/plain", b"", ()),
        ("GET", "/unknown", b"", ()),
        ("GET", "/plain", b"", [(b"origin", b"https://elsewhere.example")]),
        ("GET", "/plain", b"", [(b"content-length", b"2")]),
        ("GET", "/turns", b"", ()),  # a POST route
        ("POST", "/plain", b"", [(b"content-length", b"0")]),  # a GET route
        ("GET", "/plain", b"", [(b"transfer-encoding", b"chunked")]),
        ("GET", "/plain", b"x=1", ()),  # a parameter the route does not take
        ("GET", "/items", b"limit=5&limit=6", ()),  # repeated
        ("GET", "/items", b"limit=%35", ()),  # encoded: the framework decodes
        ("GET", "/items", b"limit=5&session_id=a+b", ()),
        ("GET", "/items", b"limit=0", ()),  # the handler declines
        ("GET", "/things/", b"", ()),  # no segment
        ("GET", "/things/a/b", b"", ()),  # two segments
        ("GET", "/things/broken", b"", ()),  # the handler fails
        ("GET", "/things/a\x00b", b"", ()),  # unstorable: the framework says 400
    ],
)
async def test_everything_else_goes_to_the_framework(
    method: str, path: str, query: bytes, headers: Any
) -> None:
    lane, framework, _ = lane_with_routes()
    status, _, body = await call(lane, path, method=method, query=query, headers=headers)
    assert (status, body) == (299, b"framework")
    assert framework.paths == [path]


async def test_query_and_segment_reach_the_handler() -> None:
    lane, framework, seen = lane_with_routes()
    assert (await call(lane, "/items", query=b"limit=5&session_id=abc"))[0] == 200
    assert seen[-1].query == {"limit": "5", "session_id": "abc"}
    assert (await call(lane, "/things/t-1"))[2] == b"t-1"
    assert seen[-1].param == "t-1"
    assert framework.paths == []


@pytest.mark.parametrize(
    ("headers", "query", "expected"),
    [
        (
            [(b"authorization", b"Bearer from-header"), (b"cookie", b"vedika_session=c")],
            {},
            "from-header",
        ),
        ([(b"cookie", b"a=1; vedika_session=from-cookie")], {"session_id": "q"}, "from-cookie"),
        ([], {"session_id": "from-query"}, "from-query"),
        ([(b"authorization", b"Basic xyz")], {}, None),
    ],
)
def test_the_session_id_is_read_as_the_framework_reads_it(
    headers: Any, query: dict[str, str], expected: str | None
) -> None:
    scope = {"headers": headers}
    assert HotCall(None, scope, query, None).session_id() == expected  # type: ignore[arg-type]


JSON = (b"content-type", b"application/json")


def posted(body: bytes, *more: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    return [JSON, (b"content-length", str(len(body)).encode()), *more]


async def test_a_post_is_answered_with_its_own_headers() -> None:
    lane, framework, seen = lane_with_routes()
    body = b'{"message": "hi"}'
    status, headers, out = await call(
        lane, "/turns", method="POST", headers=posted(body), body=body
    )
    assert (status, out, headers[b"x-conversation-id"]) == (201, b"{}", b"c-1")
    assert seen[-1].body == body and framework.paths == []


@pytest.mark.parametrize(
    "body",
    [b'{"other": 1}', b"not json", b"[1, 2]", b""],  # the handler defers: nothing was done
)
async def test_a_deferred_post_reaches_the_framework_with_its_body(body: bytes) -> None:
    lane, framework, _ = lane_with_routes()
    status, _, out = await call(lane, "/turns", method="POST", headers=posted(body), body=body)
    assert (status, out) == (299, b"framework")
    assert framework.bodies == [body]


async def test_a_post_that_failed_after_starting_is_answered_here_not_tried_again() -> None:
    lane, framework, _ = lane_with_routes()
    body = b'{"message": "no coins"}'
    status, _, out = await call(lane, "/turns", method="POST", headers=posted(body), body=body)
    assert status == 402 and b"credits_exhausted" in out
    assert framework.paths == []


@pytest.mark.parametrize(
    "headers",
    [
        [(b"content-length", b"2")],  # not declared JSON
        [(b"content-type", b"text/plain"), (b"content-length", b"2")],
        [JSON],  # no length: chunked
        [JSON, (b"content-length", b"2"), (b"transfer-encoding", b"chunked")],
        [JSON, (b"content-length", b"101")],  # over the JSON cap: BodyLimit's 413
        [JSON, (b"content-length", b"2"), (b"origin", b"https://elsewhere.example")],
    ],
)
async def test_posts_the_lane_does_not_take(headers: Any) -> None:
    lane, framework, _ = lane_with_routes()
    status, _, _ = await call(lane, "/turns", method="POST", headers=headers, body=b"{}")
    assert status == 299 and framework.paths == ["/turns"]


async def test_a_body_other_than_declared_is_not_answered() -> None:
    lane, framework, seen = lane_with_routes()
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b'{"message": "longer than said"}'}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/turns",
        "query_string": b"",
        "headers": posted(b"{}"),
    }
    await lane(scope, receive, send)
    assert sent == [] and seen == [] and framework.paths == []
