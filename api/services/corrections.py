"""Corrections the EPCIS way: a mistaken event is declared in error, and corrective events put things right.

An event is never edited or deleted: it is signed and anchored. A correction is one more event, its EPCIS 2.0 error
declaration (``ledger.epcis.corrections``: the event again, with ``errorDeclaration`` giving the reason and the
corrective events' ids), signed and anchored like any other. The passport shows the corrected history, the declared
event marked, and the evidence bundle holds both.

- :func:`correct_event`: a lifecycle event declared ``did_not_occur`` or ``incorrect_data``, with the lifecycle steps
  that correct it (a mistaken sale corrected by a return, recorded on-chain first: the chain's state machine has no
  undo, and the declaration names their events);
- :func:`correct_lot`: a lot's origin or certificates corrected: a corrective commissioning event with the right
  data, and the declaration of the original one, in one transaction with the lot's row and its history
  (``api_masterdata_history``: what it said before);
- :func:`record_product_change`: a product's master data changed, its previous values kept in the same history.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Text, cast, func, select
from sqlalchemy.orm import Session

from ledger.epcis import events as ev
from ledger.epcis.corrections import error_declaration, is_declaration, record_id
from ledger.lifecycle import Action, action_of_event

from .. import versions
from ..gs1.digital_link import parse_path
from ..models import PRODUCT_FIELDS, Actor, ActorRole, Item, Lot, MasterDataChange, Product, utcnow
from ..problems import Problem
from ..schemas import (
    AnchoringStatus,
    CorrectionCreate,
    CorrectionRecorded,
    EventReceipt,
    LifecycleCreate,
    LotCorrected,
    LotCorrection,
    MasterDataChangePublic,
    MasterDataHistory,
)
from ..state import AppState
from ..writes import authorize, lot_public, record
from . import items as item_services

CORRECT_ROLES = (ActorRole.BRAND, ActorRole.RETAILER, ActorRole.RECYCLER, ActorRole.REPAIRER)
ITEM_FIELDS = ("epcList", "inputEPCList", "outputEPCList")


def _item_uris(event: dict[str, Any]) -> list[str]:
    return [str(uri) for key in ITEM_FIELDS for uri in event.get(key) or ()]


def _declaration_of(state: AppState, event: dict[str, Any], event_id: str) -> str | None:
    """The record id of an existing declaration of `event_id`, if any (among the events naming what it names)."""
    epcs = _item_uris(event) + [
        str(q["epcClass"]) for key in ("quantityList", "inputQuantityList", "outputQuantityList")
        for q in event.get(key) or () if isinstance(q, dict) and "epcClass" in q
    ]
    for epc in epcs[:1]:
        for row in state.service.outbox.events_for(epc):
            if is_declaration(row.event) and row.event.get("eventID") == event_id:
                return row.event_id
    return None


def correct_event(state: AppState, session: Session, actor: Actor, body: CorrectionCreate) -> CorrectionRecorded:
    """Declare a mistaken event in error, after recording the steps that correct it. Its signer may, and the brand of
    the item it names."""
    authorize(actor, *CORRECT_ROLES)
    row = state.service.outbox.get(body.event_id)
    if row is None:
        raise Problem(404, "Unknown event", f"no event {body.event_id}")
    event = dict(row.event)
    if is_declaration(event):
        raise Problem(422, "Not correctable", "an error declaration is not itself declared in error")
    existing = _declaration_of(state, event, row.event_id)
    if existing is not None:
        raise Problem(
            409, "Already corrected", f"event {row.event_id} was declared in error already", declarationId=existing
        )
    items = [item for item in (_find(session, uri) for uri in _item_uris(event)) if item is not None]
    own_brand = any(item.brand_id == actor.id for item in items) and actor.role == ActorRole.BRAND.value
    if row.signer.lower() != actor.address.lower() and not own_brand:
        raise Problem(403, "Not your event", "an event is corrected by its signer, or by the brand of its item")
    corrective: list[Any] = []
    if body.corrective:
        step = action_of_event(event)
        if len(items) != 1 or step is None or step.action in (Action.MANUFACTURED, Action.RECYCLED, Action.LOT):
            raise Problem(
                422,
                "No corrective steps here",
                "corrective steps are lifecycle steps of the one item a lifecycle event names",
            )
        item = items[0]
        for fix in body.corrective:
            corrective.append(
                item_services.lifecycle(
                    state,
                    session,
                    actor,
                    LifecycleCreate(gtin=item.gtin, serial=item.serial, action=fix.action, read_point=fix.read_point),
                )
            )
    declaration = error_declaration(
        event, body.reason.value, [recorded.event.event_id for recorded in corrective]
    )
    receipt = record(state, state.keys.account(actor), [declaration])
    return CorrectionRecorded(corrected_event_id=row.event_id, declaration=receipt, corrective=corrective)


def _find(session: Session, uri: str) -> Item | None:
    """The item an event names by its Digital Link, if it is one of ours."""
    try:
        link = parse_path(urlsplit(uri).path)
    except Exception:  # not a Digital Link of an item: nothing to find
        return None
    if link.serial is None:
        return None
    return session.scalar(select(Item).where(Item.gtin == link.gtin14, Item.serial == link.serial))


def _receipt(stored: Any) -> EventReceipt:
    return EventReceipt(
        event_id=stored.event_id, anchoring=AnchoringStatus(str(stored.status.value)), created=stored.created
    )


def correct_lot(state: AppState, session: Session, actor: Actor, lot_id: str, body: LotCorrection) -> LotCorrected:
    """Correct a lot's origin or certificates: a corrective commissioning event, the error declaration of the one it
    replaces, the lot's row, its items' certificates, its history and the passports that show it, together."""
    authorize(actor, ActorRole.BRAND, ActorRole.RECYCLER)
    lot = session.get(Lot, lot_id.lower())
    if lot is None:
        raise Problem(404, "Unknown lot", f"no lot {lot_id}")
    if lot.owner_id != actor.id:
        raise Problem(403, "Not your lot", f"lot {lot_id} belongs to another actor")
    if lot.recovered:
        raise Problem(422, "Not correctable", "a recovered lot's data is its recycling's: correct the recycling")
    original = state.service.outbox.get(lot.event_id)
    if original is None:
        raise Problem(409, "No registration event", f"lot {lot.lot_number} has no registration event to correct")
    origin = body.origin if body.origin is not None else lot.origin
    certificates = list(body.certificates) if body.certificates is not None else list(lot.certificates or [])
    previous: dict[str, Any] = {"origin": lot.origin, "certificates": list(lot.certificates or [])}
    current: dict[str, Any] = {"origin": origin, "certificates": certificates}
    if current == previous:
        raise Problem(422, "Nothing to correct", "the lot says this already")
    fixed = ev.lot_registered(
        lot.uri,
        lot.material_code,
        int(lot.mass_grams),
        int(lot.recycled_share_bps),
        certificates=certificates,
        origin=origin,
    )
    fixed_id = record_id(fixed)
    declaration = error_declaration(dict(original.event), "incorrect_data", [fixed_id])
    account = state.keys.account(actor)
    with state.service.sessions.begin() as tx:
        stored = state.service.record(account, [fixed, declaration], session=tx)
        row = tx.get_one(Lot, lot.lot_id)
        row.origin, row.certificates, row.event_id = origin, certificates, fixed_id
        change = MasterDataChange(
            kind="lot",
            key=lot.lot_id,
            actor_id=actor.id,
            changed_at=utcnow(),
            previous=previous,
            current=current,
            reason=body.reason,
            declaration_id=stored[1].event_id,
        )
        tx.add(change)
        _recertify(tx, lot.lot_id)
        tx.flush()
        versions.after_events(tx, state, [fixed, declaration])
        versions.after_lot(tx, state, row)
        public = _change_public(change, actor.name)
    session.expire_all()
    refreshed = session.get_one(Lot, lot.lot_id)
    return LotCorrected(
        lot=lot_public(refreshed, actor.name),
        change=public,
        declaration=_receipt(stored[1]),
        corrective=_receipt(stored[0]),
    )


def _recertify(session: Session, lot_id: str) -> None:
    """The certificates items keep for one-query resolution: their lots' certificates, again."""
    certificates = {lot.lot_id: list(lot.certificates or []) for lot in session.scalars(select(Lot))}
    for item in session.scalars(select(Item).where(cast(Item.composition, Text).contains(lot_id))):
        item.certificates = sorted({c for part, _ in item.composition for c in certificates.get(str(part), [])})


