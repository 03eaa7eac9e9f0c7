"""The admin role and mail (issue 17): disabled accounts, the first account (an
admin), the admin audit log, password reset tokens.

On a server that already has accounts, the oldest one becomes the first account
(docs/accounts.md "The admin role").

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("disabled_at", TS, nullable=True))
    op.create_table(
        "first_account",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.execute(
        "INSERT INTO first_account (id, account_id, created_at) "
        "SELECT 1, id, created_at FROM accounts ORDER BY created_at, id LIMIT 1"
    )
    op.create_table(
        "admin_audit",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("admin_account_id", sa.String(36), nullable=False),
        sa.Column("admin_email", sa.String(254), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target", sa.String(128), nullable=True),
        sa.Column("detail", sa.JSON, nullable=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_admin_audit_created", "admin_audit", ["created_at"])
    op.create_table(
        "password_resets",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS, nullable=True),
    )
    op.create_index("ix_password_resets_account_id", "password_resets", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_password_resets_account_id", "password_resets")
    op.drop_table("password_resets")
    op.drop_index("ix_admin_audit_created", "admin_audit")
    op.drop_table("admin_audit")
    op.drop_table("first_account")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("disabled_at")
