"""The digital product passport of an item: composition, recycled content, provenance, lifecycle and verification.

Built from the API's records and the ledger's outbox (no chain call), except the verification verdict, which checks
the item's evidence bundle against the chain once and is then cached by the bundle's digest.
"""

from __future__ import annotations

import hashlib
import json
import typing
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import Text, bindparam, cast, select
from sqlalchemy.orm import Session

from ledger.client import ItemState
from ledger.epcis.corrections import is_declaration
from ledger.integrity import ItemClaim, LotClaim
from ledger.lifecycle import action_of, label_of, state_label
from ledger.outbox import Batch, EventEpc, OutboxEvent
from ledger.versions import Canonical
from materials import (
    Ancestor,
    Composition,
    LotRecord,
    UnknownMaterial,
    bps_to_fraction,
    material_label,
    recycled_share_bps,
)
from materials import material as catalogue_material
from materials import provenance as walk_provenance

from .authority import Claims, Subjects, read_claims, refusals
from .gs1.linktypes import GS1_NS, VOC_NS
from .models import Actor, Item, Lot, MasterDataChange, Product
from .state import AppState
from .uris import item_uri

CLOSED_STATES = (ItemState.RECYCLED, ItemState.DISPOSED)  # an item that can no longer be returned
PALETTE = ("#2f6f4f", "#d08c2c", "#3d6fb4", "#a2475e", "#6b8e23", "#7a5ca8", "#c4572a", "#2a8c8c", "#8c6d2a")
# Recovered material in greens, virgin material in other hues: recycled cotton never looks like cotton on the chart.
RECYCLED_PALETTE = ("#2f6f4f", "#6b8e23", "#2a8c8c", "#4f9d69", "#1f5f5b")
VIRGIN_PALETTE = ("#d08c2c", "#3d6fb4", "#a2475e", "#7a5ca8", "#c4572a", "#8c6d2a")
STATE_LABELS = {state: state_label(state) for state in ItemState}


def material_name(code: str, recovered: bool = False) -> str:
    """How the passport names a lot's material: a recovered lot as the recovered material ("Recycled cotton"),
    whatever code it was registered with."""
    try:
        catalogue_material(code)
    except UnknownMaterial:
        return code
    return material_label(code, recovered=recovered)


def country_code(origin: str | None) -> str | None:
    """`origin` when it is an ISO 3166-1 alpha-2 code (what a label's "made in" says), else None (free text)."""
    from .credentials import countries

    return origin if isinstance(origin, str) and origin in countries() else None


def state_name(state: int) -> str:
    return ItemState(state).name.lower()


@dataclass
class MaterialView:
    lot_id: str
    lot_uri: str
    lot_number: str
    material_code: str
    material: str
    grams: int
    share: float
    recycled_share: float
    recovered: bool
    color: str = "#888"
    origin_country: str | None = None  # the lot's origin when it is a country (ISO 3166-1 alpha-2), not free text
    dash: str = ""
    offset: float = 0.0


@dataclass
class Generation:
    """One generation of an item's material, numbered from the oldest (1) to the item itself (the newest): the lots
    its items were made of, those items by product (none for the item's own generation), and the recovered lots
    they were recycled into (which the next generation drew from)."""

    index: int
    lots: list[dict[str, Any]] = field(default_factory=list)
    source_items: list[dict[str, Any]] = field(default_factory=list)
    current: bool = False  # the item's (or the lot's) own generation
    recycled_into: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class TimelineEntry:
    event_id: str
    time: str
    label: str
    biz_step: str | None
    disposition: str | None
    actor: str
    anchoring: str
    tx_hash: str | None
    third_party: bool = False  # signed by someone else than the item's brand (the lot's owner), as the rules allow
    # Declared in error (EPCIS 2.0 errorDeclaration): reason, when, by whom, and the corrective events' ids.
    correction: dict[str, Any] | None = None
    corrective: bool = False  # an event a declaration names as putting things right


@dataclass
class Verdict:
    status: str  # verified | pending | failed | unavailable
    events: int
    checked_at: str
    problems: list[str]

    @property
    def verified(self) -> bool:
        return self.status == "verified"


