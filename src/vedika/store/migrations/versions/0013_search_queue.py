"""SQLite's full-text index written in batches (issue 15): `messages_search_queue`.

The triggers of 0008 wrote each message into the FTS5 index as it was stored, and FTS5
writes an index segment per transaction: 9-12 of the ~57 pages a turn wrote went to
the index, and a turn without them cost a tenth less CPU. Now the same triggers (same
names, same conditions) only queue the message's rowid, and `vedika.store.search_queue`
moves the queue into the index in batches: before every search, so a search finds
everything stored before it, and every second. A message deleted while queued leaves
the queue with it. What the index holds already stays as it is.

PostgreSQL: nothing (its index is a generated column, 0008).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_TRIGGERS = ("messages_fts_insert", "messages_fts_finish", "messages_fts_delete")

_QUEUED = [
    "CREATE TABLE messages_search_queue (message_rowid INTEGER PRIMARY KEY)",
    "CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages "
    "WHEN new.status <> 'streaming' AND new.content <> '' BEGIN "
    "INSERT OR IGNORE INTO messages_search_queue(message_rowid) VALUES (new.rowid); END",
    "CREATE TRIGGER messages_fts_finish AFTER UPDATE OF status ON messages "
    "WHEN old.status = 'streaming' AND new.status <> 'streaming' AND new.content <> '' "
    "BEGIN "
    "INSERT OR IGNORE INTO messages_search_queue(message_rowid) VALUES (new.rowid); END",
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN "
    "DELETE FROM messages_search_queue WHERE message_rowid = old.rowid; "
    "DELETE FROM messages_fts WHERE rowid = old.rowid AND message_id = old.id; END",
]

# 0008's, for the downgrade (after the queue has gone into the index).
_DIRECT = [
    "CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages "
    "WHEN new.status <> 'streaming' AND new.content <> '' BEGIN "
    "INSERT INTO messages_fts(rowid, content, conversation_id, message_id) "
    "VALUES (new.rowid, new.content, new.conversation_id, new.id); END",
    "CREATE TRIGGER messages_fts_finish AFTER UPDATE OF status ON messages "
    "WHEN old.status = 'streaming' AND new.status <> 'streaming' AND new.content <> '' "
    "BEGIN "
    "DELETE FROM messages_fts WHERE rowid = new.rowid; "
    "INSERT INTO messages_fts(rowid, content, conversation_id, message_id) "
    "VALUES (new.rowid, new.content, new.conversation_id, new.id); END",
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN "
    "DELETE FROM messages_fts WHERE rowid = old.rowid AND message_id = old.id; END",
]

# What vedika.store.search_queue does, all at once.
_DRAIN = [
    "DELETE FROM messages_fts WHERE rowid IN (SELECT message_rowid FROM messages_search_queue)",
    "INSERT INTO messages_fts(rowid, content, conversation_id, message_id) "
    "SELECT m.rowid, m.content, m.conversation_id, m.id FROM messages AS m "
    "JOIN messages_search_queue AS q ON q.message_rowid = m.rowid "
    "WHERE m.status <> 'streaming' AND m.content <> ''",
    "DROP TABLE messages_search_queue",
]


def _drop_triggers() -> None:
    for trigger in _TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _drop_triggers()
    for statement in _QUEUED:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _drop_triggers()
    for statement in [*_DRAIN, *_DIRECT]:
        op.execute(statement)
