"""A brand as a credential issuer, at the resolver: its ``did:web`` document and its signed revocation list; and
the write API's revocation of an item's passport credentials (``api/credentials.py``, ``api/untp.py``)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from ledger.errors import ConfigurationError
from ledger.ids import normalize_gtin

from .. import credentials
from ..deps import BrandActor, SessionDep, StateDep
from ..formats import status_publisher
from ..models import Actor, ActorRole, Item
from ..problems import Problem
from ..schemas import CredentialRevocationCreate, CredentialRevocationPublic
from ..uris import item_uri

router = APIRouter(tags=["credentials"])
api = APIRouter(tags=["credentials"])


def _brand(session: SessionDep, brand_id: int) -> Actor:
    actor = session.get(Actor, brand_id) if 0 < brand_id < 2**31 else None
    if actor is None or actor.role != ActorRole.BRAND.value:
        raise Problem(404, "Unknown brand", f"no brand {brand_id} issues credentials here")
    return actor


@router.get(
    "/brands/{brand_id}/did.json",
    summary="A brand's did:web document (its credential keys)",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}, "description": "The DID document"}},
)
def did_document(brand_id: int, session: SessionDep, state: StateDep) -> Response:
    actor = _brand(session, brand_id)
    body = credentials.did_document(state.settings, session, actor, state.service.chain_id)
    return Response(
        credentials.compact_json(body), media_type="application/json", headers={"Cache-Control": "no-cache"}
    )


@router.get(
    "/brands/{brand_id}/status/revocation",
    summary="A brand's revocation status list (BitstringStatusListCredential, application/vc+jwt)",
    response_class=Response,
    responses={200: {"content": {credentials.VC_JWT: {}}, "description": "The signed status list credential"}},
)
def status_list(brand_id: int, session: SessionDep, state: StateDep) -> Response:
    actor = _brand(session, brand_id)
    body = credentials.status_list_credential(state.settings, session, actor)
    try:
        signed = credentials.sign(state.settings, session, actor, body)
    except (credentials.CredentialError, ConfigurationError) as exc:
        raise Problem(409, "No credential key", str(exc)) from None
    return Response(signed, media_type=credentials.VC_JWT, headers={"Cache-Control": "no-cache"})


@api.post(
    "/credential-revocations",
    status_code=201,
    response_model=CredentialRevocationPublic,
    summary="Revoke an item's passport credentials (its brand)",
)
def revoke(
    body: CredentialRevocationCreate, actor: BrandActor, session: SessionDep, state: StateDep
) -> CredentialRevocationPublic:
    """Sets the item's bit in its brand's revocation list: every UNTP passport credential of the item reads as
    revoked from then on. Revoking twice keeps the first revocation (``alreadyRevoked``)."""
    gtin = normalize_gtin(body.gtin)
    item = session.query(Item).filter(Item.gtin == gtin, Item.serial == body.serial).one_or_none()
    if item is None:
        raise Problem(404, "Unknown item", f"serial {body.serial} of GTIN {gtin} is not registered")
    subject = item_uri(state.settings.resolver_base_url, gtin, item.serial)
    try:
        done = credentials.revoke(
            session, actor, subject, item.brand_id, body.reason, status_publisher(state)(actor)
        )
    except PermissionError as exc:
        raise Problem(403, "Not your item", str(exc)) from None
    except credentials.CredentialError as exc:
        raise Problem(409, "Status list behind the archive", str(exc)) from None
    session.commit()
    return CredentialRevocationPublic(
        item=subject,
        status_list_index=done.index,
        status_list_credential=credentials.status_list_url(state.settings.resolver_base_url, item.brand_id),
        revoked_at=done.revoked_at,
        already_revoked=done.already,
    )


__all__ = ["api", "router"]
