"""A client that follows one answer to its end across dropped sockets, as a real one must
behind a load balancer whose instances are stopped, restarted or killed.

A socket that closes (code 1012 from a draining instance, or dropped when its instance
dies) or a handshake that fails (the proxy found no instance: 502) is retried after a
short backoff, through the same URL: the proxy sends it to an instance that is up. The
answer then continues with `resume_from` = the chunks seen. A turn whose message id the
client has not seen yet is sent again with the same `client_message_id`: it attaches to
the turn if the server took it, never starting a second one. A retryable
`stream_unavailable` (the answer's stream is not reachable from that instance yet) is
retried too, a few times.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import websockets

from tests.support.client import TERMINAL, Events, Socket

# What a client sees when the instance behind its socket goes away.
DROPPED = (
    websockets.ConnectionClosed,
    websockets.InvalidHandshake,
    OSError,
    asyncio.TimeoutError,
)

# A retryable `stream_unavailable` is retried this many times before it counts as the
# answer's end (after a Redis outage it is: the answer ended so).
UNAVAILABLE_RETRIES = 10


@dataclass
class Followed:
    events: Events = field(default_factory=list)  # the answer's events, all sockets together
    connections: int = 0  # sockets that carried part of the answer
    failures: list[str] = field(default_factory=list)  # drops and refused handshakes

    @property
    def terminal(self) -> dict[str, Any] | None:
        last = self.events[-1] if self.events else None
        return last if last and last["type"] in TERMINAL else None

    @property
    def chunks(self) -> int:
        return sum(1 for e in self.events if e["type"] == "content_chunk")

    @property
    def last_chunk(self) -> int:
        """The last chunk id seen: what a resume is after (a replay from the store
        numbers its one chunk as the answer's last, so not always `chunks`)."""
        ids = [e["chunk_id"] for e in self.events if e["type"] == "content_chunk"]
        return ids[-1] if ids else 0

    @property
    def text(self) -> str:
        return "".join(e["content"] for e in self.events if e["type"] == "content_chunk")

    def ids(self) -> tuple[str, str]:
        """(conversation_id, message_id) of the answer."""
        first = next(e for e in self.events if e.get("message_id"))
        return first["conversation_id"], first["message_id"]


async def follow(
    ws_url: str,
    session_id: str,
    *,
    message: str | None = None,
    client_message_id: str | None = None,
    message_id: str | None = None,
    cut_after: int | None = None,
    cuts: int = 0,
    patience: float = 60,
    seen: Events | None = None,
    **turn: Any,
) -> Followed:
    """Stream one answer (a new turn `message` with `client_message_id` and `turn`'s
    fields, or the answer `message_id` after the events `seen` on an earlier socket) until
    its terminal event, reconnecting as needed.
    `cuts` times, the client itself drops the socket after `cut_after` chunks (a flaky
    network), then resumes. Gives up (TimeoutError) after `patience` seconds."""
    assert message_id or (message and client_message_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    out = Followed(events=list(seen or []), connections=1 if seen else 0)
    mid = message_id
    backoff = 0.0
    unavailable = 0
    while True:
        if loop.time() > deadline:
            raise TimeoutError(f"answer {mid} not finished in {patience}s: {out.failures[-5:]}")
        if mid is None:
            fields: dict[str, Any] = {
                "message": message,
                "client_message_id": client_message_id,
                **turn,
            }
        else:
            if out.chunks == 0:
                out.events = [e for e in out.events if e["type"] == "conversation_started"]
            fields = {"message_id": mid, "resume_from": out.last_chunk}
        seen_here = 0
        try:
            async with Socket(ws_url) as ws:
                out.connections += 1
                await ws.send_chat(session_id, **fields)
                while True:
                    event = await ws.recv(timeout=30)
                    if event["type"] == "pong":
                        continue
                    if event["type"] == "stream_error" and not event.get("message_id"):
                        # not about an answer: the turn was refused (`draining`: the
                        # instance began to stop under it); send it again elsewhere
                        raise ConnectionRefusedError(f"{event['code']}: {event['error']}")
                    if (
                        event["type"] == "stream_error"
                        and event["code"] == "stream_unavailable"
                        and unavailable < UNAVAILABLE_RETRIES
                    ):
                        # "unavailable right now, retry in a moment": the answer lives
                        # on, but its stream is not reachable from this instance yet
                        unavailable += 1
                        mid = mid or event.get("message_id") or None
                        raise ConnectionRefusedError(f"stream_unavailable: {mid}")
                    mid = mid or event.get("message_id") or None
                    out.events.append(event)
                    if event["type"] in TERMINAL:
                        return out
                    if event["type"] == "content_chunk":
                        seen_here += 1
                        if cuts and cut_after is not None and seen_here >= cut_after:
                            cuts -= 1
                            # The client's network drops (no closing handshake: one
                            # would wait for the frames in flight): resume on a new one.
                            ws.ws.transport.abort()
                            break
            backoff = 0.0
        except DROPPED as exc:
            out.failures.append(f"{type(exc).__name__}: {exc}"[:200])
            backoff = min(1.0, backoff + 0.1)
            await asyncio.sleep(backoff)
