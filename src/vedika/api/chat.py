"""REST chat routes (API.md section 2)."""

from __future__ import annotations

import base64
import binascii
import time
from datetime import datetime
from typing import Any

import msgspec
from fastapi import APIRouter, Query, Response
from pydantic import ValidationError

from vedika.api.deps import CurrentSession, ServicesDep
from vedika.api.fastlane import SESSION_PARAMS, Answer, Defer, Headers, HotCall, hot
from vedika.api.responses import JSONResponse, dumps
from vedika.chat.live import live_text
from vedika.chat.turns import Turn
from vedika.errors import BadRequest, NotFound, VedikaError, error_body
from vedika.identity.sessions import DeviceSession
from vedika.protocol import (
    ChatRequest,
    RenameRequest,
    StopRequest,
    StreamError,
    Text,
    iso,
    now_iso,
)
from vedika.services import Services
from vedika.store import conversations as data
from vedika.store import organise, tree

router = APIRouter(tags=["chat"])


@router.post("/ai/chat/start", status_code=201, response_model=None)
async def chat_start(services: ServicesDep, session: CurrentSession, body: ChatRequest) -> Response:
    """Accept a message and start generating at once; stream it over /ws or SSE."""
    turn = await services.chat.start(session, body)
    return JSONResponse(
        start_response(turn),
        status_code=200 if turn.replayed else 201,
        headers={"x-conversation-id": turn.conversation_id},
    )


async def _hot_turn(call: HotCall) -> tuple[DeviceSession, ChatRequest]:
    """A POSTed question and its session, or Defer: the framework then answers the
    invalid body (400) or the missing or wrong session (401/403) as it always does."""
    try:
        body = ChatRequest.model_validate(call.json())
        return await call.session(), body
    except (ValidationError, VedikaError):
        raise Defer from None


@hot("/ai/chat/start", method="POST", params=SESSION_PARAMS)
async def hot_start(call: HotCall) -> Answer:
    session, body = await _hot_turn(call)
    turn = await call.services.chat.start(session, body)
    status = 200 if turn.replayed else 201
    return status, dumps(start_response(turn)), _conversation_header(turn.conversation_id)


def _conversation_header(conversation_id: str) -> Headers:
    return ((b"x-conversation-id", conversation_id.encode()),)


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


@router.post("/ai/chat")
async def chat_blocking(
    services: ServicesDep, session: CurrentSession, body: ChatRequest
) -> Response:
    """Blocking fallback: waits for the whole answer."""
    status, answer, conversation_id = await blocking_answer(services, session, body)
    return JSONResponse(answer, status_code=status, headers={"x-conversation-id": conversation_id})


@hot("/ai/chat", method="POST", params=SESSION_PARAMS)
async def hot_blocking(call: HotCall) -> Answer:
    session, body = await _hot_turn(call)
    status, answer, conversation_id = await blocking_answer(call.services, session, body)
    return status, dumps(answer), _conversation_header(conversation_id)


async def blocking_answer(
    services: Services, session: DeviceSession, body: ChatRequest
) -> tuple[int, dict[str, Any], str]:
    """(status, body, conversation id) of a blocking turn, once its answer has ended."""
    started = time.perf_counter()
    turn = await services.chat.start(session, body)
    final = await services.chat.outcome(session, turn)
    if isinstance(final, StreamError):
        err = VedikaError(
            final.error,
            code=final.code,
            status=502,
            retryable=final.retryable,
            details={"conversation_id": turn.conversation_id, "message_id": turn.message_id},
        )
        return err.status, error_body(err), turn.conversation_id
    credits = final.credits
    return (
        200,
        {
            "conversation_id": turn.conversation_id,
            "message_id": turn.message_id,
            "response": final.full_response,
            "citations": msgspec.to_builtins(final.citations),
            "tokens_used": final.tokens,
            "input_tokens": final.input_tokens,
            "output_tokens": final.output_tokens,
            "model": turn.model.id,
            "model_name": turn.model.name,
            "finish_reason": final.finish_reason,
            "response_time_ms": round((time.perf_counter() - started) * 1000),
            "timestamp": now_iso(),
            "credits": {
                "remaining": credits.remaining,
                "daily_total": credits.daily_total,
                "used_today": credits.used_today,
                "message": f"{credits.remaining} of {credits.daily_total} coins left today.",
            },
        },
        turn.conversation_id,
    )


