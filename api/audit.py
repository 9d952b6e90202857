"""`circular audit`: the crisis view. Reads the database (scans, items, lots, the outbox's signed events) and the
chain's role history, and reports what should not have happened.

Five rules, each with its checks (``RULES``), numbered as the report numbers them:

1. clones and counterfeits: scans of one serial from countries further apart than travel allows in the time
   between them; scans after the item was recycled or disposed of; a return of an item never sold, received by
   anyone but the item's brand (a step the lifecycle allows, for items sold through other channels, and flagged for
   a person to look at: a cloned label leaves the same trace; the brand receiving its unsold stock back is no
   anomaly); a second return with no sale (or use) in between; bursts of scans of one serial from many clients
   within minutes;
2. unknown identifiers: resolver lookups of serials never registered; events naming items or lots never
   registered;
3. recovered mass above the collected mass: a recycling event, or a recovered lot, whose grams exceed the
   grams of the items (and quantities) recycled into it (the arithmetic is ``materials.recovery_excess``); per
   material, where the totals fit, recovered lots of one material holding more than the items held of what recycles
   into it (``materials.recovery``: cotton is no polyester); and lots of a material outside the catalogue. The API
   refuses both before any transaction: these find what was written before it did, or around it;
4. signers outside their role: events whose EIP-712 signer did not hold a role allowed to take that step when
   the event was recorded, from the chain's ``RoleGranted``/``RoleRevoked`` logs (``ledger.audit``), or signed
   after the signer's API key was revoked; events whose own ``circ:lifecycle`` names another action than their
   vocabulary (the step is read from the vocabulary, never from that field); and events about items or lots their
   signer may not write about (another brand's item, a lot neither owned nor approved: ``api/authority.py``, the
   rules EPCIS capture enforces);
5. the database and the chain disagree on anchoring: a root on the chain anchored more events than the database
   holds under it (a deleted event row passes ``verify`` of what is left, so only the root's count shows it; the
   batch archive, when there is one, names each missing event and the items it was about); and a batch the database
   holds as confirmed whose root the chain no longer has (a development chain reverted to a snapshot, or a
   reorganisation deeper than the confirmations): its events count as anchored and are not.

Events are ordered by their outbox record (its id, and its record time): ``eventTime`` is whatever the signer wrote.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger.archive import Archive
from ledger.audit import RoleHistory
from ledger.client import Role
from ledger.epcis.corrections import is_declaration
from ledger.lifecycle import step as lifecycle_step
from ledger.outbox import Batch, BatchStatus, OutboxEvent
from ledger.versions import DocumentVersion
from materials import UnknownMaterial, material
from materials.accounting import recovery_excess
from materials.recovery import RecoveryError, balance, item_parts

from .authority import Subjects, read_claims, refusals
from .gs1.digital_link import DigitalLink, parse_path
from .models import Actor, ActorRole, Item, Lot, Scan, UnknownScan

# rule id → (the rule's number in the report, what it means)
RULES: dict[str, tuple[int, str]] = {
    "impossible-travel": (1, "scanned in two countries further apart than travel allows in the time between"),
    "scan-after-end-of-life": (1, "scanned after it was recycled or disposed of"),
    "return-without-sale": (1, "returned, never sold"),
    "double-return": (1, "returned twice with no sale or use in between"),
    "scan-burst": (1, "many scans from many clients within minutes"),
    "unknown-serial": (2, "a serial never registered was looked up"),
    "unknown-epc": (2, "an event names an item or lot never registered"),
    "recovery-excess": (3, "recovered grams above the grams recycled into it"),
    "material-excess": (3, "recovered lots holding more of a material than their items held of what recycles into it"),
    "unknown-material": (3, "a lot of a material the catalogue does not know"),
    "signer-role": (4, "signed by an account without a role allowed for the step"),
    "lifecycle-mismatch": (4, "circ:lifecycle names another action than the event's bizStep and disposition"),
    "not-a-party": (4, "about an item or lot its signer may not write about (another brand's, not owned or approved)"),
    "revoked-signer": (4, "signed after the signer's role or key was revoked"),
    "anchored-event-missing": (5, "anchored on-chain, missing from the database (deleted, or an older backup)"),
    "anchor-missing": (5, "confirmed in the database, its root no longer anchored on the chain"),
}
ACTOR_ROLES = (ActorRole.BRAND, ActorRole.RECYCLER, ActorRole.RETAILER, ActorRole.REPAIRER)
ITEM_FIELDS = ("epcList", "inputEPCList", "outputEPCList", "childEPCs")
QUANTITY_FIELDS = ("quantityList", "inputQuantityList", "outputQuantityList", "childQuantityList")
GRAMS_PER_UNIT = {"GRM": 1, "KGM": 1_000, "TNE": 1_000_000}


@dataclass(frozen=True)
class Thresholds:
    """Where the clone rules draw the line."""

    # Door to door, no journey between two countries' centres beats a long-haul flight's ground speed.
    max_travel_kmh: float = 900.0
    burst_scans: int = 10
    burst_clients: int = 5
    burst_window: timedelta = timedelta(minutes=10)
    # Past this many unknown serials of one GTIN, one finding says how many (a sweep of the serial space), not one each.
    unknown_serials_listed: int = 20

    def __post_init__(self) -> None:
        if self.max_travel_kmh <= 0 or self.burst_scans < 2 or self.burst_clients < 2:
            raise ValueError("travel speed must be positive; a burst needs at least 2 scans from 2 clients")
        if self.burst_window <= timedelta(0):
            raise ValueError("the burst window must be positive")
        if self.unknown_serials_listed < 1:
            raise ValueError("at least one unknown serial is listed")


@dataclass(frozen=True)
class Anomaly:
    rule: str
    subject: str  # the item (gtin/serial), the lot or the event the anomaly is about
    actor: str | None  # who signed or holds it, when someone does
    detail: str
    event_id: str | None = None

    @property
    def rule_number(self) -> int:
        return RULES[self.rule][0]


@dataclass
class AuditReport:
    anomalies: list[Anomaly] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not self.anomalies

    def as_json(self) -> dict[str, Any]:
        return {
            "clean": self.clean,
            "anomalies": [{**asdict(a), "ruleNumber": a.rule_number} for a in self.anomalies],
            "checked": self.checked,
            "rules": {rule: {"number": n, "meaning": meaning} for rule, (n, meaning) in RULES.items()},
            "roleHistory": "RoleGranted/RoleRevoked logs of the chain, by block timestamp",
        }


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything here is stored in UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _when(moment: datetime) -> str:
    return _utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


@cache
def _centre(country: str) -> tuple[float, float] | None:
    from countryinfo import CountryInfo
    from countryinfo.exceptions import CountryNotFoundError

    try:
        lat, lng = CountryInfo(country).latlng()
    except (CountryNotFoundError, ValueError, TypeError):
        return None
    return float(lat), float(lng)


def country_distance_km(a: str, b: str) -> float | None:
    """Great-circle distance between two countries' centres, or None when either is unknown."""
    from haversine import haversine

    first, second = _centre(a), _centre(b)
    if first is None or second is None:
        return None
    return float(haversine(first, second))