def composition(session: Session, item: Item) -> tuple[list[MaterialView], float, dict[str, Lot]]:
    """The item's materials by lot, with grams and shares, its recycled content (0..1), and its lots by id."""
    lot_ids = [str(lot_id) for lot_id, _ in item.composition]
    lots = {lot.lot_id: lot for lot in session.scalars(select(Lot).where(Lot.lot_id.in_(lot_ids)))}
    # The arithmetic is materials/'s (mass balance, proportional allocation, rounding): not repeated here.
    parts = Composition.of((str(lot_id), int(grams)) for lot_id, grams in item.composition)
    records = {
        lot_id: LotRecord(
            lot_id,
            lots[lot_id].material_code if lot_id in lots else "?",
            lots[lot_id].mass_grams if lot_id in lots else 0,
            lots[lot_id].recycled_share_bps if lot_id in lots else 0,
        )
        for lot_id in lot_ids
    }
    total = parts.mass_grams
    materials: list[MaterialView] = []
    colors: dict[str, str] = {}  # one colour per material as named, recovered and virgin from palettes of their own
    for part in parts.parts:
        lot = lots.get(part.lot_id)
        recovered = bool(lot and lot.recovered)
        name = material_name(lot.material_code, recovered) if lot else "Unknown material"
        if name not in colors:
            palette = RECYCLED_PALETTE if recovered else VIRGIN_PALETTE
            used = sum(1 for key in colors if key.startswith("r:" if recovered else "v:"))
            colors[name] = palette[used % len(palette)]
            colors[("r:" if recovered else "v:") + name] = colors[name]
        materials.append(
            MaterialView(
                lot_id=part.lot_id,
                lot_uri=lot.uri if lot else "",
                lot_number=lot.lot_number if lot else "?",
                material_code=lot.material_code if lot else "?",
                material=name,
                grams=part.grams,
                share=part.grams / total,
                recycled_share=bps_to_fraction(records[part.lot_id].recycled_share_bps),
                recovered=recovered,
                color=colors[name],
                origin_country=country_code(lot.origin) if lot else None,
            )
        )
    recycled = bps_to_fraction(recycled_share_bps(parts, records))
    # Donut chart: one circle of circumference 100 per material, dashed to its share.
    offset = 25.0  # start at 12 o'clock
    for material in materials:
        length = round(material.share * 100, 3)
        material.dash = f"{length} {round(100 - length, 3)}"
        material.offset = round(offset, 3)
        offset -= length
    return materials, recycled, lots


def _lot_view(
    lot: Lot, grams: int | None = None, items: int | None = None, owners: dict[int, str] | None = None
) -> dict[str, Any]:
    """A lot as the passport shows it; a recovered lot names the recycler that recovered it (`owners`: actor id →
    name)."""
    recycler = (owners or {}).get(lot.owner_id) if lot.recovered else None
    return {
        "lotId": lot.lot_id,
        "uri": lot.uri,
        "lotNumber": lot.lot_number,
        "gtin": lot.gtin,
        "material": material_name(lot.material_code, lot.recovered),
        "recycler": recycler,
        "materialCode": lot.material_code,
        "massGrams": lot.mass_grams,
        "recycledShare": bps_to_fraction(lot.recycled_share_bps),
        "recovered": lot.recovered,
        "origin": lot.origin,
        "certificates": list(lot.certificates or []),
        "grams": grams,
        "fromItems": items,
    }


# The items recycled into a generation's recovered lots, asked by those lots (a handful of ids, on the
# ``recovered_into`` index) rather than by the lots' ``source_items`` (a thousand item ids at the third generation,
# each bound and looked up on its own: most of the trace's time). Built once, with one expanding parameter.
ANCESTORS = select(Item.gtin, Item.serial, cast(Item.composition, Text)).where(
    Item.recovered_into.in_(bindparam("lots", expanding=True))
)


def lot_record(lot: Lot) -> LotRecord:
    """What materials/ needs of a lot (a recovered lot's source items make the provenance walk go on)."""
    sources = tuple(lot.source_items or ()) if lot.recovered else ()
    return LotRecord(lot.lot_id, lot.material_code, int(lot.mass_grams), int(lot.recycled_share_bps), sources)


