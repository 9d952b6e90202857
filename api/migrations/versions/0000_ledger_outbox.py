"""the ledger's outbox: events, the EPCs they name, and their anchoring batches

The oldest tables: a database that only ``circular deploy``, ``worker`` or ``export`` had opened while the ledger still
created its own tables holds exactly these, unstamped; ``api.db.upgrade`` recognises it and stamps it here.

Revision ID: 0000
Revises:
Create Date: 2026-11-23 05:21:26.463953
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0000"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ledger_batches",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("PREPARED", "SENT", "CONFIRMED", name="batchstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("tx_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("raw_tx", sa.LargeBinary(), nullable=True),
        sa.Column("nonce", sa.BigInteger(), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("root"),
    )
    with op.batch_alter_table("ledger_batches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ledger_batches_status"), ["status"], unique=False)

    op.create_table(
        "ledger_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=120), nullable=False),
        sa.Column("digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("event", sa.JSON(), nullable=False),
        sa.Column("signer", sa.String(length=42), nullable=False),
        sa.Column("signature", sa.LargeBinary(length=65), nullable=False),
        sa.Column("deadline", sa.BigInteger(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("PENDING", "BATCHED", "ANCHORED", name="eventstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("batch_id", sa.Integer(), nullable=True),
        sa.Column("proof", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["ledger_batches.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("digest"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("ledger_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ledger_events_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ledger_events_signer"), ["signer"], unique=False)
        batch_op.create_index(batch_op.f("ix_ledger_events_status"), ["status"], unique=False)

    op.create_table(
        "ledger_event_epcs",
        sa.Column("event_pk", sa.Integer(), nullable=False),
        sa.Column("epc", sa.String(length=512), nullable=False),
        sa.ForeignKeyConstraint(["event_pk"], ["ledger_events.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("event_pk", "epc"),
    )
    with op.batch_alter_table("ledger_event_epcs", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_event_epcs_epc", ["epc"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ledger_event_epcs", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_event_epcs_epc")

    op.drop_table("ledger_event_epcs")
    with op.batch_alter_table("ledger_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_events_status"))
        batch_op.drop_index(batch_op.f("ix_ledger_events_signer"))
        batch_op.drop_index(batch_op.f("ix_ledger_events_batch_id"))

    op.drop_table("ledger_events")
    with op.batch_alter_table("ledger_batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_batches_status"))

    op.drop_table("ledger_batches")
