"""Rows a test starts from, written through the store as the product writes them."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from vedika import protocol as p
from vedika.store import conversations as data
from vedika.store.engine import Store


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
