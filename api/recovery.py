"""Re-deriving the API's tables after the database was lost: ``circular rebuild`` calls :func:`restore_api_tables`.

Every row comes from something that survives the database, and nothing is taken on trust:

- lots, items, runs, states, lineage: the projection, itself rebuilt from the deployment's contract logs;
- a lot's origin and certificates, event ids, timelines: the outbox, restored from the batch archive and checked
  against the anchored roots and the signatures (:mod:`ledger.recovery`);
- actors' names and products' master data: the archive's master-data documents, kept only when signed by their owner
  (the actor's own account; the account that holds the GTIN's company prefix on-chain);
- items' places in their brands' credential status lists and their revocations: the archive's status records, kept
  only when signed by the item's brand (``credentials.restore_status``).

API keys cannot come back (only their hashes were stored, in the lost database): restored actors hold a key nobody
knows and must be given new ones (``circular actors rotate-key``); lot approvals come back from the chain's
allowances (``MaterialLots.approve``). Return requests are not restored (no passport shows them).
"""

from __future__ import annotations

import hashlib
import secrets
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, insert, literal, select, text
from sqlalchemy.orm import Session

from ledger.client import Role
from ledger.db import Base
from ledger.ids import item_id
from ledger.merkle import MerkleTree
from ledger.outbox import OutboxEvent
from ledger.projection import ZERO32, ChainItem, ChainLot, ChainRole, ChainRun, ChainTransition
from ledger.recovery import Allowance, EventRecovery, lot_allowances

from .epcis_store import sync_index
from .models import OPTIONAL_PRODUCT_FIELDS, PRODUCT_FIELDS, Actor, ActorRole, Item, Lot, LotApproval, Product, utcnow
from .uris import hex32, lot_uri, unhex32

CHUNK = 1_000
ACTOR_ROLES = ("brand", "recycler", "retailer", "repairer")


@dataclass
class ApiRecovery:
    actors: int = 0
    products: int = 0
    lots: int = 0
    items: int = 0
    approvals: int = 0  # lot approvals restored or brought up to date, from the chain's allowances
    updated: int = 0  # rows a kept database held, brought to what the chain says (``circular sync``)
    indexed_events: int = 0
    credential_keys: int = 0
    credential_indexes: int = 0  # items given back their status-list index, from the archive's status records
    credential_revocations: int = 0  # revocations brought back from the archive's status records
    problems: list[str] = field(default_factory=list)


def actor_masterdata(actor: Actor) -> dict[str, Any]:
    """What an actor publishes about itself (its key name tells the rebuilt API where its Ethereum key is; its id
    lets a rebuilt API give it the same one, so that lots' approvals and console links that name it still do)."""
    return {
        "name": actor.name,
        "role": actor.role,
        "address": actor.address,
        "keyName": actor.key_name,
        "id": actor.id,
    }


def product_masterdata(product: Product) -> dict[str, Any]:
    return {name: getattr(product, name) for name in PRODUCT_FIELDS}


def _unknowable_key_hash() -> str:
    """A key hash no API key hashes to in practice: the restored actor is locked out until given a new key."""
    return hashlib.sha256(b"lost:" + secrets.token_bytes(32)).hexdigest()


def _archived_id(data: dict[str, Any]) -> int:
    value = data.get("id")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


