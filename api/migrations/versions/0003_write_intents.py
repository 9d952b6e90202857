"""api_write_intents: writes recorded before their transaction is sent, completed after its receipt

Revision ID: 0003_write_intents
Revises: 0002_audit_scans
Create Date: 2026-11-23 13:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_write_intents"
down_revision: str | None = "0002_audit_scans"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_write_intents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=66), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("sender", sa.String(length=42), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("raw_tx", sa.LargeBinary(), nullable=False),
        sa.Column("tx", sa.JSON(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("effect", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["actor_id"], ["api_actors.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tx_hash"),
    )
    with op.batch_alter_table("api_write_intents", schema=None) as batch_op:
        batch_op.create_index("ix_api_write_intents_sender_nonce", ["sender", "nonce"], unique=False)
        batch_op.create_index(batch_op.f("ix_api_write_intents_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_api_write_intents_subject"), ["subject"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("api_write_intents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_write_intents_subject"))
        batch_op.drop_index(batch_op.f("ix_api_write_intents_status"))
        batch_op.drop_index("ix_api_write_intents_sender_nonce")
    op.drop_table("api_write_intents")
