"""Everything one owner has, as a whole: move it (claiming), read it (export), delete
it (closing an account).

An owner key is a device id or an account's key (vedika.ids.account_owner); the
`device_id` columns hold it. Coins (`coin_days`, `coin_ledger`) are not moved: a device's
spending stays the device's, an account has its own allowance (docs/accounts.md).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from vedika.store.tables import (
    coin_days,
    coin_grants,
    coin_ledger,
    conversations,
    files,
    idempotency_keys,
    messages,
    passage_vectors,
    passages,
    preferences,
    shares,
)


async def move(conn: AsyncConnection, *, source: str, target: str) -> int:
    """Give `source`'s conversations and files (with their passages and idempotency
    keys) to `target`, inside the caller's transaction. Returns the conversations moved.
    """
    moved = await conn.execute(
        update(conversations).where(conversations.c.device_id == source).values(device_id=target)
    )
    await conn.execute(update(files).where(files.c.device_id == source).values(device_id=target))
    await conn.execute(update(shares).where(shares.c.device_id == source).values(device_id=target))
    await conn.execute(
        update(passages).where(passages.c.device_id == source).values(device_id=target)
    )
    # A key the target already used stays the target's; the source's copy goes.
    taken = select(idempotency_keys.c.key).where(idempotency_keys.c.device_id == target)
    await conn.execute(
        update(idempotency_keys)
        .where(and_(idempotency_keys.c.device_id == source, idempotency_keys.c.key.not_in(taken)))
        .values(device_id=target)
    )
    await conn.execute(delete(idempotency_keys).where(idempotency_keys.c.device_id == source))
    return moved.rowcount or 0


def _plain(row: Any) -> dict[str, Any]:
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row._mapping.items()}


async def export(conn: AsyncConnection, *, owner: str) -> dict[str, Any]:
    """Every row `owner` has, as JSON-ready dicts (the text of files' passages too)."""
    convs = (
        await conn.execute(
            select(conversations)
            .where(conversations.c.device_id == owner)
            .order_by(conversations.c.created_at)
        )
    ).all()
    out_convs = []
    for conv in convs:
        msgs = (
            await conn.execute(
                select(messages)
                .where(messages.c.conversation_id == conv.id)
                .order_by(messages.c.created_at, messages.c.id)
            )
        ).all()
        out_convs.append({**_plain(conv), "messages": [_plain(m) for m in msgs]})
    owned_files = (await conn.execute(select(files).where(files.c.device_id == owner))).all()
    out_files = []
    for f in owned_files:
        texts = (
            await conn.execute(
                select(passages.c.seq, passages.c.page, passages.c.section, passages.c.text)
                .where(passages.c.file_id == f.id)
                .order_by(passages.c.seq)
            )
        ).all()
        out_files.append({**_plain(f), "passages": [_plain(t) for t in texts]})
    ledger = (
        await conn.execute(
            select(coin_ledger).where(coin_ledger.c.device_id == owner).order_by(coin_ledger.c.id)
        )
    ).all()
    prefs = (await conn.execute(select(preferences).where(preferences.c.device_id == owner))).all()
    owned = select(conversations.c.id).where(conversations.c.device_id == owner)
    links = (
        await conn.execute(
            select(shares).where(shares.c.conversation_id.in_(owned)).order_by(shares.c.created_at)
        )
    ).all()
    return {
        "conversations": out_convs,
        "files": out_files,
        "coin_transactions": [_plain(r) for r in ledger],
        "preferences": [_plain(r) for r in prefs],
        "shares": [_plain(r) for r in links],  # share links, revoked ones too (issue 18)
    }


async def delete_all(conn: AsyncConnection, *, owner: str) -> list[str]:
    """Delete every row `owner` has, inside the caller's transaction. Returns the ids
    of its files, whose stored bytes the caller removes once this commits."""
    file_ids = [
        r.id for r in (await conn.execute(select(files.c.id).where(files.c.device_id == owner)))
    ]
    if file_ids:
        await conn.execute(delete(passage_vectors).where(passage_vectors.c.file_id.in_(file_ids)))
    await conn.execute(delete(passages).where(passages.c.device_id == owner))
    await conn.execute(delete(files).where(files.c.device_id == owner))
    owned = select(conversations.c.id).where(conversations.c.device_id == owner)
    await conn.execute(delete(shares).where(shares.c.conversation_id.in_(owned)))
    await conn.execute(delete(messages).where(messages.c.conversation_id.in_(owned)))
    await conn.execute(delete(conversations).where(conversations.c.device_id == owner))
    for table in (idempotency_keys, coin_days, coin_grants, coin_ledger, preferences):
        await conn.execute(delete(table).where(table.c.device_id == owner))
    return file_ids
