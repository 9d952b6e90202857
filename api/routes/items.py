"""Items: made from lots one by one or in runs of thousands (one transaction), and their lifecycle.

The rules (who may make and move which items) are in :mod:`api.services.items`; the contract checks them again.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from ledger.outbox import proofs_as_hex, split_proof

from .. import epcis_store
from ..access import Tier, tier_for
from ..deps import ApiSettingsDep, BrandActor, CurrentActor, PageDep, SessionDep, StateDep, SupplyChainActor
from ..lists import list_items
from ..problems import Problem
from ..schemas import (
    AnchoringStatus,
    AnchorPublic,
    EventStatusPublic,
    Gtin,
    ItemCreate,
    ItemPublic,
    ItemsMade,
    ItemsPublic,
    ItemStateName,
    LifecycleBatchCreate,
    LifecycleBatchRecorded,
    LifecycleCreate,
    LifecycleRecorded,
    RunCreate,
    RunMade,
)
from ..services import items
from ..uris import event_id_from, hex32
from ..writes import actor_name, item_public, lot_numbers

router = APIRouter(tags=["items"])


@router.post("/items", status_code=201, response_model=ItemsMade, summary="Make one item from lots (a brand)")
def make_item(body: ItemCreate, actor: BrandActor, session: SessionDep, state: StateDep) -> ItemsMade:
    return items.make_item(state, session, actor, body)


@router.post(
    "/runs",
    status_code=201,
    response_model=RunMade,
    summary="Make a run of items of one composition: one transaction, one Merkle root (a brand)",
)
def make_run(
    body: RunCreate, actor: BrandActor, session: SessionDep, state: StateDep, api_settings: ApiSettingsDep
) -> RunMade:
    return items.make_run(state, session, actor, body, api_settings)


@router.get("/items", response_model=ItemsPublic, summary="Your items, a page at a time")
def get_items(
    actor: CurrentActor,
    session: SessionDep,
    state: StateDep,
    page: PageDep,
    states: Annotated[
        list[ItemStateName] | None, Query(alias="state", description="Only items in these states (repeatable).")
    ] = None,
    lot: Annotated[
        str | None, Query(min_length=1, max_length=66, description="Only items made from this lot (id or number).")
    ] = None,
    gtin: Annotated[Gtin | None, Query(description="Only items of this product.")] = None,
) -> ItemsPublic:
    """A brand's items and the items whose latest step the caller recorded (an admin's: every item), in the order
    they were made, with how many match in all."""
    return list_items(state, session, actor, page, states=states or (), lot=lot, gtin=gtin)


@router.get("/items/{gtin}/{serial:path}", response_model=ItemPublic, summary="An item")
def get_item(gtin: str, serial: str, actor: CurrentActor, session: SessionDep, state: StateDep) -> ItemPublic:
    """The item with its composition by lot (which passports show the public without its lots, ``api/access.py``):
    for its brand, the actor holding it, those with a legitimate interest (recyclers, repairers) and the admin. To
    anyone else the item is unknown here; its passport is the public's view."""
    item = items.find_item(session, gtin, serial)
    if tier_for(actor, item.brand_id) is Tier.PUBLIC and item.holder_id != actor.id:
        raise Problem(404, "Unknown item", f"serial {serial} of GTIN {gtin} is not registered")  # as to anyone
    return item_public(state, item, actor_name(session, item.brand_id), lot_numbers(session, [item]))


@router.post(
    "/lifecycle-events",
    status_code=201,
    response_model=LifecycleRecorded,
    summary="Record a sale, use, return, collection, repair, refurbishment, resale or disposal",
)
def lifecycle(
    body: LifecycleCreate, actor: SupplyChainActor, session: SessionDep, state: StateDep
) -> LifecycleRecorded:
    return items.lifecycle(state, session, actor, body)


@router.post(
    "/lifecycle-batches",
    response_model=LifecycleBatchRecorded,
    summary="Record one step (a sale, a return, a collection...) for up to 1,000 items at once",
)
def lifecycle_batch(
    body: LifecycleBatchCreate, actor: SupplyChainActor, session: SessionDep, state: StateDep
) -> LifecycleBatchRecorded:
    """Each item's step is a transaction of its own, all sent as one pipeline; the answer has a result per item
    (``recorded``, ``unchanged``, ``refused``, ``failed`` or ``pending``), in the request's order. Retrying the same
    request is safe: what was recorded is ``unchanged`` the second time."""
    return items.lifecycle_many(state, session, actor, body)


def _proof_hex(proof: object) -> list[str] | None:
    """The proof as hex strings, whether the outbox keeps it packed (bytes) or as a list."""
    if proof is None:
        return None
    if isinstance(proof, bytes | bytearray | memoryview):
        return proofs_as_hex(split_proof(bytes(proof)))
    return [str(p) for p in proof]  # type: ignore[attr-defined]


@router.get(
    "/anchoring/{event_id:path}",
    response_model=EventStatusPublic,
    tags=["events"],
    summary="Where an event is in anchoring: pending, batched, anchored (with its proof)",
)
def anchoring(
    request: Request, actor: CurrentActor, session: SessionDep, state: StateDep, event_id: str = Path(min_length=10)
) -> EventStatusPublic:
    """For the actors who may read the event through the EPCIS query interface (the same rule): the status names
    the event's signer, an account the public passport keeps for authorities."""
    event_id = event_id_from(request, event_id)
    visible = epcis_store.visible_to(session, actor, state.settings.resolver_base_url)
    row = state.service.outbox.get(event_id)
    if row is None or (visible is not None and epcis_store.find_event(session, event_id, visible) is None):
        raise Problem(404, "Unknown event", f"no event {event_id}")
    batch = None
    if row.batch_id is not None:
        with state.service.sessions() as session:
            from ledger.outbox import Batch

            found = session.get(Batch, row.batch_id)
            if found is not None:
                batch = AnchorPublic(
                    root=hex32(found.root),
                    tx_hash=hex32(found.tx_hash) if found.tx_hash else None,
                    block_number=found.block_number,
                    status=str(found.status.value),
                )
    return EventStatusPublic(
        event_id=row.event_id,
        anchoring=AnchoringStatus(str(row.status.value)),
        signer=row.signer,
        batch=batch,
        proof=_proof_hex(row.proof),
    )
