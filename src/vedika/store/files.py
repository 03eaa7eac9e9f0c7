"""Data functions for uploaded files and their passages (keyword-only, one job each).

The full-text index follows the passages by itself (triggers on SQLite, a generated
column on PostgreSQL); searching it is `vedika.sources.index`'s job.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, and_, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from vedika.store.tables import files, messages, passage_vectors, passages


async def insert_file(conn: AsyncConnection, **values: Any) -> None:
    await conn.execute(files.insert().values(**values))


async def insert_passages(
    conn: AsyncConnection, *, file_id: str, device_id: str, rows: list[dict[str, Any]]
) -> list[int]:
    """Insert a file's passages; their ids, in the order given."""
    if not rows:
        return []
    result = await conn.execute(
        insert(passages).returning(passages.c.id, sort_by_parameter_order=True),
        [{"file_id": file_id, "device_id": device_id, **row} for row in rows],
    )
    return [int(r[0]) for r in result.all()]


async def insert_vectors(conn: AsyncConnection, *, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(passage_vectors.insert(), rows)


async def list_files(conn: AsyncConnection, *, device_id: str) -> Sequence[Row[Any]]:
    return (
        await conn.execute(
            select(files)
            .where(files.c.device_id == device_id)
            .order_by(files.c.created_at.desc(), files.c.id.desc())
        )
    ).all()


async def get_file(conn: AsyncConnection, *, file_id: str, device_id: str) -> Row[Any] | None:
    return (
        await conn.execute(
            select(files).where(and_(files.c.id == file_id, files.c.device_id == device_id))
        )
    ).first()


async def owned_files(
    conn: AsyncConnection, *, device_id: str, file_ids: Sequence[str]
) -> Sequence[Row[Any]]:
    """The files among `file_ids` that belong to the device (others are left out)."""
    if not file_ids:
        return []
    return (
        await conn.execute(
            select(files).where(
                and_(files.c.id.in_(list(file_ids)), files.c.device_id == device_id)
            )
        )
    ).all()


async def device_usage(conn: AsyncConnection, *, device_id: str) -> tuple[int, int]:
    """(number of files, bytes) the device stores."""
    row = (
        await conn.execute(
            select(func.count(), func.coalesce(func.sum(files.c.size), 0)).where(
                files.c.device_id == device_id
            )
        )
    ).one()
    return int(row[0]), int(row[1])


async def delete_file(conn: AsyncConnection, *, file_id: str, device_id: str) -> bool:
    owned = await get_file(conn, file_id=file_id, device_id=device_id)
    if owned is None:
        return False
    await conn.execute(delete(passage_vectors).where(passage_vectors.c.file_id == file_id))
    await conn.execute(delete(passages).where(passages.c.file_id == file_id))
    await conn.execute(delete(files).where(files.c.id == file_id))
    return True


async def conversation_attachments(conn: AsyncConnection, *, conversation_id: str) -> list[str]:
    """Every file id attached to a message of the conversation, oldest first, once each."""
    rows = (
        await conn.execute(
            select(messages.c.attachments)
            .where(and_(messages.c.conversation_id == conversation_id, messages.c.role == "user"))
            .order_by(messages.c.created_at)
        )
    ).all()
    seen: dict[str, None] = {}
    for (ids,) in rows:
        for file_id in ids if isinstance(ids, list) else []:
            if isinstance(file_id, str):
                seen.setdefault(file_id, None)
    return list(seen)
