"""Modes: the steps of research and agent answers (research_step, tool_call, tool_result
events as they were sent), so a replay after the stream buffer is gone and
`GET /ai/conversations/{id}` still show them.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("steps", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("steps")