class _Actors:
    """Actors by address: the archive's signed documents first (with the id each had, when free), a placeholder named
    by its address otherwise. The chain's role history says whether each may still act: an actor whose role was
    revoked on-chain comes back revoked, and an account's role is the one the chain granted it."""

    def __init__(self, session: Session, archive: Any, report: ApiRecovery) -> None:
        self.session = session
        self.report = report
        self.by_address: dict[str, Actor] = {a.address.lower(): a for a in session.scalars(select(Actor))}
        self.roles: dict[str, dict[str, bool]] = defaultdict(dict)  # account → role name → active, as on-chain
        names_of = {hex32(Role.by_name(name)): name for name in (*ACTOR_ROLES, "admin")}
        for row in session.scalars(select(ChainRole)):
            if row.role in names_of:
                self.roles[row.account.lower()][names_of[row.role]] = row.active
        names = {a.name for a in self.by_address.values()}
        ids = {a.id for a in self.by_address.values()}
        documents = archive.masterdata("actor") if archive is not None else []
        for key, signer, data in sorted(documents, key=lambda doc: (_archived_id(doc[2]) or 1 << 62, doc[0])):
            if signer.lower() != key.lower() or str(data.get("address", "")).lower() != key.lower():
                report.problems.append(f"actor {key}: master data not signed by its own account, ignored")
                continue
            if key.lower() in self.by_address or data.get("name") in names:
                continue
            wanted = _archived_id(data)
            actor = self._add(
                str(data["name"]), str(data.get("role", "")), signer, data, wanted if wanted not in ids else None
            )
            names.add(actor.name)
            ids.add(actor.id)

    def _role(self, address: str, claimed: str) -> tuple[str, bool]:
        """(role, revoked): the claimed role when the chain granted it (revoked when it took it back), else the
        role the chain has active for the account."""
        on_chain = self.roles.get(address.lower(), {})
        if claimed == "admin" or claimed in on_chain:
            return claimed, claimed != "admin" and not on_chain.get(claimed, False)
        active = [name for name in ACTOR_ROLES if on_chain.get(name)]
        if active:
            return active[0], False
        return (claimed if claimed in set(ActorRole) else "brand"), False

    def _add(
        self, name: str, role: str, address: str, data: dict[str, Any], actor_id: int | None = None
    ) -> Actor:
        role, revoked = self._role(address, role)
        actor = Actor(
            name=name[:120],
            role=role,
            address=address,
            key_name=str(data.get("keyName") or ""),
            key_hash=_unknowable_key_hash(),
            revoked=revoked,
            revoked_at=utcnow() if revoked else None,
            created_at=utcnow(),
        )
        if actor_id is not None:
            actor.id = actor_id
        self.session.add(actor)
        self.session.flush()
        self.by_address[address.lower()] = actor
        self.report.actors += 1
        return actor

    def of(self, address: str, role: str) -> Actor:
        actor = self.by_address.get(address.lower())
        if actor is None:
            self.report.problems.append(f"actor {address}: no signed master data, named by its address")
            actor = self._add(address, role, address, {})
        return actor


def _registration_events(session: Session) -> dict[str, dict[str, Any]]:
    """The event that registered each lot, by lot URI: its commissioning ObjectEvent, or the recycling event that
    made it (the first one naming the lot in a quantity list with ILMD)."""
    found: dict[str, dict[str, Any]] = {}
    for event_id, event in session.execute(select(OutboxEvent.event_id, OutboxEvent.event).order_by(OutboxEvent.id)):
        if "ilmd" not in event:
            continue
        for key in ("quantityList", "outputQuantityList"):
            for entry in event.get(key) or ():
                if isinstance(entry, dict) and "epcClass" in entry:
                    found.setdefault(str(entry["epcClass"]), {**event, "eventID": event_id})
    return found


def _holder(actors: _Actors, account: str | None) -> int | None:
    """The actor who took an item's latest lifecycle step; None before its first."""
    if account is None:
        return None
    actor = actors.by_address.get(account.lower())
    return actor.id if actor is not None else None


