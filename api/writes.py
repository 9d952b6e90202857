"""What every write shares: checks of the acting actor's rights, the completions of write intents (the rows a write
makes once its transaction is mined, see :mod:`api.intents`), and the public views of what was written.

Writes without a transaction (a repair) only :func:`record` their signed event in the outbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.accounts import LocalAccount
from ledger.client import ItemState
from ledger.outbox import Stored
from materials import UnknownMaterial, catalogue, material, material_code_bytes32, material_label

from . import intents, versions
from .models import Actor, ActorRole, Item, Lot, LotApproval, Product, WriteIntent, utcnow
from .passport import state_name
from .problems import Problem
from .schemas import AnchoringStatus, EventReceipt, ItemPublic, LotPublic, Part, PartPublic
from .state import AppState
from .uris import item_uri


def authorize(actor: Actor, *roles: ActorRole) -> None:
    """Refuse (403) an actor whose role is none of `roles`: the one role check of the API's routes and the console."""
    allowed = {r.value for r in roles}
    if actor.role not in allowed:
        raise Problem(
            403,
            "Forbidden",
            f"a {actor.role} may not do this; it takes the role {' or '.join(sorted(allowed))}",
            role=actor.role,
            allowedRoles=sorted(allowed),
        )


def record(state: AppState, account: LocalAccount, events: Sequence[dict[str, Any]]) -> EventReceipt:
    """Sign `events` as `account` and store them in the outbox; the receipt of the first one."""
    with state.service.sessions.begin() as session:  # the events and the passport versions they make, together
        stored: list[Stored] = state.service.record(account, list(events), session=session)
        versions.after_events(session, state, events)
    first = stored[0]
    return EventReceipt(
        event_id=first.event_id, anchoring=AnchoringStatus(str(first.status.value)), created=first.created
    )


def event_receipt(written: intents.Written) -> EventReceipt:
    """The receipt of a write's first event."""
    first = written.events[0]
    return EventReceipt(
        event_id=first.event_id, anchoring=AnchoringStatus(str(first.status.value)), created=first.created
    )


def complete_lot(session: Session, intent: WriteIntent) -> None:
    """The rows of a registered or recovered lot: the lot, its product on a GTIN's first use, and for a recovered
    lot the items recycled into it."""
    effect = intent.effect
    fields = effect["lot"]
    if session.get(Lot, fields["lot_id"]) is not None:
        return
    actor = session.get(Actor, intent.actor_id)
    assert actor is not None
    if fields.get("gtin") is not None:
        ensure_product(session, fields["gtin"], actor)
    event_id = intents.signed_events(intent)[0].event_id
    session.add(Lot(**fields, owner_id=actor.id, event_id=event_id, tx_hash=intent.tx_hash, created_at=utcnow()))
    recycled = effect.get("recycled_items") or []
    for item in session.scalars(select(Item).where(Item.item_id.in_(recycled))):
        item.state = int(ItemState.RECYCLED)
        item.recovered_into = fields["lot_id"]
        item.holder_id = actor.id
        item.updated_at = utcnow()


def complete_approval(session: Session, intent: WriteIntent) -> None:
    effect = intent.effect
    approval = session.scalar(
        select(LotApproval).where(
            LotApproval.lot_id == effect["lot_id"], LotApproval.operator_id == effect["operator_id"]
        )
    )
    if approval is None:
        session.add(
            LotApproval(
                lot_id=effect["lot_id"],
                operator_id=effect["operator_id"],
                grams=effect["grams"],
                tx_hash=intent.tx_hash,
                created_at=utcnow(),
            )
        )
    else:
        approval.grams, approval.tx_hash = effect["grams"], intent.tx_hash


def check_material(code: str) -> None:
    """A material code of the catalogue (``materials/catalogue.json``); any other is a 422 naming the valid ones."""
    try:
        material(code)
    except UnknownMaterial:
        codes = sorted(catalogue())
        raise Problem(
            422,
            "Unknown material",
            f"no material {code!r} in the catalogue; valid codes: {', '.join(codes)}",
            materialCode=code,
            validCodes=codes,
        ) from None


