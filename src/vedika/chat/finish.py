"""Ending an answer: the one place that settles a stored answer and says how it ended.

A generation that completes, is stopped or fails, the reaper settling an answer nobody
writes any more, and a replay of a stored answer all end here. Settling moves the row
out of `streaming` once (a second ending changes nothing), adds the answer's tokens
to its conversation when it ended well, and gives the coins back when nothing of the
answer was delivered (text, sources or steps: see Generation.delivered). The terminal
event is one of vedika.protocol.TERMINAL_TYPES: `stream_complete` for an answer that
ended well (complete or stopped), `stream_error` otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from sqlalchemy import Connection

from vedika import protocol as p
from vedika.chat.events import EventFactory
from vedika.credits import ledger
from vedika.errors import VedikaError
from vedika.protocol import MessageStatus
from vedika.store import conversations as data
from vedika.store.engine import Store

Terminal = p.StreamComplete | p.StreamError


@dataclass(frozen=True, slots=True)
class Ending:
    """How an answer ended: a status with its finish reason, or with its error."""

    status: MessageStatus
    finish_reason: str | None = None  # ended well: "stop", "length" or "stopped"
    error: VedikaError | None = None  # otherwise

    @classmethod
    def complete(cls, model_reason: str | None) -> Ending:
        return cls(MessageStatus.COMPLETE, "length" if model_reason == "length" else "stop")

    @classmethod
    def stopped(cls) -> Ending:
        return cls(MessageStatus.STOPPED, "stopped")

    @classmethod
    def failed(cls, error: VedikaError, status: MessageStatus = MessageStatus.ERROR) -> Ending:
        return cls(status, error=error)

    @classmethod
    def of(cls, stored: data.StoredMessage) -> Ending:
        """The ending a stored (settled) answer had."""
        if stored.status.ended_well:
            reason = stored.finish_reason or (
                "stopped" if stored.status is MessageStatus.STOPPED else "stop"
            )
            return cls(stored.status, reason)
        error = VedikaError(
            stored.error_message or "This answer did not finish.",
            code=stored.error_code or stored.status.value,
            retryable=True,
        )
        return cls(stored.status, error=error)


@dataclass(slots=True)
class Written:
    """What was written, stored with its ending: by the generation, or by the reaper
    (the last flush plus the chunks the stream hub holds after it)."""

    content: str
    chunk_count: int
    input_tokens: int
    output_tokens: int
    citations: Sequence[p.Citation] = ()
    steps: list[dict[str, Any]] = field(default_factory=list)
    # The length of each chunk 1..chunk_count; None where it is not known (the reaper
    # adding to a row stored before migration 0012).
    chunk_sizes: Sequence[int] | None = None

    def chunk_ends(self) -> str | None:
        """`chunk_sizes` as the row stores them (`messages.chunk_ends`)."""
        return None if self.chunk_sizes is None else data.encode_chunk_sizes(self.chunk_sizes)


async def settle(
    store: Store,
    *,
    message_id: str,
    conversation_id: str,
    device_id: str,
    ending: Ending,
    delivered: bool,
    written: Written | None = None,
) -> int | None:
    """Store the ending. Returns the coins given back, or None if the answer had
    already ended (then nothing changed)."""
    now = p.utcnow()
    values: dict[str, Any] = {
        "status": ending.status.value,
        "updated_at": now,
        "heartbeat_at": None,
    }
    if ending.error is None:
        values["finish_reason"] = ending.finish_reason
    else:
        values["error_code"] = ending.error.code
        values["error_message"] = ending.error.message
    if written is not None:
        values |= {
            "content": written.content,
            "chunk_count": written.chunk_count,
            "chunk_ends": written.chunk_ends(),
            "input_tokens": written.input_tokens,
            "output_tokens": written.output_tokens,
        }
        if written.citations:
            values["citations"] = [msgspec.to_builtins(c) for c in written.citations]
        if written.steps:
            values["steps"] = list(written.steps)

    if delivered and written is not None and ending.error is None:  # the common ending
        tokens = written.input_tokens + written.output_tokens
        finished = await data.finish_counted(
            store,
            message_id=message_id,
            conversation_id=conversation_id,
            tokens=tokens,
            now=now,
            values=values,
        )
        return 0 if finished else None

    def write(conn: Connection) -> int | None:
        if not data.finish_message(conn, message_id=message_id, **values):
            return None
        if written is not None and ending.error is None:
            tokens = written.input_tokens + written.output_tokens
            data.add_tokens(conn, conversation_id=conversation_id, tokens=tokens, now=now)
        if delivered:
            return 0
        return ledger.refund(conn, device_id=device_id, message_id=message_id)

    return await store.run_tx(write)  # one trip to the database thread on SQLite


def terminal(
    events: EventFactory,
    ending: Ending,
    *,
    chunks: int,
    text: str = "",
    input_tokens: int = 0,
    output_tokens: int = 0,
    citations: Sequence[p.Citation] = (),
    credits: p.Credits | None = None,
) -> Terminal:
    """The event that ends the answer's stream (`chunks`: how many went out)."""
    if ending.error is not None:
        return events.event(
            p.StreamError,
            error=ending.error.message,
            code=ending.error.code,
            retryable=ending.error.retryable,
        )
    return events.event(
        p.StreamComplete,
        full_response=text,
        total_chunks=chunks,
        tokens=input_tokens + output_tokens,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        citations=list(citations),
        credits=credits or p.Credits(remaining=0, daily_total=0, used_today=0),
        finish_reason=ending.finish_reason or "stop",
    )