# -- what an event says -----------------------------------------------------------------------------------------
def event_kind(event: dict[str, Any]) -> str | None:
    """What an event records: an action of the lifecycle table (``sold``, ``recycled``, ``manufactured``, ``lot``
    ...) or None. Read from its vocabulary (bizStep, disposition, type), never from its own ``circ:lifecycle``, which
    only tells apart two actions that share a vocabulary (a sale and a resale): see ``api/authority.py``."""
    row = read_claims(event).action
    return row.action.value if row is not None else None


def required_roles(kind: str | None) -> frozenset[ActorRole]:
    """The roles that may record an event of `kind`: the lifecycle table's (the contracts' lifecycle graph). An
    event recording none of its actions (None: ``shipping``, ``inspecting`` ...) takes any actor role, and is judged
    by whose items and lots it names (``not-a-party``); a kind the table does not know allows no role."""
    if kind is None:
        return frozenset(ACTOR_ROLES)
    try:
        row = lifecycle_step(kind)
    except ValueError:
        return frozenset()
    return frozenset(ActorRole(party.value) for party in row.parties)


def _digital_link(uri: str) -> DigitalLink | None:
    try:
        return parse_path(urlsplit(uri).path)
    except Exception:  # not a Digital Link (an SSCC, a URN, another scheme): not ours to judge
        return None


