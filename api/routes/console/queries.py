"""What the console's pages read: an actor's lots, items and runs, a page at a time.

Whose is what follows the write API: a brand sees its own lots and items and the lots approved to it; a recycler
its own (recovered) lots and the items it collected or recycled; nobody sees another actor's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Text, cast, func, or_, select
from sqlalchemy.orm import Session

from ledger.client import ItemState

from ...models import Actor, ActorRole, Item, Lot, LotApproval
from ...state import AppState
from ...uris import unhex32

PAGE_SIZE = 50


@dataclass(frozen=True)
class LotRow:
    lot: Lot
    owner: str
    left_grams: int | None
    mine: bool


@dataclass(frozen=True)
class RunRow:
    run_id: str
    gtin: str
    count: int
    created_at: Any


def usable_lot_filter(actor: Actor) -> Any:
    approved = select(LotApproval.lot_id).where(LotApproval.operator_id == actor.id)
    return or_(Lot.owner_id == actor.id, Lot.lot_id.in_(approved))


def left_grams(state: AppState, lot: Lot) -> int | None:
    """Grams the lot has left to draw, as the chain counts them (None when the chain cannot be asked)."""
    try:
        return int(state.service.ledger.available_grams(unhex32(lot.lot_id)))
    except Exception:
        return None


def lots_of(session: Session, state: AppState, actor: Actor) -> list[LotRow]:
    rows = session.scalars(select(Lot).where(usable_lot_filter(actor)).order_by(Lot.created_at.desc())).all()
    owners = {a.id: a.name for a in session.scalars(select(Actor).where(Actor.id.in_({r.owner_id for r in rows})))}
    return [LotRow(r, owners.get(r.owner_id, ""), left_grams(state, r), r.owner_id == actor.id) for r in rows]


def lot_for(session: Session, actor: Actor, lot_id: str) -> Lot | None:
    """The lot, if the actor may see it (its own, or approved to it)."""
    return session.scalar(select(Lot).where(Lot.lot_id == lot_id.lower(), usable_lot_filter(actor)))


def _items_query(actor: Actor) -> Any:
    query = select(Item)
    if actor.role != ActorRole.ADMIN.value:
        query = query.where(Item.brand_id == actor.id)
    return query


def items_of(
    session: Session,
    actor: Actor,
    *,
    page: int = 1,
    state: ItemState | None = None,
    run_id: str | None = None,
    lot_id: str | None = None,
) -> tuple[list[Item], int]:
    query = _items_query(actor)
    if state is not None:
        query = query.where(Item.state == int(state))
    if run_id is not None:
        query = query.where(Item.run_id == run_id)
    if lot_id is not None:
        query = query.where(cast(Item.composition, Text).contains(lot_id.lower()))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Item.id.desc()).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
    return list(rows), int(total)


def runs_of(session: Session, actor: Actor, limit: int = 20) -> list[RunRow]:
    rows = session.execute(
        select(Item.run_id, Item.gtin, func.count(), func.min(Item.created_at))
        .where(Item.brand_id == actor.id, Item.run_id.is_not(None))
        .group_by(Item.run_id, Item.gtin)
        .order_by(func.min(Item.id).desc())
        .limit(limit)
    ).all()
    return [RunRow(str(run_id), gtin, int(n), created) for run_id, gtin, n, created in rows]


def run_items(session: Session, actor: Actor, run_id: str) -> list[Item]:
    """A run's items in serial order (its label sheet's order)."""
    return list(
        session.scalars(
            select(Item).where(Item.run_id == run_id.lower(), Item.brand_id == actor.id).order_by(Item.id)
        )
    )


__all__ = ["PAGE_SIZE", "LotRow", "RunRow", "items_of", "left_grams", "lot_for", "lots_of", "run_items", "runs_of"]
