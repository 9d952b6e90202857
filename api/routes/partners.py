"""Partners: the retailers, recyclers and repairers a brand authorises to move its items on-chain."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from ..deps import BrandActor, SessionDep, StateDep
from ..schemas import MAX_ID, PartnerCreate, PartnerList, PartnerPublic
from ..services import partners

router = APIRouter(prefix="/partners", tags=["partners"])

ActorId = Annotated[int, Path(gt=0, le=MAX_ID, description="The partner's actor id.")]


@router.post("", status_code=201, response_model=PartnerPublic, summary="Authorise a partner (a brand)")
def add_partner(body: PartnerCreate, actor: BrandActor, session: SessionDep, state: StateDep) -> PartnerPublic:
    """The brand authorises a retailer, recycler or repairer, in its own role, to move the brand's items: until it
    does, the contract refuses that actor's moves of the brand's items (`NotBrandPartner`)."""
    return partners.add_partner(state, session, actor, body)


@router.get("", response_model=PartnerList, summary="The brand's partners")
def list_partners(actor: BrandActor, session: SessionDep, state: StateDep) -> PartnerList:
    return partners.list_partners(state, session, actor)


@router.delete("/{actor_id}", response_model=PartnerPublic, summary="Stop authorising a partner (a brand)")
def remove_partner(actor_id: ActorId, actor: BrandActor, session: SessionDep, state: StateDep) -> PartnerPublic:
    return partners.remove_partner(state, session, actor, actor_id)