class _Records:
    """materials/'s provenance walk asked of the database: one query per generation for the items recycled into a
    set of recovered lots, one for a set of lots. The rows read are kept for the passport's views."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.lot_rows: dict[str, Lot] = {}
        self._compositions: dict[str, tuple[tuple[str, int], ...]] = {}

    def ancestors(self, recovered_lots: Sequence[str]) -> list[Ancestor]:
        # Plain rows, not Item entities, and the composition as its stored text: a recovered lot of a third
        # generation can have a thousand ancestors, and loading each as an entity (its proof, dates, identity map)
        # and decoding each composition was most of the trace's time. Items of one run share one composition, so
        # each distinct text is decoded once.
        ancestors: list[Ancestor] = []
        for gtin, serial, text in self.session.execute(ANCESTORS, {"lots": list(recovered_lots)}):
            parts = self._compositions.get(text)
            if parts is None:
                parts = self._compositions[text] = tuple((str(lot_id), int(g)) for lot_id, g in json.loads(text))
            ancestors.append(((gtin, serial), parts))
        return ancestors

    def lots(self, lot_ids: Sequence[str]) -> dict[str, LotRecord]:
        rows = self.session.scalars(select(Lot).where(Lot.lot_id.in_(list(lot_ids))))
        records = {}
        for lot in rows:
            self.lot_rows[lot.lot_id] = lot
            records[lot.lot_id] = lot_record(lot)
        return records


def provenance(session: Session, start: Sequence[tuple[Lot, int | None]], max_generations: int) -> list[Generation]:
    """The provenance of an item (its lots with their grams) or of a lot (with None), walked by materials/ over
    set-based queries, as the passport shows it: each generation's lots, and its source items grouped by product."""
    records = _Records(session)
    records.lot_rows.update((lot.lot_id, lot) for lot, _ in start)
    walk = walk_provenance(records, [(lot_record(lot), grams) for lot, grams in start], max_generations)
    recyclers = sorted({lot.owner_id for lot in records.lot_rows.values() if lot.recovered})
    owners = (
        {a.id: a.name for a in session.scalars(select(Actor).where(Actor.id.in_(recyclers)))} if recyclers else {}
    )
    newest = len(walk)
    generations = []
    previous_lots: list[dict[str, Any]] = []
    for step in walk:
        lots_view = [_lot_view(records.lot_rows[use.lot_id], use.grams, use.items, owners) for use in step.lots]
        # The walk goes back from the item: its first step is the newest generation, numbered last.
        generation = Generation(
            newest - step.index + 1,
            lots_view,
            current=step.index == 1,
            recycled_into=[lot for lot in previous_lots if lot["recovered"]],
        )
        previous_lots = lots_view
        groups: dict[str, list[str]] = defaultdict(list)
        for item, _ in step.source_items:
            gtin, serial = typing.cast(tuple[str, str], item)  # how _Records names an ancestor
            groups[gtin].append(serial)
        products = (
            {p.gtin: p for p in session.scalars(select(Product).where(Product.gtin.in_(list(groups))))}
            if groups
            else {}
        )
        for gtin, serials in sorted(groups.items()):
            product = products.get(gtin)
            generation.source_items.append(
                {
                    "gtin": gtin,
                    "product": product.name if product else gtin,
                    "brand": product.brand_name if product else "",
                    "count": len(serials),
                    "serials": sorted(serials)[:12],
                }
            )
        generations.append(generation)
    generations.sort(key=lambda g: g.index)  # oldest first, the item itself last
    return generations


def owner_name(session: Session, actor_id: int) -> str | None:
    actor = session.get(Actor, actor_id)
    return actor.name if actor is not None else None


def master_data_changes(session: Session, kind: str, key: str) -> list[dict[str, Any]]:
    """The corrections of a lot's (`kind` "lot", `key` its lot id) or a product's ("product", its GTIN) master data,
    oldest first, as a public page shows them: when, by whom, why, what it said before and what it says since."""
    rows = list(
        session.scalars(
            select(MasterDataChange)
            .where(MasterDataChange.kind == kind, MasterDataChange.key == key)
            .order_by(MasterDataChange.id)
        )
    )
    return [
        {
            "changedAt": row.changed_at.isoformat(timespec="seconds"),
            "by": owner_name(session, row.actor_id),
            "reason": row.reason,
            "previous": dict(row.previous),
            "current": dict(row.current),
            "declarationId": row.declaration_id,
        }
        for row in rows
    ]


