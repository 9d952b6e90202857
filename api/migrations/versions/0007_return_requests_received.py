"""api_return_requests.received_at and received_by_id: the intake that took the item in closes its return request

Revision ID: 0007_return_requests_received
Revises: 0006_lots_allocated_items_holder
Create Date: 2026-12-07 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_return_requests_received"
down_revision: str | None = "0006_lots_allocated_items_holder"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_return_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("received_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("received_by_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_api_return_requests_received_by_id_api_actors"), "api_actors", ["received_by_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("api_return_requests", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_api_return_requests_received_by_id_api_actors"), type_="foreignkey")
        batch_op.drop_column("received_by_id")
        batch_op.drop_column("received_at")
