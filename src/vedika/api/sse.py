"""Server-Sent Events fallback: the same events as the socket, one per `data:` line."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from vedika.api.deps import CurrentSession, ServicesDep
from vedika.errors import BadRequest

router = APIRouter(tags=["chat"])


@router.get("/ai/chat/stream/{message_id}")
async def chat_stream_sse(
    services: ServicesDep,
    session: CurrentSession,
    message_id: str,
    after: int | None = Query(None, ge=0, description="Resume after this chunk id."),
    last_event_id: str | None = Header(None, alias="Last-Event-ID"),
) -> StreamingResponse:
    """`event:` is the type, `id:` the chunk id, `data:` the JSON event (with its type)."""
    resume = after or 0
    if last_event_id:
        try:
            resume = max(resume, int(last_event_id))
        except ValueError:
            raise BadRequest("Last-Event-ID must be a chunk number.") from None
    row = await services.chat.answer(session, message_id)
    events = services.chat.follow(session, row, resume)

    async def body() -> AsyncIterator[str]:
        yield "retry: 1000\n\n"
        async for batch in events:
            yield "".join(f"id: {e.chunk_id}\nevent: {e.type}\ndata: {e.data}\n\n" for e in batch)

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
            "x-conversation-id": row.conversation_id,
        },
    )
