"""api_items.recovered_into indexed: the provenance trace asks for the items recycled into a generation's lots

Revision ID: 0004_items_recovered_into
Revises: 0003_write_intents
Create Date: 2026-12-06 21:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004_items_recovered_into"
down_revision: str | None = "0003_write_intents"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_api_items_recovered_into"), "api_items", ["recovered_into"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_api_items_recovered_into"), table_name="api_items")
