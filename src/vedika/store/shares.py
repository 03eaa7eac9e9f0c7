"""Share links (issue 18): one live link per conversation, its snapshot stored with it.

Every read of a link goes to the database (no cache): a link revoked on one instance is
gone on every other at its next request. A link whose conversation was deleted is gone
too (the public read joins the conversation).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from vedika.protocol import aware
from vedika.store.engine import Store
from vedika.store.tables import conversations, shares

# 32 URL-safe characters: 192 random bits (os.urandom through `secrets`).
SHARE_ID_BYTES = 24
SHARE_ID_PATTERN = r"^[A-Za-z0-9_-]{32}$"


def new_share_id() -> str:
    return secrets.token_urlsafe(SHARE_ID_BYTES)


@dataclass(frozen=True, slots=True)
class Share:
    id: str
    conversation_id: str
    title: str
    snapshot: dict[str, Any]
    allow_indexing: bool
    created_at: datetime
    updated_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: Any) -> Share:
        m = row._mapping
        revoked = m["revoked_at"]
        return cls(
            id=m["id"],
            conversation_id=m["conversation_id"],
            title=m["title"],
            snapshot=m["snapshot"] or {},
            allow_indexing=bool(m["allow_indexing"]),
            created_at=aware(m["created_at"]),
            updated_at=aware(m["updated_at"]),
            revoked_at=aware(revoked) if revoked is not None else None,
        )


def _live(conversation_id: str) -> Any:
    return and_(shares.c.conversation_id == conversation_id, shares.c.revoked_at.is_(None))


async def live_share(conn: AsyncConnection, *, conversation_id: str) -> Share | None:
    """The conversation's link not revoked, if any (the caller checked ownership)."""
    row = (await conn.execute(select(shares).where(_live(conversation_id)).limit(1))).first()
    return Share.of(row) if row is not None else None


async def save_share(
    conn: AsyncConnection,
    *,
    conversation_id: str,
    owner: str,
    title: str,
    snapshot: dict[str, Any],
    allow_indexing: bool,
    now: datetime,
) -> tuple[Share, bool]:
    """Share the conversation: a new link, or the live one with a new snapshot (sharing
    again updates what the link shows). (the share, whether it is new)."""
    current = await live_share(conn, conversation_id=conversation_id)
    values = {
        "title": title,
        "snapshot": snapshot,
        "allow_indexing": allow_indexing,
        "updated_at": now,
        "device_id": owner,
    }
    if current is not None:
        await conn.execute(update(shares).where(shares.c.id == current.id).values(**values))
        share_id, created = current.id, False
    else:
        share_id, created = new_share_id(), True
        await conn.execute(
            shares.insert().values(
                id=share_id, conversation_id=conversation_id, created_at=now, **values
            )
        )
    row = (await conn.execute(select(shares).where(shares.c.id == share_id))).one()
    return Share.of(row), created


async def revoke_share(conn: AsyncConnection, *, conversation_id: str, now: datetime) -> bool:
    """Revoke the conversation's live link; whether there was one."""
    result = await conn.execute(
        update(shares).where(_live(conversation_id)).values(revoked_at=now, updated_at=now)
    )
    return bool(result.rowcount)


async def public_share(store: Store, *, share_id: str) -> Share | None:
    """A link as anyone holding it sees it (revoked ones included, to say so), or None
    when there is no such link or its conversation no longer exists."""
    async with store.read() as conn:
        row = (
            await conn.execute(
                select(shares)
                .join(conversations, conversations.c.id == shares.c.conversation_id)
                .where(shares.c.id == share_id)
            )
        ).first()
    return Share.of(row) if row is not None else None