@router.post("/api/chat", include_in_schema=False)
async def chat_alias(services: ServicesDep, session: CurrentSession, body: ChatRequest) -> Response:
    return await chat_blocking(services, session, body)


@router.post("/ai/chat/stop")
async def chat_stop(
    services: ServicesDep, session: CurrentSession, body: StopRequest
) -> dict[str, Any]:
    """Stop an answer; it ends with `finish_reason: "stopped"`, partial text kept."""
    row, stopped = await services.chat.stop(session, body.message_id, body.conversation_id)
    return {
        "success": True,
        "message_id": row.id,
        "stopped": stopped,
        "message": "Stopped." if stopped else "That answer had already finished.",
    }


# ---------------------------------------------------------------- conversations


def _cursor_out(row: organise.Listed) -> str:
    raw = f"{row.updated_at.isoformat()}|{row.id}|{int(row.pinned)}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor_in(cursor: str) -> organise.Cursor:
    """`updated_at|id|pinned`; a cursor of before pinning (`updated_at|id`) is unpinned."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, cid, *rest = raw.split("|")
        if len(rest) > 1 or rest not in ([], ["0"], ["1"]):
            raise ValueError(raw)
        return organise.Cursor(rest == ["1"], datetime.fromisoformat(at), cid)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequest(
            "That cursor is not one this server gave out.", code="bad_cursor"
        ) from None


@router.get("/ai/conversations", response_model=None)
async def list_conversations(
    services: ServicesDep,
    session: CurrentSession,
    limit: int = Query(50, ge=1, le=200),
    cursor: Text | None = Query(None, max_length=200),
    q: Text | None = Query(None, max_length=200),
    archived: bool = Query(False),
) -> JSONResponse:
    """The owner's conversations, pinned first, then newest first; `q` searches titles
    and (full text) message text; `archived=true` lists the archived ones instead.
    Sent as built (a JSONResponse): FastAPI's encoding pass over 50 items cost more."""
    return JSONResponse(await conversations_page(services, session, limit, cursor, q, archived))


LIST_PARAMS = SESSION_PARAMS | {"limit", "cursor", "q", "archived"}
_BOOLS = {"true": True, "1": True, "false": False, "0": False}


@hot("/ai/conversations", params=LIST_PARAMS)
async def hot_list(call: HotCall) -> tuple[int, bytes] | None:
    limit, cursor, q = call.query.get("limit", "50"), call.query.get("cursor"), call.query.get("q")
    if not limit.isdigit() or not 1 <= int(limit) <= 200:
        return None  # the route's validation answers
    if len(cursor or "") > 200 or len(q or "") > 200:
        return None
    archived = _BOOLS.get(call.query.get("archived", "false").lower())
    if archived is None:
        return None
    page = await conversations_page(
        call.services, await call.session(), int(limit), cursor, q, archived
    )
    return 200, dumps(page)


