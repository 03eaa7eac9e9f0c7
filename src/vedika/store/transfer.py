"""Importing a conversation (issue 18): the conversation and all its messages in one
transaction, so a failed import leaves nothing behind."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from vedika.ids import uuid7
from vedika.store.tables import conversations, messages


async def insert_conversation(
    conn: AsyncConnection,
    *,
    owner: str,
    title: str,
    model: str,
    items: list[dict[str, Any]],
    now: datetime,
) -> str:
    """A new conversation of `owner` holding `items` (role, content, model, citations),
    in order: each message 1 ms after the one before, so the stored order is theirs."""
    conversation_id = uuid7()
    await conn.execute(
        conversations.insert().values(
            id=conversation_id,
            device_id=owner,
            title=title,
            model=model,
            created_at=now,
            updated_at=now + timedelta(milliseconds=len(items)),
            message_count=len(items),
            total_tokens=0,
            pinned=False,
            archived=False,
        )
    )
    rows = []
    for i, item in enumerate(items):
        at = now + timedelta(milliseconds=i)
        rows.append(
            {
                "id": uuid7(),
                "conversation_id": conversation_id,
                "role": item["role"],
                "content": item["content"],
                "status": "complete",
                "model": item.get("model"),
                "citations": item.get("citations") or None,
                "finish_reason": "stop" if item["role"] == "assistant" else None,
                "input_tokens": 0,
                "output_tokens": 0,
                "chunk_count": 0,
                "coins_charged": 0,
                "created_at": at,
                "updated_at": at,
            }
        )
    if rows:
        await conn.execute(messages.insert(), rows)
    return conversation_id
