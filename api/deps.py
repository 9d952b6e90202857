"""Dependencies: the ledger service, a database session, the API's settings and the authenticated actor."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from ledger.service import LedgerService
from ledger.settings import Settings

from .actors import ActorKeys, authenticate
from .config import ApiSettings
from .lists import Page
from .models import Actor, ActorRole
from .problems import Problem
from .state import AppState
from .writes import authorize


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.circular
    return state


def get_service(request: Request) -> LedgerService:
    return get_state(request).service


def get_settings(request: Request) -> Settings:
    return get_state(request).settings


def get_api_settings(request: Request) -> ApiSettings:
    return get_state(request).api_settings


def get_keys(request: Request) -> ActorKeys:
    return get_state(request).keys


def get_session(request: Request) -> Iterator[Session]:
    with get_state(request).service.sessions() as session:
        yield session


StateDep = Annotated[AppState, Depends(get_state)]
ServiceDep = Annotated[LedgerService, Depends(get_service)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ApiSettingsDep = Annotated[ApiSettings, Depends(get_api_settings)]
KeysDep = Annotated[ActorKeys, Depends(get_keys)]
SessionDep = Annotated[Session, Depends(get_session)]

MAX_PAGE = 1_000


def get_page(
    skip: Annotated[int, Query(ge=0, le=2**31 - 1, description="How many matches to skip.")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Most matches in the answer.")] = 100,
) -> Page:
    return Page(skip, limit)


PageDep = Annotated[Page, Depends(get_page)]

_bearer = HTTPBearer(auto_error=False, description="An actor's API key: `Authorization: Bearer <key>`.")


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "Unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="circular-ledger"'})


def get_current_actor(
    session: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Actor:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise _unauthorized("send an actor's API key as `Authorization: Bearer <key>`")
    actor = authenticate(session, credentials.credentials)
    if actor is None:
        raise _unauthorized("unknown or revoked API key")
    return actor


CurrentActor = Annotated[Actor, Depends(get_current_actor)]


def require_roles(*roles: ActorRole) -> Callable[..., Any]:
    """A dependency: the current actor, who must hold one of `roles`."""

    def dependency(actor: CurrentActor) -> Actor:
        authorize(actor, *roles)
        return actor

    return dependency


AdminActor = Annotated[Actor, Depends(require_roles(ActorRole.ADMIN))]
BrandActor = Annotated[Actor, Depends(require_roles(ActorRole.BRAND))]
RecyclerActor = Annotated[Actor, Depends(require_roles(ActorRole.RECYCLER))]
LotOwnerActor = Annotated[Actor, Depends(require_roles(ActorRole.BRAND, ActorRole.RECYCLER))]
SupplyChainActor = Annotated[
    Actor, Depends(require_roles(ActorRole.BRAND, ActorRole.RECYCLER, ActorRole.RETAILER, ActorRole.REPAIRER))
]

__all__ = [
    "AdminActor",
    "ApiSettingsDep",
    "BrandActor",
    "CurrentActor",
    "KeysDep",
    "LotOwnerActor",
    "PageDep",
    "RecyclerActor",
    "ServiceDep",
    "SessionDep",
    "SettingsDep",
    "StateDep",
    "SupplyChainActor",
    "get_current_actor",
    "require_roles",
]
