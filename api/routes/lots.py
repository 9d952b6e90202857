"""Material lots: registered by brands (under a GTIN or a material code) and recyclers; approvals to draw from them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from ..access import Tier, tier_for
from ..deps import CurrentActor, LotOwnerActor, PageDep, SessionDep, StateDep
from ..links import JSONLD
from ..lists import list_lots
from ..models import Actor, Lot, LotApproval, Product
from ..problems import Problem
from ..schemas import (
    ApprovalCreate,
    ApprovalPublic,
    Gtin,
    LotCreate,
    LotId,
    LotNumber,
    LotPublic,
    LotRegistered,
    LotsPublic,
    MaterialCode,
)
from ..services import lots
from ..writes import actor_name, lot_public
from .passport import lot_headers, lot_jsonld, reader_tier

router = APIRouter(prefix="/lots", tags=["lots"])
public = APIRouter(tags=["lots"])


@router.post("", status_code=201, response_model=LotRegistered, summary="Register a material lot")
def register_lot(body: LotCreate, actor: LotOwnerActor, session: SessionDep, state: StateDep) -> LotRegistered:
    """A brand registers a lot under one of its GTINs (`/01/<gtin>/10/<lot>`) or by material code; a recycler by
    material code. The contract call and the signed `commissioning` event are both made as the actor."""
    return lots.register_lot(state, session, actor, body)


@router.get("", response_model=LotsPublic, summary="Your lots, a page at a time")
def get_lots(
    actor: CurrentActor,
    session: SessionDep,
    page: PageDep,
    gtin: Annotated[Gtin | None, Query(description="Only lots registered under this GTIN.")] = None,
    material_code: Annotated[MaterialCode | None, Query(alias="materialCode")] = None,
    recovered: Annotated[bool | None, Query(description="Only recovered (true) or only virgin (false) lots.")] = None,
    lot_number: Annotated[LotNumber | None, Query(alias="lotNumber")] = None,
) -> LotsPublic:
    """The caller's lots and the lots approved to it (an admin's: every lot), oldest first, each with its grams used
    and left, and how many match in all."""
    return list_lots(
        session, actor, page, gtin=gtin, material_code=material_code, recovered=recovered, lot_number=lot_number
    )


@router.get("/{lot_id}", response_model=LotPublic, summary="A lot (its owner's, an approved operator's, the admin's)")
def get_lot(lot_id: LotId, actor: CurrentActor, session: SessionDep) -> LotPublic:
    """Every figure of the lot (its mass, what is drawn and left: a supplier's volumes, which passports show
    authorities only, ``api/access.py``): for its owner, the operators it approved and the admin. To anyone else the
    lot is unknown, as to the public, which reads a lot's passport instead."""
    lot = session.get(Lot, lot_id.lower())
    if lot is None or not _reads_lot(session, actor, lot):
        raise Problem(404, "Unknown lot", f"no lot {lot_id}")
    return lot_public(lot, actor_name(session, lot.owner_id))


def _reads_lot(session: Session, actor: Actor, lot: Lot) -> bool:
    if tier_for(actor, lot.owner_id) is Tier.AUTHORITY:
        return True
    return session.get(LotApproval, (lot.lot_id, actor.id)) is not None


@router.post(
    "/{lot_id}/approvals",
    status_code=201,
    response_model=ApprovalPublic,
    summary="Let another actor draw grams from your lot",
)
def approve(
    lot_id: LotId, body: ApprovalCreate, actor: LotOwnerActor, session: SessionDep, state: StateDep
) -> ApprovalPublic:
    return lots.approve_lot(state, session, actor, lot_id, body)


@public.get("/lots/{lot_id}", summary="A lot without a GS1 key, as JSON-LD (what its URI in events dereferences to)")
def lot_document(request: Request, lot_id: LotId, session: SessionDep, state: StateDep) -> Response:
    """Material and recovered lots are named ``<resolver>/lots/<lot id>`` in events; this is that URI's document,
    as the reader's key lets it see it (``api/access.py``)."""
    lot = session.get(Lot, lot_id.lower())
    if lot is None:
        raise Problem(404, "Unknown lot", f"no lot {lot_id}")
    tier = reader_tier(request, session, lot.owner_id)
    if isinstance(tier, Response):
        return tier
    product = session.get(Product, lot.gtin) if lot.gtin else None
    return JSONResponse(lot_jsonld(session, state, product, lot, tier), media_type=JSONLD, headers=lot_headers(tier))
