"""Rows a test starts from, written through the store as the product writes them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from vedika import protocol as p
from vedika.store import conversations as data
from vedika.store.engine import Store
from vedika.store.tables import conversations, messages

NOW = datetime(2026, 12, 7, 15, 4, 5, 678000, tzinfo=UTC)


async def streaming_answer(store: Store, device_id: str = "dev") -> tuple[str, str]:
    """A conversation of `device_id` with an empty answer still `streaming`: (its
    conversation id, its message id)."""
    cid, mid, now = str(uuid.uuid4()), str(uuid.uuid4()), p.utcnow()

    def write(conn: sa.Connection) -> None:
        data.create_conversation(
            conn, conversation_id=cid, device_id=device_id, title="t", model="m", now=now
        )
        data.insert_message(
            conn,
            id=mid,
            conversation_id=cid,
            role="assistant",
            content="",
            status="streaming",
            created_at=now,
            updated_at=now,
        )

    await store.run_tx(write)
    return cid, mid


def first_conversation(conn: sa.Connection, now: datetime = NOW) -> None:
    """Conversation `c1` of device `d1`, empty, written by SQLAlchemy's own execution
    (the store.direct tests compare what they write with it)."""
    conn.execute(
        conversations.insert(),
        data.conversation_row(
            conversation_id="c1",
            device_id="d1",
            title="t",
            model="m",
            now=now,
            message_count=0,
            active_leaf_id=None,
        )[1],
    )


def live_answer(message_id: str) -> dict[str, Any]:
    """The values of a streaming answer in `c1`, with a JSON column (routing)."""
    return data.message_row(
        id=message_id,
        conversation_id="c1",
        role="assistant",
        content="",
        status=data.ASSISTANT_LIVE,
        model="m",
        routing={"selected_model": "m", "reason": "fits", "confidence": 0.5},
        created_at=NOW,
        updated_at=NOW,
        heartbeat_at=NOW,
    )[1]


def stored_message(conn: sa.Connection, message_id: str) -> dict[str, Any]:
    """A message's stored columns but its id, as SQLAlchemy reads them."""
    row = conn.execute(sa.select(messages).where(messages.c.id == message_id)).one()
    return {k: v for k, v in row._mapping.items() if k != "id"}
