"""Devices with secrets: a device id alone no longer re-binds a device (issue 12).

Every device already known (from its sessions, conversations, files or coins) is
written with no secret: it can be re-bound only by a live session of it, which then
receives a secret.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_KNOWN = (
    "SELECT device_id FROM device_sessions UNION SELECT device_id FROM conversations "
    "UNION SELECT device_id FROM files UNION SELECT device_id FROM coin_days"
)


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("device_id", sa.String(128), primary_key=True),
        sa.Column("secret_hash", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.add_column("device_sessions", sa.Column("client_device_id", sa.String(128), nullable=True))
    op.execute(
        "INSERT INTO devices (device_id, secret_hash, created_at) "
        f"SELECT device_id, NULL, CURRENT_TIMESTAMP FROM ({_KNOWN}) AS known"
    )


def downgrade() -> None:
    with op.batch_alter_table("device_sessions") as batch:
        batch.drop_column("client_device_id")
    op.drop_table("devices")