def _item_epcs(event: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for key in ITEM_FIELDS:
        for value in event.get(key) or ():
            yield key, str(value)
    if event.get("parentID"):
        yield "parentID", str(event["parentID"])


def _quantities(event: dict[str, Any], key: str) -> Iterator[tuple[str, int | None]]:
    """(class, grams or None when not a mass) of each entry of one quantity list."""
    for entry in event.get(key) or ():
        if not isinstance(entry, dict) or "epcClass" not in entry:
            continue
        factor = GRAMS_PER_UNIT.get(str(entry.get("uom", "")))
        quantity = entry.get("quantity")
        grams = int(quantity * factor) if factor is not None and isinstance(quantity, int | float) else None
        yield str(entry["epcClass"]), grams


@dataclass
class _Step:
    kind: str
    at: datetime
    event_id: str
    signer: str


@dataclass
class _World:
    """What the rules look things up in, loaded once."""

    items: dict[tuple[str, str], Item]
    items_by_id: dict[str, Item]
    lot_uris: set[str]
    lot_keys: set[tuple[str, str]]
    actors: dict[str, Actor]
    lot_materials: dict[str, str] = field(default_factory=dict)  # lot id → material code

    @classmethod
    def load(cls, session: Session) -> _World:
        items = {(i.gtin, i.serial): i for i in session.scalars(select(Item))}
        lots = list(session.scalars(select(Lot)))
        return cls(
            items=items,
            items_by_id={i.item_id.lower(): i for i in items.values()},
            lot_uris={lot.uri for lot in lots},
            lot_keys={(lot.gtin, lot.lot_number) for lot in lots if lot.gtin},
            actors={a.address.lower(): a for a in session.scalars(select(Actor))},
            lot_materials={lot.lot_id: lot.material_code for lot in lots},
        )

    def parts_of(self, items: Sequence[Item]) -> list[tuple[str, int]]:
        """The items' parts as (material code, grams)."""
        return item_parts(
            ([(str(lot), int(grams)) for lot, grams in item.composition] for item in items), self.lot_materials
        )

    def signed_by_brand(self, key: tuple[str, str], address: str) -> bool:
        """Whether `address` is the key of the brand of item `key` (gtin, serial)."""
        item, actor = self.items.get(key), self.actors.get(address.lower())
        return item is not None and actor is not None and item.brand_id == actor.id

    def who(self, address: str) -> str:
        actor = self.actors.get(address.lower())
        return f"{actor.name} ({address})" if actor is not None else address

    def item_of(self, uri: str) -> tuple[str, str] | None:
        """(gtin, serial) of an item Digital Link, or None when `uri` names no serialised item."""
        link = _digital_link(uri)
        if link is None or link.serial is None:
            return None
        return link.gtin14, link.serial

    def lot_known(self, uri: str) -> bool | None:
        """Whether a quantity class names a registered lot; None when it is not a lot identifier of ours."""
        if uri in self.lot_uris:
            return True
        if "/lots/0x" in uri:
            return False
        link = _digital_link(uri)
        if link is None or link.lot is None or link.serial is not None:
            return None
        return (link.gtin14, link.lot) in self.lot_keys


def _subject(key: tuple[str, str]) -> str:
    return f"{key[0]}/{key[1]}"


# -- the rules --------------------------------------------------------------------------------------------------
def audit_events(session: Session, world: _World, roles: RoleHistory) -> tuple[list[Anomaly], dict[Any, Any], int]:
    """Rules 2 (unknown EPCs), 3 (recycling events) and 4 (signers), and each item's lifecycle steps."""
    anomalies: list[Anomaly] = []
    steps: dict[tuple[str, str], list[_Step]] = defaultdict(list)
    count = 0
    rows = session.execute(
        select(OutboxEvent.event_id, OutboxEvent.event, OutboxEvent.signer, OutboxEvent.created_at).order_by(
            OutboxEvent.id
        )
    )
    subjects = Subjects.everything(session)
    for event_id, event, signer, created in rows:
        count += 1
        if is_declaration(event):
            continue  # an error declaration restates an event to correct it: no step of its own to judge again
        at = _utc(created)
        claims = read_claims(event)
        kind = claims.action.action.value if claims.action is not None else None
        who = world.who(signer)
        # rule 4: the event's own circ:lifecycle against its vocabulary, and whose items and lots it names
        if claims.mismatch is not None:
            anomalies.append(Anomaly("lifecycle-mismatch", event_id, who, claims.mismatch, event_id))
        actor = world.actors.get(signer.lower())
        for refusal in refusals(claims, actor.id if actor else None, actor.role if actor else None, subjects):
            if refusal.kind == "party":
                anomalies.append(Anomaly("not-a-party", event_id, who, refusal.message, event_id))
        # rule 2: identifiers never registered
        inputs: list[tuple[str, str]] = []
        for key, uri in _item_epcs(event):
            item = world.item_of(uri)
            if item is None:
                continue
            if item not in world.items:
                anomalies.append(Anomaly("unknown-epc", _subject(item), who, f"{key} of event {event_id}", event_id))
                continue
            if kind is not None:
                steps[item].append(_Step(kind, at, event_id, signer))
            if key == "inputEPCList":
                inputs.append(item)
        for key in QUANTITY_FIELDS:
            for uri, _ in _quantities(event, key):
                if world.lot_known(uri) is False:
                    anomalies.append(Anomaly("unknown-epc", uri, who, f"{key} of event {event_id}", event_id))
        # rule 3: a recycling event recovers no more grams than it was given, nor more of a material
        if kind == "recycled":
            recovered = sum(g or 0 for _, g in _quantities(event, "outputQuantityList"))
            given = [world.items[i].mass_grams for i in inputs]
            given += [g for _, g in _quantities(event, "inputQuantityList") if g is not None]
            excess = recovery_excess(recovered, given)
            code = (event.get("ilmd") or {}).get("circ:materialCode")
            if not excess and isinstance(code, str) and not list(_quantities(event, "inputQuantityList")):
                made = [(str(code), g or 0) for _, g in _quantities(event, "outputQuantityList")]
                parts = world.parts_of([world.items[i] for i in inputs])
                for detail in _material_excess(parts, made):
                    subject = next(iter(uri for uri, _ in _quantities(event, "outputQuantityList")), event_id)
                    anomalies.append(Anomaly("material-excess", subject, who, f"event {event_id}: {detail}", event_id))
            if excess:
                outputs = [uri for uri, _ in _quantities(event, "outputQuantityList")]
                anomalies.append(
                    Anomaly(
                        "recovery-excess",
                        outputs[0] if outputs else event_id,
                        who,
                        f"event {event_id} recovers {recovered} g from {sum(given)} g: {excess} g too many",
                        event_id,
                    )
                )
        # rule 4: the signer held a role allowed for this step when the event was recorded
        anomalies.extend(_signer_anomalies(world, roles, kind, event_id, signer, at))
    return anomalies, steps, count


def _signer_anomalies(
    world: _World, roles: RoleHistory, kind: str | None, event_id: str, signer: str, at: datetime
) -> list[Anomaly]:
    allowed = required_roles(kind)
    role_ids = [Role.by_name(role.value) for role in sorted(allowed)]
    who = world.who(signer)
    step = f"a {kind} event" if kind else "an event"
    found: list[Anomaly] = []
    if not any(roles.held(signer, role, at) for role in role_ids):
        revoked = roles.revoked_at(signer, role_ids, at)
        if revoked is not None:
            detail = f"{step} recorded {_when(at)}, after the signer's role was revoked ({_when(revoked)})"
            found.append(Anomaly("revoked-signer", event_id, who, detail, event_id))
        else:
            names = "/".join(sorted(r.value for r in allowed))
            found.append(Anomaly("signer-role", event_id, who, f"{step} needs {names}; the signer held none", event_id))
    actor = world.actors.get(signer.lower())
    if actor is not None and actor.revoked_at is not None and _utc(actor.revoked_at) < at:
        detail = f"{step} recorded {_when(at)}, after {actor.name}'s API key was revoked ({_when(actor.revoked_at)})"
        found.append(Anomaly("revoked-signer", event_id, who, detail, event_id))
    return found


def audit_lifecycles(world: _World, steps: dict[tuple[str, str], list[_Step]]) -> list[Anomaly]:
    """Rule 1's return checks: a return needs a sale before it, unless the item's own brand received it (its unsold
    stock back from a retailer), and a sale or a use since the last return."""
    anomalies: list[Anomaly] = []
    for key, history in steps.items():
        sold = False
        held_since_return = True
        for step in history:
            if step.kind in ("sold", "resold"):
                sold, held_since_return = True, True
            elif step.kind == "in_use":
                held_since_return = True
            elif step.kind == "returned":
                who = world.who(step.signer)
                if not sold and not world.signed_by_brand(key, step.signer):
                    anomalies.append(
                        Anomaly("return-without-sale", _subject(key), who, f"event {step.event_id}", step.event_id)
                    )
                elif not held_since_return:
                    anomalies.append(
                        Anomaly(
                            "double-return",
                            _subject(key),
                            who,
                            f"event {step.event_id}: no sale or use since the last return",
                            step.event_id,
                        )
                    )
                held_since_return = False
    return anomalies


def _end_of_life(steps: Sequence[_Step]) -> _Step | None:
    return next((s for s in steps if s.kind in ("recycled", "disposed")), None)


def audit_scans(
    session: Session, world: _World, steps: dict[tuple[str, str], list[_Step]], limits: Thresholds
) -> tuple[list[Anomaly], int]:
    """Rule 1's scan checks, one anomaly per item and check."""
    anomalies: list[Anomaly] = []
    by_item: dict[tuple[str, str], list[Scan]] = defaultdict(list)
    count = 0
    for scan in session.scalars(select(Scan).order_by(Scan.gtin, Scan.serial, Scan.scanned_at, Scan.id)):
        by_item[(scan.gtin, scan.serial)].append(scan)
        count += 1
    for key, scans in by_item.items():
        subject = _subject(key)
        eol = _end_of_life(steps.get(key, ()))
        if eol is not None:
            late = [s for s in scans if _utc(s.scanned_at) > eol.at]
            if late:
                anomalies.append(
                    Anomaly(
                        "scan-after-end-of-life",
                        subject,
                        None,
                        f"{len(late)} scan(s) after it was {eol.kind} ({_when(eol.at)}), "
                        f"first {_when(late[0].scanned_at)}",
                        eol.event_id,
                    )
                )
        travel = _impossible_travel(scans, limits)
        if travel is not None:
            anomalies.append(Anomaly("impossible-travel", subject, None, travel))
        burst = _burst(scans, limits)
        if burst is not None:
            anomalies.append(Anomaly("scan-burst", subject, None, burst))
    return anomalies, count


def _impossible_travel(scans: Sequence[Scan], limits: Thresholds) -> str | None:
    previous: Scan | None = None
    for scan in scans:
        if scan.region is None:
            continue
        if previous is not None and previous.region != scan.region:
            assert previous.region is not None
            km = country_distance_km(previous.region, scan.region)
            hours = (_utc(scan.scanned_at) - _utc(previous.scanned_at)).total_seconds() / 3600
            if km is not None and (hours <= 0 or km / hours > limits.max_travel_kmh):
                speed = "at once" if hours * 60 < 1 else f"{km / hours:,.0f} km/h"
                return (
                    f"{previous.region} at {_when(previous.scanned_at)}, {scan.region} at {_when(scan.scanned_at)}: "
                    f"{km:,.0f} km in {hours * 60:.1f} min ({speed})"
                )
        previous = scan
    return None


def _burst(scans: Sequence[Scan], limits: Thresholds) -> str | None:
    start = 0
    for end, scan in enumerate(scans):
        while _utc(scan.scanned_at) - _utc(scans[start].scanned_at) > limits.burst_window:
            start += 1
        window = scans[start : end + 1]
        clients = {s.client for s in window}
        if len(window) >= limits.burst_scans and len(clients) >= limits.burst_clients:
            minutes = (_utc(scan.scanned_at) - _utc(scans[start].scanned_at)).total_seconds() / 60
            first = _when(window[0].scanned_at)
            return f"{len(window)} scans from {len(clients)} clients within {minutes:.1f} min, from {first}"
    return None


def audit_unknown_serials(session: Session, limits: Thresholds | None = None) -> list[Anomaly]:
    """Rule 2: resolver lookups of serials never registered (under a registered GTIN), one anomaly per serial; past
    ``limits.unknown_serials_listed`` serials of one GTIN, one anomaly for the GTIN saying how many (anyone can look
    up random serials: 2,000 of them made 2,000 findings that buried the real ones)."""
    listed = (limits or Thresholds()).unknown_serials_listed
    seen: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for gtin, value, at in session.execute(
        select(UnknownScan.gtin, UnknownScan.value, UnknownScan.scanned_at)
        .where(UnknownScan.ai == "21")
        .order_by(UnknownScan.id)
    ):
        seen[(gtin, value)].append(at)
    by_gtin: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for key in seen:
        by_gtin[key[0]].append(key)
    anomalies: list[Anomaly] = []
    for gtin, keys in by_gtin.items():
        if len(keys) > listed:
            times = sorted(t for key in keys for t in seen[key])
            lookups = len(times)
            anomalies.append(
                Anomaly(
                    "unknown-serial",
                    f"{gtin}/*",
                    None,
                    f"{len(keys):,} serials never registered, {lookups:,} lookup(s) from {_when(times[0])} to "
                    f"{_when(times[-1])}: a sweep of the serial space",
                )
            )
            continue
        anomalies += [
            Anomaly("unknown-serial", _subject(key), None, f"{len(seen[key])} lookup(s), first {_when(seen[key][0])}")
            for key in keys
        ]
    return anomalies


def audit_recovered_lots(session: Session, world: _World) -> list[Anomaly]:
    """Rule 3 on the off-chain records: each recovered lot against the items recorded as its sources."""
    anomalies: list[Anomaly] = []
    for lot in session.scalars(select(Lot).where(Lot.recovered.is_(True))):
        sources = [world.items_by_id.get(str(i).lower()) for i in lot.source_items or ()]
        given = [item.mass_grams for item in sources if item is not None]
        excess = recovery_excess(lot.mass_grams, given)
        if excess:
            owner = next((a for a in world.actors.values() if a.id == lot.owner_id), None)
            anomalies.append(
                Anomaly(
                    "recovery-excess",
                    lot.uri,
                    owner.name if owner is not None else None,
                    f"lot {lot.lot_number} holds {lot.mass_grams} g, its {len(given)} items {sum(given)} g: "
                    f"{excess} g too many",
                    lot.event_id,
                )
            )
    return anomalies


def _material_excess(parts: Sequence[tuple[str, int]], outputs: Sequence[tuple[str, int]]) -> list[str]:
    """What recovered lots of `outputs` hold beyond the items' `parts` of each material, in words."""
    try:
        entries = balance(parts, outputs)
    except RecoveryError as exc:
        return [str(exc)]
    return [
        f"{entry.requested:,} g of {entry.material} from items that held {entry.available:,} g of what recycles into "
        f"it ({', '.join(entry.sources) or 'none'}): {entry.excess:,} g too many"
        for entry in entries
        if entry.excess
    ]


def audit_lot_materials(session: Session, world: _World) -> list[Anomaly]:
    """Rule 3 per material, on the records: the recovered lots of one recycling (those sharing their source items)
    against the items' compositions, where their total fits (else ``recovery-excess`` says it); and every lot's
    material code against the catalogue."""
    anomalies: list[Anomaly] = []
    owners = {a.id: a.name for a in world.actors.values()}
    recyclings: dict[tuple[str, ...], list[Lot]] = defaultdict(list)
    for lot in session.scalars(select(Lot).order_by(Lot.created_at, Lot.lot_id)):
        try:
            material(lot.material_code)
        except UnknownMaterial:
            detail = f"lot {lot.lot_number} is of {lot.material_code!r}, which is not in the catalogue"
            anomalies.append(Anomaly("unknown-material", lot.uri, owners.get(lot.owner_id), detail, lot.event_id))
            continue
        if lot.recovered and lot.source_items:
            recyclings[tuple(sorted(str(i).lower() for i in lot.source_items))].append(lot)
    for sources, lots in recyclings.items():
        items = [world.items_by_id[i] for i in sources if i in world.items_by_id]
        recovered = sum(lot.mass_grams for lot in lots)
        if recovery_excess(recovered, [item.mass_grams for item in items]):
            continue  # the total is already too much: recovery-excess reports it
        for detail in _material_excess(world.parts_of(items), [(lot.material_code, lot.mass_grams) for lot in lots]):
            first = lots[0]
            numbers = ", ".join(lot.lot_number for lot in lots)
            anomalies.append(
                Anomaly(
                    "material-excess",
                    first.uri,
                    owners.get(first.owner_id),
                    f"recovered lot(s) {numbers} of {len(items)} items: {detail}",
                    first.event_id,
                )
            )
    return anomalies


def audit_missing_events(
    session: Session, world: _World, anchored: Mapping[bytes, int], archive: Archive | None
) -> list[Anomaly]:
    """Rule 5: each root anchored on-chain with more events than the database holds under it. With the archive,
    one anomaly per missing event, about the items it named; without it, one per root."""
    held: dict[bytes, set[str]] = defaultdict(set)
    for root, event_id in session.execute(
        select(Batch.root, OutboxEvent.event_id).join(OutboxEvent, OutboxEvent.batch_id == Batch.id)
    ):
        held[bytes(root)].add(event_id)
    # A root's count on-chain is of every leaf: the passport versions anchored with the events count too.
    versions: dict[bytes, int] = defaultdict(int)
    for root, number in session.execute(
        select(Batch.root, func.count(DocumentVersion.id))
        .join(DocumentVersion, DocumentVersion.batch_id == Batch.id)
        .group_by(Batch.root)
    ):
        versions[bytes(root)] = int(number)
    anomalies: list[Anomaly] = []
    for root, count in sorted(anchored.items()):
        have = held.get(root, set())
        count -= versions.get(root, 0)
        if len(have) >= count:
            continue
        root_hex = "0x" + root.hex()
        document = archive.fetch_batch(root) if archive is not None else None
        if document is None:
            detail = f"{count - len(have)} of the {count} events anchored under this root are not in the database"
            anomalies.append(Anomaly("anchored-event-missing", root_hex, None, detail))
            continue
        signatures = (document.get("circ:batch") or {}).get("signatures") or []
        signers = {sig.get("eventID"): sig.get("signer") for sig in signatures}
        for event in (document.get("epcisBody") or {}).get("eventList") or []:
            event_id = str(event.get("eventID", ""))
            if event_id in have:
                continue
            keys = {world.item_of(uri) for _, uri in _item_epcs(event)}
            signer = signers.get(event_id)
            for subject in sorted(_subject(key) for key in keys if key is not None) or [root_hex]:
                anomalies.append(
                    Anomaly(
                        "anchored-event-missing",
                        subject,
                        world.who(signer) if signer else None,
                        f"event anchored under root {root_hex} is not in the database",
                        event_id,
                    )
                )
    return anomalies


def audit_lost_anchors(session: Session, world: _World, anchored: Mapping[bytes, int]) -> list[Anomaly]:
    """Rule 5, the other way round: each batch confirmed in the database whose root the chain does not hold, one
    anomaly per batch, naming how many events (and which items) count as anchored without being so."""
    anomalies: list[Anomaly] = []
    lost = session.execute(
        select(Batch.id, Batch.root, Batch.tx_hash, Batch.block_number)
        .where(Batch.status == BatchStatus.CONFIRMED)
        .order_by(Batch.id)
    ).all()
    for batch_id, root, tx_hash, block_number in lost:
        if bytes(root) in anchored:
            continue
        events = session.scalars(select(OutboxEvent.event).where(OutboxEvent.batch_id == batch_id)).all()
        # The passport versions anchored beside the events were lost with them: a consumer's page calls them
        # anchored too, so they count and name their items like the events do.
        versions = session.scalars(select(DocumentVersion.subject).where(DocumentVersion.batch_id == batch_id)).all()
        keys = {world.item_of(uri) for event in events for _, uri in _item_epcs(event)}
        keys |= {world.item_of(subject) for subject in versions}
        items = sorted(_subject(key) for key in keys if key is not None)
        named = ", ".join(items[:5]) + (f" and {len(items) - 5} more" if len(items) > 5 else "")
        tx = f"0x{bytes(tx_hash).hex()}" if tx_hash else "an unknown transaction"
        counted = f"{len(events)} event(s)" + (f" and {len(versions)} passport version(s)" if versions else "")
        anomalies.append(
            Anomaly(
                "anchor-missing",
                f"0x{bytes(root).hex()}",
                None,
                f"{counted} confirmed by {tx} in block {block_number}, a root the chain does not hold"
                + (f"; items {named}" if named else ""),
            )
        )
    return anomalies


def run_audit(
    session: Session,
    roles: RoleHistory,
    limits: Thresholds | None = None,
    anchored: Mapping[bytes, int] | None = None,
    archive: Archive | None = None,
) -> AuditReport:
    """Every rule over the whole database; anomalies sorted by rule, then subject. Rule 5 runs when the chain's
    `anchored` roots are given (``ledger.audit.anchored_roots``)."""
    limits = limits or Thresholds()
    world = _World.load(session)
    anomalies, steps, events = audit_events(session, world, roles)
    anomalies += audit_lifecycles(world, steps)
    scan_anomalies, scans = audit_scans(session, world, steps, limits)
    anomalies += scan_anomalies
    anomalies += audit_unknown_serials(session, limits)
    anomalies += audit_recovered_lots(session, world)
    anomalies += audit_lot_materials(session, world)
    if anchored is not None:
        anomalies += audit_missing_events(session, world, anchored, archive)
        anomalies += audit_lost_anchors(session, world, anchored)
    order = list(RULES)
    anomalies.sort(key=lambda a: (order.index(a.rule), a.subject, a.event_id or ""))
    return AuditReport(
        anomalies=anomalies,
        checked={"events": events, "scans": scans, "items": len(world.items), "actors": len(world.actors)},
    )


__all__ = [
    "RULES",
    "Anomaly",
    "AuditReport",
    "Thresholds",
    "country_distance_km",
    "event_kind",
    "required_roles",
    "run_audit",
]
