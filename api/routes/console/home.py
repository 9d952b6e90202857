"""The console's home page: what the signed-in actor has, and where to go next."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import func, select

from ledger.client import ItemState

from ...deps import SessionDep
from ...models import Item, Lot, Product
from . import queries
from .web import STATE_WORDS, ConsoleDep, render

router = APIRouter()


@router.get("", summary="The console's home page")
def home(request: Request, console: ConsoleDep, session: SessionDep) -> Response:
    actor = console.actor
    stats: list[tuple[str, int]] = []
    if actor.role == "brand":
        stats.append(("products", session.scalar(select(func.count()).where(Product.brand_id == actor.id)) or 0))
        stats.append(("lots", session.scalar(select(func.count()).where(Lot.owner_id == actor.id)) or 0))
        by_state = session.execute(
            select(Item.state, func.count()).where(Item.brand_id == actor.id).group_by(Item.state)
        ).all()
        stats.append(("items", sum(int(n) for _, n in by_state)))
        stats.extend((f"items {STATE_WORDS[ItemState(state)]}", int(n)) for state, n in sorted(by_state))
    elif actor.role == "recycler":
        stats.append(("collected, waiting to be recycled", len(queries.collected_items(session, actor))))
        stats.append(("recovered lots", session.scalar(select(func.count()).where(Lot.owner_id == actor.id)) or 0))
    elif actor.role == "retailer":
        held = session.execute(
            select(Item.state, func.count()).where(Item.holder_id == actor.id).group_by(Item.state)
        ).all()
        stats.extend((f"items {STATE_WORDS[ItemState(state)]} by you", int(n)) for state, n in sorted(held))
    return render(request, "console/home.html", {"title": "Home", "stats": stats}, console=console)
