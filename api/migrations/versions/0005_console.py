"""api_console_*: console sessions, one-time sign-in links and form submissions (a second click answers the first)

Revision ID: 0005_console
Revises: 0004_items_recovered_into
Create Date: 2026-12-07 06:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_console"
down_revision: str | None = "0004_items_recovered_into"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_console_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["api_actors.id"]),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    with op.batch_alter_table("api_console_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_console_sessions_actor_id"), ["actor_id"], unique=False)
    op.create_table(
        "api_console_links",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["actor_id"], ["api_actors.id"]),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    with op.batch_alter_table("api_console_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_console_links_actor_id"), ["actor_id"], unique=False)
    op.create_table(
        "api_console_submissions",
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["actor_id"], ["api_actors.id"]),
        sa.PrimaryKeyConstraint("actor_id", "key"),
    )


def downgrade() -> None:
    op.drop_table("api_console_submissions")
    with op.batch_alter_table("api_console_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_console_links_actor_id"))
    op.drop_table("api_console_links")
    with op.batch_alter_table("api_console_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_console_sessions_actor_id"))
    op.drop_table("api_console_sessions")
