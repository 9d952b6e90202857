"""A brand's partners: the retailers, recyclers and repairers it authorises to move its items (on-chain; the contract
refuses anyone else). Listing, adding and removing are the write API's own (:mod:`api.services.partners`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from ...deps import SessionDep, StateDep
from ...models import Actor
from ...schemas import PartnerCreate
from ...services import partners
from ...state import AppState
from .forms import parse, text_fields
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
FLASH = {"added": "Partner added.", "removed": "Partner removed."}


def _page(request: Request, console: Console, session: Session, state: AppState, *,
          errors: dict[str, str] | None = None, flash: str | None = None, status_code: int = 200) -> Response:
    require_role(console, "brand")
    current = partners.list_partners(state, session, console.actor).partners
    taken = {p.actor_id for p in current}
    roles = [r.value for r in partners.PARTNER_ROLES]
    candidates = [
        (str(a.id), f"{a.name} ({a.role})")
        for a in session.scalars(
            select(Actor).where(Actor.role.in_(roles), Actor.revoked.is_(False)).order_by(Actor.role, Actor.name)
        )
        if a.id not in taken
    ]
    return render(
        request,
        "console/partners.html",
        {"title": "Partners", "partners": current, "candidates": candidates, "errors": errors or {}, "flash": flash},
        console=console,
        status_code=status_code,
    )


@router.get("/partners")
def partner_list(request: Request, console: ConsoleDep, session: SessionDep, state: StateDep,
                 ok: str | None = None) -> Response:
    return _page(request, console, session, state, flash=FLASH.get(ok or ""))


def _change(request: Request, console: Console, session: Session, state: AppState, form: dict[str, str],
            remove: bool) -> Response:
    require_role(console, "brand")
    body, errors = parse(PartnerCreate, {"actor_id": form.get("actor", "")})
    errors = {"actor": next(iter(errors.values()))} if errors else {}
    if body is not None:
        valid = body

        def write() -> dict[str, Any]:
            if remove:
                done = partners.remove_partner(state, session, console.actor, valid.actor_id)
            else:
                done = partners.add_partner(state, session, console.actor, valid)
            return {"actorId": done.actor_id}

        try:
            once(state, console.actor, submission_key(form.get("submission")), write)
            return redirect(f"/console/partners?ok={'removed' if remove else 'added'}")
        except Refused as refused:
            errors["actor" if refused.words.field in (None, "operator") else refused.words.field] = (
                refused.words.message
            )
    return _page(request, console, session, state, errors=errors, status_code=422)


@router.post("/partners")
async def add(request: Request, console: FormConsole, session: SessionDep, state: StateDep) -> Response:
    form = text_fields(await request.form())
    return await run_in_threadpool(_change, request, console, session, state, form, False)


@router.post("/partners/remove")
async def remove(request: Request, console: FormConsole, session: SessionDep, state: StateDep) -> Response:
    form = text_fields(await request.form())
    return await run_in_threadpool(_change, request, console, session, state, form, True)


__all__ = ["router"]
