"""A brand's economic-operator data, which its Catena-X passports name (``api/services/operators.py``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ..deps import BrandActor, SessionDep, StateDep
from ..problems import PROBLEM_JSON, Problem
from ..schemas import OperatorCreate, OperatorPublic
from ..services import operators

router = APIRouter(tags=["brands"])


@router.put("/operator", response_model=OperatorPublic, summary="Set your data as an economic operator (brands)")
def put_operator(body: OperatorCreate, actor: BrandActor, session: SessionDep, state: StateDep) -> OperatorPublic:
    return operators.put_operator(state, session, actor, body)


NOT_SET: dict[int | str, dict[str, Any]] = {
    404: {
        "description": "The brand has not set its operator data yet (problem details)",
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
}


@router.get(
    "/operator", response_model=OperatorPublic, responses=NOT_SET, summary="Your data as an economic operator (brands)"
)
def get_operator(actor: BrandActor, session: SessionDep) -> OperatorPublic:
    found = operators.get_operator(session, actor)
    if found is None:
        raise Problem(404, "No operator data", "this brand has not set its economic-operator data yet")
    return found
