"""Per-device model preference (API.md section 4)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from vedika.protocol import utcnow
from vedika.store.dialect import insert_ignore
from vedika.store.engine import Store
from vedika.store.tables import preferences

_GET = select(preferences).where(preferences.c.device_id == bindparam("b_device"))


async def get_preference(store: Store, *, device_id: str) -> Row[Any] | None:
    async with store.read() as conn:
        return await preference_in(conn, device_id=device_id)


async def preference_in(conn: AsyncConnection, *, device_id: str) -> Row[Any] | None:
    return (await conn.execute(_GET, {"b_device": device_id})).first()


async def set_preference(
    store: Store, *, device_id: str, model_id: str | None, preference_type: str | None
) -> None:
    now = utcnow()
    async with store.tx() as conn:
        await conn.execute(
            insert_ignore(conn.dialect.name, preferences),
            {
                "device_id": device_id,
                "model_id": None,
                "preference_type": None,
                "usage_count": 0,
                "updated_at": now,
            },
        )
        await conn.execute(
            update(preferences)
            .where(preferences.c.device_id == device_id)
            .values(
                model_id=model_id,
                preference_type=preference_type,
                updated_at=now,
                usage_count=preferences.c.usage_count + (1 if model_id else 0),
            )
        )
