"""Catena-X passports: the product master data the Generic Digital Product Passport 7.0.0 requires (expected lifetime,
volumes, gross weight) and each brand's economic-operator data (identifier, address, contact)

Revision ID: 0013_catenax_masterdata
Revises: 0012_return_requests_expire
Create Date: 2026-12-07 09:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_catenax_masterdata"
down_revision: str | None = "0012_return_requests_expire"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PRODUCT_COLUMNS = ("lifespan_years", "volume_cm3", "gross_weight_grams", "gross_volume_cm3")


def upgrade() -> None:
    with op.batch_alter_table("api_products") as batch:
        batch.add_column(sa.Column("lifespan_years", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("volume_cm3", sa.Float(), nullable=True))
        batch.add_column(sa.Column("gross_weight_grams", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("gross_volume_cm3", sa.Float(), nullable=True))
    op.create_table(
        "api_operators",
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("identifier", sa.String(length=16), nullable=False),
        sa.Column("street", sa.String(length=200), nullable=False),
        sa.Column("house_number", sa.String(length=20), nullable=True),
        sa.Column("post_code", sa.String(length=20), nullable=False),
        sa.Column("city", sa.String(length=120), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("website", sa.String(length=500), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["api_actors.id"]),
        sa.PrimaryKeyConstraint("actor_id"),
    )


def downgrade() -> None:
    op.drop_table("api_operators")
    with op.batch_alter_table("api_products") as batch:
        for name in reversed(PRODUCT_COLUMNS):
            batch.drop_column(name)
