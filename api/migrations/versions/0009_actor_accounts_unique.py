"""api_actors: no two actors that may act share an account (a unique index on address, among actors not revoked)

Keystores were named by a slug of the actor's name, so a second actor whose name slugged alike (``BRAND-A`` after
``Brand A``) was given the first one's key and account. Where that happened, the later actor is revoked here (it
never had a key of its own; its API key stops working) and the earliest keeps the account.

Revision ID: 0009_actor_accounts_unique
Revises: 0008_passport_versions
Create Date: 2026-12-07 18:00:00
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0009_actor_accounts_unique"
down_revision: str | None = "0008_passport_versions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT id, name, address FROM api_actors WHERE NOT revoked ORDER BY id")
    ).all()
    first: dict[str, tuple[int, str]] = {}
    for actor_id, name, address in rows:
        key = str(address).lower()
        if key not in first:
            first[key] = (actor_id, name)
            continue
        log.warning(
            "actor %r (%d) shares account %s with actor %r (%d): revoked", name, actor_id, address, *first[key][::-1]
        )
        bind.execute(
            sa.text("UPDATE api_actors SET revoked = :yes, revoked_at = :now WHERE id = :id"),
            {"yes": True, "now": datetime.now(UTC), "id": actor_id},
        )
    op.create_index(
        "uq_api_actors_address_active",
        "api_actors",
        ["address"],
        unique=True,
        sqlite_where=sa.text("revoked = 0"),
        postgresql_where=sa.text("NOT revoked"),
    )


def downgrade() -> None:
    op.drop_index("uq_api_actors_address_active", table_name="api_actors")
