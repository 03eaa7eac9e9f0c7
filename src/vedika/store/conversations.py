"""Data functions for conversations and messages (keyword-only, one job each)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    Row,
    ScalarSelect,
    and_,
    bindparam,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from vedika.protocol import MessageStatus, aware
from vedika.store.dialect import NewRow
from vedika.store.direct import run as run_direct
from vedika.store.engine import Store
from vedika.store.pointread import PointRead
from vedika.store.tables import conversations, messages, shares

ASSISTANT_LIVE = MessageStatus.STREAMING.value


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One stored message, as the chat reads it back (answers and questions alike)."""

    id: str
    conversation_id: str
    role: str
    status: MessageStatus
    content: str
    chunk_count: int
    model: str | None
    routing: dict[str, Any] | None
    citations: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    input_tokens: int
    output_tokens: int
    finish_reason: str | None
    error_code: str | None
    error_message: str | None
    created_at: datetime
    heartbeat_at: datetime | None
    chunk_ends: str | None = None  # encode_chunk_sizes of chunks 1..chunk_count, or NULL

    @classmethod
    def of(cls, row: Row[Any]) -> StoredMessage:
        m = row._mapping
        beat = m["heartbeat_at"]
        return cls(
            id=m["id"],
            conversation_id=m["conversation_id"],
            role=m["role"],
            status=MessageStatus(m["status"]),
            content=m["content"] or "",
            chunk_count=m["chunk_count"] or 0,
            model=m["model"],
            routing=m["routing"],
            citations=m["citations"] or [],
            steps=m["steps"] or [],
            input_tokens=m["input_tokens"] or 0,
            output_tokens=m["output_tokens"] or 0,
            finish_reason=m["finish_reason"],
            error_code=m["error_code"],
            error_message=m["error_message"],
            created_at=aware(m["created_at"]),
            heartbeat_at=aware(beat) if beat is not None else None,
            chunk_ends=m["chunk_ends"],
        )

    def chunk_sizes(self) -> list[int] | None:
        """The length of each chunk 1..chunk_count, or None where it is not known."""
        return decode_chunk_sizes(self.chunk_ends, self.chunk_count, self.content)

    def but(self, **changes: Any) -> StoredMessage:
        """A copy with `changes` (what the row would read after settling it)."""
        return dataclasses.replace(self, **changes)


# Chunk boundaries (`messages.chunk_ends`): the length of each chunk 1..chunk_count in
# characters, in decimal, comma-separated ("5,1,12"). Lengths rather than offsets: a
# chunk is a token or a few, so each costs 2 to 3 bytes whatever the answer's length
# (offsets would grow to 5 or 6 digits), about 6 KB for an answer of 2,000 chunks; and
# plain text rather than JSON: the flush writes the whole list each time, and joining
# ints is the cheapest encoding of it.


def encode_chunk_sizes(sizes: Sequence[int]) -> str:
    return ",".join(map(str, sizes))


def decode_chunk_sizes(text: str | None, chunk_count: int, content: str) -> list[int] | None:
    """The lengths `encode_chunk_sizes` stored, if they describe `content` as chunks
    1..`chunk_count`; None if not stored (rows from before migration 0012) or not
    consistent with the text (then nothing is known of where a chunk ends)."""
    if chunk_count <= 0:
        return [] if not content else None
    if not text:
        return None
    try:
        sizes = [int(n) for n in text.split(",")]
    except ValueError:
        return None
    if len(sizes) != chunk_count or sum(sizes) != len(content) or min(sizes) < 0:
        return None
    return sizes


def _stored(row: Row[Any] | None) -> StoredMessage | None:
    return StoredMessage.of(row) if row is not None else None


MESSAGE_VIEW = (  # the columns of `list_messages`, in order
    "id",
    "role",
    "content",
    "created_at",
    "input_tokens",
    "output_tokens",
    "status",
    "model",
    "citations",
    "sources",
    "attachments",
    "chunk_count",
    "finish_reason",
    "error_message",
    "error_code",
    "routing",
    "mode",
    "interaction_mode",
    "steps",
)
_MESSAGE_VIEW = [messages.c[name] for name in MESSAGE_VIEW]