def restore_api_tables(
    session: Session,
    resolver_base_url: str,
    archive: Any,
    gtin_owner: Callable[[str], str | None],
    allowances: Sequence[Allowance] = (),
) -> ApiRecovery:
    """Fill the API's tables from the projection, the restored outbox and the archive's master data.

    `gtin_owner` is the chain's answer to who holds a GTIN's company prefix (``Ledger.gtin_owner``)."""
    report = ApiRecovery()
    actors = _Actors(session, archive, report)
    registrations = _registration_events(session)

    # Lots.
    chain_lots = {lot.lot_id: lot for lot in session.scalars(select(ChainLot))}
    existing_lots = {lot.lot_id: lot for lot in session.scalars(select(Lot))}
    lot_rows: dict[str, Lot] = {}
    for chain_lot in chain_lots.values():
        recovered = chain_lot.lineage_hash != ZERO32
        uri = lot_uri(
            resolver_base_url, chain_lot.lot_id, chain_lot.gtin, chain_lot.lot_number if chain_lot.gtin else None
        )
        event = registrations.get(uri)
        if event is None:
            report.problems.append(f"lot {chain_lot.lot_id}: its registration event was not recovered")
        ilmd = (event or {}).get("ilmd") or {}
        if chain_lot.lot_id in existing_lots:
            report.updated += _catch_up(existing_lots[chain_lot.lot_id], allocated_grams=chain_lot.allocated_grams)
            continue
        lot = Lot(
            lot_id=chain_lot.lot_id,
            uri=uri,
            gtin=chain_lot.gtin,
            lot_number=chain_lot.lot_number,
            owner_id=actors.of(chain_lot.owner, "recycler" if recovered else "brand").id,
            material_code=chain_lot.material_code,
            mass_grams=chain_lot.mass_grams,
            allocated_grams=chain_lot.allocated_grams,
            recycled_share_bps=chain_lot.recycled_share_bps,
            recovered=recovered,
            source_items=chain_lot.source_items if recovered else None,
            origin=ilmd.get("circ:origin"),
            certificates=list((event or {}).get("certificationInfo") or []),
            event_id=str((event or {}).get("eventID", "")),
            tx_hash=chain_lot.tx_hash,
            created_at=utcnow(),
        )
        session.add(lot)
        lot_rows[lot.lot_id] = lot
        report.lots += 1
    session.flush()
    report.approvals = _restore_approvals(session, actors, allowances)
    certificates_of = {lot.lot_id: list(lot.certificates or []) for lot in session.scalars(select(Lot))}

    # Products: every GTIN of a lot or an item, with its brand's signed master data if any.
    gtins = {lot.gtin for lot in chain_lots.values() if lot.gtin} | set(
        session.scalars(select(ChainItem.gtin).distinct())
    )
    signed_products: dict[str, tuple[str, dict[str, Any]]] = {}
    for key, signer, data in archive.masterdata("product") if archive is not None else []:
        owner = gtin_owner(key)
        if owner is None or owner.lower() != signer.lower():
            report.problems.append(f"product {key}: master data not signed by the GTIN's brand, ignored")
            continue
        signed_products[key] = (signer, data)
    existing_products = set(session.scalars(select(Product.gtin)))
    for gtin in sorted(gtins - existing_products):
        owner = gtin_owner(gtin)
        if owner is None:
            report.problems.append(f"product {gtin}: no brand holds its company prefix")
            continue
        brand = actors.of(owner, "brand")
        # The defaults are the ones a brand's first write under a GTIN sets (api.writes.ensure_product).
        values: dict[str, Any] = dict.fromkeys(PRODUCT_FIELDS, "")
        values.update(brand_name=brand.name, name=f"GTIN {gtin}", language="en", image_url=None)
        values.update(dict.fromkeys(OPTIONAL_PRODUCT_FIELDS))
        if gtin in signed_products:
            values.update({k: v for k, v in signed_products[gtin][1].items() if k in PRODUCT_FIELDS})
        session.add(Product(gtin=gtin, brand_id=brand.id, created_at=utcnow(), updated_at=utcnow(), **values))
        report.products += 1
    session.flush()

    # Items, with their run's root and each one's membership proof.
    runs = {run.run_id: run for run in session.scalars(select(ChainRun))}
    members: dict[str, list[bytes]] = defaultdict(list)
    chain_items = list(
        session.scalars(select(ChainItem).order_by(ChainItem.block_number, ChainItem.gtin, ChainItem.serial))
    )
    for chain_item in chain_items:
        if chain_item.run_id:
            members[chain_item.run_id].append(item_id(chain_item.gtin, chain_item.serial))
    trees = {run_id: MerkleTree.of(ids) for run_id, ids in members.items()}
    for run_id, run_tree in trees.items():
        if hex32(run_tree.root) != runs[run_id].items_root:
            report.problems.append(f"run {run_id}: its serials do not make its items root")
    existing_items = {item.item_id: item for item in session.scalars(select(Item))}
    # Whose list each item is in: the account of its latest lifecycle step (registration aside), in log order.
    last_account: dict[str, str] = {}
    for ident, account in session.execute(
        select(ChainTransition.item_id, ChainTransition.account)
        .where(ChainTransition.from_state != 0)
        .order_by(ChainTransition.block_number, ChainTransition.log_index)
    ):
        last_account[ident] = account
    rows = []
    now = utcnow()
    for chain_item in chain_items:
        held = existing_items.get(chain_item.item_id)
        if held is not None:  # a database that kept it (a restored snapshot): brought to what the chain says now
            report.updated += _catch_up(
                held,
                state=chain_item.state,
                materialized=chain_item.materialized,
                recovered_into=chain_item.recovered_into,
                holder_id=_holder(actors, last_account.get(chain_item.item_id)) or held.holder_id,
            )
            continue
        run = runs.get(chain_item.run_id) if chain_item.run_id else None
        tree = trees.get(chain_item.run_id) if chain_item.run_id else None
        rows.append(
            {
                "gtin": chain_item.gtin,
                "serial": chain_item.serial,
                "item_id": chain_item.item_id,
                "brand_id": actors.of(chain_item.brand, "brand").id,
                "composition": chain_item.composition,
                "mass_grams": chain_item.mass_grams,
                "certificates": sorted(
                    {c for lot_id, _ in chain_item.composition for c in certificates_of.get(lot_id, [])}
                ),
                "state": chain_item.state,
                "run_id": chain_item.run_id,
                "items_root": run.items_root if run else None,
                "proof": [hex32(p) for p in tree.proof(unhex32(chain_item.item_id))] if tree else None,
                "materialized": chain_item.materialized,
                "recovered_into": chain_item.recovered_into,
                "holder_id": _holder(actors, last_account.get(chain_item.item_id)),
                "created_at": now,
                "updated_at": now,
            }
        )
    for start in range(0, len(rows), CHUNK):
        session.execute(insert(Item), rows[start : start + CHUNK])
    report.items = len(rows)
    session.flush()
    return report