def material_code(code: str) -> bytes:
    """The on-chain form of a catalogue material code (checked first: an unknown one is a 422)."""
    check_material(code)
    return material_code_bytes32(code)


def draw(session: Session, composition: Sequence[Sequence[Any]], copies: int) -> None:
    """Count `copies` items of `composition` ([lot id, grams] each) against their lots' grams, as the contract did."""
    for lot_id, grams in composition:
        lot = session.get(Lot, str(lot_id))
        if lot is not None:
            lot.allocated_grams = (lot.allocated_grams or 0) + int(grams) * copies


def check_product(session: Session, gtin14: str, actor: Actor) -> Product | None:
    """The GTIN's product record (None before its first use); another brand's GTIN is refused. Read-only."""
    product = session.get(Product, gtin14)
    if product is not None and product.brand_id != actor.id:
        raise Problem(403, "Not your GTIN", f"GTIN {gtin14} belongs to another brand")
    return product


def check_gtin_owner(state: AppState, actor: Actor, gtin14: str) -> None:
    """The API's own check that a brand writes under its own company prefixes (the contract checks it again)."""
    owner = state.service.ledger.gtin_owner(gtin14)
    if owner.lower() != actor.address.lower():
        raise Problem(403, "Not your GTIN", f"GTIN {gtin14} is not under a company prefix of {actor.name}")


def ensure_product(session: Session, gtin14: str, actor: Actor) -> Product:
    """The GTIN's product record, added for `actor` on its first use (not flushed).

    Call it after the write's outbox record: on SQLite a pending write would hold the database lock that the outbox's
    own transaction then waits for.
    """
    product = check_product(session, gtin14, actor)
    if product is None:
        product = Product(
            gtin=gtin14,
            brand_id=actor.id,
            brand_name=actor.name,
            name=f"GTIN {gtin14}",
            description="",
            language="en",
            care="",
            repair="",
            end_of_life="",
            return_info="",
            created_at=utcnow(),
            updated_at=utcnow(),
        )
        session.add(product)
    return product


def usable_lots(session: Session, actor: Actor, lot_ids: Sequence[str]) -> dict[str, Lot]:
    """The lots `actor` may draw from: its own, or approved to it. Unknown lots are a 422, others' a 403."""
    wanted = sorted({lot_id.lower() for lot_id in lot_ids})
    lots = {lot.lot_id: lot for lot in session.scalars(select(Lot).where(Lot.lot_id.in_(wanted)))}
    missing = [lot_id for lot_id in wanted if lot_id not in lots]
    if missing:
        raise Problem(422, "Unknown lot", f"no lot {missing[0]} is registered", lotIds=missing)
    foreign = [lot_id for lot_id, lot in lots.items() if lot.owner_id != actor.id]
    if foreign:
        approved = set(
            session.scalars(
                select(LotApproval.lot_id).where(LotApproval.lot_id.in_(foreign), LotApproval.operator_id == actor.id)
            )
        )
        refused = [lot_id for lot_id in foreign if lot_id not in approved]
        if refused:
            raise Problem(
                403,
                "Not your lot",
                f"lot {refused[0]} belongs to another actor and is not approved to you",
                lotIds=refused,
            )
    return lots


