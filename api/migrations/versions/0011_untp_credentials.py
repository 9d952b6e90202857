"""UNTP passport credentials: product master data a Digital Product Passport needs, brands' credential keys, and
the credentials' revocation status

Revision ID: 0011_untp_credentials
Revises: 0010_masterdata_history
Create Date: 2026-12-07 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_untp_credentials"
down_revision: str | None = "0010_masterdata_history"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_products") as batch:
        batch.add_column(sa.Column("category_code", sa.String(length=5), nullable=True))
        batch.add_column(sa.Column("category_name", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("facility_gln", sa.String(length=13), nullable=True))
        batch.add_column(sa.Column("facility_name", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("production_country", sa.String(length=2), nullable=True))
    op.create_table(
        "api_credential_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("alg", sa.String(length=16), nullable=False),
        sa.Column("public_jwk", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["actor_id"], ["api_actors.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kid", name="uq_api_credential_keys_kid"),
    )
    op.create_index("ix_api_credential_keys_actor", "api_credential_keys", ["actor_id", "id"], unique=False)
    op.create_table(
        "api_credential_status",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subject", sa.String(length=512), nullable=False),
        sa.Column("brand_id", sa.Integer(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["brand_id"], ["api_actors.id"]),
        sa.ForeignKeyConstraint(["revoked_by"], ["api_actors.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subject", name="uq_api_credential_status_subject"),
    )
    op.create_index("ix_api_credential_status_brand", "api_credential_status", ["brand_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_api_credential_status_brand", table_name="api_credential_status")
    op.drop_table("api_credential_status")
    op.drop_index("ix_api_credential_keys_actor", table_name="api_credential_keys")
    op.drop_table("api_credential_keys")
    with op.batch_alter_table("api_products") as batch:
        for name in ("production_country", "facility_name", "facility_gln", "category_name", "category_code"):
            batch.drop_column(name)
