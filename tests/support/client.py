"""Small clients for the Vedika API: REST (httpx) and WebSocket (websockets)."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import httpx
import websockets

if TYPE_CHECKING:
    from tests.support.server import VedikaServer

Events = list[dict[str, Any]]
TERMINAL = ("stream_complete", "stream_error", "credits_exhausted")


class Api:
    """One device: a session and an httpx client that sends it."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.AsyncClient(base_url=base_url, timeout=30)
        self.session_id = ""
        self.device_id = ""

    async def __aenter__(self) -> Api:
        r = await self.http.post("/auth/device-session", json={})
        assert r.status_code == 201, r.text
        body = r.json()
        self.session_id, self.device_id = body["session_id"], body["device_id"]
        self.http.cookies.clear()  # identify by the bearer header only
        self.http.headers["Authorization"] = f"Bearer {self.session_id}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    @property
    def ws_url(self) -> str:
        """The socket of this device's server."""
        return self.base_url.replace("http", "ws", 1) + "/ws"

    async def ask(
        self,
        message: str | None = None,
        *,
        on: VedikaServer | None = None,
        limit: int | None = None,
        until: str | None = None,
        timeout: float = 20,
        **fields: Any,
    ) -> Events:
        """One `stream_chat` as this device over a socket of its own (to this device's
        server, or to the instance `on`), closed once the events are in: see Socket.ask."""
        async with Socket(on.ws_url if on else self.ws_url) as ws:
            return await ws.ask(self, message, limit=limit, until=until, timeout=timeout, **fields)

    async def start(self, message: str, **fields: Any) -> dict[str, Any]:
        r = await self.http.post("/ai/chat/start", json={"message": message, **fields})
        assert r.status_code in (200, 201), r.text
        return r.json()  # type: ignore[no-any-return]

    async def conversation(self, conversation_id: str) -> dict[str, Any]:
        r = await self.http.get(f"/ai/conversations/{conversation_id}")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    async def balance(self) -> dict[str, Any]:
        return (await self.http.get("/coins/balance")).json()  # type: ignore[no-any-return]

    async def wait_status(
        self, conversation_id: str, message_id: str, timeout: float = 15
    ) -> dict[str, Any]:
        """Poll until the answer is no longer `streaming`; returns the stored message."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            conv = await self.conversation(conversation_id)
            msg = next(m for m in conv["messages"] if m["message_id"] == message_id)
            if msg["status"] != "streaming":
                return msg
            assert asyncio.get_running_loop().time() < deadline, "answer stuck in streaming"
            await asyncio.sleep(0.1)


class Socket:
    """A WebSocket client that collects events."""

    def __init__(self, url: str, origin: str | None = None) -> None:
        self.url = url
        self.origin = origin
        self.ws: Any = None

    async def __aenter__(self) -> Socket:
        headers = {"Origin": self.origin} if self.origin else None
        self.ws = await websockets.connect(self.url, additional_headers=headers, max_size=2**22)
        hello = await self.recv()
        assert hello["type"] == "connection_established"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ws.close()

    async def send(self, **msg: Any) -> None:
        await self.ws.send(json.dumps(msg))

    async def send_chat(
        self, session: Api | str, message: str | None = None, **fields: Any
    ) -> None:
        """Send one `stream_chat` for `session` (an Api or a session id): a new turn with
        `message`, or an attach / resume with conversation_id, message_id, resume_from."""
        if message is not None:
            fields["message"] = message
        session_id = session if isinstance(session, str) else session.session_id
        await self.send(routeKey="stream_chat", session_id=session_id, **fields)

    async def ask(
        self,
        session: Api | str,
        message: str | None = None,
        *,
        limit: int | None = None,
        until: str | None = None,
        timeout: float = 20,
        **fields: Any,
    ) -> Events:
        """send_chat, then the events until the terminal one (see until_terminal)."""
        await self.send_chat(session, message, **fields)
        return await self.until_terminal(limit, timeout, until=until)

    async def recv(self, timeout: float = 15) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        return json.loads(raw)  # type: ignore[no-any-return]

    async def until_terminal(
        self, limit: int | None = None, timeout: float = 20, *, until: str | None = None
    ) -> Events:
        """Events until stream_complete / stream_error / credits_exhausted, or sooner:
        the `limit`-th chunk, or the first event of type `until`."""
        events: Events = []
        chunks = 0
        while True:
            event = await self.recv(timeout)
            events.append(event)
            if event["type"] == "content_chunk":
                chunks += 1
                if limit is not None and chunks >= limit:
                    return events
            if event["type"] in TERMINAL or event["type"] == until:
                return events


def chunks_of(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "content_chunk"]


def text_of(events: list[dict[str, Any]]) -> str:
    return "".join(e["content"] for e in chunks_of(events))


def assert_invariants(
    events: list[dict[str, Any]], *, first_chunk: int = 1, expect_start: bool = True
) -> dict[str, Any]:
    """API.md section 3: one stream_start, contiguous chunks, one terminal, text adds up."""
    types = [e["type"] for e in events]
    assert types.count("stream_start") == (1 if expect_start else 0), types
    terminals = [e for e in events if e["type"] in ("stream_complete", "stream_error")]
    assert len(terminals) == 1 and events[-1] is terminals[0], types
    ids = [e["chunk_id"] for e in chunks_of(events)]
    assert ids == list(range(first_chunk, first_chunk + len(ids))), ids
    for e in events:
        if e["type"] not in ("connection_established", "pong"):
            assert e["message_id"] and e["conversation_id"] and e["timestamp"].endswith("Z")
    return terminals[0]
