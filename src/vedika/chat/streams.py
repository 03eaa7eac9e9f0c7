"""What a subscriber receives for one answer: the hub's log, or a replay from the store.

The hub keeps an answer's events while it streams and for a while after. Past
that (or after a restart) the stored message is replayed as one chunk and its
terminal event. A client resuming after chunk N (0 < N < chunk_count) gets the text
after chunk N once, as one chunk numbered chunk_count (the row stores where each
chunk ends: `messages.chunk_ends`), then the terminal event; its text is the stored
content, what it had plus that chunk. Resuming at or after the last chunk, or from a
row stored before those boundaries were (they are NULL), gets the terminal event
only. The step events of research and agent answers (stored with the message) are
replayed before the text for a client from the start; a client resuming after chunk
N gets those sent at or after chunk N again (clients key them by step or call id),
after its chunk.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import structlog

from vedika import protocol as p
from vedika.chat.events import EventFactory, entry
from vedika.chat.finish import Ending, terminal
from vedika.chat.generation import INTERRUPTED
from vedika.chat.reaper import Reaper
from vedika.errors import NotFound
from vedika.protocol import TERMINAL_TYPES, MessageStatus
from vedika.scale.hub import Entry, StreamHub
from vedika.scale.redis_hub import RedisUnavailable
from vedika.store.conversations import StoredMessage

log = structlog.get_logger(__name__)


def stored_events(row: StoredMessage, after: int) -> list[Entry]:
    """Events rebuilt from a settled answer."""
    events = EventFactory(row.conversation_id, row.id)
    out: list[Entry] = []
    content = row.content
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
        chunks = row.chunk_count
        sizes = row.chunk_sizes() if after < chunks else None
        if sizes is not None:
            # The text after chunk `after`, once: one chunk numbered as the last, so a
            # client that resumes after it (or counts them) is at the end.
            out.append(events.chunk(content[sum(sizes[:after]) :], chunks))
        out.extend(_steps(events, row, after, chunks))
    ending = Ending.of(row)
    event = terminal(
        events,
        ending,
        chunks=chunks,
        text=content,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        citations=[p.Citation(**c) for c in row.citations],
    )
    out.append(entry(event, chunks))
    return out


def _steps(events: EventFactory, row: StoredMessage, after: int, last_chunk: int) -> list[Entry]:
    """The stored step events sent at or after chunk `after`."""
    out = []
    for record in row.steps:
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
    load: Callable[[], Awaitable[StoredMessage]]


async def subscribe(
    hub: StreamHub,
    reaper: Reaper,
    row: StoredMessage | Accepted,
    after: int,
    device_id: str,
    reload: Callable[[], Awaitable[StoredMessage]] | None = None,
) -> AsyncIterator[list[Entry]]:
    """Batches of events for the answer in `row` (a message row or `Accepted`), from
    after chunk `after`. `reload` reads the row again (`Accepted` has its own).

    The hub's stream is trusted while it moves. One silent for as long as a heartbeat
    may be (`reaper.stale_after`) is checked against the row: an instance that died
    between storing an answer's end and publishing it left a stream that will never
    end, and the row's terminal event is given instead. A stream that ends without a
    terminal event (it expired) is finished from the row the same way."""
    load = row.load if isinstance(row, Accepted) else reload
    last = after  # the last chunk given (an entry's chunk_id is that or its own)
    before_text: set[str] = set()  # the types given before the first chunk
    clock = asyncio.get_running_loop().time
    quiet_since = clock()
    got = False
    try:
        async for batch in hub.subscribe(row.id, after):
            if batch:
                got = True
                if last == 0:
                    before_text.update(e.type for e in batch)
                tail = batch[-1]
                last = tail.chunk_id
                yield batch
                if tail.type in TERMINAL_TYPES:
                    return
                quiet_since = clock()
                continue
            # The hub's idle tick: nothing came.
            if load is None or clock() - quiet_since < reaper.stale_after:
                continue
            quiet_since = clock()
            try:
                now = await load()
            except NotFound:
                return  # deleted meanwhile: nothing is left to end
            if now.status is not MessageStatus.STREAMING:
                log.info("stream.ended_from_store", message_id=row.id, after=last)
                yield _unsent(stored_events(now, last), before_text, last)
                return
    except RedisUnavailable:
        yield [_unavailable(row, last)]
        return
    if isinstance(row, Accepted):
        row = await row.load()
    elif got and reload is not None:
        try:
            row = await reload()  # the stream ended without its end: the row now
        except NotFound:
            return  # deleted (the hub forgot it for that): nothing is left to end
    if row.status is MessageStatus.STREAMING:
        if hub.distributed and not _stale(row, reaper.stale_after):
            # Alive elsewhere, but its stream is not reachable (Redis lost it).
            yield [_unavailable(row, last)]
            return
        # Nobody is generating it and nobody will: settle it now rather than hang.
        try:
            written = await reaper.interrupt(
                row.id,
                row.conversation_id,
                device_id,
                content=row.content,
                chunk_count=row.chunk_count,
                chunk_ends=row.chunk_ends,
                has_steps=bool(row.steps),
            )
        except RedisUnavailable:
            yield [_unavailable(row, last)]
            return
        if written is not None:
            row = row.but(
                content=written.content,
                chunk_count=written.chunk_count,
                chunk_ends=written.chunk_ends(),
            )
        row = row.but(
            status=MessageStatus.INTERRUPTED,
            error_code=INTERRUPTED.code,
            error_message=INTERRUPTED.message,
        )
    yield _unsent(stored_events(row, last), before_text, last)


def _unsent(entries: list[Entry], before_text: set[str], last: int) -> list[Entry]:
    """A replay from the store without what the hub gave already before the first chunk
    (a replay from the start repeats stream_start, sources, ...)."""
    if last or not before_text:
        return entries
    return [e for e in entries if e.type not in before_text]


def _stale(row: StoredMessage, seconds: float) -> bool:
    beat = row.heartbeat_at
    return beat is None or p.utcnow() - beat > timedelta(seconds=seconds)


def _unavailable(row: StoredMessage | Accepted, after: int) -> Entry:
    return EventFactory(row.conversation_id, row.id).make(
        p.StreamError,
        after,
        error="The live stream of this answer is unavailable right now. Please retry in a moment.",
        code="stream_unavailable",
        retryable=True,
    )
