"""api_lots.allocated_grams (a lot's grams used, and so left) and api_items.holder_id (whose list an item is in)

Both are filled for the rows written before them: a lot's grams from the compositions of the items drawn from it
(items of a run share one composition, so each distinct one is decoded once), an item's holder from the latest
lifecycle write recorded on it, or the recycler owning the lot it was recycled into.

Revision ID: 0006_lots_allocated_items_holder
Revises: 0005_console
Create Date: 2026-12-07 09:00:00
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_lots_allocated_items_holder"
down_revision: str | None = "0005_console"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_lots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("allocated_grams", sa.BigInteger(), server_default="0", nullable=False))
    with op.batch_alter_table("api_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("holder_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_api_items_holder_id"), ["holder_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_api_items_holder_id_api_actors"), "api_actors", ["holder_id"], ["id"]
        )
    bind = op.get_bind()
    allocated: dict[str, int] = defaultdict(int)
    rows = bind.execute(
        sa.text("SELECT CAST(composition AS TEXT), COUNT(*) FROM api_items GROUP BY CAST(composition AS TEXT)")
    )
    for text, count in rows:
        for lot_id, grams in json.loads(text):
            allocated[str(lot_id)] += int(grams) * int(count)
    if allocated:
        bind.execute(
            sa.text("UPDATE api_lots SET allocated_grams = :grams WHERE lot_id = :lot"),
            [{"lot": lot, "grams": grams} for lot, grams in allocated.items()],
        )
    bind.execute(
        sa.text(
            "UPDATE api_items SET holder_id = (SELECT w.actor_id FROM api_write_intents w WHERE w.subject = "
            "api_items.item_id AND w.kind = 'lifecycle' AND w.status = 'done' ORDER BY w.id DESC LIMIT 1)"
        )
    )
    bind.execute(
        sa.text(
            "UPDATE api_items SET holder_id = (SELECT l.owner_id FROM api_lots l WHERE l.lot_id = "
            "api_items.recovered_into) WHERE recovered_into IS NOT NULL"
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("api_items", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_api_items_holder_id_api_actors"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_api_items_holder_id"))
        batch_op.drop_column("holder_id")
    with op.batch_alter_table("api_lots", schema=None) as batch_op:
        batch_op.drop_column("allocated_grams")
