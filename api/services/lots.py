"""Material lots: registered by brands (under a GTIN or a material code) and recyclers; approvals to draw from them."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ledger.epcis import events as ev
from ledger.ids import gtin_lot_id, material_lot_id
from ledger.lifecycle import Action, step

from .. import intents
from ..models import Actor, ActorRole, Lot
from ..problems import Problem
from ..schemas import ApprovalCreate, ApprovalPublic, LotCreate, LotRegistered
from ..state import AppState
from ..uris import hex32, lot_uri, unhex32
from ..writes import authorize, check_gtin_owner, check_product, event_receipt, lot_public, material_code

REGISTER_ROLES = tuple(sorted(ActorRole(party.value) for party in step(Action.LOT).parties))
APPROVE_ROLES = (ActorRole.BRAND, ActorRole.RECYCLER)


def lot_id_for(actor: Actor, body: LotCreate) -> str:
    """The id the lot `body` gets when `actor` registers it (the contract's: by GTIN and lot number, or by the
    owner's address, material code and lot number)."""
    if body.gtin is not None:
        return hex32(gtin_lot_id(body.gtin, body.lot_number))
    return hex32(material_lot_id(actor.address, material_code(body.material_code), body.lot_number))


def check_lot(state: AppState, session: Session, actor: Actor, body: LotCreate) -> str:
    """Everything :func:`register_lot` checks before its transaction (nothing is written); the lot's id."""
    authorize(actor, *REGISTER_ROLES)
    material_code(body.material_code)
    if body.gtin is not None:
        if actor.role != ActorRole.BRAND:
            raise Problem(403, "Forbidden", "only brands register lots under a GTIN")
        check_product(session, body.gtin, actor)
        check_gtin_owner(state, actor, body.gtin)
    expected = lot_id_for(actor, body)
    if session.get(Lot, expected) is not None:
        raise Problem(409, "LotAlreadyRegistered", f"lot {body.lot_number} is registered already", lotId=expected)
    return expected


def register_lot(state: AppState, session: Session, actor: Actor, body: LotCreate) -> LotRegistered:
    """A brand registers a lot under one of its GTINs (`/01/<gtin>/10/<lot>`) or by material code; a recycler by
    material code. The contract call and the signed `commissioning` event are both made as the actor."""
    expected = check_lot(state, session, actor, body)
    ledger = state.service.ledger
    code = material_code(body.material_code)
    account = state.keys.account(actor)
    if body.gtin is not None:
        call = ledger.register_lot_call(body.gtin, body.lot_number, code, body.mass_grams, body.recycled_share_bps)
    else:
        call = ledger.register_material_lot_call(code, body.lot_number, body.mass_grams, body.recycled_share_bps)
    uri = lot_uri(state.settings.resolver_base_url, expected, body.gtin, body.lot_number if body.gtin else None)
    event = ev.lot_registered(
        uri,
        body.material_code,
        body.mass_grams,
        body.recycled_share_bps,
        certificates=body.certificates,
        origin=body.origin,
    )
    fields = {
        "lot_id": expected,
        "uri": uri,
        "gtin": body.gtin,
        "lot_number": body.lot_number,
        "material_code": body.material_code,
        "mass_grams": body.mass_grams,
        "recycled_share_bps": body.recycled_share_bps,
        "recovered": False,
        "source_items": None,
        "origin": body.origin,
        "certificates": list(body.certificates),
    }
    written = intents.write(
        state, actor, account, kind="lot", subject=expected, call=call, events=[event], effect={"lot": fields}
    )
    session.expire_all()
    lot = session.get(Lot, expected)
    assert lot is not None  # written with the intent's completion
    return LotRegistered(lot=lot_public(lot, actor.name), event=event_receipt(written), tx_hash=written.tx_hash)


def approve_lot(state: AppState, session: Session, actor: Actor, lot_id: str, body: ApprovalCreate) -> ApprovalPublic:
    """The lot's owner lets another actor draw `body.grams` from it."""
    authorize(actor, *APPROVE_ROLES)
    lot = session.get(Lot, lot_id.lower())
    if lot is None:
        raise Problem(404, "Unknown lot", f"no lot {lot_id}")
    if lot.owner_id != actor.id:
        raise Problem(403, "Not your lot", f"lot {lot_id} belongs to another actor")
    operator = session.get(Actor, body.operator_id)
    if operator is None or operator.revoked:
        raise Problem(404, "Unknown actor", f"no actor {body.operator_id}")
    account = state.keys.account(actor)
    written = intents.write(
        state,
        actor,
        account,
        kind="approval",
        subject=lot.lot_id,
        call=state.service.ledger.approve_lot_call(unhex32(lot.lot_id), operator.address, body.grams),
        events=[],
        effect={"lot_id": lot.lot_id, "operator_id": operator.id, "grams": body.grams},
    )
    return ApprovalPublic(
        lot_id=lot.lot_id,
        operator_id=operator.id,
        operator_address=operator.address,
        grams=body.grams,
        tx_hash=written.tx_hash,
    )


__all__ = ["APPROVE_ROLES", "REGISTER_ROLES", "approve_lot", "check_lot", "lot_id_for", "register_lot"]
