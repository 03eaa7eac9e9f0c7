"""Share links, pinned and archived conversations, full text over messages (issue 18).

- `shares`: one public, read-only snapshot of a conversation per link (the id is the
  unguessable token of the link).
- `conversations.pinned`, `conversations.archived`.
- Full text over what was said, for the sidebar search:
  - SQLite: an FTS5 table `messages_fts` (rowid = the message's rowid, with its
    conversation id), filled by triggers when a message is stored ended (a question)
    or when an answer leaves `streaming` (not at each flush), emptied when a message
    goes; the existing messages are copied in here.
  - PostgreSQL: a generated `tsv` tsvector column (the `simple` configuration: no
    stemming, any language) with a GIN index; PostgreSQL fills it for existing rows.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_SQLITE = [
    "CREATE VIRTUAL TABLE messages_fts USING fts5("
    "content, conversation_id UNINDEXED, message_id UNINDEXED, "
    "tokenize = 'unicode61 remove_diacritics 2')",
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
    "INSERT INTO messages_fts(rowid, content, conversation_id, message_id) "
    "SELECT rowid, content, conversation_id, id FROM messages "
    "WHERE status <> 'streaming' AND content <> ''",
]
_POSTGRES = [
    "ALTER TABLE messages ADD COLUMN tsv tsvector GENERATED ALWAYS AS ("
    "to_tsvector('simple', content)) STORED",
    "CREATE INDEX ix_messages_tsv ON messages USING GIN (tsv)",
]


def upgrade() -> None:
    op.create_table(
        "shares",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("conversation_id", sa.String(36), nullable=False),
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("snapshot", sa.JSON, nullable=False),
        sa.Column("allow_indexing", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_shares_conversation", "shares", ["conversation_id"])
    op.add_column(
        "conversations",
        sa.Column("pinned", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "conversations",
        sa.Column("archived", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    # The list's order: the owner's shelf (archived or not), pinned first, newest first.
    op.create_index(
        "ix_conversations_owner_list",
        "conversations",
        ["device_id", "archived", "pinned", "updated_at"],
    )
    statements = _SQLITE if op.get_bind().dialect.name == "sqlite" else _POSTGRES
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("messages_fts_insert", "messages_fts_finish", "messages_fts_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS messages_fts")
    else:
        op.execute("DROP INDEX IF EXISTS ix_messages_tsv")
        op.execute("ALTER TABLE messages DROP COLUMN IF EXISTS tsv")
    op.drop_index("ix_conversations_owner_list", "conversations")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("archived")
        batch.drop_column("pinned")
    op.drop_index("ix_shares_conversation", "shares")
    op.drop_table("shares")
