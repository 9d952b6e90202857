"""What the console's pages read: an actor's lots, items and runs, a page at a time.

Whose is what is the write API's lists' rule (:mod:`api.lists`): a brand sees its own items and those whose latest
step it recorded, its own lots and the lots approved to it; a recycler its own (recovered) lots and the items it
collected; nobody sees another actor's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger.client import ItemState

from ...lists import Page, items_page, lot_ids_named, lots_page, owner_names
from ...models import Actor, Item, Lot

PAGE_SIZE = 50
ALL = Page(0, 100_000)


@dataclass(frozen=True)
class LotRow:
    lot: Lot
    owner: str
    left_grams: int
    mine: bool


@dataclass(frozen=True)
class RunRow:
    run_id: str
    gtin: str
    count: int
    created_at: Any


def left_grams(lot: Lot) -> int:
    """Grams the lot has left to draw (the contract's count, kept by the writes' completions)."""
    return int(lot.mass_grams) - int(lot.allocated_grams or 0)


def lots_of(session: Session, actor: Actor) -> list[LotRow]:
    """The actor's lots and the lots approved to it, newest first."""
    rows, _ = lots_page(session, actor, ALL)
    rows.reverse()
    owners = owner_names(session, [r.owner_id for r in rows])
    return [LotRow(r, owners.get(r.owner_id, ""), left_grams(r), r.owner_id == actor.id) for r in rows]


def lot_for(session: Session, actor: Actor, lot_id: str) -> Lot | None:
    """The lot, if the actor may see it (its own, or approved to it)."""
    if not (lot_id.lower().startswith("0x") and len(lot_id) == 66):
        return None
    lot = session.get(Lot, lot_id.lower())
    if lot is None:
        return None
    visible, _ = lots_page(session, actor, ALL, lot_number=lot.lot_number)
    return lot if any(found.lot_id == lot.lot_id for found in visible) else None


def items_of(
    session: Session,
    actor: Actor,
    *,
    page: int = 1,
    state: ItemState | None = None,
    run_id: str | None = None,
    lot_id: str | None = None,
) -> tuple[list[Item], int]:
    """A page of the actor's items (newest first), filtered by state, run or lot."""
    if run_id is not None:
        query = select(Item).where(Item.run_id == run_id.lower(), Item.brand_id == actor.id)
        if state is not None:
            query = query.where(Item.state == int(state))
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(query.order_by(Item.id).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
        return list(rows), int(total)
    states = [state] if state is not None else []
    _, total = items_page(session, actor, Page(0, 0), states=states, lot_ids=[lot_id] if lot_id else None)
    # Newest first: the last page of the list's own order, read backwards.
    end = max(total - (page - 1) * PAGE_SIZE, 0)
    start = max(end - PAGE_SIZE, 0)
    rows, _ = items_page(session, actor, Page(start, end - start), states=states,
                         lot_ids=[lot_id] if lot_id else None)
    rows.reverse()
    return rows, total


def collected_items(session: Session, actor: Actor) -> list[Item]:
    """The items the actor collected that are still collected (a recycler's, waiting to be recycled)."""
    rows, _ = items_page(session, actor, ALL, states=[ItemState.COLLECTED])
    return [item for item in rows if item.holder_id == actor.id]


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
    """A run's items in the order they were made (its label sheet's order): the brand's only."""
    return list(
        session.scalars(
            select(Item).where(Item.run_id == run_id.lower(), Item.brand_id == actor.id).order_by(Item.id)
        )
    )


def lots_named(session: Session, actor: Actor, name: str) -> list[str]:
    """The lot ids a lot number (or a lot id) names for the actor (:func:`api.lists.lot_ids_named`)."""
    return lot_ids_named(session, actor, name)


__all__ = [
    "PAGE_SIZE",
    "LotRow",
    "RunRow",
    "collected_items",
    "items_of",
    "left_grams",
    "lot_for",
    "lots_named",
    "lots_of",
    "run_items",
    "runs_of",
]
