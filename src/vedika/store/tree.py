"""A conversation as a tree of messages: parents, the active path, siblings.

Each message has a parent (migration 0009): a question the answer it continues from
(NULL for a first question), an answer its question. Siblings share a parent: edited
questions, regenerated answers. `conversations.active_leaf_id` ends the path that is
shown and that a turn without branch fields continues from. A conversation whose
active leaf is NULL was written without parents (before 0009's backfill could see it,
or by a writer that knows nothing of branches): it reads as one linear chain, in the
order of `created_at`, and the first turn on it stores that chain (`linearise`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from vedika.store.conversations import MESSAGE_VIEW
from vedika.store.direct import run as run_direct
from vedika.store.engine import Store
from vedika.store.pointread import PointRead
from vedika.store.tables import conversations, messages

_BY_CONVERSATION = messages.c.conversation_id == bindparam("b_conversation")
_ORDER = (messages.c.created_at, messages.c.id)

# Everything GET /ai/conversations/{id} shows, with each message's parent and the
# conversation's active leaf (the same on every row): one read.
_ACTIVE_LEAF = (
    select(conversations.c.active_leaf_id)
    .where(conversations.c.id == bindparam("b_conversation"))
    .scalar_subquery()
)
_VIEW_READ = PointRead(
    select(
        *[messages.c[name] for name in MESSAGE_VIEW],
        messages.c.parent_id,
        _ACTIVE_LEAF.label("active_leaf_id"),
    )
    .where(_BY_CONVERSATION)
    .order_by(*_ORDER)
)
_SHAPE = select(messages.c.id, messages.c.parent_id).where(_BY_CONVERSATION).order_by(*_ORDER)
HISTORY_MESSAGES = 200  # the most of a path read for a prompt (as before branches)
_HISTORY = select(messages.c.id, messages.c.role, messages.c.content, messages.c.status).where(
    messages.c.id.in_(bindparam("b_ids", expanding=True))
)
_LOCK = (
    select(conversations.c.id, conversations.c.active_leaf_id)
    .where(
        and_(
            conversations.c.id == bindparam("b_id"),
            conversations.c.device_id == bindparam("b_device"),
        )
    )
    .with_for_update()  # PostgreSQL: one turn of a conversation at a time
)
_MESSAGE = select(messages.c.id, messages.c.role, messages.c.parent_id).where(
    and_(messages.c.id == bindparam("b_id"), _BY_CONVERSATION)
)
_SET_LEAF = (
    update(conversations)
    .where(conversations.c.id == bindparam("b_id"))
    .values(active_leaf_id=bindparam("b_leaf"))
)
_SET_PARENT = (
    update(messages).where(messages.c.id == bindparam("b_id")).values(parent_id=bindparam("b_p"))
)


@dataclass(slots=True)
class Tree:
    """The shape of one conversation: ids in stored order, and who is whose child."""

    parents: dict[str, str | None] = field(default_factory=dict)
    children: dict[str | None, list[str]] = field(default_factory=dict)  # oldest first
    active_leaf: str | None = None
    linear: bool = False  # written without parents: one chain in stored order

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, str | None]], active_leaf: str | None) -> Tree:
        """`pairs`: (id, parent id) in stored order (`created_at`, `id`)."""
        tree = cls(active_leaf=active_leaf, linear=active_leaf is None)
        previous: str | None = None
        for message_id, parent_id in pairs:
            parent = previous if tree.linear else parent_id
            tree.parents[message_id] = parent
            tree.children.setdefault(parent, []).append(message_id)
            previous = message_id
        if tree.linear:
            tree.active_leaf = previous
        return tree

    def path(self, leaf: str | None = None) -> list[str]:
        """Root to `leaf` (the active leaf by default)."""
        node = leaf if leaf is not None else self.active_leaf
        out: list[str] = []
        seen: set[str] = set()
        while node is not None and node in self.parents and node not in seen:
            seen.add(node)
            out.append(node)
            node = self.parents[node]
        out.reverse()
        return out

    def latest_leaf(self, message_id: str) -> str:
        """The deepest latest descendant: follow the newest child down to a leaf."""
        node = message_id
        for _ in range(len(self.parents) + 1):
            kids = self.children.get(node)
            if not kids:
                break
            node = kids[-1]
        return node

    def siblings(self, message_id: str) -> list[str]:
        return self.children.get(self.parents.get(message_id), [message_id])


@dataclass(frozen=True, slots=True)
class Shown:
    """The active path as GET /ai/conversations/{id} shows it."""

    rows: list[tuple[Any, ...]]  # in MESSAGE_VIEW's order
    branch: list[dict[str, Any]]  # each row's parent_id, sibling_index/count/ids


async def shown_path(store: Store, *, conversation_id: str) -> Shown:
    """The messages on the active path, root first, with their branch fields."""
    rows = await store.all(_VIEW_READ, {"b_conversation": conversation_id})
    width = len(MESSAGE_VIEW)
    active = rows[0][width + 1] if rows else None
    tree = Tree.of(((r[0], r[width]) for r in rows), active)
    by_id = {r[0]: r for r in rows}
    path = tree.path()
    out_rows: list[tuple[Any, ...]] = []
    branch: list[dict[str, Any]] = []
    for message_id in path:
        siblings = tree.siblings(message_id)
        out_rows.append(tuple(by_id[message_id][:width]))
        branch.append(
            {
                "parent_id": tree.parents[message_id],
                "sibling_index": siblings.index(message_id),
                "sibling_count": len(siblings),
                "sibling_ids": list(siblings),
            }
        )
    return Shown(out_rows, branch)


async def tree_of(conn: AsyncConnection, *, conversation_id: str) -> Tree:
    """The conversation's shape (ids and parents) and its active leaf."""
    shape = (await conn.execute(_SHAPE, {"b_conversation": conversation_id})).all()
    leaf = (
        await conn.execute(
            select(conversations.c.active_leaf_id).where(conversations.c.id == conversation_id)
        )
    ).scalar()
    return Tree.of(((r.id, r.parent_id) for r in shape), leaf)


