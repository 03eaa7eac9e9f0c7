"""Edit and branch: messages form a tree (issue 18).

`messages.parent_id` (indexed) and `conversations.active_leaf_id`. Existing
conversations become one linear chain: each message's parent is the message before it
(by `created_at`, then `id`, the order they were always shown in), and the active leaf
is the last message. The same statements run on SQLite and PostgreSQL.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# The message before each one in its conversation (window functions: SQLite >= 3.25).
_LINEAR_PARENTS = """
UPDATE messages SET parent_id = (
    SELECT prev FROM (
        SELECT id, LAG(id) OVER (
            PARTITION BY conversation_id ORDER BY created_at, id
        ) AS prev
        FROM messages
    ) AS ordered
    WHERE ordered.id = messages.id
)
"""

_LAST_MESSAGE = """
UPDATE conversations SET active_leaf_id = (
    SELECT m.id FROM messages AS m
    WHERE m.conversation_id = conversations.id
    ORDER BY m.created_at DESC, m.id DESC
    LIMIT 1
)
"""


def upgrade() -> None:
    op.add_column("messages", sa.Column("parent_id", sa.String(36), nullable=True))
    op.create_index("ix_messages_parent_id", "messages", ["parent_id"])
    op.add_column("conversations", sa.Column("active_leaf_id", sa.String(36), nullable=True))
    op.execute(_LINEAR_PARENTS)
    op.execute(_LAST_MESSAGE)


def downgrade() -> None:
    op.drop_index("ix_messages_parent_id", "messages")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("active_leaf_id")
    if op.get_bind().dialect.name == "sqlite":
        # Not a batch copy of `messages`: that would drop the full-text triggers 0008
        # put on it. SQLite (3.35+) drops an unindexed column in place.
        op.execute("ALTER TABLE messages DROP COLUMN parent_id")
    else:
        op.drop_column("messages", "parent_id")
