"""Corrections: a mistaken event declared in error (EPCIS 2.0 ``errorDeclaration``) with the steps that correct it,
a lot's master data corrected, and the history of what lots and products said before. The rules are in
:mod:`api.services.corrections`."""

from __future__ import annotations

from fastapi import APIRouter

from ledger.ids import normalize_gtin

from ..deps import CurrentActor, LotOwnerActor, PageDep, SessionDep, StateDep, SupplyChainActor
from ..models import Lot, Product
from ..problems import Problem
from ..schemas import CorrectionCreate, CorrectionRecorded, LotCorrected, LotCorrection, LotId, MasterDataHistory
from ..services import corrections

router = APIRouter(tags=["corrections"])


@router.post(
    "/corrections",
    status_code=201,
    response_model=CorrectionRecorded,
    summary="Declare a mistaken event in error, with the steps that correct it (its signer, or the item's brand)",
)
def correct_event(
    body: CorrectionCreate, actor: SupplyChainActor, session: SessionDep, state: StateDep
) -> CorrectionRecorded:
    """The corrective steps are recorded first (the chain's states have no undo: a mistaken sale is corrected by a
    return), then the error declaration naming them, signed and anchored like any event."""
    return corrections.correct_event(state, session, actor, body)


@router.patch("/lots/{lot_id}", response_model=LotCorrected, summary="Correct a lot's origin or certificates")
def correct_lot(
    lot_id: LotId, body: LotCorrection, actor: LotOwnerActor, session: SessionDep, state: StateDep
) -> LotCorrected:
    """Recorded as a corrective commissioning event and the error declaration of the one it replaces; what the lot
    said before is kept in its history."""
    return corrections.correct_lot(state, session, actor, lot_id, body)


@router.get("/lots/{lot_id}/history", response_model=MasterDataHistory, summary="A lot's corrections, newest first")
def lot_history(lot_id: LotId, session: SessionDep, page: PageDep, actor: CurrentActor) -> MasterDataHistory:
    if session.get(Lot, lot_id.lower()) is None:
        raise Problem(404, "Unknown lot", f"no lot {lot_id}")
    return corrections.history(session, "lot", lot_id.lower(), page.skip, page.limit)


@router.get(
    "/products/{gtin}/history", response_model=MasterDataHistory, summary="A product's changes, newest first"
)
def product_history(gtin: str, session: SessionDep, page: PageDep, actor: CurrentActor) -> MasterDataHistory:
    gtin14 = normalize_gtin(gtin)
    if session.get(Product, gtin14) is None:
        raise Problem(404, "Unknown GTIN", f"GTIN {gtin} is not registered")
    return corrections.history(session, "product", gtin14, page.skip, page.limit)
