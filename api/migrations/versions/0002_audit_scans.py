"""api_scans: resolver scans of registered items, for `circular audit`

Revision ID: 0002_audit_scans
Revises: 0001
Create Date: 2026-11-23 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_audit_scans"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_scans",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("gtin", sa.String(length=14), nullable=False),
        sa.Column("serial", sa.String(length=20), nullable=False),
        sa.Column("region", sa.String(length=2), nullable=True),
        sa.Column("client", sa.String(length=16), nullable=False),
        sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("api_scans", schema=None) as batch_op:
        batch_op.create_index("ix_api_scans_item", ["gtin", "serial", "scanned_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("api_scans", schema=None) as batch_op:
        batch_op.drop_index("ix_api_scans_item")
    op.drop_table("api_scans")
