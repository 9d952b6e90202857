"""Return requests at intake: what a drop-off code is for (a store's or a recycler's scan, before the intake is
recorded with ``POST /api/v1/lifecycle-events`` and the code). The rules are in :mod:`api.services.returns`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from ..deps import SessionDep, StateDep, SupplyChainActor
from ..schemas import ReturnRequestStatusPublic
from ..services import returns

router = APIRouter(prefix="/return-requests", tags=["returns"])


@router.get(
    "/{code}",
    response_model=ReturnRequestStatusPublic,
    summary="The item and status of a drop-off code (a store, a recycler)",
)
def get_return_request(
    code: Annotated[str, Path(min_length=4, max_length=32, pattern=r"^[A-Za-z0-9-]+$")],
    actor: SupplyChainActor,
    session: SessionDep,
    state: StateDep,
) -> ReturnRequestStatusPublic:
    return returns.lookup(state, session, actor, code)