async def conversations_page(
    services: Services,
    session: DeviceSession,
    limit: int,
    cursor: str | None,
    q: str | None,
    archived: bool = False,
) -> dict[str, Any]:
    after = _cursor_in(cursor) if cursor else None
    rows, total = await organise.page(
        services.store,
        device_id=session.owner,
        limit=limit + 1,
        cursor=after,
        q=(q or "").strip() or None,
        archived=archived,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    plan = session.plan
    return {
        "conversations": [
            {
                "conversation_id": r.id,
                "title": r.title,
                "model": r.model,
                "created_at": iso(r.created_at),
                "updated_at": iso(r.updated_at),
                "message_count": r.message_count,
                "total_tokens": r.total_tokens,
                "session_type": plan,
                "pinned": r.pinned,
                "archived": r.archived,
            }
            for r in rows
        ],
        "total": total,
        "owner_type": "account" if session.account_id else "device",
        "owner_id": session.account_id or session.device_id,
        "next_cursor": _cursor_out(rows[-1]) if more and rows else None,
    }


def _message(row: Any) -> dict[str, Any]:
    # Unpacked in data.MESSAGE_VIEW's order: a Row's names cost more than its positions.
    (
        message_id,
        role,
        content,
        created_at,
        input_tokens,
        output_tokens,
        status,
        model,
        citations,
        sources,
        attachments,
        chunk_count,
        finish_reason,
        error_message,
        error_code,
        routing,
        mode,
        interaction_mode,
        steps,
    ) = row
    return {
        "message_id": message_id,
        "role": role,
        "content": content,
        "timestamp": iso(created_at),
        "tokens_used": (input_tokens or 0) + (output_tokens or 0),
        "status": status,
        "model": model,
        "citations": citations or [],
        "sources": sources or [],
        "attachments": attachments or [],
        "chunk_count": chunk_count,
        "finish_reason": finish_reason,
        "error": error_message,
        "error_code": error_code,
        "routing": routing,
        "mode": mode,
        "interaction_mode": interaction_mode,
        "steps": steps or [],
    }


@router.get("/ai/conversations/{conversation_id}", response_model=None)
async def get_conversation(
    services: ServicesDep, session: CurrentSession, conversation_id: str
) -> JSONResponse:
    """Returned as orjson bytes directly: FastAPI's pass over the dicts of a long
    conversation (jsonable_encoder) cost more than building them."""
    return JSONResponse(await conversation_body(services, session, conversation_id))


@hot("/ai/conversations/{conversation_id}", params=SESSION_PARAMS)
async def hot_conversation(call: HotCall) -> tuple[int, bytes]:
    assert call.param is not None
    return 200, dumps(await conversation_body(call.services, await call.session(), call.param))


async def conversation_body(
    services: Services, session: DeviceSession, conversation_id: str
) -> dict[str, Any]:
    conv = await data.listed_conversation(
        services.store, conversation_id=conversation_id, device_id=session.owner
    )
    if conv is None:
        raise NotFound("There is no conversation with that id.", code="conversation_not_found")
    shown = await tree.shown_path(services.store, conversation_id=conversation_id)
    rows = shown.rows  # the active path only, each message with its branch fields
    messages = [_message(r) | branch for r, branch in zip(rows, shown.branch, strict=True)]
    for m in messages:
        if m["status"] == data.ASSISTANT_LIVE:  # what has streamed, not the last flush
            m["content"], m["chunk_count"] = await live_text(
                services.hub, services.generations, m["message_id"], m["content"], m["chunk_count"]
            )
    return {
        "conversation_id": conv.id,
        "title": conv.title,
        "model": conv.model,
        "created_at": iso(conv.created_at),
        "updated_at": iso(conv.updated_at),
        "messages": messages,
        "total": len(rows),
    }


@router.patch(
    "/ai/conversations/{conversation_id}",
    responses={400: {"description": "Nothing to change, or a blank title"}, 404: {}},
)
async def rename_conversation(
    services: ServicesDep, session: CurrentSession, conversation_id: str, body: RenameRequest
) -> dict[str, Any]:
    """Rename, pin/unpin or archive/unarchive (any of `title`, `pinned`, `archived`)."""
    title = " ".join(body.title.split()) if body.title is not None else None
    if body.title is not None and not title:
        raise BadRequest("A title cannot be blank.", code="empty_title")
    if title is None and body.pinned is None and body.archived is None:
        raise BadRequest(
            "Send at least one of title, pinned and archived.", code="nothing_to_change"
        )
    async with services.store.tx() as conn:
        ok = True
        if title is not None:
            ok = await data.rename_conversation(
                conn, conversation_id=conversation_id, device_id=session.owner, title=title
            )
        flags = await organise.set_flags(
            conn,
            conversation_id=conversation_id,
            device_id=session.owner,
            pinned=body.pinned,
            archived=body.archived,
        )
    if not ok or flags is None:
        raise NotFound("There is no conversation with that id.", code="conversation_not_found")
    answer: dict[str, Any] = {"conversation_id": conversation_id, "success": True}
    if title is not None:
        answer["title"] = title
    answer["pinned"], answer["archived"] = flags
    return answer


@router.delete("/ai/conversations/{conversation_id}")
async def delete_conversation(
    services: ServicesDep, session: CurrentSession, conversation_id: str
) -> dict[str, Any]:
    """`200` with a small JSON body, not `204`: existing clients (the original web
    client among them) parse every response as JSON."""
    await services.chat.delete_conversation(session, conversation_id)
    return {
        "success": True,
        "deleted": True,
        "conversation_id": conversation_id,
        "message": "The conversation was deleted.",
    }
