"""api_return_requests.expires_at: a drop-off code is valid for a configured time

Revision ID: 0012_return_requests_expire
Revises: 0011_untp_credentials
Create Date: 2026-12-07 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0012_return_requests_expire"
down_revision: str | None = "0011_untp_credentials"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The codes handed out before codes expired get the default validity (ApiSettings.drop_off_code_days), from their day.
DEFAULT_DAYS = 30


def upgrade() -> None:
    op.add_column("api_return_requests", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    requests = sa.table(
        "api_return_requests",
        sa.column("id", sa.Integer()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("expires_at", sa.DateTime(timezone=True)),
    )
    bind = op.get_bind()
    rows = bind.execute(sa.select(requests.c.id, requests.c.created_at)).all()
    for row_id, created_at in rows:
        bind.execute(
            sa.update(requests)
            .where(requests.c.id == row_id)
            .values(expires_at=created_at + timedelta(days=DEFAULT_DAYS))
        )


def downgrade() -> None:
    with op.batch_alter_table("api_return_requests") as batch:
        batch.drop_column("expires_at")
