"""SQLite's full-text index over messages, written in batches.

FTS5 writes an index segment for every transaction that adds to it. When each stored
message went into the index in its own transaction (0008's triggers), that was 9-12 of
the ~57 pages a turn wrote, and a tenth of a turn's CPU. Since migration 0013 the
triggers only queue the message (`messages_search_queue`, one small table) and the
index takes the queue here, many messages in one transaction, one segment:

- before every search (`before_search`), so a search finds everything stored before it;
- every second (`SearchIndexer`), so the queue stays short and no search waits on it.

PostgreSQL's index is a generated column (0008): nothing is queued there.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from vedika.store.engine import Store

log = structlog.get_logger(__name__)

BATCH = 2000  # messages per transaction: the write lock is held for one batch at a time
EVERY = 1.0  # s between the indexer's rounds

_LAST = text(
    "SELECT max(message_rowid) FROM (SELECT message_rowid FROM messages_search_queue "
    "ORDER BY message_rowid LIMIT :b_batch)"
)
_INDEX = (
    # A message is never in the index twice, whatever queued it.
    text(
        "DELETE FROM messages_fts WHERE rowid IN "
        "(SELECT message_rowid FROM messages_search_queue WHERE message_rowid <= :b_last)"
    ),
    text(
        "INSERT INTO messages_fts(rowid, content, conversation_id, message_id) "
        "SELECT m.rowid, m.content, m.conversation_id, m.id FROM messages AS m "
        "JOIN messages_search_queue AS q ON q.message_rowid = m.rowid "
        "WHERE q.message_rowid <= :b_last AND m.status <> 'streaming' AND m.content <> ''"
    ),
    text("DELETE FROM messages_search_queue WHERE message_rowid <= :b_last"),
)


def index_batch(conn: Connection, batch: int = BATCH) -> int:
    """Move up to `batch` queued messages into the index (in the caller's transaction);
    how many were queued. Nothing is written when the queue is empty."""
    last = conn.execute(_LAST, {"b_batch": batch}).scalar()
    if last is None:
        return 0
    for statement in _INDEX:
        result = conn.execute(statement, {"b_last": last})
    return int(result.rowcount)


async def catch_up(store: Store) -> None:
    """Index everything queued (SQLite; nothing to do on PostgreSQL)."""
    if store.dialect != "sqlite":
        return
    while await store.run_tx(index_batch) == BATCH:
        pass


async def before_search(store: Store) -> None:
    """`catch_up`, for a search: one the database cannot write for (a full disk) still
    runs, on the index as it is, rather than failing a read for a write."""
    try:
        await catch_up(store)
    except (SQLAlchemyError, OSError) as exc:
        log.warning("search_index.not_caught_up", error=str(exc)[:200])


class SearchIndexer:
    """`catch_up` every `every` seconds in the background (SQLite)."""

    def __init__(self, store: Store, every: float = EVERY) -> None:
        self.store = store
        self.every = every
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.store.dialect == "sqlite":
            self._task = asyncio.create_task(self._loop(), name="vedika-search-indexer")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                await catch_up(self.store)
            except (SQLAlchemyError, OSError) as exc:  # the next round tries again
                log.warning("search_index.failed", error=str(exc)[:200])
            except Exception:  # the indexer must outlive any one bad round
                log.exception("search_index.crashed")
