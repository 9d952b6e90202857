"""api_masterdata_history: corrections of lots' and products' master data keep what they said before

Revision ID: 0010_masterdata_history
Revises: 0009_actor_accounts_unique
Create Date: 2026-12-07 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_masterdata_history"
down_revision: str | None = "0009_actor_accounts_unique"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_masterdata_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=66), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("previous", sa.JSON(), nullable=False),
        sa.Column("current", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("declaration_id", sa.String(length=120), nullable=True),
        sa.ForeignKeyConstraint(["actor_id"], ["api_actors.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_api_masterdata_history_key", "api_masterdata_history", ["kind", "key", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_api_masterdata_history_key", table_name="api_masterdata_history")
    op.drop_table("api_masterdata_history")