def became(session: Session, item: Item) -> list[dict[str, Any]]:
    """What a recycled item became: the recovered lots of its recycling (one per material), each with its recycler;
    empty for an item not recycled. The lots of one recycling share its transaction."""
    if item.recovered_into is None:
        return []
    first = session.get(Lot, item.recovered_into)
    if first is None:
        return []
    lots = list(
        session.scalars(
            select(Lot).where(Lot.tx_hash == first.tx_hash, Lot.recovered.is_(True)).order_by(Lot.lot_id)
        )
    ) or [first]
    wanted = {lot.owner_id for lot in lots}
    owners = {a.id: a.name for a in session.scalars(select(Actor).where(Actor.id.in_(wanted)))}
    return [_lot_view(lot, owners=owners) for lot in lots]


class _EventRow(NamedTuple):
    event_id: str
    event: dict[str, Any]
    signer: str
    status: Any
    tx_hash: bytes | None


def _events_for(session: Session, uri: str) -> list[_EventRow]:
    """The outbox's events naming `uri`, oldest first, with their batch's transaction, read in `session` (inside a
    write's transaction, the events it has just added are among them). One query of plain rows: a passport version
    is built for every change, and loading the events and their batches as entities was a tenth of a build."""
    query = (
        select(OutboxEvent.event_id, OutboxEvent.event, OutboxEvent.signer, OutboxEvent.status, Batch.tx_hash)
        .join(EventEpc, EventEpc.event_pk == OutboxEvent.id)
        .outerjoin(Batch, Batch.id == OutboxEvent.batch_id)
        .where(EventEpc.epc == uri)
        .order_by(OutboxEvent.id)
    )
    return [_EventRow(*row) for row in session.execute(query)]


# What hides an event from a passport: it breaks the rules of who may record what (``api/authority.py``). Events
# that got into the outbox around EPCIS capture's checks (before them, or signed and submitted elsewhere) stay in the
# evidence bundle, where anyone can check them, and `circular audit` names them.
_HIDDEN = frozenset({"mismatch", "role", "party"})


def events_by_uri(session: Session, uris: Sequence[str], chunk: int = 500) -> dict[str, list[_EventRow]]:
    """:func:`_events_for` of many URIs at once (a change that reaches a thousand passports). Which events name which
    URI first, then each event once: a run's event names all its items, and reading it once per item decoded a
    10,000-item run's event 10,000 times."""
    found: dict[str, list[_EventRow]] = {uri: [] for uri in uris}
    ordered = sorted(found)
    named: list[tuple[str, int]] = []
    for start in range(0, len(ordered), chunk):
        query = select(EventEpc.epc, EventEpc.event_pk).where(EventEpc.epc.in_(ordered[start : start + chunk]))
        named += [(epc, int(pk)) for epc, pk in session.execute(query)]
    events: dict[int, _EventRow] = {}
    pks = sorted({pk for _, pk in named})
    for start in range(0, len(pks), chunk):
        read = (
            select(OutboxEvent.id, OutboxEvent.event_id, OutboxEvent.event, OutboxEvent.signer, OutboxEvent.status,
                   Batch.tx_hash)
            .outerjoin(Batch, Batch.id == OutboxEvent.batch_id)
            .where(OutboxEvent.id.in_(pks[start : start + chunk]))
        )
        for pk, event_id, event, signer, status, tx_hash in session.execute(read):
            events[int(pk)] = _EventRow(event_id, event, signer, status, tx_hash)
    for uri, pk in sorted(named, key=lambda pair: pair[1]):  # oldest first, as _events_for
        found[uri].append(events[pk])
    return found


@dataclass(frozen=True)
class Known:
    """The rules' view of many items' events at once: each event's claims, and the subjects they name (a run's
    event names every item of the run: read once, not once per item)."""

    claims: dict[str, Claims]
    subjects: Subjects
    hidden: dict[str, bool] = field(default_factory=dict)  # event id → whether the rules keep it off passports


