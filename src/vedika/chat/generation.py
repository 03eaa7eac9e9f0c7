"""Running a turn: a task owned by the server, not by any socket.

The turn's mode (vedika.modes: search, research, agents) decides how sources, tools
and the model are used; whatever it writes becomes numbered chunks -> hub.publish(),
and its step events (research_step, tool_call, tool_result) go to the hub too. The
text (and the steps) are kept in memory and written by one periodic flush for all
live answers (one commit per interval, never one per chunk), then once at the end,
before the terminal event goes out. Closing a socket never touches this; only `stop`
or shutdown cancels a generation.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import msgspec
import structlog
from sqlalchemy.exc import SQLAlchemyError

from vedika import protocol as p
from vedika.chat.chunks import ChunkWriter
from vedika.chat.events import EventFactory
from vedika.chat.hub import Entry, StreamHub
from vedika.chat.turns import Turn
from vedika.credits import ledger
from vedika.errors import VedikaError
from vedika.metrics import METRICS
from vedika.models.service import ModelService
from vedika.modes import ModeEnv, get_mode
from vedika.modes.early import EarlyCall
from vedika.modes.tools import ToolRegistry, registry
from vedika.settings import Settings
from vedika.sources.service import SourcesService
from vedika.store import conversations as data
from vedika.store.engine import Store

log = structlog.get_logger(__name__)

INTERRUPTED = VedikaError(
    "This answer was interrupted because the server stopped. You can retry it.",
    code="interrupted",
    retryable=True,
)
STREAM_LOST = VedikaError(
    "The shared stream service (Redis) failed, so this answer stopped. Please retry.",
    code="stream_unavailable",
    retryable=True,
)
INTERNAL = VedikaError(
    "Something went wrong on our side while writing this answer. Please retry.",
    code="internal_error",
    retryable=True,
)


@dataclass(slots=True, eq=False)
class Generation:
    turn: Turn
    events: EventFactory
    writer: ChunkWriter
    parts: list[str] = field(default_factory=list)
    input_tokens: int | None = None
    output_tokens: int | None = None
    finish_reason: str | None = None
    stopping: bool = False
    failure: VedikaError | None = None  # set when something outside fails the answer
    task: asyncio.Task[None] | None = None
    citations: list[p.Citation] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)  # step events, as stored
    steps_dirty: bool = False  # steps changed since the last flush
    early: EarlyCall | None = None  # the model call sent while the turn was being stored

    @property
    def chunk_id(self) -> int:
        """How many chunks went out (pending merged text is flushed before the end)."""
        return self.writer.chunk_id

    @property
    def delivered(self) -> bool:
        """Whether anything of the answer went out: text, sources, research steps or tool
        calls and results. Only an answer that delivered nothing is refunded: tool work
        and searches cost the operator as much as text does."""
        return self.chunk_id > 0 or bool(self.steps) or bool(self.citations)

    def text(self) -> str:
        return "".join(self.parts)

    def published_text(self) -> str:
        """The text of chunks 1..chunk_id (without what is pending a merge)."""
        return "".join(self.parts[: self.writer.published_parts])

    # What a mode writes into (vedika.modes.base.Answer).

    def write(self, text: str) -> None:
        self.writer.add(text)

    def add_usage(self, input_tokens: int | None, output_tokens: int | None) -> None:
        if input_tokens is not None:
            self.input_tokens = (self.input_tokens or 0) + input_tokens
        if output_tokens is not None:
            self.output_tokens = (self.output_tokens or 0) + output_tokens

    def set_citations(self, citations: list[p.Citation]) -> None:
        self.citations = list(citations)
        self._publish(p.Sources, citations=self.citations)

    def step(self, cls: type[p.Event], **fields: Any) -> None:
        entry = self._publish(cls, **fields)
        record = {"type": entry.type, "chunk": entry.chunk_id, **fields}
        record = msgspec.to_builtins(record)
        if entry.type == "research_step":  # a step is sent when it starts and ends
            for i, old in enumerate(self.steps):
                if old["type"] == "research_step" and old["step"] == record["step"]:
                    self.steps[i] = record
                    break
            else:
                self.steps.append(record)
        else:
            self.steps.append(record)
        self.steps_dirty = True

    def _publish(self, cls: type[p.Event], **fields: Any) -> Entry:
        # Pending merged text goes out first, so events keep the order they happened in.
        self.writer.flush()
        entry = self.events.make(cls, self.writer.chunk_id, **fields)
        self.writer.hub.publish(self.turn.message_id, entry)
        return entry


class Generations:
    """Every generation running in this process, plus the periodic flush."""

    def __init__(
        self,
        *,
        store: Store,
        hub: StreamHub,
        models: ModelService,
        settings: Settings,
        instance_id: str,
        sources: SourcesService | None = None,
        tools: ToolRegistry | None = None,
    ) -> None:
        self.store = store
        self.hub = hub
        self.models = models
        self.settings = settings
        self.instance_id = instance_id
        self.sources = sources
        self.env = ModeEnv(
            store=store,
            models=models,
            settings=settings,
            sources=sources,
            tools=tools if tools is not None else registry(),
        )
        self.live: dict[str, Generation] = {}
        self.accepting = True
        self._flusher: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ lifecycle

    def start_background(self) -> None:
        self._flusher = asyncio.create_task(self._flush_loop(), name="vedika-flush")

    async def close(self) -> None:
        if self._flusher:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher

    def is_alive(self, message_id: str) -> bool:
        return message_id in self.live

    async def start(self, turn: Turn, early: EarlyCall | None = None) -> None:
        """Open the answer's stream, announce it, and start generating (taking over
        `early`, the turn's model call if it was sent before the turn was stored)."""
        events = EventFactory(turn.conversation_id, turn.message_id)
        parts: list[str] = []
        writer = ChunkWriter(
            hub=self.hub,
            events=events,
            parts=parts,
            window=self.settings.coalesce_ms / 1000,
            min_streams=self.settings.coalesce_min_streams,
            live=self.live,
        )
        gen = Generation(turn=turn, events=events, writer=writer, parts=parts, early=early)
        self.hub.open(turn.message_id)
        bal = turn.balance
        self.hub.publish(
            turn.message_id,
            events.make(
                p.CreditsInfo,
                0,
                vedika_coins_remaining=bal.remaining,
                daily_credits=bal.daily,
                message=f"{bal.remaining} of {bal.daily} Vedika coins left today.",
            ),
        )
        self.hub.publish(
            turn.message_id,
            events.make(
                p.StreamStart,
                0,
                model=turn.model.id,
                model_name=turn.model.name,
                routing=p.Routing(
                    selected_model=turn.model.id,
                    reason=turn.routing.reason,
                    confidence=turn.routing.confidence,
                ),
            ),
        )
        self.live[turn.message_id] = gen
        gen.task = asyncio.create_task(self._run(gen), name=f"gen-{turn.message_id}")
        METRICS.generations_started.inc()
        # With several instances, wait until the stream is visible to all of them, so a
        # client sent to another instance right after the 201 finds it. If Redis fails
        # here, the hub's failure callback ends this answer with a stream_error.
        with contextlib.suppress(Exception):
            await self.hub.barrier()
        METRICS.generations_live.inc()

    async def stop(self, message_id: str) -> bool:
        """Stop a live generation; returns once its final state is stored and published."""
        gen = self.live.get(message_id)
        if gen is None or gen.task is None:
            return False
        gen.stopping = True
        gen.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(gen.task)
        return True

    def fail(self, message_ids: set[str], error: VedikaError) -> None:
        """End these answers with `error` (e.g. the shared stream broke)."""
        for mid in message_ids:
            gen = self.live.get(mid)
            if gen is not None and gen.task is not None and gen.failure is None:
                gen.failure = error
                gen.task.cancel()

    async def drain(self, seconds: float) -> None:
        """Shutdown: no new turns; let answers finish, then store the rest as interrupted."""
        self.accepting = False
        tasks = [g.task for g in self.live.values() if g.task]
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=seconds)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=10)
        await self.close()

    # ------------------------------------------------------------ the run

    async def _run(self, gen: Generation) -> None:
        turn = gen.turn
        mid = turn.message_id
        try:
            await get_mode(turn.mode).run(gen, self.env)
            await self._complete(gen, "complete", _finish_reason(gen.finish_reason))
        except asyncio.CancelledError:
            if gen.failure is not None:
                asyncio.current_task().uncancel()  # type: ignore[union-attr]
                await self._fail(gen, gen.failure)
                return
            if gen.stopping:
                asyncio.current_task().uncancel()  # type: ignore[union-attr]
                await self._complete(gen, "stopped", "stopped")
                return
            await asyncio.shield(self._fail(gen, INTERRUPTED, status="interrupted"))
            raise
        except VedikaError as exc:
            await self._fail(gen, exc)
        except Exception:
            log.exception("generation.crashed", message_id=mid)
            await self._fail(gen, INTERNAL)
        finally:
            if gen.early is not None:  # the mode did not take it (it failed first)
                await gen.early.cancel()
            self.live.pop(mid, None)
            METRICS.generations_live.dec()

    def _tokens(self, gen: Generation) -> tuple[int, int]:
        text = gen.text()
        inp = gen.input_tokens if gen.input_tokens is not None else len(gen.turn.text) // 4 + 1
        out = gen.output_tokens if gen.output_tokens is not None else gen.chunk_id
        return inp, out if text else 0

    async def _complete(self, gen: Generation, status: str, finish_reason: str) -> None:
        gen.writer.flush()
        turn = gen.turn
        text = gen.text()
        inp, out = self._tokens(gen)
        refunded = 0
        now = p.utcnow()
        try:
            async with self.store.tx() as conn:
                await data.finish_message(
                    conn,
                    message_id=turn.message_id,
                    content=text,
                    status=status,
                    finish_reason=finish_reason,
                    input_tokens=inp,
                    output_tokens=out,
                    chunk_count=gen.chunk_id,
                    updated_at=now,
                    heartbeat_at=None,
                    **_stored_citations(gen),
                    **_stored_steps(gen),
                )
                await data.add_tokens(
                    conn, conversation_id=turn.conversation_id, tokens=inp + out, now=now
                )
                if not gen.delivered:  # nothing delivered: the coins go back
                    refunded = await ledger.refund(
                        conn, device_id=turn.device_id, message_id=turn.message_id
                    )
        except (SQLAlchemyError, OSError):
            log.exception("generation.store_failed", message_id=turn.message_id)
        bal = turn.balance
        used = max(bal.used - refunded, 0)
        METRICS.generations_finished.labels(status=status).inc()
        self.hub.publish(
            turn.message_id,
            gen.events.make(
                p.StreamComplete,
                gen.chunk_id,
                full_response=text,
                total_chunks=gen.chunk_id,
                tokens=inp + out,
                input_tokens=inp,
                output_tokens=out,
                citations=gen.citations,
                credits=p.Credits(
                    remaining=max(bal.daily - used, 0), daily_total=bal.daily, used_today=used
                ),
                finish_reason=finish_reason,
            ),
        )

    async def _fail(self, gen: Generation, exc: VedikaError, status: str = "error") -> None:
        gen.writer.flush()
        turn = gen.turn
        now = p.utcnow()
        inp, out = self._tokens(gen)
        try:
            async with self.store.tx() as conn:
                await data.finish_message(
                    conn,
                    message_id=turn.message_id,
                    content=gen.text(),
                    status=status,
                    error_code=exc.code,
                    error_message=exc.message,
                    input_tokens=inp,
                    output_tokens=out,
                    chunk_count=gen.chunk_id,
                    updated_at=now,
                    heartbeat_at=None,
                    **_stored_citations(gen),
                    **_stored_steps(gen),
                )
                if not gen.delivered:
                    await ledger.refund(conn, device_id=turn.device_id, message_id=turn.message_id)
        except (SQLAlchemyError, OSError):
            log.exception("generation.store_failed", message_id=turn.message_id)
        log.warning(
            "generation.failed", message_id=turn.message_id, code=exc.code, chunks=gen.chunk_id
        )
        METRICS.generations_finished.labels(status=status).inc()
        self.hub.publish(
            turn.message_id,
            gen.events.make(
                p.StreamError,
                gen.chunk_id,
                error=exc.message,
                code=exc.code,
                retryable=exc.retryable,
            ),
        )

    # ------------------------------------------------------------ periodic flush

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.flush_seconds)
            try:
                await self.flush()
            except (SQLAlchemyError, OSError) as exc:
                log.warning("generation.flush_failed", error=str(exc)[:200])

    async def flush(self) -> None:
        """Store every live answer's partial text and heartbeat, in one commit."""
        if not self.live:
            return
        now = p.utcnow()
        rows = []
        steps = []
        for mid, gen in list(self.live.items()):
            rows.append(
                {
                    "b_id": mid,
                    "b_content": gen.published_text(),  # consistent with b_chunks
                    "b_chunks": gen.chunk_id,
                    "b_now": now,
                }
            )
            if gen.steps_dirty:
                gen.steps_dirty = False
                steps.append({"b_id": mid, "b_steps": list(gen.steps)})
        async with self.store.tx() as conn:
            await data.save_partials(conn, rows=rows)
            await data.save_steps(conn, rows=steps)
        METRICS.flushes.inc()


def _stored_citations(gen: Generation) -> dict[str, object]:
    return {"citations": [msgspec.to_builtins(c) for c in gen.citations]} if gen.citations else {}


def _stored_steps(gen: Generation) -> dict[str, object]:
    return {"steps": list(gen.steps)} if gen.steps else {}


def _finish_reason(reason: str | None) -> str:
    return "length" if reason == "length" else "stop"


STALE_AFTER = timedelta(seconds=30)
