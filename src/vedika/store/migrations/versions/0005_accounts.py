"""Accounts: email + password, sessions optionally bound to one (issue 17).

Nothing existing changes owner: every device stays anonymous until someone signs in on
it (docs/accounts.md).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("email", sa.String(254), nullable=False, unique=True),
        sa.Column("name", sa.String(100), nullable=True),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("plan", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.add_column("device_sessions", sa.Column("account_id", sa.String(36), nullable=True))
    op.create_index("ix_device_sessions_account_id", "device_sessions", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_device_sessions_account_id", "device_sessions")
    with op.batch_alter_table("device_sessions") as batch:
        batch.drop_column("account_id")
    op.drop_table("accounts")