def known_subjects(
    state: AppState, session: Session, rows: Iterable[_EventRow], known: Known | None = None
) -> Known:
    """The rules' view of `rows`; with `known`, the events it has not seen yet are added to it (a change reaching
    100,000 passports is built a chunk at a time, and a run's event is in every chunk of the run)."""
    claims: dict[str, Claims] = {}
    for row in rows:
        if row.event_id not in claims and (known is None or row.event_id not in known.claims):
            claims[row.event_id] = read_claims(row.event)
    subjects = Subjects.load(session, claims.values(), state.settings.resolver_base_url)
    if known is None:
        return Known(claims, subjects)
    known.claims.update(claims)
    known.subjects.products |= subjects.products
    known.subjects.items.update(subjects.items)
    known.subjects.lots_by_uri.update(subjects.lots_by_uri)
    known.subjects.lots_by_key.update(subjects.lots_by_key)
    known.subjects.approvals |= subjects.approvals
    return known


def actors_by_address(session: Session, addresses: Iterable[str] | None = None) -> dict[str, Actor]:
    """Actors by lower-case address (every actor when `addresses` is None)."""
    query = select(Actor)
    if addresses is not None:
        query = query.where(Actor.address.in_(sorted(set(addresses))))
    return {actor.address.lower(): actor for actor in session.scalars(query)}


def timeline(
    state: AppState,
    session: Session,
    uri: str,
    owner_id: int | None = None,
    rows: Sequence[_EventRow] | None = None,
    actors: dict[str, Actor] | None = None,
    known: Known | None = None,
) -> list[TimelineEntry]:
    """The events naming `uri` that the rules allow, oldest first. `owner_id` is the item's brand (the lot's owner):
    an event someone else signed is marked ``third_party``. `rows`, `actors` and `known` when the caller has read
    them already for many items (:func:`events_by_uri`, :func:`actors_by_address`, :func:`known_subjects`)."""
    if rows is None:
        rows = _events_for(session, uri)
    if actors is None:
        actors = actors_by_address(session, [row.signer for row in rows]) if rows else {}
    if known is None:
        claims = [read_claims(row.event) for row in rows]
        subjects = Subjects.load(session, claims, state.settings.resolver_base_url)
    else:
        claims = [known.claims[row.event_id] for row in rows]
        subjects = known.subjects
    corrections, corrective = _corrections(rows, actors)
    entries = []
    for row, claim in zip(rows, claims, strict=True):
        if is_declaration(row.event):
            continue  # no step of its own: it marks the event it declares (below)
        actor = actors.get(row.signer.lower())
        hidden = known.hidden.get(row.event_id) if known is not None else None
        if hidden is None:  # the rules' answer depends on the event, its signer and the subjects: not on this item
            reasons = refusals(claim, actor.id if actor else None, actor.role if actor else None, subjects)
            hidden = any(reason.kind in _HIDDEN for reason in reasons)
            if known is not None:
                known.hidden[row.event_id] = hidden
        if hidden:
            continue
        event = row.event
        entries.append(
            TimelineEntry(
                event_id=row.event_id,
                time=str(event.get("eventTime", "")),
                label=label_of(event),
                biz_step=event.get("bizStep"),
                disposition=event.get("disposition"),
                actor=actor.name if actor is not None else row.signer,
                anchoring=str(row.status.value if hasattr(row.status, "value") else row.status),
                tx_hash=("0x" + bytes(row.tx_hash).hex()) if row.tx_hash else None,
                third_party=owner_id is not None and (actor is None or actor.id != owner_id),
                correction=corrections.get(row.event_id),
                corrective=row.event_id in corrective,
            )
        )
    entries.sort(key=lambda e: e.time)
    return entries


def _corrections(rows: Sequence[_EventRow], actors: dict[str, Actor]) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """Corrections the EPCIS 2.0 way among `rows`: each declared event's id → its correction (reason, when, by
    whom, the corrective events' ids, the declaration's record), and every corrective event's id."""
    corrections: dict[str, dict[str, Any]] = {}
    corrective: set[str] = set()
    for row in rows:
        if not is_declaration(row.event):
            continue
        body = row.event["errorDeclaration"]
        signer = actors.get(row.signer.lower())
        ids = [str(i) for i in body.get("correctiveEventIDs") or []]
        corrective.update(ids)
        corrections[str(row.event.get("eventID"))] = {
            "reason": str(body.get("reason", "")),
            "declared_at": str(body.get("declarationTime", "")),
            "by": signer.name if signer is not None else row.signer,
            "corrective_event_ids": ids,
            "declaration_id": row.event_id,
        }
    return corrections, corrective


