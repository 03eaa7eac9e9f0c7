"""The chat as the transports see it: accept a turn, follow an answer, stop one.

REST, the socket and SSE call these and stay thin. `ChatService` gets what it uses in
its constructor (vedika.services wires it), so a test or another transport can build
one with just those parts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import msgspec

from vedika import protocol as p
from vedika.chat import streams
from vedika.chat.finish import Terminal
from vedika.chat.generation import Generations
from vedika.chat.preflight import Preflight
from vedika.chat.reaper import Reaper
from vedika.chat.turns import Turn, TurnService, too_many_answers
from vedika.errors import BadRequest, NotFound, ServiceUnavailable
from vedika.identity.sessions import DeviceSession
from vedika.modes import ModeEnv, get_mode
from vedika.protocol import ChatRequest, MessageStatus
from vedika.scale.hub import Entry, StreamHub
from vedika.scale.ratelimit import RateLimiter, enforce
from vedika.scale.stop_bus import StopBus
from vedika.settings import Settings
from vedika.store import conversations as data
from vedika.store.conversations import StoredMessage
from vedika.store.engine import Store

# A `stream_chat` repeating the newest question attaches to its answer if that answer
# is still streaming or this recent (the start-over-REST-then-socket flow).
ATTACH_WINDOW = timedelta(minutes=2)
STOP_WAIT_SECONDS = 5.0  # for an answer another instance writes to settle


class ChatService:
    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        hub: StreamHub,
        turns: TurnService,
        generations: Generations,
        reaper: Reaper,
        limiter: RateLimiter,
        modes: ModeEnv,
        stop_bus: StopBus | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.hub = hub
        self.turns = turns
        self.generations = generations
        self.reaper = reaper
        self.limiter = limiter
        self.modes = modes
        self.stop_bus = stop_bus

    # ------------------------------------------------------------ turns

    async def start(self, session: DeviceSession, req: ChatRequest) -> Turn:
        """Accept a turn and start its generation (an idempotent retry starts nothing)."""
        if not self.generations.accepting:
            raise ServiceUnavailable(
                "This server is shutting down and takes no new messages. Please retry in a moment.",
                code="draining",
                headers={"Retry-After": "2"},
            )
        if not self.hub.healthy and not await self.hub.ping():
            raise ServiceUnavailable(
                "The shared stream service (Redis) is unavailable, so no new answer can "
                "start. Please retry in a moment.",
                code="redis_unavailable",
                headers={"Retry-After": "2"},
            )
        turn = await self.turns.accept(
            session,
            req,
            before_charge=lambda look: self._limits(session, look),
            prefetch=get_mode(req.mode).prefetcher(req, self.modes),
        )
        if not turn.replayed:
            await self.generations.start(turn)
        return turn

    async def _limits(self, session: DeviceSession, look: Preflight) -> None:
        """Checks that run for new turns only (an idempotent retry is never limited
        twice)."""
        settings = self.settings
        if settings.max_concurrent_answers:
            # A first look, so a refused turn sends nothing upstream early; the count
            # that holds under concurrency is taken again in the turn's transaction.
            live = await look.live()
            if live >= settings.max_concurrent_answers:
                raise too_many_answers(live)
        # Counted last, so a message refused for another reason does not use up the rate.
        await enforce(
            self.limiter,
            f"msg:{session.owner}",
            settings.rate_messages_per_minute,
            60,
            "messages",
        )

    async def outcome(self, session: DeviceSession, turn: Turn) -> Terminal:
        """The terminal event of the turn's answer, once it has ended."""
        gen = self.generations.live.get(turn.message_id)
        if gen is not None:  # written here: its event, not a decoding of its bytes
            return await asyncio.shield(gen.ended)
        last: Entry | None = None
        async for batch in self.follow(session, self.accepted(session, turn), 0):
            last = next((e for e in reversed(batch) if e.type in p.TERMINAL_TYPES), last)
        if last is None:  # a stream always ends with one; this is a broken hub
            raise ServiceUnavailable("The answer's stream ended without its end.")
        return _TERMINAL.decode(last.data)

    # ------------------------------------------------------------ answers

    async def answer(self, session: DeviceSession, message_id: str) -> StoredMessage:
        """The device's answer `message_id` (NotFound for anything else)."""
        async with self.store.read() as conn:
            row = await data.find_message(conn, message_id=message_id, device_id=session.owner)
        if row is None or row.role != "assistant":
            raise NotFound("There is no answer with that id.", code="message_not_found")
        return row

    async def newest_answer(self, session: DeviceSession, conversation_id: str) -> StoredMessage:
        async with self.store.read() as conn:
            conv = await data.get_conversation(
                conn, conversation_id=conversation_id, device_id=session.owner
            )
            row = (
                await data.newest_assistant(conn, conversation_id=conversation_id) if conv else None
            )
        if conv is None:
            raise NotFound("There is no conversation with that id.", code="conversation_not_found")
        if row is None:
            raise NotFound("This conversation has no answer yet.", code="message_not_found")
        return row

    async def same_question(self, session: DeviceSession, req: ChatRequest) -> StoredMessage | None:
        """The answer to this exact question in its conversation, if it was just
        accepted (over REST, before the socket asked again)."""
        async with self.store.read() as conn:
            conv = await data.get_conversation(
                conn, conversation_id=req.conversation_id or "", device_id=session.owner
            )
            if conv is None:
                raise NotFound(
                    "There is no conversation with that id.", code="conversation_not_found"
                )
            turn = await data.last_turn(conn, conversation_id=conv.id)
        if len(turn) < 2:
            return None
        answer, question = turn[0], turn[1]
        if answer.role != "assistant" or question.role != "user":
            return None
        if question.content != req.message.strip():
            return None
        recent = p.utcnow() - answer.created_at < ATTACH_WINDOW
        return answer if answer.status is MessageStatus.STREAMING or recent else None

    def follow(
        self, session: DeviceSession, answer: StoredMessage | streams.Accepted, after: int
    ) -> AsyncIterator[list[Entry]]:
        """The answer's events after chunk `after`, in batches, to its terminal event."""
        return streams.subscribe(
            self.hub,
            self.reaper,
            answer,
            after,
            session.owner,
            reload=lambda: self.answer(session, answer.id),
        )

    def accepted(self, session: DeviceSession, turn: Turn) -> streams.Accepted:
        """What `follow` needs of an answer just started here, without reading its row."""
        return streams.Accepted(
            id=turn.message_id,
            conversation_id=turn.conversation_id,
            load=lambda: self.answer(session, turn.message_id),
        )

    async def stop(
        self, session: DeviceSession, message_id: str | None, conversation_id: str | None
    ) -> tuple[StoredMessage, bool]:
        """Stop an answer; (the answer, whether this call stopped it)."""
        if message_id:
            row = await self.answer(session, message_id)
        elif conversation_id:
            row = await self.newest_answer(session, conversation_id)
        else:
            raise BadRequest("Say which answer to stop: message_id or conversation_id.")
        stopped = await self.generations.stop(row.id)
        if stopped or row.status is not MessageStatus.STREAMING or self.stop_bus is None:
            return row, stopped
        # Another instance is writing it: ask it to stop, then wait for the outcome.
        await self.stop_bus.request(row.id)
        for _ in range(int(STOP_WAIT_SECONDS / 0.1)):
            await asyncio.sleep(0.1)
            async with self.store.read() as conn:
                now = await data.find_message(conn, message_id=row.id, device_id=session.owner)
            if now is None or now.status is not MessageStatus.STREAMING:
                return row, bool(now is not None and now.status is MessageStatus.STOPPED)
        return row, False

    async def delete_conversation(self, session: DeviceSession, conversation_id: str) -> None:
        """Delete a conversation of the device, stopping what is still being written in
        it first, so nothing writes it back."""
        async with self.store.read() as conn:
            owned = await data.get_conversation(
                conn, conversation_id=conversation_id, device_id=session.owner
            )
            rows = await data.list_messages(conn, conversation_id=conversation_id) if owned else []
        if owned is None:
            raise NotFound("There is no conversation with that id.", code="conversation_not_found")
        for row in rows:
            if row.status == MessageStatus.STREAMING:
                await self.generations.stop(row.id)
        async with self.store.tx() as conn:
            await data.delete_conversation(
                conn, conversation_id=conversation_id, device_id=session.owner
            )
        for row in rows:
            self.hub.forget(row.id)


_TERMINAL = msgspec.json.Decoder(Terminal)
