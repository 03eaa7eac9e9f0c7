"""Granted coins kept until spent (issue 17): `coin_grants`, one balance per owner.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # No data to move: grants (0006) were never released raising a day's allowance.
    op.create_table(
        "coin_grants",
        sa.Column("device_id", sa.String(128), primary_key=True),
        sa.Column("balance", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("coin_grants")