def _restore_approvals(session: Session, actors: _Actors, allowances: Sequence[Allowance]) -> int:
    """Lot approvals as the chain has them (each owner's latest allowance per operator). Returns how many rows were
    added or changed."""
    lots = set(session.scalars(select(Lot.lot_id)))
    held = {(a.lot_id, a.operator_id): a for a in session.scalars(select(LotApproval))}
    changed = 0
    for allowance in allowances:
        operator = actors.by_address.get(allowance.operator.lower())
        if operator is None or allowance.lot_id not in lots:
            continue
        row = held.get((allowance.lot_id, operator.id))
        if row is None:
            session.add(
                LotApproval(
                    lot_id=allowance.lot_id,
                    operator_id=operator.id,
                    grams=allowance.grams,
                    tx_hash=allowance.tx_hash,
                    created_at=utcnow(),
                )
            )
            changed += 1
        elif (row.grams, row.tx_hash) != (allowance.grams, allowance.tx_hash):
            row.grams, row.tx_hash = allowance.grams, allowance.tx_hash
            changed += 1
    session.flush()
    return changed


def _catch_up(row: Any, **values: Any) -> int:
    """Set what differs on `row`; 1 when anything did."""
    changed = {name: value for name, value in values.items() if getattr(row, name) != value}
    for name, value in changed.items():
        setattr(row, name, value)
    if changed and hasattr(row, "updated_at"):
        row.updated_at = utcnow()
    return 1 if changed else 0


@dataclass
class Recovery:
    """What ``circular rebuild`` or ``circular sync`` did."""

    logs: int
    events: EventRecovery
    api: ApiRecovery


