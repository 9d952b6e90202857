"""A recycler recycles the items it collected into a recovered lot, with the lot's measured mass. The write is the
API's own (:func:`api.services.recycling.recycle`); when the contract refuses a mass (a recovered lot never weighs
more than the items recycled into it), the page says so in those words, next to the mass."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from materials import catalogue

from ...deps import SessionDep, StateDep
from ...models import Item, Lot, Product
from ...schemas import RecyclingCreate
from ...services import recycling
from ...state import AppState
from . import queries
from .forms import parse, text_fields
from .lots import material_options
from .web import (
    Console,
    ConsoleDep,
    FormConsole,
    Refused,
    once,
    redirect,
    render,
    require_role,
    submission_key,
)

router = APIRouter()


def _suggested_material(session: Session, items: list[Item]) -> str:
    """The recovered material of the material the items hold most of (by their compositions)."""
    grams: dict[str, int] = {}
    lot_ids = {str(lot_id) for item in items for lot_id, _ in item.composition}
    codes = dict(session.execute(select(Lot.lot_id, Lot.material_code).where(Lot.lot_id.in_(lot_ids))).all())
    for item in items:
        for lot_id, g in item.composition:
            code = codes.get(str(lot_id))
            if code:
                grams[code] = grams.get(code, 0) + int(g)
    if not grams:
        return ""
    top = catalogue().get(max(grams, key=lambda c: grams[c]))
    return (top.recovered or "") if top is not None else ""


def _page(request: Request, console: Console, session: Session, *, values: dict[str, Any] | None = None,
          errors: dict[str, str] | None = None, status_code: int = 200) -> Response:
    require_role(console, "recycler")
    items = queries.collected_items(session, console.actor)
    gtins = {i.gtin for i in items}
    products = {p.gtin: p.name for p in session.scalars(select(Product).where(Product.gtin.in_(gtins)))}
    chosen = (values or {}).get("chosen")
    return render(
        request,
        "console/recycle.html",
        {
            "title": "Recycle",
            "items": items,
            "products": products,
            "chosen": set(chosen) if chosen is not None else {str(i.id) for i in items},
            "total_grams": sum(int(i.mass_grams) for i in items),
            "materials": material_options(recovered=True),
            "values": {"material_code": _suggested_material(session, items), **(values or {})},
            "errors": errors or {},
        },
        console=console,
        status_code=status_code,
    )


@router.get("/recycle")
def recycle_page(request: Request, console: ConsoleDep, session: SessionDep) -> Response:
    return _page(request, console, session)


def _recycle(request: Request, console: Console, session: Session, state: AppState, form: dict[str, str],
             chosen: list[str]) -> Response:
    require_role(console, "recycler")
    mine = {str(i.id): i for i in queries.collected_items(session, console.actor)}
    picked = [mine[c] for c in chosen if c in mine]
    errors: dict[str, str] = {}
    if not picked:
        errors["items"] = "Choose at least one collected item to recycle."
    body, field_errors = parse(RecyclingCreate, {
        "items": [{"gtin": i.gtin, "serial": i.serial} for i in picked],
        "material_code": form.get("material_code", ""),
        "lot_number": form.get("lot_number", ""),
        "mass_grams": form.get("mass_grams", ""),
    })
    for key, value in field_errors.items():
        errors.setdefault(key.split(".")[0], value)
    if body is not None and not errors:
        valid = body

        def write() -> dict[str, Any]:
            recycled = recycling.recycle(state, session, console.actor, valid)
            return {"lotId": recycled.lot.lot_id}

        try:
            result = once(state, console.actor, submission_key(form.get("submission")), write)
            return redirect(f"/console/lots/{result['lotId']}?ok=registered")
        except Refused as refused:
            errors[refused.words.field or "_form"] = refused.words.message
    return _page(request, console, session, values={**form, "chosen": chosen}, errors=errors, status_code=422)


@router.post("/recycle")
async def recycle(request: Request, console: FormConsole, session: SessionDep, state: StateDep) -> Response:
    raw = await request.form()
    chosen = [v for v in raw.getlist("item") if isinstance(v, str)]
    return await run_in_threadpool(_recycle, request, console, session, state, text_fields(raw), chosen)


__all__ = ["router"]