def composition_of(
    session: Session, actor: Actor, parts: Sequence[Part]
) -> tuple[list[tuple[str, int]], dict[str, Lot]]:
    """A composition as (lot id, grams), each part named by its lot id or by its lot number, and the lots, which
    `actor` may all draw from (:func:`usable_lots`). A lot number names one of the actor's own lots or of those
    approved to it; one that names none, or several, is a 422."""
    numbers = sorted({p.lot_number for p in parts if p.lot_number is not None})
    by_number: dict[str, list[str]] = {number: [] for number in numbers}
    if numbers:
        approved = select(LotApproval.lot_id).where(LotApproval.operator_id == actor.id)
        rows = session.execute(
            select(Lot.lot_number, Lot.lot_id)
            .where(Lot.lot_number.in_(numbers), (Lot.owner_id == actor.id) | Lot.lot_id.in_(approved))
            .order_by(Lot.lot_id)
        )
        for number, lot_id in rows:
            by_number[number].append(lot_id)
    composition: list[tuple[str, int]] = []
    for part in parts:
        if part.lot_id is not None:
            composition.append((part.lot_id.lower(), part.grams))
            continue
        assert part.lot_number is not None  # the schema asks for one of the two
        found = by_number[part.lot_number]
        if not found:
            raise Problem(
                422,
                "Unknown lot",
                f"no lot numbered {part.lot_number} is yours or approved to you",
                lotNumber=part.lot_number,
            )
        if len(found) > 1:
            raise Problem(
                422,
                "Ambiguous lot number",
                f"{len(found)} of your lots are numbered {part.lot_number}: name the one you mean by its lotId",
                lotNumber=part.lot_number,
                lotIds=found,
            )
        composition.append((found[0], part.grams))
    ids = [lot_id for lot_id, _ in composition]
    if len(set(ids)) != len(ids):
        raise Problem(422, "Invalid composition", "a composition names each lot once", lotIds=ids)
    return composition, usable_lots(session, actor, ids)


def lot_public(lot: Lot, owner: str) -> LotPublic:
    return LotPublic(
        lot_id=lot.lot_id,
        uri=lot.uri,
        gtin=lot.gtin,
        lot_number=lot.lot_number,
        material_code=lot.material_code,
        material=material_label(lot.material_code, recovered=lot.recovered),
        mass_grams=lot.mass_grams,
        allocated_grams=lot.allocated_grams or 0,
        available_grams=lot.mass_grams - (lot.allocated_grams or 0),
        recycled_share_bps=lot.recycled_share_bps,
        recovered=lot.recovered,
        source_items=lot.source_items,
        origin=lot.origin,
        certificates=list(lot.certificates or []),
        owner=owner,
        created_at=lot.created_at,
    )


def item_public(state: AppState, item: Item, brand: str, lot_numbers: dict[str, str] | None = None) -> ItemPublic:
    """The public view of `item`; `lot_numbers` (lot id → number), when given, names each part's lot."""
    numbers = lot_numbers or {}
    return ItemPublic(
        gtin=item.gtin,
        serial=item.serial,
        digital_link=item_uri(state.settings.resolver_base_url, item.gtin, item.serial),
        item_id=item.item_id,
        brand=brand,
        state=state_name(item.state),
        mass_grams=item.mass_grams,
        composition=[
            PartPublic(lot_id=str(lot_id), lot_number=numbers.get(str(lot_id)), grams=int(grams))
            for lot_id, grams in item.composition
        ],
        run_id=item.run_id,
        materialized=item.materialized,
        recovered_into=item.recovered_into,
    )


def lot_numbers(session: Session, items: Sequence[Item]) -> dict[str, str]:
    """Lot id → lot number of every lot in `items`' compositions, in one query."""
    ids = sorted({str(lot_id) for item in items for lot_id, _ in item.composition})
    if not ids:
        return {}
    rows = session.execute(select(Lot.lot_id, Lot.lot_number).where(Lot.lot_id.in_(ids)))
    return {lot_id: number for lot_id, number in rows}


def actor_name(session: Session, actor_id: int) -> str:
    actor = session.get(Actor, actor_id)
    return actor.name if actor is not None else str(actor_id)


__all__ = [
    "actor_name",
    "authorize",
    "check_gtin_owner",
    "check_material",
    "check_product",
    "complete_approval",
    "complete_lot",
    "composition_of",
    "draw",
    "ensure_product",
    "event_receipt",
    "item_public",
    "lot_numbers",
    "lot_public",
    "material_code",
    "record",
    "usable_lots",
]
