"""Idempotency keys: one client_message_id, one turn, one charge."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from vedika.store.direct import run as run_direct
from vedika.store.tables import idempotency_keys

# Built once, values at execute time (see store/conversations.py).
_FIND = select(idempotency_keys).where(
    and_(
        idempotency_keys.c.device_id == bindparam("b_device"),
        idempotency_keys.c.key == bindparam("b_key"),
    )
)
_SAVE = idempotency_keys.insert()


async def find_key(conn: AsyncConnection, *, device_id: str, key: str) -> Row[Any] | None:
    return (await conn.execute(_FIND, {"b_device": device_id, "b_key": key})).first()


def save_key(
    conn: Connection,
    *,
    device_id: str,
    key: str,
    fingerprint: str,
    conversation_id: str,
    user_message_id: str,
    message_id: str,
    now: datetime,
) -> None:
    run_direct(
        conn,
        _SAVE,
        {
            "device_id": device_id,
            "key": key,
            "fingerprint": fingerprint,
            "conversation_id": conversation_id,
            "user_message_id": user_message_id,
            "message_id": message_id,
            "created_at": now,
        },
    )