async def set_active(conn: AsyncConnection, *, conversation_id: str, leaf_id: str) -> None:
    await conn.execute(_SET_LEAF, {"b_id": conversation_id, "b_leaf": leaf_id})


async def history(
    conn: AsyncConnection, *, conversation_id: str, parent_id: str, budget_chars: int
) -> list[dict[str, str]]:
    """The path from the root to `parent_id`, for the prompt: the turns that ended
    well, newest kept first within a character budget, starting with a question. The
    shape is read first (ids only), then the text of at most the newest
    `HISTORY_MESSAGES` messages on the path."""
    shape = (await conn.execute(_SHAPE, {"b_conversation": conversation_id})).all()
    parents = {r.id: r.parent_id for r in shape}
    path: list[str] = []  # newest first
    node: str | None = parent_id
    while node is not None and node in parents and len(path) < HISTORY_MESSAGES:
        path.append(node)
        node = parents[node]
    if not path:
        return []
    rows = (await conn.execute(_HISTORY, {"b_ids": path})).all()
    by_id = {r.id: r for r in rows}
    kept: list[dict[str, str]] = []
    used = 0
    for message_id in path:
        row = by_id.get(message_id)
        if row is None or not row.content or row.status not in ("complete", "stopped"):
            continue
        used += len(row.content)
        if used > budget_chars:
            break
        kept.append({"role": row.role, "content": row.content})
    kept.reverse()
    while kept and kept[0]["role"] != "user":  # a prompt starts with a question
        kept.pop(0)
    return kept


# ---------------------------------------------------------------- inside a turn


@dataclass(frozen=True, slots=True)
class Locked:
    """The conversation a turn writes into, its row locked (PostgreSQL)."""

    id: str
    active_leaf: str | None


def lock(conn: Connection, *, conversation_id: str, device_id: str) -> Locked | None:
    """The device's conversation, locked until the turn commits (`FOR UPDATE` on
    PostgreSQL; SQLite's write lock already orders turns); None if it is not the
    device's. A conversation without an active leaf is stored as its linear chain."""
    row = run_direct(conn, _LOCK, {"b_id": conversation_id, "b_device": device_id}).first()
    if row is None:
        return None
    leaf = row.active_leaf_id
    if leaf is None:
        leaf = linearise(conn, conversation_id=conversation_id)
    return Locked(row.id, leaf)


def linearise(conn: Connection, *, conversation_id: str) -> str | None:
    """Give a conversation written without parents its chain; its last message."""
    ids = [r.id for r in conn.execute(_SHAPE, {"b_conversation": conversation_id})]
    pairs = [{"b_id": mid, "b_p": prev} for prev, mid in itertools.pairwise(ids)]
    if pairs:
        conn.execute(_SET_PARENT, pairs)
    last = ids[-1] if ids else None
    if last is not None:
        set_leaf(conn, conversation_id=conversation_id, leaf_id=last)
    return last


@dataclass(frozen=True, slots=True)
class Member:
    id: str
    role: str
    parent_id: str | None


def member(conn: Connection, *, conversation_id: str, message_id: str) -> Member | None:
    """The message, if it is one of this conversation's."""
    row = run_direct(
        conn, _MESSAGE, {"b_id": message_id, "b_conversation": conversation_id}
    ).first()
    return Member(row.id, row.role, row.parent_id) if row is not None else None


def set_leaf(conn: Connection, *, conversation_id: str, leaf_id: str) -> None:
    run_direct(conn, _SET_LEAF, {"b_id": conversation_id, "b_leaf": leaf_id})