# The statements of every turn are built once, with their values passed at execute time:
# SQLAlchemy then reuses their compiled form instead of building and keying a new
# statement (with fresh bound literals) on each call.
_GET_CONVERSATION = select(conversations).where(
    and_(
        conversations.c.id == bindparam("b_id"),
        conversations.c.device_id == bindparam("b_device"),
    )
)
_INSERT_CONVERSATION = conversations.insert()
_TOUCH_CONVERSATION = (
    update(conversations)
    .where(conversations.c.id == bindparam("b_id"))
    .values(message_count=conversations.c.message_count + bindparam("b_added", type_=Integer))
)
_ADD_TOKENS = (
    update(conversations)
    .where(conversations.c.id == bindparam("b_id"))
    .values(total_tokens=conversations.c.total_tokens + bindparam("b_tokens", type_=Integer))
)
_INSERT_MESSAGE = messages.insert()
_MESSAGE_DEFAULTS = {"input_tokens": 0, "output_tokens": 0, "chunk_count": 0, "coins_charged": 0}
_FIND_MESSAGE = (
    select(messages)
    .join(conversations, conversations.c.id == messages.c.conversation_id)
    .where(
        and_(messages.c.id == bindparam("b_id"), conversations.c.device_id == bindparam("b_device"))
    )
)
_COUNT_STREAMING = (
    select(func.count())
    .select_from(messages)
    .join(conversations, conversations.c.id == messages.c.conversation_id)
    .where(
        and_(
            messages.c.status == ASSISTANT_LIVE, conversations.c.device_id == bindparam("b_device")
        )
    )
)
# Only a message still streaming changes; the columns set are the execute parameters.
_FINISH_MESSAGE = update(messages).where(
    and_(messages.c.id == bindparam("b_id"), messages.c.status == ASSISTANT_LIVE)
)
_SAVE_PARTIALS = (
    update(messages)
    .where(and_(messages.c.id == bindparam("b_id"), messages.c.status == ASSISTANT_LIVE))
    .values(
        content=bindparam("b_content"),
        chunk_count=bindparam("b_chunks"),
        chunk_ends=bindparam("b_ends"),
        heartbeat_at=bindparam("b_now"),
        updated_at=bindparam("b_now"),
    )
)
_SAVE_STEPS = (
    update(messages)
    .where(and_(messages.c.id == bindparam("b_id"), messages.c.status == ASSISTANT_LIVE))
    .values(steps=bindparam("b_steps"))
)


async def get_conversation(
    conn: AsyncConnection, *, conversation_id: str, device_id: str
) -> Row[Any] | None:
    params = {"b_id": conversation_id, "b_device": device_id}
    return (await conn.execute(_GET_CONVERSATION, params)).first()


def owns_conversation(conn: Connection, *, conversation_id: str, device_id: str) -> bool:
    """Whether the device has this conversation (inside a transaction)."""
    params = {"b_id": conversation_id, "b_device": device_id}
    return run_direct(conn, _GET_CONVERSATION, params).first() is not None


def create_conversation(conn: Connection, **fields: Any) -> None:
    """A new conversation (`conversation_row`'s fields)."""
    run_direct(conn, _INSERT_CONVERSATION, conversation_row(**fields)[1])


def conversation_row(
    *,
    conversation_id: str,
    device_id: str,
    title: str,
    model: str,
    now: datetime,
    message_count: int = 0,
    active_leaf_id: str | None = None,
) -> NewRow:
    """A new conversation's row. `message_count`: the messages inserted with it, so no
    touch has to follow; `active_leaf_id`: the answer it is created for, so no
    `tree.set_leaf` either (a statement, and on PostgreSQL a round trip, fewer per new
    conversation)."""
    return conversations, {
        "active_leaf_id": active_leaf_id,
        "id": conversation_id,
        "device_id": device_id,
        "title": title,
        "model": model,
        "created_at": now,
        "updated_at": now,
        "message_count": message_count,
        "total_tokens": 0,
    }


def touch_conversation(
    conn: Connection,
    *,
    conversation_id: str,
    model: str,
    now: datetime,
    added: int,
    leaf_id: str,
) -> None:
    """A turn in an existing conversation: its count, model, time and the answer as the
    end of the path it shows, in one statement."""
    run_direct(
        conn,
        _TOUCH_CONVERSATION,
        {
            "b_id": conversation_id,
            "b_added": added,
            "updated_at": now,
            "model": model,
            "active_leaf_id": leaf_id,
        },
    )


def insert_message(conn: Connection, **values: Any) -> None:
    """Columns not given are left out (NULL), never written as a JSON null. Each set of
    given columns compiles once: callers use a handful."""
    run_direct(conn, _INSERT_MESSAGE, _MESSAGE_DEFAULTS | values)


