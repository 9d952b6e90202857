"""Material lots: the list with grams left, one lot with its certificates and the items made from it, registering a
lot (brands and recyclers) and approving grams of a lot to another actor (a recycler's recovered lots to brands)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from materials import catalogue

from ...deps import SessionDep, StateDep
from ...models import Actor, ActorRole, LotApproval, Product
from ...schemas import ApprovalCreate, LotCreate
from ...services import lots
from ...state import AppState
from . import queries
from .forms import lines, optional, parse, percent_to_bps, text_fields
from .web import (
    Console,
    ConsoleDep,
    FormConsole,
    PageNotFound,
    Refused,
    once,
    redirect,
    render,
    require_role,
    submission_key,
)

router = APIRouter()
ROLES = ("brand", "recycler")
FLASH = {"registered": "Lot registered.", "approved": "Approval recorded.", "imported": "Lots imported."}


def material_options(*, recovered: bool | None = None) -> list[tuple[str, str]]:
    return [
        (m.code, f"{m.name} ({m.code})")
        for m in catalogue().values()
        if recovered is None or m.is_recovered == recovered
    ]


def _products(session: Session, actor: Actor) -> list[Product]:
    return list(session.scalars(select(Product).where(Product.brand_id == actor.id).order_by(Product.gtin)))


def _list_page(request: Request, console: Console, session: Session, state: AppState, *, values: dict[str, Any],
               errors: dict[str, str], flash: str | None = None, status_code: int = 200) -> Response:
    return render(
        request,
        "console/lots.html",
        {
            "title": "Lots",
            "lots": queries.lots_of(session, console.actor),
            "materials": material_options(),
            "products": _products(session, console.actor) if console.role == "brand" else [],
            "values": values,
            "errors": errors,
            "flash": flash,
        },
        console=console,
        status_code=status_code,
    )


@router.get("/lots")
def lot_list(request: Request, console: ConsoleDep, session: SessionDep, state: StateDep,
             ok: str | None = None) -> Response:
    require_role(console, *ROLES)
    return _list_page(request, console, session, state, values={"recycled_share": "0"}, errors={},
                      flash=FLASH.get(ok or ""))


def lot_body(form: dict[str, str]) -> dict[str, Any]:
    """A lot's form (or CSV row) as the write API's LotCreate input."""
    return {
        "gtin": optional(form.get("gtin")),
        "lot_number": form.get("lot_number", ""),
        "material_code": form.get("material_code", ""),
        "mass_grams": form.get("mass_grams", ""),
        "recycled_share_bps": percent_to_bps(form.get("recycled_share", "") or "0"),
        "origin": optional(form.get("origin")),
        "certificates": lines(form.get("certificates", "")),
    }


LOT_FIELDS = {"recycled_share_bps": "recycled_share"}


def _register(request: Request, console: Console, session: Session, state: AppState,
              form: dict[str, str]) -> Response:
    require_role(console, *ROLES)
    body, errors = parse(LotCreate, lot_body(form))
    errors = {LOT_FIELDS.get(k, k): v for k, v in errors.items()}
    if body is not None:
        valid = body

        def write() -> dict[str, Any]:
            registered = lots.register_lot(state, session, console.actor, valid)
            return {"lotId": registered.lot.lot_id}

        try:
            result = once(state, console.actor, submission_key(form.get("submission")), write)
            return redirect(f"/console/lots/{result['lotId']}?ok=registered")
        except Refused as refused:
            errors[refused.words.field or "_form"] = refused.words.message
    return _list_page(request, console, session, state, values=form, errors=errors, status_code=422)


@router.post("/lots")
async def register_lot(request: Request, console: FormConsole, session: SessionDep, state: StateDep) -> Response:
    form = text_fields(await request.form())
    return await run_in_threadpool(_register, request, console, session, state, form)


def _lot_page(request: Request, console: Console, session: Session, state: AppState, lot_id: str, *,
              page: int = 1, values: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
              flash: str | None = None, status_code: int = 200) -> Response:
    require_role(console, *ROLES)
    lot = queries.lot_for(session, console.actor, lot_id)
    if lot is None:
        raise PageNotFound(lot_id)
    items, total = queries.items_of(session, console.actor, page=max(page, 1), lot_id=lot.lot_id)
    approvals = []
    if lot.owner_id == console.actor.id:
        for approval in session.scalars(select(LotApproval).where(LotApproval.lot_id == lot.lot_id)):
            operator = session.get(Actor, approval.operator_id)
            approvals.append((operator.name if operator else approval.operator_id, approval.grams))
    brands = (
        list(session.scalars(select(Actor).where(Actor.role == ActorRole.BRAND.value, Actor.revoked.is_(False))))
        if lot.owner_id == console.actor.id
        else []
    )
    owner = session.get(Actor, lot.owner_id)
    return render(
        request,
        "console/lot.html",
        {
            "title": f"Lot {lot.lot_number}",
            "lot": lot,
            "owner": owner.name if owner else "",
            "material": catalogue().get(lot.material_code),
            "left": queries.left_grams(lot),
            "items": items,
            "total": total,
            "page": page,
            "pages": max(1, -(-total // queries.PAGE_SIZE)),
            "approvals": approvals,
            "brands": [(str(b.id), b.name) for b in brands if b.id != console.actor.id],
            "values": values or {},
            "errors": errors or {},
            "flash": flash,
        },
        console=console,
        status_code=status_code,
    )


@router.get("/lots/{lot_id}")
def lot_page(request: Request, lot_id: str, console: ConsoleDep, session: SessionDep, state: StateDep,
             page: int = 1, ok: str | None = None) -> Response:
    return _lot_page(request, console, session, state, lot_id, page=page, flash=FLASH.get(ok or ""))


def _approve(request: Request, console: Console, session: Session, state: AppState, lot_id: str,
             form: dict[str, str]) -> Response:
    require_role(console, *ROLES)
    body, errors = parse(ApprovalCreate, {"operator_id": form.get("operator", ""), "grams": form.get("grams", "")})
    errors = {("operator" if k == "operator_id" else k): v for k, v in errors.items()}
    if body is not None:
        valid = body

        def write() -> dict[str, Any]:
            approved = lots.approve_lot(state, session, console.actor, lot_id, valid)
            return {"lotId": approved.lot_id}

        try:
            once(state, console.actor, submission_key(form.get("submission")), write)
            return redirect(f"/console/lots/{lot_id.lower()}?ok=approved")
        except Refused as refused:
            errors[refused.words.field or "_form"] = refused.words.message
    return _lot_page(request, console, session, state, lot_id, values=form, errors=errors, status_code=422)


@router.post("/lots/{lot_id}/approvals")
async def approve(request: Request, lot_id: str, console: FormConsole, session: SessionDep,
                  state: StateDep) -> Response:
    form = text_fields(await request.form())
    return await run_in_threadpool(_approve, request, console, session, state, lot_id, form)


__all__ = ["lot_body", "material_options", "router"]
