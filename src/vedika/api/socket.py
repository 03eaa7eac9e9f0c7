"""The WebSocket `/ws` (API.md section 3).

A socket only subscribes: generation runs elsewhere and never notices a socket
closing. Each `stream_chat` gets its own forwarding task, so `stop_stream` and
`ping` are answered while an answer streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import orjson
import structlog
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from vedika import protocol as p
from vedika.api.deps import COOKIE, check_credential, resolve_session, session_id_from
from vedika.api.origins import origin_allowed
from vedika.chat.streams import Accepted
from vedika.errors import NotFound, VedikaError
from vedika.identity.sessions import DeviceSession
from vedika.ids import uuid7
from vedika.metrics import METRICS
from vedika.services import Services
from vedika.store.conversations import StoredMessage

router = APIRouter()
log = structlog.get_logger(__name__)

MAX_FRAME = 256 * 1024


def _check_field(name: str, value: str) -> None:
    """The rule of `protocol.Text` for a field read before the message is validated."""
    try:
        p.check_text(value)
    except ValueError as exc:
        raise VedikaError(f"Field '{name}': {exc}.", code="validation_error", status=400) from None


def _validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(x) for x in first["loc"]) or "message"
    return f"Field '{where}': {first['msg']}."


class Connection:
    def __init__(self, ws: WebSocket, services: Services, send: Send | None = None) -> None:
        """`send`: the ASGI server's own, where the socket came in through `SocketFirst`.
        Every frame goes straight to it: starlette's `send_text` and `send` add two
        coroutines and a state check to each relayed token, for nothing a connected
        socket needs. No lock around it either: the server writes each message as one
        whole frame, one answer's events keep their order in its one forwarding task,
        and events of two answers may interleave (each names its own)."""
        self.ws = ws
        self.services = services
        self._send = send or ws.send
        self.chat = services.chat
        self.tasks: set[asyncio.Task[None]] = set()
        self._window_start = time.monotonic()
        self._count = 0
        self.handshake_session = session_id_from(
            ws.headers.get("authorization"),
            ws.cookies.get(COOKIE),
            ws.query_params.get("session_id"),
        )

    async def send(self, text: str) -> None:
        try:
            await self._send({"type": "websocket.send", "text": text})
        except OSError:  # the client went away (as starlette's own send says it)
            raise WebSocketDisconnect(code=1006) from None

    async def error(self, message: str, code: str = "bad_request", **ids: str | None) -> None:
        await self.send(p.socket_error(message, code, **ids).decode())

    async def session(self, msg: dict[str, Any]) -> DeviceSession:
        sid = msg.get("session_id") if isinstance(msg.get("session_id"), str) else None
        sid = sid or self.handshake_session
        if sid:
            _check_field("session_id", sid)  # before it reaches the database
        device_id = msg.get("device_id") if isinstance(msg.get("device_id"), str) else None
        return await resolve_session(self.services.store, sid, device_id, missing="unauthorized")

    # ---------------------------------------------------------------- routing

    def over_rate(self) -> bool:
        """Per-connection flood guard: a fixed 10-second window, kept on the socket."""
        limit = self.services.settings.rate_socket_messages_per_10s
        if not limit:
            return False
        now = time.monotonic()
        if now - self._window_start >= 10:
            self._window_start, self._count = now, 0
        self._count += 1
        return self._count > limit

    async def handle(self, raw: str) -> None:
        if self.over_rate():
            await self.error(
                "Too many messages on this connection; slow down for a few seconds.",
                "rate_limited",
            )
            return
        try:
            msg = orjson.loads(raw)
        except orjson.JSONDecodeError:
            await self.error("That message is not valid JSON.")
            return
        if not isinstance(msg, dict):
            await self.error("A message must be a JSON object with a routeKey.")
            return
        route = msg.get("routeKey") or msg.get("action") or msg.get("type")
        handler = ROUTES.get(route) if isinstance(route, str) else None
        if handler is None:
            await self.error(
                f"Unknown routeKey {str(route)[:40]!r}; use stream_chat, stop_stream or ping."
            )
            return
        try:
            await handler(self, msg)
        except VedikaError as exc:
            await self.error(
                exc.message,
                exc.code,
                conversation_id=msg.get("conversation_id")
                if isinstance(msg.get("conversation_id"), str)
                else None,
            )
        except ValidationError as exc:
            await self.error(_validation_message(exc), "validation_error")
        except DBAPIError:
            # One message the database could not take (or a database away) answers
            # that message; the answers already streaming on this socket go on.
            log.warning("ws.database_error", route=route, exc_info=True)
            await self.send(
                p.encode(
                    p.StreamError(
                        conversation_id="",
                        message_id="",
                        timestamp=p.now_iso(),
                        error="The database is unavailable right now; nothing was changed. "
                        "Please retry shortly.",
                        code="database_unavailable",
                        retryable=True,
                    )
                ).decode()
            )

    async def ping(self, _msg: dict[str, Any]) -> None:
        await self.send(p.encode(p.Pong(timestamp=p.now_iso())).decode())

    async def stop_stream(self, msg: dict[str, Any]) -> None:
        session = await self.session(msg)
        req = p.StopRequest.model_validate(msg)
        await self.chat.stop(session, req.message_id, req.conversation_id)

    async def stream_chat(self, msg: dict[str, Any]) -> None:
        session = await self.session(msg)
        stream = p.StreamChatMessage.model_validate(msg)
        if not (stream.message or "").strip() and (
            stream.message_id or stream.conversation_id or stream.message is None
        ):
            self._follow(session, await self._attach_target(session, stream), stream.resume_from)
            return
        req = p.ChatRequest.model_validate(msg)
        if req.conversation_id and not req.branching:  # a branch is always a new turn
            same = await self.chat.same_question(session, req)
            if same is not None:
                self._follow(session, same, stream.resume_from)
                return
        try:
            turn = await self.chat.start(session, req)
        except VedikaError as exc:
            if exc.code == "credits_exhausted":
                details = exc.details or {}
                await self.send(
                    p.encode(
                        p.CreditsExhaustedEvent(
                            conversation_id=req.conversation_id or "",
                            message_id="",
                            timestamp=p.now_iso(),
                            vedika_coins_remaining=int(details.get("vedika_coins_remaining", 0)),
                            daily_credits=int(details.get("daily_credits", 0)),
                            message=exc.message,
                            action_required="wait_for_daily_reset",
                        )
                    ).decode()
                )
                return
            raise
        if turn.created_conversation:
            await self.send(
                p.encode(
                    p.ConversationStarted(
                        conversation_id=turn.conversation_id,
                        message_id=turn.message_id,
                        timestamp=p.now_iso(),
                        user_message_id=turn.user_message_id,
                    )
                ).decode()
            )
        self._follow(session, self.chat.accepted(session, turn), 0)

    async def _attach_target(
        self, session: DeviceSession, stream: p.StreamChatMessage
    ) -> StoredMessage:
        if stream.message_id:
            row = await self.chat.answer(session, stream.message_id)
            if stream.conversation_id and row.conversation_id != stream.conversation_id:
                raise NotFound("There is no answer with that id.", code="message_not_found")
            return row
        if stream.conversation_id:
            return await self.chat.newest_answer(session, stream.conversation_id)
        raise VedikaError(
            "Send a message, or a conversation_id / message_id to attach to.",
            code="bad_request",
            status=400,
        )

    # ---------------------------------------------------------------- forwarding

    def _follow(self, session: DeviceSession, row: StoredMessage | Accepted, after: int) -> None:
        task = asyncio.create_task(self._forward(session, row, after))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _forward(
        self, session: DeviceSession, row: StoredMessage | Accepted, after: int
    ) -> None:
        try:
            send = self._send
            async for batch in self.chat.follow(session, row, after):
                for entry in batch:
                    await send({"type": "websocket.send", "text": entry.data})
        except (WebSocketDisconnect, RuntimeError, OSError):
            return  # the client went away; the generation goes on without it
        except VedikaError as exc:  # an answer accepted here whose row went meanwhile
            with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                await self.error(exc.message, exc.code, conversation_id=row.conversation_id)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)


ROUTES = {
    "stream_chat": Connection.stream_chat,
    "stop_stream": Connection.stop_stream,
    "ping": Connection.ping,
}


@router.websocket("/ws")
async def websocket_endpoint(ws: WebSocket) -> None:
    await serve_socket(ws)


async def serve_socket(ws: WebSocket, send: Send | None = None) -> None:
    """One socket's life; `send` as `Connection` takes it."""
    services: Services = ws.app.state.services
    if not origin_allowed(
        ws.headers.get("origin"), ws.headers.get("host"), services.settings.cors_origins
    ):
        await ws.close(code=1008, reason="origin not allowed")
        return
    if not services.generations.accepting:
        await ws.close(code=1012, reason="server restarting")
        return
    conn = Connection(ws, services, send)
    # A session offered at the handshake must be valid: refuse before any event.
    # (check_credential refuses anything without a credential's shape, NUL included.)
    if conn.handshake_session is not None and not await check_credential(
        services.store, conn.handshake_session
    ):
        await ws.close(code=1008, reason="session unknown or expired")
        return
    await ws.accept()
    METRICS.sockets.inc()
    try:
        await conn.send(p.encode(p.ConnectionEstablished(connection_id=uuid7())).decode())
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            raw = message.get("text")
            if raw is None and message.get("bytes") is not None:
                raw = message["bytes"].decode("utf-8", "replace")
            if raw is None:
                continue
            if len(raw) > MAX_FRAME:
                await conn.error(
                    f"That message is too large (over {MAX_FRAME // 1024} KiB).",
                    "payload_too_large",
                )
                continue
            await conn.handle(raw)
    except WebSocketDisconnect:
        pass
    except Exception:
        log.exception("ws.crashed")
        with contextlib.suppress(Exception):
            await ws.close(code=1011)
    finally:
        METRICS.sockets.dec()
        await conn.close()


class SocketFirst:
    """The outermost ASGI layer: `/ws` goes straight to `websocket_endpoint`.

    A socket lives for hours, and every ASGI layer it passes through keeps a coroutine
    frame (and FastAPI a few exit stacks) alive for that long: about a third of an
    idle socket's memory. The socket needs none of them: it checks its own origin and
    session, and handles its own errors. Everything else goes to `app` unchanged."""

    def __init__(self, app: ASGIApp, owner: Starlette) -> None:
        self.app = app
        self.owner = owner  # what `ws.app` is (its state holds the services)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == "/ws":
            scope["app"] = self.owner
            await serve_socket(WebSocket(scope, receive, send), send)
            return
        await self.app(scope, receive, send)
