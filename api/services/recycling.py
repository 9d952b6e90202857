"""Recycling: a recycler turns collected items into one recovered lot, 100% recycled, its lineage on-chain."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.epcis import events as ev
from ledger.ids import material_lot_id
from ledger.lifecycle import Action, step

from .. import intents
from ..models import Actor, ActorRole, Item, Lot
from ..problems import Problem
from ..schemas import Recycled, RecyclingCreate
from ..state import AppState
from ..uris import hex32, item_uri, lot_uri, unhex32
from ..writes import authorize, event_receipt, lot_public, material_code

RECYCLE_ROLES = tuple(sorted(ActorRole(party.value) for party in step(Action.RECYCLED).parties))


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
        "recycled_share_bps": 10_000,
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


__all__ = ["RECYCLE_ROLES", "recycle"]
