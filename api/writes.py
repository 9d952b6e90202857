"""What every write shares: the contract call as the acting actor, then the signed EPCIS event in the outbox.

The ledger's methods return ids, not receipts; a listener on the ledger's transactor (called in the sending thread
with every successful receipt) tells us each write's transaction hash.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from eth_account.signers.local import LocalAccount
from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.outbox import Stored
from materials import material_code_bytes32

from .models import Actor, Item, Lot, LotApproval, Product, utcnow
from .passport import state_name
from .problems import Problem
from .schemas import AnchoringStatus, EventReceipt, ItemPublic, LotPublic, PartPublic
from .state import AppState
from .uris import hex32, item_uri

T = TypeVar("T")


class _Receipts(threading.local):
    def __init__(self) -> None:
        self.items: list[Any] = []


_receipts = _Receipts()
_installed: set[int] = set()
_install_lock = threading.Lock()


def _listen(receipt: Any) -> None:
    _receipts.items.append(receipt)


def _install(state: AppState) -> None:
    tx = state.service.ledger.tx
    with _install_lock:
        if id(tx) not in _installed:
            tx.listeners.append(_listen)
            _installed.add(id(tx))


def transact(state: AppState, call: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T, str]:
    """Run a ledger call that sends one transaction; return its result and the transaction's hash."""
    _install(state)
    _receipts.items = []
    result = call(*args, **kwargs)
    if not _receipts.items:
        receipt = getattr(result, "receipt", None)
        tx_hash = receipt["transactionHash"] if receipt is not None else b""
    else:
        tx_hash = _receipts.items[-1]["transactionHash"]
    _receipts.items = []
    return result, hex32(bytes(tx_hash))


def record(state: AppState, account: LocalAccount, events: Sequence[dict[str, Any]]) -> EventReceipt:
    """Sign `events` as `account` and store them in the outbox; the receipt of the first one."""
    stored: list[Stored] = state.service.record(account, list(events))
    first = stored[0]
    return EventReceipt(
        event_id=first.event_id, anchoring=AnchoringStatus(str(first.status.value)), created=first.created
    )


def material_code(code: str) -> bytes:
    return material_code_bytes32(code)


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


def lot_public(lot: Lot, owner: str) -> LotPublic:
    return LotPublic(
        lot_id=lot.lot_id,
        uri=lot.uri,
        gtin=lot.gtin,
        lot_number=lot.lot_number,
        material_code=lot.material_code,
        mass_grams=lot.mass_grams,
        recycled_share_bps=lot.recycled_share_bps,
        recovered=lot.recovered,
        source_items=lot.source_items,
        origin=lot.origin,
        certificates=list(lot.certificates or []),
        owner=owner,
        created_at=lot.created_at,
    )


def item_public(state: AppState, item: Item, brand: str) -> ItemPublic:
    return ItemPublic(
        gtin=item.gtin,
        serial=item.serial,
        digital_link=item_uri(state.settings.resolver_base_url, item.gtin, item.serial),
        item_id=item.item_id,
        brand=brand,
        state=state_name(item.state),
        mass_grams=item.mass_grams,
        composition=[PartPublic(lot_id=str(lot_id), grams=int(grams)) for lot_id, grams in item.composition],
        run_id=item.run_id,
        materialized=item.materialized,
        recovered_into=item.recovered_into,
    )


def actor_name(session: Session, actor_id: int) -> str:
    actor = session.get(Actor, actor_id)
    return actor.name if actor is not None else str(actor_id)


__all__ = [
    "actor_name",
    "check_gtin_owner",
    "check_product",
    "ensure_product",
    "item_public",
    "lot_public",
    "material_code",
    "record",
    "transact",
    "usable_lots",
]