INTAKE_STATES = (ItemState.RETURNED, ItemState.COLLECTED)


def intake(item: Item, entries: Sequence[TimelineEntry]) -> TimelineEntry | None:
    """The step that took the item in (returned to a store, collected for recycling) while that is where the item
    stands: what the passport tells the consumer who brought it back. From the events, so that a rebuilt database
    says the same."""
    if ItemState(item.state) not in INTAKE_STATES:
        return None
    for entry in reversed(entries):
        row = action_of(entry.biz_step, entry.disposition)
        if row is not None and row.target == ItemState(item.state) and not getattr(entry, "correction", None):
            return entry
    return None


def _product_view(product: Product) -> dict[str, Any]:
    return {
        "gtin": product.gtin,
        "name": product.name,
        "brand_name": product.brand_name,
        "description": product.description,
        "language": product.language,
        "image_url": product.image_url,
        "care": product.care,
        "repair": product.repair,
        "end_of_life": product.end_of_life,
        "return_info": product.return_info,
        # What a UNTP credential needs of the product (api/untp.py); None until the brand sets it.
        "category": {"code": product.category_code, "name": product.category_name} if product.category_code else None,
        "facility": {"gln": product.facility_gln, "name": product.facility_name} if product.facility_gln else None,
        "production_country": product.production_country,
        # What a Catena-X passport needs of it (api/catenax.py); None until the brand sets it.
        "lifespan_years": product.lifespan_years,
        "volume_cm3": product.volume_cm3,
        "gross_weight_grams": product.gross_weight_grams,
        "gross_volume_cm3": product.gross_volume_cm3,
    }


def _plain(view: Any) -> dict[str, Any]:
    """A view dataclass as the JSON object a version holds (its fields; nested values are JSON already). Shallow:
    ``dataclasses.asdict`` copies every nested list and dict again, a tenth of a build for nothing."""
    return dict(vars(view))


