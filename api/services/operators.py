"""A brand's economic-operator data (identifier, address, contact): what a Catena-X passport names as its
``economicOperator``. A change makes the next passport version of every item of the brand."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from .. import versions
from ..models import Actor, ActorRole, Operator, utcnow
from ..schemas import OperatorCreate, OperatorPublic
from ..state import AppState
from ..writes import authorize


def operator_public(actor: Actor, operator: Operator) -> OperatorPublic:
    return OperatorPublic(
        identifier=operator.identifier,
        name=actor.name,
        street=operator.street,
        house_number=operator.house_number,
        post_code=operator.post_code,
        city=operator.city,
        country=operator.country,
        email=operator.email,
        phone=operator.phone,
        website=operator.website,
        updated_at=operator.updated_at,
    )


def operator_view(session: Session, brand_id: int) -> dict[str, Any] | None:
    """The operator data a passport version holds (None until the brand sets it)."""
    operator = session.get(Operator, brand_id)
    actor = session.get(Actor, brand_id)
    if operator is None or actor is None:
        return None
    return {
        "identifier": operator.identifier,
        "name": actor.name,
        "street": operator.street,
        "house_number": operator.house_number,
        "post_code": operator.post_code,
        "city": operator.city,
        "country": operator.country,
        "email": operator.email,
        "phone": operator.phone,
        "website": operator.website,
    }


def put_operator(state: AppState, session: Session, actor: Actor, body: OperatorCreate) -> OperatorPublic:
    """Set the brand's own operator data; the passports of its items get their next version before the answer."""
    authorize(actor, ActorRole.BRAND)
    operator = session.get(Operator, actor.id)
    if operator is None:
        operator = Operator(actor_id=actor.id)
        session.add(operator)
    for field, value in body.model_dump().items():
        setattr(operator, field, value)
    operator.updated_at = utcnow()
    session.flush()
    versions.after_brand(session, state, actor.id)
    session.commit()
    return operator_public(actor, operator)


def get_operator(session: Session, actor: Actor) -> OperatorPublic | None:
    operator = session.get(Operator, actor.id)
    return operator_public(actor, operator) if operator is not None else None


__all__ = ["get_operator", "operator_public", "operator_view", "put_operator"]
