"""Seeding a database directly through the vedika.store tables (no HTTP in the way)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import create_async_engine

from vedika.ids import uuid7
from vedika.store.tables import conversations, device_sessions, messages

WORDS = [
    "answer",
    "engine",
    "stream",
    "token",
    "relay",
    "latency",
    "socket",
    "database",
    "commit",
    "chunk",
    "event",
    "protocol",
    "server",
    "client",
    "window",
    "buffer",
    "replay",
    "index",
    "search",
    "source",
    "citation",
    "model",
]


def _text(i: int, n_words: int) -> str:
    return " ".join(WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(n_words))


async def sessions(db_url: str, n: int, prefix: str = "bench") -> list[tuple[str, str]]:
    """`n` device sessions: [(session_id, device_id)]."""
    now = datetime.now(UTC)
    rows = [
        {
            "session_id": secrets.token_urlsafe(32),
            "device_id": f"{prefix}_{i:05d}_{secrets.token_hex(4)}",
            "plan": "anonymous",
            "device_info": None,
            "created_at": now,
            "expires_at": now + timedelta(days=7),
        }
        for i in range(n)
    ]
    engine = create_async_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(device_sessions.insert(), rows)
    finally:
        await engine.dispose()
    return [(r["session_id"], r["device_id"]) for r in rows]


def _message(conv_id: str, role: str, content: str, at: datetime) -> dict[str, Any]:
    assistant = role == "assistant"
    return {
        "id": uuid7(),
        "conversation_id": conv_id,
        "role": role,
        "content": content,
        "status": "complete",
        "model": "fake-steady" if assistant else None,
        "citations": [] if assistant else None,
        "routing": {"selected_model": "fake-steady", "reason": "bench", "confidence": 1.0}
        if assistant
        else None,
        "input_tokens": 20 if assistant else 0,
        "output_tokens": len(content) // 4 if assistant else 0,
        "chunk_count": len(content) // 4 if assistant else 0,
        "finish_reason": "stop" if assistant else None,
        "mode": "search",
        "interaction_mode": "type",
        "coins_charged": 1 if assistant else 0,
        "created_at": at,
        "updated_at": at,
    }


async def history(
    db_url: str, device_id: str, n_conversations: int, long_messages: int
) -> dict[str, Any]:
    """`n_conversations` two-message conversations and one of `long_messages` messages,
    all owned by `device_id`; returns the long conversation's id."""
    start = datetime.now(UTC) - timedelta(days=60)
    convs: list[dict[str, Any]] = []
    msgs: list[dict[str, Any]] = []
    for i in range(n_conversations):
        at = start + timedelta(minutes=5 * i)
        cid = uuid7()
        convs.append(
            {
                "id": cid,
                "device_id": device_id,
                "title": _text(i, 6)[:60],
                "model": "fake-steady",
                "created_at": at,
                "updated_at": at + timedelta(seconds=30),
                "message_count": 2,
                "total_tokens": 120,
            }
        )
        msgs.append(_message(cid, "user", _text(i, 12), at))
        msgs.append(_message(cid, "assistant", _text(i + 1, 60), at + timedelta(seconds=30)))
    long_id = uuid7()
    at = start + timedelta(days=59)
    convs.append(
        {
            "id": long_id,
            "device_id": device_id,
            "title": "a long conversation",
            "model": "fake-steady",
            "created_at": at,
            "updated_at": at + timedelta(seconds=long_messages),
            "message_count": long_messages,
            "total_tokens": 100 * long_messages,
        }
    )
    for k in range(long_messages):
        role = "user" if k % 2 == 0 else "assistant"
        n_words = 15 if role == "user" else 150  # ~1 KB answers
        msgs.append(_message(long_id, role, _text(k, n_words), at + timedelta(seconds=k)))
    engine = create_async_engine(db_url)
    try:
        async with engine.begin() as conn:
            for i in range(0, len(convs), 2000):
                await conn.execute(conversations.insert(), convs[i : i + 2000])
            for i in range(0, len(msgs), 2000):
                await conn.execute(messages.insert(), msgs[i : i + 2000])
    finally:
        await engine.dispose()
    return {"long_conversation_id": long_id, "messages_seeded": len(msgs)}