def record_product_change(session: Session, actor: Actor, product: Product, before: dict[str, Any]) -> None:
    """Keep a product's previous master data when a change alters it (in the change's transaction)."""
    after = {name: getattr(product, name) for name in PRODUCT_FIELDS}
    changed = {name for name in PRODUCT_FIELDS if before.get(name) != after[name]}
    if not changed:
        return
    session.add(
        MasterDataChange(
            kind="product",
            key=product.gtin,
            actor_id=actor.id,
            changed_at=utcnow(),
            previous={name: before.get(name) for name in sorted(changed)},
            current={name: after[name] for name in sorted(changed)},
            reason=None,
            declaration_id=None,
        )
    )


def product_fields(product: Product) -> dict[str, Any]:
    return {name: getattr(product, name) for name in PRODUCT_FIELDS}


def _change_public(change: MasterDataChange, by: str) -> MasterDataChangePublic:
    return MasterDataChangePublic(
        changed_at=change.changed_at,
        by=by,
        reason=change.reason,
        previous=dict(change.previous),
        current=dict(change.current),
        declaration_id=change.declaration_id,
    )


def history(session: Session, kind: str, key: str, skip: int = 0, limit: int = 100) -> MasterDataHistory:
    """A lot's or a product's corrections, newest first."""
    query = select(MasterDataChange).where(MasterDataChange.kind == kind, MasterDataChange.key == key)
    count = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = list(session.scalars(query.order_by(MasterDataChange.id.desc()).offset(skip).limit(limit)))
    names = {a.id: a.name for a in session.scalars(select(Actor).where(Actor.id.in_({r.actor_id for r in rows})))}
    return MasterDataHistory(
        data=[_change_public(row, names.get(row.actor_id, str(row.actor_id))) for row in rows], count=int(count)
    )


__all__ = [
    "CORRECT_ROLES",
    "correct_event",
    "correct_lot",
    "history",
    "product_fields",
    "record_product_change",
]