def message_row(**values: Any) -> NewRow:
    """A message's row as `insert_message` writes it, for `insert_rows`."""
    return messages, _MESSAGE_DEFAULTS | values


async def find_message(
    conn: AsyncConnection, *, message_id: str, device_id: str
) -> StoredMessage | None:
    """An assistant or user message, only if its conversation belongs to the device."""
    params = {"b_id": message_id, "b_device": device_id}
    return _stored((await conn.execute(_FIND_MESSAGE, params)).first())


async def newest_assistant(conn: AsyncConnection, *, conversation_id: str) -> StoredMessage | None:
    return _stored(
        (
            await conn.execute(
                select(messages)
                .where(
                    and_(
                        messages.c.conversation_id == conversation_id,
                        messages.c.role == "assistant",
                    )
                )
                .order_by(messages.c.created_at.desc(), messages.c.id.desc())
                .limit(1)
            )
        ).first()
    )


async def last_turn(conn: AsyncConnection, *, conversation_id: str) -> list[StoredMessage]:
    """The newest user message and the assistant message after it (newest first)."""
    rows = await conn.execute(
        select(messages)
        .where(messages.c.conversation_id == conversation_id)
        .order_by(messages.c.created_at.desc(), messages.c.id.desc())
        .limit(2)
    )
    return [StoredMessage.of(row) for row in rows]


def count_streaming(conn: Connection, *, device_id: str) -> int:
    """Answers of this device still being written (on any instance)."""
    return int(run_direct(conn, _COUNT_STREAMING, {"b_device": device_id}).scalar_one())


def streaming_count() -> ScalarSelect[Any]:
    """`count_streaming` as a scalar subquery (bound by `b_device`): part of a turn's
    first look (vedika.chat.preflight)."""
    return _COUNT_STREAMING.scalar_subquery()


_MESSAGES = (
    select(*_MESSAGE_VIEW)
    .where(messages.c.conversation_id == bindparam("b_conversation"))
    .order_by(messages.c.created_at, messages.c.id)
)
_FIRST_MESSAGES = _MESSAGES.limit(bindparam("b_limit", type_=Integer))


_MESSAGES_READ = PointRead(_MESSAGES)


async def read_messages(store: Store, *, conversation_id: str) -> list[tuple[Any, ...]]:
    """`list_messages` as a point read, outside any transaction."""
    return await store.all(_MESSAGES_READ, {"b_conversation": conversation_id})


async def list_messages(
    conn: AsyncConnection, *, conversation_id: str, limit: int | None = None
) -> Sequence[Row[Any]]:
    """The conversation's messages, oldest first: the columns a client is shown (plus
    `status`), not the bookkeeping ones, whose decoding (timestamps parsed from text on
    SQLite) would cost as much as the rest for a long conversation. Each row is in the
    order of `MESSAGE_VIEW`."""
    if limit:
        values = {"b_conversation": conversation_id, "b_limit": limit}
        return (await conn.execute(_FIRST_MESSAGES, values)).all()
    return (await conn.execute(_MESSAGES, {"b_conversation": conversation_id})).all()


async def save_partials(conn: AsyncConnection, *, rows: list[dict[str, Any]]) -> None:
    """One statement for every live answer's partial text (the periodic flush)."""
    if not rows:
        return
    await conn.execute(_SAVE_PARTIALS, rows)


def finish_message(conn: Connection, *, message_id: str, **values: Any) -> bool:
    """Write an answer's final state, once: only a message still streaming changes."""
    result = run_direct(conn, _FINISH_MESSAGE, {"b_id": message_id, **values})
    return bool(result.rowcount)


def add_tokens(conn: Connection, *, conversation_id: str, tokens: int, now: datetime) -> None:
    params = {"b_id": conversation_id, "b_tokens": tokens, "updated_at": now}
    run_direct(conn, _ADD_TOKENS, params)


_FINISH_COUNTED: dict[tuple[str, ...], Any] = {}  # by the columns set: a handful


def _finish_counted(columns: tuple[str, ...]) -> Any:
    """`finish_counted`'s statement on PostgreSQL, built once per set of columns (built
    per call, it cost three times its execution: the construct and its cache key)."""
    stmt = _FINISH_COUNTED.get(columns)
    if stmt is None:
        done = (
            update(messages)
            .where(and_(messages.c.id == bindparam("b_id"), messages.c.status == ASSISTANT_LIVE))
            .values({k: bindparam(f"v_{k}", type_=messages.c[k].type) for k in columns})
            .returning(messages.c.conversation_id)
            .cte("done")
        )
        stmt = _FINISH_COUNTED[columns] = (
            update(conversations)
            .where(conversations.c.id == done.c.conversation_id)
            .values(
                total_tokens=conversations.c.total_tokens + bindparam("b_tokens", type_=Integer),
                updated_at=bindparam("b_now", type_=conversations.c.updated_at.type),
            )
        )
    return stmt


