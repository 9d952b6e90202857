"""A brand's material flow (a Sankey diagram) and its recycled content month by month (a chart), with the same
numbers in tables. The figures are :func:`materials.flow.material_flow`'s, from the passports' accounting; this
module only reads the brand's items and lots, a run at a time (the items of a run share their composition)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger.client import ItemState
from materials import Composition, LotRecord, bps_to_percent, share_bps
from materials.flow import DISPOSED, IN_USE, RECOVERED, RECYCLED, RETURNED, FlowItems, MaterialFlow, material_flow

from ...deps import SessionDep, StateDep
from ...models import Actor, Item, Lot
from ...state import AppState
from .web import ConsoleDep, aware, render, require_role

router = APIRouter()

FATE = {
    ItemState.RETURNED: RETURNED,
    ItemState.COLLECTED: RETURNED,
    ItemState.RECYCLED: RECYCLED,
    ItemState.DISPOSED: DISPOSED,
}


def _fate(state: int) -> str:
    try:
        return FATE.get(ItemState(state), IN_USE)
    except ValueError:
        return IN_USE


def _composition(parts: list[list[Any]]) -> Composition:
    return Composition.of((str(lot_id), int(grams)) for lot_id, grams in parts)


def brand_flow(session: Session, state: AppState, actor: Actor) -> MaterialFlow:
    groups: list[tuple[list[list[Any]], int, str | None, int, Any]] = []
    runs = session.execute(
        select(Item.run_id, Item.state, Item.recovered_into, func.count(), func.min(Item.created_at), func.min(Item.id))
        .where(Item.brand_id == actor.id, Item.run_id.is_not(None))
        .group_by(Item.run_id, Item.state, Item.recovered_into)
    ).all()
    first_ids = {row[5] for row in runs}
    first_rows = session.execute(select(Item.id, Item.composition).where(Item.id.in_(first_ids)))
    compositions: dict[int, list[list[Any]]] = {ident: parts for ident, parts in first_rows}
    groups.extend((compositions[first], int(st), into, int(n), made) for _, st, into, n, made, first in runs)
    singles = session.execute(
        select(Item.composition, Item.state, Item.recovered_into, Item.created_at).where(
            Item.brand_id == actor.id, Item.run_id.is_(None)
        )
    ).all()
    groups.extend((parts, int(st), into, 1, made) for parts, st, into, made in singles)
    lot_ids = {str(lot_id) for parts, *_ in groups for lot_id, _ in parts}
    recovered_ids = {into for _, _, into, _, _ in groups if into}
    records: dict[str, LotRecord] = {}
    lots: dict[str, Lot] = {}
    for lot in session.scalars(select(Lot).where(Lot.lot_id.in_(lot_ids | recovered_ids))):
        lots[lot.lot_id] = lot
        records[lot.lot_id] = LotRecord(lot.lot_id, lot.material_code, int(lot.mass_grams),
                                        int(lot.recycled_share_bps), tuple(lot.source_items or ()))
    inputs: dict[str, int] = {
        str(lot_id): int(grams)
        for lot_id, grams in session.execute(
            select(Item.recovered_into, func.sum(Item.mass_grams))
            .where(Item.recovered_into.in_(recovered_ids))
            .group_by(Item.recovered_into)
        )
    }
    drawn: dict[str, int] = {}
    for lot_id in recovered_ids:
        recovered_lot = lots.get(lot_id)
        if recovered_lot is not None:
            drawn[lot_id] = int(recovered_lot.allocated_grams or 0)
    items = [
        FlowItems(_composition(parts), _fate(st), aware(made).strftime("%Y-%m"), count, into)
        for parts, st, into, count, made in groups
        if parts
    ]
    return material_flow(items, records, recovered_input_grams=inputs,
                         recovered_drawn_grams=drawn)


@router.get("/flow")
def flow_page(request: Request, console: ConsoleDep, session: SessionDep, state: StateDep) -> Response:
    require_role(console, "brand")
    flow = brand_flow(session, state, console.actor)
    made = sum(m.grams for m in flow.months)
    recycled = sum(m.recycled_grams for m in flow.months)
    data = {
        "nodes": list(flow.nodes),
        "links": [{"source": link.source, "target": link.target, "grams": link.grams} for link in flow.links],
        "months": [{"month": m.month, "grams": m.grams, "recycledGrams": m.recycled_grams, "shareBps": m.share_bps}
                   for m in flow.months],
    }
    return render(
        request,
        "console/flow.html",
        {
            "title": "Material flow",
            "flow": flow,
            "data": data,
            "made": made,
            "recycled_share": bps_to_percent(share_bps(recycled, made)) if made else 0,
            "recovered": flow.into(RECOVERED),
        },
        console=console,
    )
