"""The lists an actor pages through: its items, its lots and its products, filtered and counted in the database.

Whose is what:

- items: a brand's own items, and every item whose latest lifecycle step the actor recorded (the retailer that sold
  it, the recycler that collected it); an admin sees every item;
- lots: the actor's own lots, and the lots approved to it (recovered material a brand may draw from); an admin
  sees every lot;
- products: a brand's own products; anyone else sees every product (their master data is public).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, Text, cast, func, or_, select
from sqlalchemy.orm import Session

from ledger.client import ItemState

from .models import Actor, ActorRole, Item, Lot, LotApproval, Product
from .schemas import ItemsPublic, ItemStateName, LotsPublic, ProductsPublic
from .services.products import product_public
from .state import AppState
from .writes import item_public, lot_numbers, lot_public

T = TypeVar("T")


@dataclass(frozen=True)
class Page:
    skip: int
    limit: int


def _page(session: Session, query: Select[T], page: Page, *order: Any) -> tuple[list[T], int]:
    count = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    rows = list(session.scalars(query.order_by(*order).offset(page.skip).limit(page.limit)))
    return rows, int(count)


def _is_admin(actor: Actor) -> bool:
    return actor.role == ActorRole.ADMIN.value


def _usable_lot_ids(actor: Actor) -> ColumnElement[bool]:
    approved = select(LotApproval.lot_id).where(LotApproval.operator_id == actor.id)
    return or_(Lot.owner_id == actor.id, Lot.lot_id.in_(approved))


def lot_ids_named(session: Session, actor: Actor, lot: str) -> list[str]:
    """The lots `lot` names: a lot id as it is; a lot number, the actor's lots (and lots approved to it) so numbered
    (every lot so numbered, for an admin)."""
    if lot.lower().startswith("0x") and len(lot) == 66:
        return [lot.lower()]
    query = select(Lot.lot_id).where(Lot.lot_number == lot)
    if not _is_admin(actor):
        query = query.where(_usable_lot_ids(actor))
    return list(session.scalars(query))


def items_page(
    session: Session,
    actor: Actor,
    page: Page,
    *,
    states: Sequence[ItemState] = (),
    lot_ids: Sequence[str] | None = None,
    gtin: str | None = None,
) -> tuple[list[Item], int]:
    """A page of `actor`'s items (in the order they were made) and how many match in all. `lot_ids`: items holding
    any of these lots (an empty list matches nothing)."""
    query = select(Item)
    if not _is_admin(actor):
        query = query.where(or_(Item.brand_id == actor.id, Item.holder_id == actor.id))
    if states:
        query = query.where(Item.state.in_([int(s) for s in states]))
    if gtin is not None:
        query = query.where(Item.gtin == gtin)
    if lot_ids is not None:
        if not lot_ids:
            return [], 0
        # Lot ids are 66 fixed characters of hex: found in the composition's JSON text, they name exactly that lot.
        text = cast(Item.composition, Text)
        query = query.where(or_(*(text.like(f"%{lot_id}%") for lot_id in lot_ids)))
    return _page(session, query, page, Item.id)


def lots_page(
    session: Session,
    actor: Actor,
    page: Page,
    *,
    gtin: str | None = None,
    material_code: str | None = None,
    recovered: bool | None = None,
    lot_number: str | None = None,
) -> tuple[list[Lot], int]:
    query = select(Lot)
    if not _is_admin(actor):
        query = query.where(_usable_lot_ids(actor))
    if gtin is not None:
        query = query.where(Lot.gtin == gtin)
    if material_code is not None:
        query = query.where(Lot.material_code == material_code)
    if recovered is not None:
        query = query.where(Lot.recovered.is_(recovered))
    if lot_number is not None:
        query = query.where(Lot.lot_number == lot_number)
    return _page(session, query, page, Lot.created_at, Lot.lot_id)


def products_page(session: Session, actor: Actor, page: Page) -> tuple[list[Product], int]:
    query = select(Product)
    if actor.role == ActorRole.BRAND.value:
        query = query.where(Product.brand_id == actor.id)
    return _page(session, query, page, Product.gtin)


def owner_names(session: Session, ids: Sequence[int]) -> dict[int, str]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {a.id: a.name for a in session.scalars(select(Actor).where(Actor.id.in_(wanted)))}


# -- the answers ----------------------------------------------------------------------------------------------------
def list_items(
    state: AppState,
    session: Session,
    actor: Actor,
    page: Page,
    *,
    states: Sequence[ItemStateName] = (),
    lot: str | None = None,
    gtin: str | None = None,
) -> ItemsPublic:
    """A page of `actor`'s items; `lot` is a lot id or a lot number."""
    lot_ids = lot_ids_named(session, actor, lot) if lot is not None else None
    wanted = [ItemState[s.name] for s in states]
    items, count = items_page(session, actor, page, states=wanted, lot_ids=lot_ids, gtin=gtin)
    brands = owner_names(session, [i.brand_id for i in items])
    numbers = lot_numbers(session, items)
    return ItemsPublic(
        data=[item_public(state, i, brands.get(i.brand_id, str(i.brand_id)), numbers) for i in items], count=count
    )


def list_lots(
    session: Session,
    actor: Actor,
    page: Page,
    *,
    gtin: str | None = None,
    material_code: str | None = None,
    recovered: bool | None = None,
    lot_number: str | None = None,
) -> LotsPublic:
    lots, count = lots_page(
        session, actor, page, gtin=gtin, material_code=material_code, recovered=recovered, lot_number=lot_number
    )
    owners = owner_names(session, [lot.owner_id for lot in lots])
    return LotsPublic(data=[lot_public(lot, owners.get(lot.owner_id, str(lot.owner_id))) for lot in lots], count=count)


def list_products(state: AppState, session: Session, actor: Actor, page: Page) -> ProductsPublic:
    products, count = products_page(session, actor, page)
    return ProductsPublic(data=[product_public(p, state.settings.resolver_base_url) for p in products], count=count)


__all__ = [
    "Page",
    "items_page",
    "list_items",
    "list_lots",
    "list_products",
    "lot_ids_named",
    "lots_page",
    "owner_names",
    "products_page",
]