def occupied_tables(session: Session) -> list[str]:
    """The schema's tables that hold rows (Alembic's own aside)."""
    return [
        table.name
        for table in Base.metadata.sorted_tables
        if session.execute(select(literal(1)).select_from(table).limit(1)).first() is not None
    ]


def recover_database(service: Any, *, keep: bool) -> Recovery:
    """Bring the database to the chain's present, from the chain's logs and the batch archive, in one transaction:
    either all of it is written or nothing is.

    Without `keep` (``circular rebuild``) the database must be empty: a database holding any row is refused before
    anything is written. With `keep` (``circular sync``) what it holds stays; the logs are replayed from the last
    block its projection applied, batches it does not hold are restored from the archive (events it holds as not yet
    anchored are marked anchored, never anchored twice), and its items and lots are brought to what the chain says."""
    from ledger.projection import IngestedLog, Projector
    from ledger.recovery import recover_events

    with service.sessions() as session:
        if not keep:
            occupied = occupied_tables(session)
            if occupied:
                raise ValueError(
                    f"the database is not empty ({', '.join(occupied[:3])}{', ...' if len(occupied) > 3 else ''} "
                    "hold rows): rebuild writes only into an empty database (--db URL); `circular sync` catches a "
                    "kept database up with the chain"
                )
        try:
            last_seen = session.scalar(select(func.max(IngestedLog.block_number))) if keep else None
            applied = Projector(service.ledger).rebuild(session, from_block=last_seen)
            session.flush()
            events = EventRecovery()
            if service.archive is None:
                events.problems.append("archiving is off (CIRCULAR_ARCHIVE_ENABLED): no event can be recovered")
            else:
                events = recover_events(session, service.archive, service.domain)
            api = restore_api_tables(
                session,
                service.settings.resolver_base_url,
                service.archive,
                _gtin_owner(service),
                lot_allowances(service.ledger),
            )
            if not keep:  # the brands' credential keys (their DID documents), from their keystore files
                from .credentials import restore_keys

                api.credential_keys, missing = restore_keys(service.settings, session)
                api.problems += missing
            highest = _restore_credential_status(service, session, api)
            _advance_sequences(session, highest)
            session.commit()
        except BaseException:
            session.rollback()
            raise
    with service.sessions() as session:  # the EPCIS query index: derived, and caught up on first query as well
        api.indexed_events = sync_index(session)
    return Recovery(applied, events, api)


def _gtin_owner(service: Any) -> Callable[[str], str | None]:
    def gtin_owner(gtin: str) -> str | None:
        try:
            owner = str(service.ledger.gtin_owner(gtin))
        except Exception:  # an unassigned prefix reverts on some nodes
            return None
        return None if int(owner, 16) == 0 else owner

    return gtin_owner


def _restore_credential_status(service: Any, session: Session, api: ApiRecovery) -> int:
    """Items' status-list indexes and revocations from the archive's signed status records; returns the highest
    index the archive holds (new indexes start above it)."""
    from .credentials import STATUS_KIND, restore_status

    if service.archive is None:
        return 0
    done = restore_status(session, service.settings.resolver_base_url, service.archive.masterdata(STATUS_KIND))
    api.credential_indexes, api.credential_revocations = done.indexes, done.revocations
    api.problems += done.problems
    return done.highest


def _advance_sequences(session: Session, status_floor: int = 0) -> None:
    """PostgreSQL's sequences after rows written with their ids (actors and items' status-list indexes keep theirs):
    past the highest id, and a status index past every one the archive holds."""
    from .credentials import advance_status_sequence

    if session.get_bind().dialect.name != "postgresql":
        return
    session.execute(
        text("SELECT setval(pg_get_serial_sequence('api_actors', 'id'), GREATEST((SELECT max(id) FROM api_actors), 1))")
    )
    advance_status_sequence(session, status_floor)


__all__ = [
    "ApiRecovery",
    "Recovery",
    "actor_masterdata",
    "occupied_tables",
    "product_masterdata",
    "recover_database",
    "restore_api_tables",
]
