"""`/v1/models` and `/v1/chat/completions`: the OpenAI-compatible surface (issue 19).

Authenticated with `Authorization: Bearer <key>` only (an API key, docs/api.md; a
session id works too, but never a cookie: a cross-site page cannot spend coins here).
A completion is one turn of `ChatService`, exactly as the socket's: coins, limits,
modes, sources and Best routing apply. The last user message is the question; the
messages before it are given to the model as context, in the question's text.

What Vedika adds travels in a `vedika` object: in the request (`mode`, `web`, `files`,
`store`, `conversation_id`) and in the response and the last streamed chunk (`model`
chosen, `routing`, `citations`, `sources`, `conversation_id`, `message_id`). Errors are
OpenAI's shape (vedika.api.errors.openai_error_body).

A streamed completion whose client goes away stops its answer (ChatService.stop): the
answer is server-owned, but on /v1 a closed stream is the only way to say stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import msgspec
import orjson
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vedika.api.deps import ServicesDep, resolve_session
from vedika.api.errors import openai_error_body
from vedika.api.responses import JSONResponse
from vedika.chat.turns import Turn
from vedika.errors import BadRequest, NotFound, Unauthorized, VedikaError
from vedika.identity.sessions import DeviceSession
from vedika.protocol import ChatRequest, StreamComplete, StreamError
from vedika.services import Services

router = APIRouter(tags=["openai"])

BEST = "best"
OPENAI_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenAIError"}}},
    }
    for code, description in {
        400: "The request is invalid.",
        401: "No API key, or one that is unknown, revoked or expired.",
        402: "No Vedika coins left today.",
        403: "Not allowed with this credential.",
        404: "Unknown model, conversation or file.",
        409: "This Idempotency-Key was used for a different request.",
        413: "Too large.",
        429: "Too many requests or answers at once.",
        502: "The model provider failed.",
        503: "The server or the model is unavailable right now.",
        504: "The model provider timed out.",
    }.items()
}
# Strong references to the stops started when a client went away (see _stop_later).
_stopping: set[asyncio.Task[Any]] = set()


async def bearer_session(request: Request, services: ServicesDep) -> DeviceSession:
    """The caller's key (or session), from the Authorization header only."""
    auth = request.headers.get("authorization") or ""
    token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    if not token:
        raise Unauthorized(
            "Send your API key as 'Authorization: Bearer vk_...'. Create one with "
            "POST /auth/api-keys.",
            code="missing_api_key",
        )
    if len(token) > 128:
        raise Unauthorized("That API key is not one this server issued.", code="invalid_api_key")
    return await resolve_session(services.store, token, None)


BearerSession = Annotated[DeviceSession, Depends(bearer_session)]


# ---------------------------------------------------------------- /v1/models


def model_list(services: Services) -> dict[str, Any]:
    ids = [BEST] + [m.id for m in services.models.catalogue.listed()]
    return {
        "object": "list",
        "data": [{"id": i, "object": "model", "created": 0, "owned_by": "vedika"} for i in ids],
    }


@router.get("/v1/models", responses=OPENAI_ERRORS)
async def v1_models(services: ServicesDep, _session: BearerSession) -> dict[str, Any]:
    """`best` and every model this server serves, in OpenAI's list shape."""
    return model_list(services)


# ---------------------------------------------------------------- /v1/chat/completions


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str = Field(..., max_length=40)
    text: str | None = None  # its length is checked on the whole question (turns)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    # No maxLength on the strings: the question they make is checked as a whole (the
    # server's message limit), and a declared one invites bodies over the body cap.
    content: str | Annotated[list[ContentPart], Field(max_length=20)] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return " ".join(p.text for p in self.content if p.type == "text" and p.text)


class VedikaOptions(BaseModel):
    """Vedika's extension fields of a request."""

    model_config = ConfigDict(extra="ignore")
    mode: Literal["search", "research", "agents"] = "search"
    web: bool | None = Field(None, description="Search the web for this question.")
    files: list[Annotated[str, Field(max_length=128)]] | None = Field(
        None, max_length=20, description="Ids of your uploaded files (POST /files) to use."
    )
    store: bool = Field(True, description="false: delete the conversation once answered.")
    conversation_id: str | None = Field(
        None, max_length=64, description="Continue this stored conversation of yours."
    )


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str = Field(..., min_length=1, max_length=200)
    messages: list[ChatMessage] = Field(..., min_length=1, max_length=100)
    stream: bool = False
    vedika: VedikaOptions | None = None


def question_of(messages: list[ChatMessage]) -> str:
    """The last user message, with the messages before it as context."""
    last = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
    if last is None:
        raise BadRequest(
            "There is no user message to answer.",
            code="no_user_message",
            details={"param": "messages"},
        )
    question = messages[last].text().strip()
    if not question:
        raise BadRequest("The last user message is empty.", code="empty_message")
    earlier = [m for m in messages[:last] if m.text().strip()]
    if not earlier:
        return question
    lines = [f"{m.role.capitalize()}: {m.text().strip()}" for m in earlier]
    return "Earlier in this conversation:\n" + "\n".join(lines) + "\n\nQuestion: " + question


