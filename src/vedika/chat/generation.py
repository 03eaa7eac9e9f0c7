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
from typing import Any

import msgspec
import structlog
from sqlalchemy.exc import SQLAlchemyError

from vedika import protocol as p
from vedika.chat.chunks import ChunkWriter
from vedika.chat.coalescing import Coalescing
from vedika.chat.events import EventFactory, entry
from vedika.chat.finish import Ending, Terminal, Written, settle, terminal
from vedika.chat.streamed import after_stored
from vedika.chat.turns import Turn
from vedika.errors import VedikaError
from vedika.metrics import METRICS
from vedika.modes import ModeEnv, get_mode
from vedika.modes.early import EarlyCall
from vedika.protocol import MessageStatus
from vedika.scale.hub import Entry, StreamHub
from vedika.settings import Settings
from vedika.store import conversations as data
from vedika.store.engine import Store, transient

log = structlog.get_logger(__name__)
_TERMINAL = msgspec.json.Decoder(Terminal)

INTERRUPTED = VedikaError(
    "This answer was interrupted before it was saved: its server stopped, or could not"
    " reach the database. You can retry it.",
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
    # Another instance's reaper settled the answer (this one looked dead): stop, store
    # and publish nothing more; the subscribers here get that instance's terminal event.
    superseded: bool = False
    finishing: bool = False
    task: asyncio.Task[None] | None = None
    citations: list[p.Citation] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)  # step events, as stored
    steps_dirty: bool = False  # steps changed since the last flush
    # The model call its mode prefetched while the turn was being stored (Mode.prefetcher).
    prefetched: EarlyCall | None = None
    # Its terminal event once it ended (the blocking REST call waits for it).
    ended: asyncio.Future[Terminal] = field(default_factory=asyncio.Future)

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
        published = self._publish(cls, **fields)
        record = {"type": published.type, "chunk": published.chunk_id, **fields}
        record = msgspec.to_builtins(record)
        if published.type == "research_step":  # a step is sent when it starts and ends
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
        settings: Settings,
        instance_id: str,
        modes: ModeEnv,
    ) -> None:
        self.store = store
        self.hub = hub
        self.settings = settings
        self.instance_id = instance_id
        self.env = modes  # what the turns' modes may use
        self.live: dict[str, Generation] = {}
        self.accepting = True
        self._flusher: asyncio.Task[None] | None = None
        self.coalescing = Coalescing(
            window=settings.coalesce_ms / 1000,
            min_streams=settings.coalesce_min_streams,
            behind=settings.coalesce_lag_ms / 1000,
            live=self.live,
        )

    # ------------------------------------------------------------ lifecycle

    def start_background(self) -> None:
        self._flusher = asyncio.create_task(self._flush_loop(), name="vedika-flush")
        self.coalescing.start()

    async def close(self) -> None:
        await self.coalescing.close()
        if self._flusher:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher

    def is_alive(self, message_id: str) -> bool:
        return message_id in self.live

    async def start(self, turn: Turn) -> None:
        """Open the answer's stream, announce it, and start generating (taking over the
        turn's prefetched model call, if its mode sent one while it was stored)."""
        events = EventFactory(turn.conversation_id, turn.message_id)
        parts: list[str] = []
        writer = ChunkWriter(hub=self.hub, events=events, parts=parts, coalescing=self.coalescing)
        gen = Generation(
            turn=turn, events=events, writer=writer, parts=parts, prefetched=turn.prefetched
        )
        turn.prefetched = None  # the generation owns it now
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
        if not gen.finishing:  # an ending being stored (or retried) is not cut short
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

    def supersede(self, message_ids: set[str]) -> None:
        """Stop these answers at once: another instance settled them (the hub was told
        so by Redis refusing their entries). Their upstream calls are cancelled."""
        for mid in message_ids:
            gen = self.live.get(mid)
            if gen is not None and gen.task is not None and not gen.finishing:
                gen.superseded = True
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
            await self._finish(gen, Ending.complete(gen.finish_reason))
        except asyncio.CancelledError:
            if gen.superseded:
                asyncio.current_task().uncancel()  # type: ignore[union-attr]
                await self._finish(gen, Ending.failed(INTERRUPTED, MessageStatus.INTERRUPTED))
                return
            if gen.failure is not None:
                asyncio.current_task().uncancel()  # type: ignore[union-attr]
                await self._finish(gen, Ending.failed(gen.failure))
                return
            if gen.stopping:
                asyncio.current_task().uncancel()  # type: ignore[union-attr]
                await self._finish(gen, Ending.stopped())
                return
            ending = Ending.failed(INTERRUPTED, MessageStatus.INTERRUPTED)
            await asyncio.shield(self._finish(gen, ending))
            raise
        except VedikaError as exc:
            await self._finish(gen, Ending.failed(exc))
        except Exception:
            log.exception("generation.crashed", message_id=mid)
            await self._finish(gen, Ending.failed(INTERNAL))
        finally:
            if not gen.ended.done():  # finishing itself failed: nobody may wait forever
                gen.ended.set_exception(INTERNAL)
            if gen.prefetched is not None:  # the mode did not take it (it failed first)
                await gen.prefetched.cancel()
            self.live.pop(mid, None)
            METRICS.generations_live.dec()

    def _tokens(self, gen: Generation) -> tuple[int, int]:
        text = gen.text()
        inp = gen.input_tokens if gen.input_tokens is not None else len(gen.turn.text) // 4 + 1
        out = gen.output_tokens if gen.output_tokens is not None else gen.chunk_id
        return inp, out if text else 0

    async def _finish(self, gen: Generation, ending: Ending) -> None:
        """Store the answer with its ending, then publish the terminal event (after the
        commit: a client that sees it and reads the conversation finds the answer).

        If the row was settled already (another instance's reaper took this one for
        dead), nothing is stored or published: the subscribers here get the terminal
        event the database holds, the one that instance wrote to the hub."""
        gen.finishing = True
        turn = gen.turn
        if gen.superseded:
            await self._superseded(gen, ending)
            return
        gen.writer.flush()
        text = gen.text()
        chunks = gen.chunk_id
        if gen.failure is STREAM_LOST:
            # Redis failed: the clients got the chunks it acknowledged, no others (the
            # hub delivers nothing else), and that is the text to keep.
            seen = after_stored(await self.hub.read(turn.message_id), 0)
            text, chunks, sizes = seen.text, seen.last_chunk, seen.sizes
        else:
            sizes = list(gen.writer.sizes)
        inp, out = self._tokens(gen)
        written = Written(text, chunks, inp, out, gen.citations, gen.steps, sizes)
        refunded: int | None = 0
        try:
            refunded = await self._settle(gen, ending, written)
        except (SQLAlchemyError, OSError):
            # Not stored: the row stays `streaming` and, once the database is back, a
            # reaper settles it as interrupted with the text streamed (the hub holds
            # it). The clients are told so now, so that what they see is what a
            # reload will show.
            log.exception("generation.store_failed", message_id=turn.message_id)
            ending = Ending.failed(INTERRUPTED, MessageStatus.INTERRUPTED)
        if refunded is None:
            gen.superseded = True
            await self._superseded(gen, Ending.failed(INTERRUPTED, MessageStatus.INTERRUPTED))
            return
        if ending.error is not None:
            log.warning(
                "generation.failed",
                message_id=turn.message_id,
                code=ending.error.code,
                chunks=gen.chunk_id,
            )
        METRICS.finished(ending.status.value)
        bal = turn.balance
        used = max(bal.used - refunded, 0)
        event = terminal(
            gen.events,
            ending,
            chunks=gen.chunk_id,
            text=text,
            input_tokens=inp,
            output_tokens=out,
            citations=gen.citations,
            credits=p.Credits(
                remaining=max(bal.daily - used, 0), daily_total=bal.daily, used_today=used
            ),
        )
        self.hub.publish(turn.message_id, entry(event, gen.chunk_id))
        if not gen.ended.done():
            gen.ended.set_result(event)

    async def _settle(self, gen: Generation, ending: Ending, written: Written) -> int | None:
        """`settle`, tried again while the database cannot be reached, for as long as
        the answer would count as alive without a heartbeat (heartbeat_stale_after):
        a short outage delays the terminal event instead of losing the ending. Past
        that, or on a failure that would repeat (a constraint), the error is raised."""
        turn = gen.turn
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.heartbeat_stale_after
        pause = 0.05
        waiting = False
        try:
            while True:
                try:
                    refunded = await settle(
                        self.store,
                        message_id=turn.message_id,
                        conversation_id=turn.conversation_id,
                        device_id=turn.device_id,
                        ending=ending,
                        delivered=gen.delivered,
                        written=written,
                    )
                    if refunded is None and waiting:
                        # Already settled: by a reaper, or by an earlier try of ours
                        # whose commit went through but whose reply was lost.
                        async with self.store.read() as conn:
                            stored = await data.find_message(
                                conn, message_id=turn.message_id, device_id=turn.device_id
                            )
                        if stored is not None and stored.status is ending.status:
                            return 0
                    return refunded
                except (SQLAlchemyError, OSError) as exc:
                    if not transient(exc) or loop.time() + pause > deadline:
                        raise
                    if not waiting:
                        waiting = True
                        METRICS.endings_waiting.inc()
                        log.warning(
                            "generation.store_retrying",
                            message_id=turn.message_id,
                            error=str(exc)[:200],
                        )
                await asyncio.sleep(pause)
                pause = min(pause * 2, 1.0)
        finally:
            if waiting:
                METRICS.endings_waiting.dec()

    async def _superseded(self, gen: Generation, ending: Ending) -> None:
        """The answer was settled elsewhere: this generation's end is that one."""
        mid = gen.turn.message_id
        # Out of `live` now: no more heartbeats; should the instance that fenced it die
        # before settling, any reaper settles it once it is stale.
        self.live.pop(mid, None)
        log.warning("generation.superseded", message_id=mid, chunks=gen.chunk_id)
        METRICS.finished("superseded")
        fallback = entry(terminal(gen.events, ending, chunks=gen.chunk_id), gen.chunk_id)
        end = await self.hub.ended(mid, fallback)
        if not gen.ended.done():
            gen.ended.set_result(_TERMINAL.decode(end.data))

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
                    "b_ends": data.encode_chunk_sizes(gen.writer.sizes),  # chunks 1..b_chunks
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