def passport_content(
    session: Session,
    state: AppState,
    product: Product,
    item: Item,
    shared: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything the item's passport shows, as JSON values: the content of a passport version
    (``api/versions.py``), from which the page, the JSON-LD and every other rendering are made.

    Nothing here may depend on the request (links are added when rendering) or on the verification of the version
    (it is checked when read). `shared` caches, across the items of one build, what items of one composition share
    (their materials and provenance: a run's items are made alike)."""
    uri = item_uri(state.settings.resolver_base_url, product.gtin, item.serial)
    key = json.dumps(item.composition)
    made = shared.get(key) if shared is not None else None
    if made is None:
        materials, recycled, lots = composition(session, item)
        start = [(lots[str(lot_id)], int(grams)) for lot_id, grams in item.composition if str(lot_id) in lots]
        generations = provenance(session, start, state.api_settings.provenance_max_generations)
        made = (
            [_plain(material) for material in materials],
            recycled,
            [_plain(generation) for generation in generations],
        )
        if shared is not None:  # canonicalised once for all the items that share them
            made = (Canonical.of(made[0]), recycled, Canonical.of(made[2]))
            shared[key] = made
    materials_json, recycled, generations_json = made
    item_state = ItemState(item.state)
    prefetched = shared.get("events") if shared is not None else None
    actors = shared.get("actors") if shared is not None else None
    known = shared.get("known") if shared is not None else None
    rows = prefetched.get(uri) if prefetched is not None else None
    entries = timeline(state, session, uri, item.brand_id, rows, actors, known)
    received = intake(item, entries)
    product_view: Any = _product_view(product)
    if shared is not None:
        product_view = shared.setdefault(f"product {product.gtin}", Canonical.of(product_view))
    operator: Any = shared.get(f"operator {item.brand_id}", False) if shared is not None else False
    if operator is False:
        from .services.operators import operator_view

        operator = operator_view(session, item.brand_id)
        if shared is not None:
            shared[f"operator {item.brand_id}"] = operator
    return {
        "uri": uri,
        "product": product_view,
        "operator": operator,
        "item": {
            "gtin": item.gtin,
            "serial": item.serial,
            "item_id": item.item_id,
            "mass_grams": int(item.mass_grams),
            "state": int(item.state),
        },
        "state": STATE_LABELS[item_state],
        "closed": item_state in CLOSED_STATES,
        "received": _plain(received) if received is not None else None,
        "became": became(session, item),
        "materials": materials_json,
        "recycled": recycled,
        "generations": generations_json,
        "timeline": [_plain(entry) for entry in entries],
    }


def item_claim(session: Session, item: Item) -> ItemClaim:
    """What the database says the item is made of: checked against the chain by :func:`verify`."""
    lot_ids = sorted({str(lot_id) for lot_id, _ in item.composition})
    lots = {lot.lot_id: lot for lot in session.scalars(select(Lot).where(Lot.lot_id.in_(lot_ids)))}
    return ItemClaim(
        gtin=item.gtin,
        serial=item.serial,
        items_root=item.items_root,
        composition=tuple((str(lot_id), int(grams)) for lot_id, grams in item.composition),
        mass_grams=int(item.mass_grams),
        lots=tuple(
            LotClaim(
                lot.lot_id, lot.material_code, int(lot.mass_grams), int(lot.recycled_share_bps), bool(lot.recovered)
            )
            for lot in (lots[lot_id] for lot_id in lot_ids if lot_id in lots)
        ),
    )


def verify(state: AppState, item_uri: str, claim: ItemClaim | None = None) -> tuple[Verdict, dict[str, Any]]:
    """The verdict on the item's evidence bundle and on the database's `claim` of its composition (cached by the
    digest of both: an edited event or row changes the key, so tampering is never answered from the cache), and the
    bundle itself."""
    from ledger.chain import rpc_fault
    from ledger.evidence import export_bundle

    from .health import monitor_of, unavailable_detail

    service = state.service
    monitor = monitor_of(state)
    try:
        bundle = export_bundle(service.outbox, service.chain_id, service.ledger.anchor.address, item_uri)
        if not monitor.degraded():
            return _verify(state, bundle, claim)
    except Exception as exc:  # the node went away while asked: the verdict waits for it, the read does not fail
        if rpc_fault(exc) is None:
            raise
        monitor.fault(exc)
        bundle = {"events": [], "versions": []}
    return Verdict("unavailable", len(bundle.get("events") or ()), "", [unavailable_detail(monitor.status)]), bundle


def _verify(state: AppState, bundle: dict[str, Any], claim: ItemClaim | None) -> tuple[Verdict, dict[str, Any]]:
    from ledger.evidence import verify_bundle

    service = state.service
    fingerprint = json.dumps(bundle, sort_keys=True, default=str) + (claim.key() if claim is not None else "")
    digest = hashlib.sha256(fingerprint.encode()).hexdigest()
    cached = state.verdicts.get(digest)
    if isinstance(cached, Verdict):
        return cached, bundle
    result = verify_bundle(bundle, service.backend.web3)
    # Composition lives on-chain: rows that no longer say what the chain says fail the passport like a bad proof.
    differences = service.chain_facts.problems(claim) if claim is not None else []
    failing = {check for event in result.events for check, ok in event.checks.items() if not ok}
    failing |= {check for version in result.versions for check, ok in version.checks.items() if not ok}
    if differences:
        status = "failed"
    elif result.ok:
        status = "verified"
    elif not result.events:
        status = "unavailable"
    elif failing <= {"anchored"} and not result.problems:
        status = "pending"
    else:
        status = "failed"
    problems = (
        differences
        + list(result.problems)
        + [p for e in result.events for p in e.problems if status == "failed"]
        + [p for v in result.versions for p in v.problems if status == "failed"]
    )
    # As of the newest anchor the check found, not the clock: the same evidence always renders the same passport.
    checked_at = (
        datetime.fromtimestamp(result.anchored_at, UTC).isoformat(timespec="seconds")
        if result.anchored_at is not None
        else ""
    )
    verdict = Verdict(status, len(result.events), checked_at, problems[:20])
    state.verdicts.put(digest, verdict)
    return verdict, bundle


def _correction_ld(entry: Any) -> dict[str, Any]:
    """A timeline entry's correction marks, as JSON-LD (versions made before corrections existed have none)."""
    out: dict[str, Any] = {}
    correction = getattr(entry, "correction", None)
    if correction:
        out["circ:correction"] = {
            "circ:reason": correction["reason"],
            "circ:declarationTime": correction["declared_at"],
            **({"circ:declaredBy": correction["by"]} if correction.get("by") else {}),
            "circ:correctiveEventIDs": list(correction["corrective_event_ids"]),
            "circ:declaration": {"@id": correction["declaration_id"]},
        }
    if getattr(entry, "corrective", False):
        out["circ:corrective"] = True
    return out


def _received(item: Item, entries: Sequence[TimelineEntry], stored: Any = None) -> dict[str, Any]:
    entry = stored if stored is not None else intake(item, entries)
    if entry is None:
        return {}
    received = {"circ:label": entry.label, "circ:eventTime": entry.time}
    if getattr(entry, "actor", None):
        received["circ:actor"] = entry.actor
    return {"circ:received": received}


def jsonld(
    *,
    uri: str,
    product: Product,
    item: Item,
    materials: list[MaterialView],
    recycled: float,
    generations: list[Generation],
    entries: list[TimelineEntry],
    verdict: Verdict,
    links: dict[str, str],
    became: Sequence[Any] = (),
    received: Any = None,
) -> dict[str, Any]:
    """The passport as JSON-LD; `became`: the recovered lots a recycled item went into; `received`: the step that
    took a returned item in, as the version stored it (else found in `entries`)."""
    return {
        "@context": ["https://schema.org/", {"gs1": GS1_NS, "circ": VOC_NS}],
        "@id": uri,
        "@type": ["IndividualProduct", "gs1:Product"],
        "gtin": product.gtin,
        "serialNumber": item.serial,
        "name": product.name,
        "description": product.description,
        "brand": {"@type": "Brand", "name": product.brand_name},
        **({"image": product.image_url} if product.image_url else {}),
        "circ:state": state_name(item.state),
        "circ:massGrams": item.mass_grams,
        "circ:recycledContent": round(recycled, 4),
        "circ:composition": [
            {
                "@type": "circ:MaterialPortion",
                "circ:material": m.material,
                "circ:materialCode": m.material_code,
                "circ:grams": m.grams,
                "circ:share": round(m.share, 4),
                "circ:recycledShare": round(m.recycled_share, 4),
                **({"circ:lot": {"@id": m.lot_uri}} if getattr(m, "lot_uri", None) else {}),
            }
            for m in materials
        ],
        # Generations numbered from the oldest (1) to the item itself (the newest), each with the recovered lots its
        # items were recycled into and the recycler that recovered each.
        "circ:provenance": [
            {
                "circ:generation": g.index,
                "circ:thisItem": bool(getattr(g, "current", False)),
                "circ:lots": g.lots,
                "circ:sourceItems": g.source_items,
                "circ:recycledInto": list(getattr(g, "recycled_into", None) or []),
            }
            for g in generations
        ],
        **({"circ:became": list(became)} if became else {}),
        "circ:lifecycle": [
            {
                "@id": e.event_id,
                "circ:eventTime": e.time,
                "circ:label": e.label,
                "circ:bizStep": e.biz_step,
                "circ:disposition": e.disposition,
                **({"circ:actor": e.actor} if getattr(e, "actor", None) else {}),
                "circ:thirdParty": e.third_party,
                "circ:anchoring": e.anchoring,
                **_correction_ld(e),
            }
            for e in entries
        ],
        "circ:instructions": {
            "circ:care": product.care,
            "circ:repair": product.repair,
            "circ:endOfLife": product.end_of_life,
        },
        "circ:howToReturn": {
            "circ:info": product.return_info,
            "circ:returnRequests": {"@id": links["returns"]},
            **_received(item, entries, received),
        },
        "circ:verification": {
            "circ:status": verdict.status,
            "circ:checkedAt": verdict.checked_at,
            "circ:evidenceBundle": {"@id": links["evidence"]},
        },
        "gs1:dpp": {"@id": links["passport"]},
    }


__all__ = [
    "CLOSED_STATES",
    "Generation",
    "Known",
    "MaterialView",
    "TimelineEntry",
    "Verdict",
    "actors_by_address",
    "composition",
    "events_by_uri",
    "intake",
    "item_claim",
    "jsonld",
    "known_subjects",
    "material_name",
    "owner_name",
    "passport_content",
    "provenance",
    "state_name",
    "timeline",
    "verify",
]
