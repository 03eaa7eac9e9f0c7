"""Organising conversations (issue 18): pinned first, archived apart, and the list's
search over titles and, by full text, over what was said in them.

The full-text index is the migration's (0008): on SQLite the FTS5 table `messages_fts`,
written in batches (vedika.store.search_queue), on PostgreSQL the generated column
`messages.tsv`. A search is a prefix match of every
word typed (so the sidebar finds as one types), ANDed, plus a substring match on the
title, as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Integer, String, and_, bindparam, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from vedika.store.conversations import LISTED
from vedika.store.engine import Store
from vedika.store.pointread import PointRead
from vedika.store.search_queue import before_search
from vedika.store.tables import TS, conversations

_WORDS = re.compile(r"\w+", re.UNICODE)
MAX_WORDS = 8

_LISTED = (*LISTED, conversations.c.pinned, conversations.c.archived)
_OWNED = conversations.c.device_id == bindparam("b_device")
_SHELF = conversations.c.archived == bindparam("b_archived", type_=conversations.c.archived.type)
_TITLE = func.lower(conversations.c.title).like(bindparam("b_pattern", type_=String), escape="\\")
_FTS = {
    "sqlite": text(
        "conversations.id IN (SELECT messages_fts.conversation_id FROM messages_fts "
        "WHERE messages_fts MATCH :b_fts)"
    ),
    "postgresql": text(
        "EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = conversations.id "
        "AND m.tsv @@ to_tsquery('simple', :b_fts))"
    ),
}
_PIN = bindparam("b_pin", type_=Integer)
_AT = bindparam("b_at", type_=TS)
_CID = bindparam("b_cid", type_=String)
_PINNED_INT = func.cast(conversations.c.pinned, Integer)
# Pinned first, then newest first; the cursor is (pinned, updated_at, id).
_AFTER = or_(
    _PINNED_INT < _PIN,
    and_(
        _PINNED_INT == _PIN,
        or_(
            conversations.c.updated_at < _AT,
            and_(conversations.c.updated_at == _AT, conversations.c.id < _CID),
        ),
    ),
)
_ORDER = (
    conversations.c.pinned.desc(),
    conversations.c.updated_at.desc(),
    conversations.c.id.desc(),
)


class Listed(NamedTuple):
    """A conversation as the list shows it: the row itself, as the driver gave it (a
    frozen dataclass per row cost a tenth of the list's CPU, `bench.profile --call
    list_50`). Booleans are booleans on both databases (SQLAlchemy's processor on
    SQLite)."""

    id: str
    title: str
    model: str
    created_at: datetime
    updated_at: datetime
    message_count: int
    total_tokens: int
    pinned: bool
    archived: bool


_READS: dict[tuple[str, bool, bool, bool], tuple[PointRead, PointRead]] = {}


def _reads(dialect: str, title: bool, fts: bool, after: bool) -> tuple[PointRead, PointRead]:
    """(the page, the count) for one shape, built once (values bound at execute time)."""
    key = (dialect, title, fts, after)
    found = _READS.get(key)
    if found is None:
        where: list[Any] = [_OWNED, _SHELF]
        matches: list[Any] = [_TITLE] if title else []
        if fts:
            matches.append(_FTS[dialect])
        if matches:
            where.append(or_(*matches))
        count = select(func.count()).select_from(conversations).where(and_(*where))
        page_where = [*where, _AFTER] if after else where
        page = (
            select(*_LISTED, count.scalar_subquery())
            .where(and_(*page_where))
            .order_by(*_ORDER)
            .limit(bindparam("b_limit", type_=Integer))
        )
        found = _READS[key] = (PointRead(page), PointRead(count))
    return found


def fts_query(dialect: str, q: str) -> str | None:
    """The words of `q` as a full-text query: every word, as a prefix; None if no word.
    Only word characters reach the query syntax, so nothing typed can break it."""
    words = _WORDS.findall(q.lower())[:MAX_WORDS]
    if not words:
        return None
    if dialect == "sqlite":
        return " ".join(f'"{w}"*' for w in words)
    return " & ".join(f"{w}:*" for w in words)


@dataclass(frozen=True, slots=True)
class Cursor:
    pinned: bool
    updated_at: datetime
    id: str


async def page(
    store: Store,
    *,
    device_id: str,
    limit: int,
    cursor: Cursor | None,
    q: str | None,
    archived: bool,
) -> tuple[list[Listed], int]:
    """Up to `limit` of the owner's conversations (archived ones, or the others) after
    `cursor`, pinned first then newest first, matching `q`; and how many match."""
    values: dict[str, Any] = {"b_device": device_id, "b_limit": limit, "b_archived": archived}
    fts = None
    if q:
        values["b_pattern"] = f"%{_escape_like(q.lower())}%"
        fts = fts_query(store.dialect, q)
        if fts is not None:
            values["b_fts"] = fts
            await before_search(store)  # what is queued for the index (SQLite) goes in first
    if cursor is not None:
        values["b_pin"] = int(cursor.pinned)
        values["b_at"], values["b_cid"] = cursor.updated_at, cursor.id
    page_read, count_read = _reads(store.dialect, bool(q), fts is not None, cursor is not None)
    rows = await store.all(page_read, values)
    if rows:
        make = Listed._make
        return [make(row[:-1]) for row in rows], int(rows[0][-1])
    if cursor is None:
        return [], 0
    counted = await store.first(count_read, values)
    return [], int(counted[0]) if counted else 0


def _escape_like(text_: str) -> str:
    return text_.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def set_flags(
    conn: AsyncConnection,
    *,
    conversation_id: str,
    device_id: str,
    pinned: bool | None = None,
    archived: bool | None = None,
) -> tuple[bool, bool] | None:
    """Pin/unpin, archive/unarchive the owner's conversation; its flags after, or None
    when the owner has no such conversation."""
    values: dict[str, Any] = {}
    if pinned is not None:
        values["pinned"] = pinned
    if archived is not None:
        values["archived"] = archived
    owned = and_(conversations.c.id == conversation_id, conversations.c.device_id == device_id)
    if values:
        await conn.execute(update(conversations).where(owned).values(**values))
    row = (
        await conn.execute(select(conversations.c.pinned, conversations.c.archived).where(owned))
    ).first()
    return (bool(row[0]), bool(row[1])) if row is not None else None


__all__ = ["Cursor", "Listed", "fts_query", "page", "set_flags"]
