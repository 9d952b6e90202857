"""ledger_versions (anchored document versions: passports) and api_passport_batches (anchorings rebuilt)

Revision ID: 0008_passport_versions
Revises: 0007_return_requests_received
Create Date: 2026-12-07 05:25:00

Items made before this revision get their first passport version from the API's start-up backfill
(``api/versions.py``), not here: building one takes the passport's content function, which is application code.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_passport_versions"
down_revision: str | None = "0007_return_requests_received"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_passport_batches",
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["ledger_batches.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("batch_id"),
    )
    op.create_table(
        "ledger_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=512), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("content_sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("leaf", sa.LargeBinary(length=32), nullable=False),
        sa.Column(
            "status",
            sa.Enum("PENDING", "BATCHED", "ANCHORED", name="eventstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("batch_id", sa.Integer(), nullable=True),
        sa.Column("proof", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(["batch_id"], ["ledger_batches.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("leaf"),
    )
    with op.batch_alter_table("ledger_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ledger_versions_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ledger_versions_status"), ["status"], unique=False)
        batch_op.create_index("ux_ledger_versions_subject", ["kind", "subject", "number"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("ledger_versions", schema=None) as batch_op:
        batch_op.drop_index("ux_ledger_versions_subject")
        batch_op.drop_index(batch_op.f("ix_ledger_versions_status"))
        batch_op.drop_index(batch_op.f("ix_ledger_versions_batch_id"))
    op.drop_table("ledger_versions")
    op.drop_table("api_passport_batches")
