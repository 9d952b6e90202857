"""Who may record what about which item or lot: one set of rules for EPCIS capture, the audit and the passport.

The write API authorises each write by the lifecycle table (``ledger.lifecycle``): the roles an action allows, a
brand only on its own items, a lot drawn from only by its owner or an approved operator. EPCIS capture took any
event from any supply-chain actor: a retailer's and a recycler's keys wrote ``destroying`` and ``retail_selling``
onto another brand's passport, a made-up ``circ:lifecycle`` made the audit wave them through, and an event naming a
lot reached every item made from it. Here the same rules judge an event by what it says:

- its **action** comes from its vocabulary (bizStep, disposition, type), never from its own ``circ:lifecycle``,
  which may only tell apart two actions sharing that vocabulary (a sale and a resale); naming another action is a
  mismatch, refused;
- every **item** it names (a Digital Link of any domain, or an EPC URN) of a product registered here must be
  registered, and the signer must be allowed the action (its role among the action's parties, a brand only on its
  own items); an event recording none of the table's actions (``shipping``, ``inspecting`` ...) about an item is
  the item's brand's alone;
- every **lot** it names (quantity lists) that is ours must be registered, and the signer must own it or be
  approved on it (a lot's registration and a recycling's recovered lot: its owner only).

Identifiers that are not ours (another resolver's products, SSCCs, locations) are not ours to judge.

EPCIS capture adds one rule (:func:`refusals` with ``captured=True``): an action that moves an item or a lot
on-chain (a sale, a collection, a manufacture, a recycling ...) is recorded through the write API, which makes the
transaction and the event together; a captured event cannot claim it. What capture may record about our
identifiers is the brand's own observations of its items, the lot owner's of its lots, and the actions that are
events only (a repair), from the states the table allows them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from ledger.epcis.hashing import canonical_identifier
from ledger.lifecycle import LIFECYCLE, Action, ItemState, Party, Step, Write, action_of

from .models import Actor, Item, Lot, LotApproval, Product

ITEM_FIELDS = ("epcList", "childEPCs", "inputEPCList", "outputEPCList")
QUANTITY_FIELDS = ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList")
_DL = "https://id.gs1.org/01/"
_ACTIONS = frozenset(action.value for action in Action)
_CHUNK = 500


@dataclass(frozen=True)
class Claims:
    """What an event says it records, and about which items and lots."""

    action: Step | None  # from the vocabulary, refined by circ:lifecycle where two actions share it
    mismatch: str | None  # why circ:lifecycle contradicts the vocabulary, if it does
    items: tuple[tuple[str, str], ...]  # (GTIN-14, serial) of every serialised item it names
    lots: tuple[str, ...]  # every quantity class it names, as written
    label: str  # the bizStep as written, for messages


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _item_key(identifier: str) -> tuple[str, str] | None:
    """(GTIN-14, serial) of an identifier naming a serialised trade item, in any spelling, or None."""
    canonical = canonical_identifier(identifier)
    if not canonical.startswith(_DL):
        return None
    parts = canonical[len(_DL) :].split("/")
    if len(parts) == 3 and parts[1] == "21":
        return parts[0], unquote(parts[2])
    return None


def _lot_key(identifier: str) -> tuple[str, str] | None:
    """(GTIN-14, lot number) of an identifier naming a batch of a trade item, or None."""
    canonical = canonical_identifier(identifier)
    if not canonical.startswith(_DL):
        return None
    parts = canonical[len(_DL) :].split("/")
    if len(parts) == 3 and parts[1] == "10":
        return parts[0], unquote(parts[2])
    return None


def _named(event: Mapping[str, Any]) -> Iterator[str]:
    for key in ITEM_FIELDS:
        for value in event.get(key) or ():
            if isinstance(value, str):
                yield value
    if isinstance(event.get("parentID"), str):
        yield event["parentID"]


def _classes(event: Mapping[str, Any]) -> Iterator[str]:
    for key in QUANTITY_FIELDS:
        for entry in event.get(key) or ():
            if isinstance(entry, dict) and isinstance(entry.get("epcClass"), str):
                yield entry["epcClass"]


@lru_cache(maxsize=1024)
def _action(biz_step: str | None, disposition: str | None, event_type: str | None) -> Step | None:
    return action_of(biz_step, disposition, event_type)


def read_claims(event: Mapping[str, Any]) -> Claims:
    """The action an event records (from its vocabulary) and the items and lots it names."""
    # The vocabulary of a document's events repeats: each combination is looked up in the table once.
    row = _action(_text(event.get("bizStep")), _text(event.get("disposition")), _text(event.get("type")))
    mismatch = None
    claimed = event.get("circ:lifecycle")
    if claimed is not None:
        named = LIFECYCLE[Action(claimed)] if isinstance(claimed, str) and claimed in _ACTIONS else None
        if named is None:
            mismatch = f"circ:lifecycle {str(claimed)[:40]!r} is no action of the lifecycle"
        elif row is None or (named.biz_step, named.disposition) != (row.biz_step, row.disposition):
            says = f"{row.action.value}" if row is not None else "no action of the lifecycle"
            mismatch = f"circ:lifecycle says {named.action.value}; the bizStep and disposition say {says}"
        else:
            row = named  # a resale rather than a sale, a refurbishment rather than a repair
    items = tuple(dict.fromkeys(key for uri in _named(event) if (key := _item_key(uri)) is not None))
    lots = tuple(dict.fromkeys(_classes(event)))
    return Claims(row, mismatch, items, lots, _text(event.get("bizStep")) or "no bizStep")


@dataclass(frozen=True, slots=True)
class ItemFacts:
    """What the rules need of a registered item: its brand and its state."""

    brand_id: int
    state: int


@dataclass
class Subjects:
    """The registered products, items, lots and lot approvals that some events name, loaded in a few queries."""

    base_url: str
    products: set[str] = field(default_factory=set)
    items: dict[tuple[str, str], ItemFacts] = field(default_factory=dict)
    lots_by_uri: dict[str, Lot] = field(default_factory=dict)
    lots_by_key: dict[tuple[str, str], Lot] = field(default_factory=dict)
    approvals: set[tuple[str, int]] = field(default_factory=set)

    @classmethod
    def load(cls, session: Session, claims: Iterable[Claims], base_url: str) -> Subjects:
        subjects = cls(base_url.rstrip("/"))
        item_keys: set[tuple[str, str]] = set()
        classes: set[str] = set()
        for claim in claims:
            item_keys.update(claim.items)
            classes.update(claim.lots)
        lot_keys = {key for c in classes if (key := _lot_key(c)) is not None}
        gtins = sorted({g for g, _ in item_keys} | {g for g, _ in lot_keys})
        for chunk in _chunks(gtins):
            subjects.products.update(session.scalars(select(Product.gtin).where(Product.gtin.in_(chunk))))
        by_gtin: dict[str, list[str]] = {}
        for gtin, serial in sorted(item_keys):
            if gtin in subjects.products:
                by_gtin.setdefault(gtin, []).append(serial)
        for gtin, serials in by_gtin.items():
            for chunk in _chunks(serials):
                # Plain rows, not entities (1,000 items as entities took 45 ms), one GTIN at a time (a row-value IN
                # of 1,000 pairs took 30 ms to compile).
                query = select(Item.serial, Item.brand_id, Item.state).where(
                    Item.gtin == gtin, Item.serial.in_(chunk)
                )
                subjects.items.update(((gtin, s), ItemFacts(b, st)) for s, b, st in session.execute(query))
        lot_uris = sorted(classes)
        wanted_lots = sorted(key for key in lot_keys if key[0] in subjects.products)
        for chunk in _chunks(lot_uris):
            subjects._add_lots(session.scalars(select(Lot).where(Lot.uri.in_(chunk))))
        for chunk in _chunks(wanted_lots):
            subjects._add_lots(
                session.scalars(
                    select(Lot).where(or_(*(and_(Lot.gtin == g, Lot.lot_number == n) for g, n in chunk)))
                )
            )
        lot_ids = sorted({lot.lot_id for lot in subjects.lots_by_uri.values()})
        for chunk in _chunks(lot_ids):
            rows = session.execute(
                select(LotApproval.lot_id, LotApproval.operator_id).where(LotApproval.lot_id.in_(chunk))
            )
            subjects.approvals.update((lot_id, operator) for lot_id, operator in rows)
        return subjects

    @classmethod
    def everything(cls, session: Session, base_url: str = "") -> Subjects:
        """Every registered product, item, lot and approval (the audit reads them all anyway)."""
        subjects = cls(base_url.rstrip("/"))
        subjects.products.update(session.scalars(select(Product.gtin)))
        query = select(Item.gtin, Item.serial, Item.brand_id, Item.state)
        subjects.items.update(((g, s), ItemFacts(b, st)) for g, s, b, st in session.execute(query))
        subjects._add_lots(session.scalars(select(Lot)))
        rows = session.execute(select(LotApproval.lot_id, LotApproval.operator_id))
        subjects.approvals.update((lot_id, operator) for lot_id, operator in rows)
        return subjects

    def _add_lots(self, lots: Iterable[Lot]) -> None:
        for lot in lots:
            self.lots_by_uri[lot.uri] = lot
            if lot.gtin:
                self.lots_by_key[(lot.gtin, lot.lot_number)] = lot

    def lot(self, identifier: str) -> tuple[bool, Lot | None]:
        """(whether the identifier names a lot of ours, the registered lot or None)."""
        found = self.lots_by_uri.get(identifier)
        if found is not None:
            return True, found
        key = _lot_key(identifier)
        if key is not None:
            found = self.lots_by_key.get(key)
            return key[0] in self.products or found is not None, found
        return identifier.startswith(f"{self.base_url}/lots/"), None

    def uses(self, lot: Lot, actor_id: int) -> bool:
        """Whether the actor owns the lot or is approved to draw from it."""
        return lot.owner_id == actor_id or (lot.lot_id, actor_id) in self.approvals


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


# Lot actions whose lot only its owner may name: registering it, and the recovered lot a recycling makes.
_OWNER_ONLY = frozenset({Action.LOT, Action.RECYCLED})


@dataclass(frozen=True)
class Refusal:
    """One reason an event may not be recorded. `kind`: ``mismatch`` (circ:lifecycle against the vocabulary),
    ``unknown`` (an item or lot of ours never registered), ``role`` (the signer's role may not take the action),
    ``party`` (not the signer's item or lot), ``write-api`` and ``state`` (capture only)."""

    kind: str
    message: str


def refusals(
    claims: Claims, actor_id: int | None, party: str | None, subjects: Subjects, *, captured: bool = False
) -> list[Refusal]:
    """Why `claims` may not be recorded by the actor `actor_id` of role `party` (empty: it may).

    `actor_id` None is a signer who is no actor of ours (nothing of ours is theirs); `party` None, one whose role is
    not known. `captured` adds the rules of EPCIS capture: no action that moves an item or lot on-chain, and the
    states a repair may be recorded from."""
    found: list[Refusal] = []
    action = claims.action
    if claims.mismatch is not None:
        found.append(Refusal("mismatch", claims.mismatch))
    what = action.action.value if action is not None else claims.label
    for gtin, serial in claims.items:
        if gtin not in subjects.products:
            continue
        item = subjects.items.get((gtin, serial))
        if item is None:
            found.append(Refusal("unknown", f"serial {serial} of GTIN {gtin} is not registered"))
            continue
        own = actor_id is not None and item.brand_id == actor_id
        if action is None:
            if not own:
                found.append(Refusal("party", f"only the brand of {gtin}/{serial} records {what} events about it"))
            continue
        if captured and action.write is not Write.NONE:
            moves = f"{what} moves {gtin}/{serial} on-chain: record it through the write API"
            found.append(Refusal("write-api", moves))
            continue
        if party is not None and party not in action.parties:
            found.append(Refusal("role", f"a {party} may not record {what} (about {gtin}/{serial})"))
            continue
        # A brand acts on its own items only; with the role unknown, an action only a brand may take is the item's
        # brand's.
        if not own and (party == Party.BRAND or (party is None and action.parties == {Party.BRAND})):
            found.append(Refusal("party", f"{gtin}/{serial} is another brand's item"))
            continue
        if captured and party is not None and not action.allows(party, ItemState(item.state)):
            state = ItemState(item.state).name.lower()
            found.append(Refusal("state", f"a {party} may not record {what} about {gtin}/{serial} while it is {state}"))
    for identifier in claims.lots:
        ours, lot = subjects.lot(identifier)
        if not ours:
            continue
        if lot is None:
            found.append(Refusal("unknown", f"lot {identifier} is not registered"))
            continue
        if captured and action is not None and action.write is not Write.NONE:
            found.append(Refusal("write-api", f"{what} of lot {lot.lot_id} is recorded through the write API"))
            continue
        if action is not None and action.action in _OWNER_ONLY:
            allowed = actor_id is not None and lot.owner_id == actor_id
        else:
            allowed = actor_id is not None and subjects.uses(lot, actor_id)
        if not allowed:
            found.append(Refusal("party", f"lot {lot.lot_id} is neither the signer's nor approved to it"))
    return found


def judge(
    session: Session, events: Sequence[Mapping[str, Any]], actor: Actor, base_url: str, *, captured: bool = True
) -> list[dict[str, Any]]:
    """Each refused event of `events` that `actor` wants to record: ``{"index", "error"}`` (empty: all allowed)."""
    claims = [read_claims(event) for event in events]
    subjects = Subjects.load(session, claims, base_url)
    refused: list[dict[str, Any]] = []
    for index, claim in enumerate(claims):
        reasons = refusals(claim, actor.id, str(actor.role), subjects, captured=captured)
        if reasons:
            refused.append({"index": index, "error": "; ".join(r.message for r in reasons[:3])})
    return refused


__all__ = ["Claims", "ItemFacts", "Refusal", "Subjects", "judge", "read_claims", "refusals"]
