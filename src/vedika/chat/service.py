"""Chat operations shared by REST, the socket and SSE (routes stay thin)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from vedika.chat import streams
from vedika.chat.hub import Entry
from vedika.chat.turns import EarlyStarter, Turn, too_many_answers
from vedika.errors import BadRequest, NotFound, ServiceUnavailable
from vedika.identity.sessions import DeviceSession
from vedika.models.catalogue import ModelInfo
from vedika.modes.early import EarlyCall, plain_request
from vedika.protocol import ChatRequest
from vedika.scale.ratelimit import enforce
from vedika.services import Services
from vedika.store import conversations as data
from vedika.store.engine import Reads


async def start_turn(services: Services, session: DeviceSession, req: ChatRequest) -> Turn:
    """Accept a turn and start its generation (an idempotent retry starts nothing)."""
    if not services.generations.accepting:
        raise ServiceUnavailable(
            "This server is shutting down and takes no new messages. Please retry in a moment.",
            code="draining",
            headers={"Retry-After": "2"},
        )
    if not services.hub.healthy and not await services.hub.ping():
        raise ServiceUnavailable(
            "The shared stream service (Redis) is unavailable, so no new answer can start. "
            "Please retry in a moment.",
            code="redis_unavailable",
            headers={"Retry-After": "2"},
        )
    turn = await services.turns.accept(
        session,
        req,
        before_charge=_limits(services, session),
        start_early=_early_starter(services, req),
    )
    if not turn.replayed:
        await services.generations.start(turn, turn.early)
    return turn


def _early_starter(services: Services, req: ChatRequest) -> EarlyStarter | None:
    """For a Search question that starts a conversation: send its model call while the
    turn is being stored, unless it has sources (they are retrieved first)."""
    if not services.settings.early_start or req.mode != "search" or req.conversation_id:
        return None

    def start(
        model: ModelInfo, text: str, sources: list[str], attachments: list[str]
    ) -> EarlyCall | None:
        if sources or attachments:
            return None
        provider = services.models.provider_for(model)
        return EarlyCall(provider, plain_request(model, text))

    return start


def _limits(services: Services, session: DeviceSession) -> Callable[[Reads], Awaitable[None]]:
    """Checks that run for new turns only (an idempotent retry is never limited twice)."""

    async def check(reads: Reads) -> None:
        settings = services.settings
        if settings.max_concurrent_answers:
            # A first look, so a refused turn sends nothing upstream early; the count
            # that holds under concurrency is taken again in the turn's transaction.
            live = await data.count_streaming(await reads.conn(), device_id=session.device_id)
            if live >= settings.max_concurrent_answers:
                raise too_many_answers(live)
        # Counted last, so a message refused for another reason does not use up the rate.
        await enforce(
            services.limiter,
            f"msg:{session.device_id}",
            settings.rate_messages_per_minute,
            60,
            "messages",
        )

    return check


def start_response(turn: Turn) -> dict[str, Any]:
    """The `/ai/chat/start` body (API.md section 2)."""
    created = turn.created_conversation
    return {
        "conversation_id": turn.conversation_id,
        "message_id": turn.message_id,
        "user_message_id": turn.user_message_id,
        "model": turn.model.id,
        "model_name": turn.model.name,
        "routing": {
            "selected_model": turn.model.id,
            "reason": turn.routing.reason,
            "confidence": turn.routing.confidence,
        },
        "transaction_id": turn.transaction_id,
        "vedika_coins_remaining": turn.balance.remaining,
        "vedika_coins_used": turn.coins_charged,
        "status": "conversation_created" if created else "message_accepted",
        "message": "Your message was accepted; the answer is being written."
        if not turn.replayed
        else "This message was already accepted; here are its ids.",
        "websocket_route": "stream_chat",
        "stream_url": f"/ai/chat/stream/{turn.message_id}",
    }


async def owned_message(services: Services, session: DeviceSession, message_id: str) -> Any:
    async with services.store.read() as conn:
        row = await data.find_message(conn, message_id=message_id, device_id=session.device_id)
    if row is None or row.role != "assistant":
        raise NotFound("There is no answer with that id.", code="message_not_found")
    return row


async def newest_answer(services: Services, session: DeviceSession, conversation_id: str) -> Any:
    async with services.store.read() as conn:
        conv = await data.get_conversation(
            conn, conversation_id=conversation_id, device_id=session.device_id
        )
        row = await data.newest_assistant(conn, conversation_id=conversation_id) if conv else None
    if conv is None:
        raise NotFound("There is no conversation with that id.", code="conversation_not_found")
    if row is None:
        raise NotFound("This conversation has no answer yet.", code="message_not_found")
    return row


def follow(
    services: Services, session: DeviceSession, row: Any, after: int
) -> AsyncIterator[list[Entry]]:
    return streams.subscribe(services.hub, services.reaper, row, after, session.device_id)


def accepted(services: Services, session: DeviceSession, turn: Turn) -> streams.Accepted:
    """What `follow` needs of an answer just started here, without reading its row."""
    return streams.Accepted(
        id=turn.message_id,
        conversation_id=turn.conversation_id,
        load=lambda: owned_message(services, session, turn.message_id),
    )


async def stop(
    services: Services, session: DeviceSession, message_id: str | None, conversation_id: str | None
) -> Any:
    if message_id:
        row = await owned_message(services, session, message_id)
    elif conversation_id:
        row = await newest_answer(services, session, conversation_id)
    else:
        raise BadRequest("Say which answer to stop: message_id or conversation_id.")
    stopped = await services.generations.stop(row.id)
    if not stopped and row.status == "streaming" and services.stop_bus is not None:
        # Another instance is writing it: ask it to stop, then wait for the outcome.
        await services.stop_bus.request(row.id)
        for _ in range(50):
            await asyncio.sleep(0.1)
            async with services.store.read() as conn:
                now = await data.find_message(conn, message_id=row.id, device_id=session.device_id)
            if now is None or now.status != "streaming":
                return row, bool(now is not None and now.status == "stopped")
    return row, stopped
