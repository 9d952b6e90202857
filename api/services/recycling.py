"""Recycling: a recycler turns collected items into one recovered lot, 100% recycled, its lineage on-chain."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.epcis import events as ev
from ledger.ids import material_lot_id
from ledger.lifecycle import Action, step
from materials import FULL_SHARE_BPS, MaterialMassExceeded, NotRecoverable, check_recovery
from materials.recovery import balance, item_parts, recoverable

from .. import intents
from ..models import Actor, ActorRole, Item, Lot
from ..problems import Problem
from ..schemas import Recycled, RecyclingCreate
from ..state import AppState
from ..uris import hex32, item_uri, lot_uri, unhex32
from ..writes import authorize, event_receipt, lot_public, material_code

RECYCLE_ROLES = tuple(sorted(ActorRole(party.value) for party in step(Action.RECYCLED).parties))


def check_materials(session: Session, items: Sequence[Item], outputs: Sequence[tuple[str, int]]) -> None:
    """Per-material mass balance before the transaction (the contract checks only the total): recovered lots of a
    material hold at most what the items held of what recycles into it (``materials.recovery``). A 422 that says
    which material, how much was asked and how much the items held. Lots heavier than the items altogether are left
    to the contract, whose ``RecoveredMassExceeded`` says so."""
    if sum(grams for _, grams in outputs) > sum(int(item.mass_grams) for item in items):
        return
    lot_ids = sorted({str(lot_id) for item in items for lot_id, _ in item.composition})
    rows = session.execute(select(Lot.lot_id, Lot.material_code).where(Lot.lot_id.in_(lot_ids)))
    codes = {lot_id: code for lot_id, code in rows}
    parts = item_parts(([(str(lot), int(grams)) for lot, grams in item.composition] for item in items), codes)
    try:
        check_recovery(parts, outputs)
    except NotRecoverable as exc:
        raise Problem(422, "Not a recovered material", str(exc), materialCode=exc.code) from None
    except MaterialMassExceeded as exc:
        held = balance(parts, outputs)
        raise Problem(
            422,
            "Material mass exceeded",
            f"refused: {exc}. Recycling yields one recovered lot per material, each at most what the items held of it",
            material=exc.material,
            requestedGrams=exc.requested,
            availableGrams=exc.available,
            byMaterial=[
                {"material": b.material, "requestedGrams": b.requested, "availableGrams": b.available}
                for b in held
            ],
            recoverable={target: sum(by.values()) for target, by in sorted(recoverable(parts).items())},
        ) from None


def recycle(state: AppState, session: Session, actor: Actor, body: RecyclingCreate) -> Recycled:
    """Recycle collected items into a recovered lot of the measured mass."""
    authorize(actor, *RECYCLE_ROLES)
    keys = list(dict.fromkeys((ref.gtin, ref.serial) for ref in body.items))
    if len(keys) != len(body.items):
        raise Problem(422, "Duplicate items", "each item may be listed once")
    items: list[Item] = []
    for gtin, serial in keys:
        item = session.scalar(select(Item).where(Item.gtin == gtin, Item.serial == serial))
        if item is None:
            raise Problem(404, "Unknown item", f"serial {serial} of GTIN {gtin} is not registered")
        items.append(item)
    code = material_code(body.material_code)
    check_materials(session, items, [(body.material_code, body.mass_grams)])
    expected = hex32(material_lot_id(actor.address, code, body.lot_number))
    if session.get(Lot, expected) is not None:
        raise Problem(409, "LotAlreadyRegistered", f"lot {body.lot_number} is registered already", lotId=expected)
    account = state.keys.account(actor)
    base = state.settings.resolver_base_url
    uri = lot_uri(base, expected)
    item_uris = [item_uri(base, i.gtin, i.serial) for i in items]
    fields = {
        "lot_id": expected,
        "uri": uri,
        "gtin": None,
        "lot_number": body.lot_number,
        "material_code": body.material_code,
        "mass_grams": body.mass_grams,
        "recycled_share_bps": FULL_SHARE_BPS,  # recovered from items: all of it recycled
        "recovered": True,
        "source_items": [i.item_id for i in items],
        "origin": None,
        "certificates": [],
    }
    written = intents.write(
        state,
        actor,
        account,
        kind="lot",
        subject=expected,
        call=state.service.ledger.recycle_call(
            [unhex32(i.item_id) for i in items], code, body.lot_number, body.mass_grams
        ),
        events=[ev.items_recycled(item_uris, uri, body.mass_grams, body.material_code, read_point=body.read_point)],
        effect={"lot": fields, "recycled_items": [i.item_id for i in items]},
    )
    session.expire_all()
    lot = session.get(Lot, expected)
    assert lot is not None  # written with the intent's completion
    return Recycled(
        lot=lot_public(lot, actor.name), items=item_uris, event=event_receipt(written), tx_hash=written.tx_hash
    )


__all__ = ["RECYCLE_ROLES", "check_materials", "recycle"]
