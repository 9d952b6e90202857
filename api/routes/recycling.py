"""Recycling: a recycler turns collected items into one recovered lot, 100% recycled, its lineage on-chain."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import RecyclerActor, SessionDep, StateDep
from ..schemas import Recycled, RecyclingCreate
from ..services import recycling

router = APIRouter(tags=["recycling"])


@router.post("/recycling", status_code=201, response_model=Recycled, summary="Recycle items into a recovered lot")
def recycle(body: RecyclingCreate, actor: RecyclerActor, session: SessionDep, state: StateDep) -> Recycled:
    return recycling.recycle(state, session, actor, body)
