"""Where each chunk of an answer ends (issue 16): `messages.chunk_ends`.

Written with `content` and `chunk_count` (the periodic flush, the settle, the reaper),
so a client resuming after chunk N from the store gets the text after chunk N once
(vedika.chat.streams.stored_events). Existing rows keep NULL: their boundaries are not
known, and a resume from them gets the terminal event only, as before.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("chunk_ends", sa.Text, nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # Not a batch copy of `messages`: that would drop the full-text triggers 0008
        # put on it. SQLite (3.35+) drops an unindexed column in place.
        op.execute("ALTER TABLE messages DROP COLUMN chunk_ends")
    else:
        op.drop_column("messages", "chunk_ends")