def chat_request(services: Services, body: CompletionRequest, key: str | None) -> ChatRequest:
    if body.model != BEST and services.models.catalogue.get(body.model) is None:
        raise NotFound(
            f"There is no model called {body.model!r} here. GET /v1/models lists them.",
            code="model_not_found",
            details={"param": "model"},
        )
    ext = body.vedika or VedikaOptions.model_validate({})
    sources: list[Any] | None = None
    if ext.web is not None:
        sources = ["web"] if ext.web else []
    try:
        return ChatRequest.model_validate(
            {
                "message": question_of(body.messages),
                "model_id": body.model,
                "mode": ext.mode,
                "sources": sources,
                "attachments": ext.files,
                "conversation_id": ext.conversation_id,
                "client_message_id": key,
            }
        )
    except ValidationError as exc:
        errors = exc.errors()
        where = ".".join(str(x) for x in errors[0]["loc"]) if errors else "messages"
        problem = errors[0]["msg"] if errors else "invalid"
        raise BadRequest(
            f"The request is invalid: {where}: {problem}.",
            code="validation_error",
            details={"param": "messages" if where == "message" else where},
        ) from None


def _extension(turn: Turn, final: StreamComplete | None) -> dict[str, Any]:
    citations = [_builtins(c) for c in final.citations] if final else []
    return {
        "model": turn.model.id,
        "routing": {
            "selected_model": turn.model.id,
            "reason": turn.routing.reason,
            "confidence": turn.routing.confidence,
        },
        "conversation_id": turn.conversation_id,
        "message_id": turn.message_id,
        "citations": citations,
        "sources": turn.sources,
        "coins_used": turn.coins_charged,
    }


def _builtins(citation: Any) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(citation)
    return {k: v for k, v in out.items() if v is not None}


def _finish_reason(reason: str) -> str:
    return "length" if reason in ("length", "max_tokens") else "stop"


@router.post("/v1/chat/completions", responses=OPENAI_ERRORS, response_model=None)
async def v1_chat_completions(
    services: ServicesDep,
    session: BearerSession,
    body: CompletionRequest,
    idempotency_key: str | None = Header(
        None,
        alias="Idempotency-Key",
        description="A retry with it is the same turn (1 to 128 characters).",
    ),
) -> JSONResponse | StreamingResponse:
    """A chat completion, OpenAI's format, through Vedika's turn (docs/api.md)."""
    req = chat_request(services, body, idempotency_key or None)
    turn = await services.chat.start(session, req)
    store = (body.vedika or VedikaOptions.model_validate({})).store
    if body.stream:
        return StreamingResponse(
            _stream(services, session, turn, store),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    final = await services.chat.outcome(session, turn)
    if not store:
        await _forget(services, session, turn)
    if isinstance(final, StreamError):
        err = VedikaError(final.error, code=final.code, status=502, retryable=final.retryable)
        return JSONResponse(openai_error_body(err), status_code=502)
    return JSONResponse(
        {
            "id": f"chatcmpl-{turn.message_id}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": turn.model.id,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": final.full_response},
                    "finish_reason": _finish_reason(final.finish_reason),
                }
            ],
            "usage": {
                "prompt_tokens": final.input_tokens,
                "completion_tokens": final.output_tokens,
                "total_tokens": final.input_tokens + final.output_tokens,
            },
            "vedika": _extension(turn, final),
        }
    )


async def _forget(services: Services, session: DeviceSession, turn: Turn) -> None:
    """`store: false`: the conversation goes once its answer has ended (a conversation
    the request continued is kept: only a new one is the request's own)."""
    if turn.created_conversation:
        with contextlib.suppress(NotFound):
            await services.chat.delete_conversation(session, turn.conversation_id)


def _stop_later(services: Services, session: DeviceSession, turn: Turn, store: bool) -> None:
    """The client went away mid-stream: stop the answer. A task of its own, since the
    request's own task is being cancelled."""

    async def stop() -> None:
        try:
            await services.chat.stop(session, turn.message_id, None)
            if not store:
                await services.chat.outcome(session, turn)
                await _forget(services, session, turn)
        except VedikaError:
            pass

    task = asyncio.get_running_loop().create_task(stop())
    _stopping.add(task)
    task.add_done_callback(_stopping.discard)


async def _stream(
    services: Services, session: DeviceSession, turn: Turn, store: bool
) -> AsyncIterator[bytes]:
    base = {
        "id": f"chatcmpl-{turn.message_id}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": turn.model.id,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        out = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return b"data: " + orjson.dumps(out) + b"\n\n"

    ended = False
    try:
        yield chunk({"role": "assistant", "content": ""}, vedika=_extension(turn, None))
        async for batch in services.chat.follow(session, services.chat.accepted(session, turn), 0):
            out: list[bytes] = []
            for entry in batch:
                if entry.type == "content_chunk":
                    event = orjson.loads(entry.data)
                    out.append(chunk({"content": event["content"]}))
                elif entry.type == "stream_complete":
                    event = orjson.loads(entry.data)
                    ext = _extension(turn, None)
                    ext["citations"] = [
                        {k: v for k, v in c.items() if v is not None} for c in event["citations"]
                    ]
                    ext["finish_reason"] = event["finish_reason"]
                    usage = {
                        "prompt_tokens": event["input_tokens"],
                        "completion_tokens": event["output_tokens"],
                        "total_tokens": event["input_tokens"] + event["output_tokens"],
                    }
                    finish = _finish_reason(event["finish_reason"])
                    out.append(chunk({}, finish, vedika=ext, usage=usage))
                    out.append(b"data: [DONE]\n\n")
                    ended = True
                elif entry.type == "stream_error":
                    event = orjson.loads(entry.data)
                    err = VedikaError(event["error"], code=event["code"], status=502)
                    out.append(b"data: " + orjson.dumps(openai_error_body(err)) + b"\n\n")
                    ended = True
            if out:
                yield b"".join(out)
            if ended:
                break
    finally:
        if not ended:
            _stop_later(services, session, turn, store)
        elif not store:
            task = asyncio.get_running_loop().create_task(_forget(services, session, turn))
            _stopping.add(task)
            task.add_done_callback(_stopping.discard)
