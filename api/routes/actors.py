"""Actors: created, listed and revoked by an admin; every actor can see who it is."""

from __future__ import annotations

from fastapi import APIRouter, Path

from ..actors import add_actor, revoke_actor
from ..deps import AdminActor, CurrentActor, ServiceDep, SessionDep, StateDep
from ..models import Actor
from ..problems import Problem
from ..schemas import MAX_ID, ActorCreate, ActorCreated, ActorPublic

router = APIRouter(prefix="/actors", tags=["actors"])


@router.post("", status_code=201, response_model=ActorCreated, summary="Create an actor (admin)")
def create_actor(
    body: ActorCreate, admin: AdminActor, service: ServiceDep, session: SessionDep, state: StateDep
) -> ActorCreated:
    """An account with its on-chain role (and a brand's GS1 company prefixes) and an API key, shown once."""
    if session.query(Actor.id).filter(Actor.name == body.name.strip()).first() is not None:
        raise Problem(409, "Actor exists", f"an actor named {body.name!r} exists already")
    try:
        actor, api_key = add_actor(
            service, session, body.role.value, body.name, prefixes=body.prefixes, keys=state.keys
        )
    except ValueError as exc:
        raise Problem(422, "Invalid actor", str(exc)) from None
    return ActorCreated(actor=ActorPublic.model_validate(actor), api_key=api_key)


@router.get("", response_model=list[ActorPublic], summary="List actors (admin)")
def list_actors(admin: AdminActor, session: SessionDep) -> list[ActorPublic]:
    return [ActorPublic.model_validate(a) for a in session.query(Actor).order_by(Actor.id)]


@router.get("/me", response_model=ActorPublic, summary="The actor holding this API key")
def me(actor: CurrentActor) -> ActorPublic:
    return ActorPublic.model_validate(actor)


@router.post("/{actor_id}/revoke", response_model=ActorPublic, summary="Revoke an actor's API key (admin)")
def revoke(admin: AdminActor, session: SessionDep, actor_id: int = Path(gt=0, le=MAX_ID)) -> ActorPublic:
    """Takes effect on the next request. The on-chain role stays (revoke it with the chain admin's key)."""
    actor = session.get(Actor, actor_id)
    if actor is None:
        raise Problem(404, "Unknown actor", f"no actor {actor_id}")
    return ActorPublic.model_validate(revoke_actor(session, actor))
