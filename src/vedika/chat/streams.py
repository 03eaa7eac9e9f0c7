"""What a subscriber receives for one answer: the hub's log, or a replay from the store.

The hub keeps an answer's events while it streams and for a while after. Past
that (or after a restart) the stored message is replayed as one chunk and its
terminal event; a client resuming mid-way then gets the terminal event only,
which carries the full text. The step events of research and agent answers
(stored with the message) are replayed before the chunk; a client resuming after
chunk N gets those sent at or after chunk N again (clients key them by step or
call id).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any

from vedika import protocol as p
from vedika.chat.events import EventFactory
from vedika.chat.hub import Entry, StreamHub
from vedika.chat.reaper import Reaper
from vedika.scale.redis_hub import RedisUnavailable


def stored_events(row: Any, after: int) -> list[Entry]:
    """Events rebuilt from a finished message row."""
    events = EventFactory(row.conversation_id, row.id)
    out: list[Entry] = []
    content = row.content or ""
    chunks = 0
    if after <= 0:
        routing = row.routing or {}
        out.append(
            events.make(
                p.StreamStart,
                0,
                model=row.model or "",
                model_name=row.model or "",
                routing=p.Routing(
                    selected_model=str(routing.get("selected_model", row.model or "")),
                    reason=str(routing.get("reason", "")),
                    confidence=float(routing.get("confidence", 1.0)),
                ),
            )
        )
        if row.citations:
            out.append(
                events.make(p.Sources, 0, citations=[p.Citation(**c) for c in row.citations])
            )
        out.extend(_steps(events, row, 0, 0))
        if content:
            chunks = 1
            out.append(events.chunk(content, 1))
    else:
        chunks = row.chunk_count or 0
        out.extend(_steps(events, row, after, chunks))
    if row.status in ("complete", "stopped"):
        out.append(
            events.make(
                p.StreamComplete,
                chunks,
                full_response=content,
                total_chunks=chunks,
                tokens=(row.input_tokens or 0) + (row.output_tokens or 0),
                input_tokens=row.input_tokens or 0,
                output_tokens=row.output_tokens or 0,
                citations=[p.Citation(**c) for c in (row.citations or [])],
                credits=p.Credits(remaining=0, daily_total=0, used_today=0),
                finish_reason=row.finish_reason
                or ("stopped" if row.status == "stopped" else "stop"),
            )
        )
    else:
        out.append(
            events.make(
                p.StreamError,
                chunks,
                error=row.error_message or "This answer did not finish.",
                code=row.error_code or row.status,
                retryable=True,
            )
        )
    return out


def _steps(events: EventFactory, row: Any, after: int, last_chunk: int) -> list[Entry]:
    """The stored step events sent at or after chunk `after`."""
    out = []
    for record in getattr(row, "steps", None) or []:
        cls = p.STEP_EVENTS.get(record.get("type", ""))
        if cls is None or int(record.get("chunk", 0)) < after:
            continue
        fields = {k: v for k, v in record.items() if k not in ("type", "chunk")}
        if "citations" in fields:
            fields["citations"] = [p.Citation(**c) for c in fields["citations"]]
        try:
            out.append(events.make(cls, last_chunk, **fields))
        except TypeError:  # a record from another version: leave it out
            continue
    return out


@dataclass(frozen=True, slots=True)
class Accepted:
    """An answer this process just accepted, in place of its row: the hub has its events,
    so the row (`load()`, which may raise NotFound) is read only if the hub has not."""

    id: str
    conversation_id: str
    load: Callable[[], Awaitable[Any]]


async def subscribe(
    hub: StreamHub, reaper: Reaper, row: Any, after: int, device_id: str
) -> AsyncIterator[list[Entry]]:
    """Batches of events for the answer in `row` (a message row or `Accepted`), from
    after chunk `after`."""
    got = False
    try:
        async for batch in hub.subscribe(row.id, after):
            got = True
            yield batch
    except RedisUnavailable:
        yield [_unavailable(row, after)]
        return
    if got:
        return
    if isinstance(row, Accepted):
        row = await row.load()
    if row.status == "streaming":
        if hub.distributed and not _stale(row, reaper.stale_after):
            # Alive elsewhere, but its stream is not reachable (Redis lost it).
            yield [_unavailable(row, after)]
            return
        # Nobody is generating it and nobody will: settle it now rather than hang.
        delivered = bool(row.chunk_count or getattr(row, "steps", None))
        await reaper.interrupt(
            row.id, row.conversation_id, device_id, row.chunk_count or 0, delivered=delivered
        )
        row = _with(
            row,
            status="interrupted",
            error_code="interrupted",
            error_message="This answer was interrupted because the server stopped. "
            "You can retry it.",
        )
    yield stored_events(row, after)


def _stale(row: Any, seconds: float) -> bool:
    beat = row.heartbeat_at
    if beat is None:
        return True
    if beat.tzinfo is None:
        beat = beat.replace(tzinfo=UTC)
    return bool(p.utcnow() - beat > timedelta(seconds=seconds))


def _unavailable(row: Any, after: int) -> Entry:
    return EventFactory(row.conversation_id, row.id).make(
        p.StreamError,
        after,
        error="The live stream of this answer is unavailable right now. Please retry in a moment.",
        code="stream_unavailable",
        retryable=True,
    )


class _Row:
    def __init__(self, base: Any, **changes: Any) -> None:
        self.__dict__.update(base._mapping)
        self.__dict__.update(changes)


def _with(row: Any, **changes: Any) -> Any:
    return _Row(row, **changes)