async def finish_counted(
    store: Store,
    *,
    message_id: str,
    conversation_id: str,
    tokens: int,
    now: datetime,
    values: dict[str, Any],
) -> bool:
    """`finish_message`, then `add_tokens` to its conversation if it was still streaming;
    whether it was. On PostgreSQL one statement (the message's update in a WITH, the
    conversation's after it), run without a transaction around it: one round trip where
    BEGIN, two updates and COMMIT made four. SQLite updates no table in a WITH: there it
    is the two statements in one transaction."""
    if store.dialect == "postgresql":
        params = {f"v_{k}": v for k, v in values.items()}
        params |= {"b_id": message_id, "b_tokens": tokens, "b_now": now}
        return await store.write_one(_finish_counted(tuple(values)), params) > 0

    def write(conn: Connection) -> bool:
        if not finish_message(conn, message_id=message_id, **values):
            return False
        add_tokens(conn, conversation_id=conversation_id, tokens=tokens, now=now)
        return True

    return await store.run_tx(write)


async def stale_streaming(
    conn: AsyncConnection, *, older_than: datetime | None, instance_id: str | None = None
) -> list[Any]:
    """Answers marked streaming whose generation looks dead."""
    cond = [messages.c.status == ASSISTANT_LIVE]
    if older_than is not None:
        cond.append(or_(messages.c.heartbeat_at.is_(None), messages.c.heartbeat_at < older_than))
    if instance_id is not None:
        cond.append(messages.c.instance_id == instance_id)
    query = (
        select(
            messages.c.id,
            messages.c.conversation_id,
            messages.c.chunk_count,
            messages.c.chunk_ends,
            messages.c.content,
            messages.c.steps.isnot(None).label("has_steps"),
            conversations.c.device_id,
        )
        .join(conversations, conversations.c.id == messages.c.conversation_id)
        .where(and_(*cond))
    )
    return list((await conn.execute(query)).all())


# One conversation as the list shows it (a page of them: vedika.store.organise).
LISTED = (  # vedika.store.organise lists these, and its own flags
    conversations.c.id,
    conversations.c.title,
    conversations.c.model,
    conversations.c.created_at,
    conversations.c.updated_at,
    conversations.c.message_count,
    conversations.c.total_tokens,
)
_OWNED = conversations.c.device_id == bindparam("b_device")


@dataclass(frozen=True, slots=True)
class Listed:
    """A conversation as the list shows it."""

    id: str
    title: str
    model: str
    created_at: datetime
    updated_at: datetime
    message_count: int
    total_tokens: int


_ONE_LISTED = PointRead(
    select(*LISTED).where(and_(conversations.c.id == bindparam("b_id"), _OWNED))
)


async def listed_conversation(
    store: Store, *, conversation_id: str, device_id: str
) -> Listed | None:
    """The device's conversation as the list shows it, or None (a point read)."""
    row = await store.first(_ONE_LISTED, {"b_id": conversation_id, "b_device": device_id})
    return Listed(*row) if row is not None else None


async def rename_conversation(
    conn: AsyncConnection, *, conversation_id: str, device_id: str, title: str
) -> bool:
    result = await conn.execute(
        update(conversations)
        .where(and_(conversations.c.id == conversation_id, conversations.c.device_id == device_id))
        .values(title=title)
    )
    return bool(result.rowcount)


async def delete_conversation(
    conn: AsyncConnection, *, conversation_id: str, device_id: str
) -> bool:
    owned = await get_conversation(conn, conversation_id=conversation_id, device_id=device_id)
    if owned is None:
        return False
    await conn.execute(delete(shares).where(shares.c.conversation_id == conversation_id))
    await conn.execute(delete(messages).where(messages.c.conversation_id == conversation_id))
    await conn.execute(delete(conversations).where(conversations.c.id == conversation_id))
    return True


async def save_steps(conn: AsyncConnection, *, rows: list[dict[str, Any]]) -> None:
    """The step events of live answers whose steps changed (the periodic flush)."""
    if not rows:
        return
    await conn.execute(_SAVE_STEPS, rows)
