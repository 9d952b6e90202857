"""Passport versions: an item's passport is built when something it shows changes, never when someone reads it.

What a passport shows is :func:`api.passport.passport_content`; each change stores the next version of that content
(``ledger/versions.py``: numbered, timestamped, with its reason and the SHA-256 of its JCS form, anchored with the
events). The changes, and who builds the versions they make:

* an event naming the item (a write through the API, an EPCIS capture, a recycling): in the write's own database
  transaction (:func:`after_events`), so a write's answer comes after the versions it changes exist;
* a batch anchored (the timeline shows each event's anchoring): right after the batch is confirmed
  (:func:`after_anchoring`, a hook of the service's anchoring workers), and by :func:`catch_up` for batches a worker
  of another process confirmed;
* a product's master data or a lot's corrected: the items that show it, in the correction's transaction
  (:func:`after_product`, :func:`after_lot`, which follows the lot into the items recycled from it).

A content that did not change makes no version.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import unquote

from sqlalchemy import ColumnElement, Text, cast, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledger.anchoring import AnchorResult
from ledger.outbox import Batch, BatchStatus, EventEpc, OutboxEvent, event_epcs
from ledger.versions import Added, NewVersion, add_versions, heads

from . import passport as pp
from .models import Item, Lot, PassportBatch, Product, utcnow
from .state import AppState
from .uris import item_uri

log = logging.getLogger("circular.api.versions")

KIND = "passport"
REASONS = {
    "event": "an event was recorded on the item",
    "anchoring": "its events were anchored",
    "product": "the product's master data was corrected",
    "brand": "the brand's operator data changed",
    "lot": "a material lot was corrected",
    "backfill": "first version of an item made before passports were versioned",
}
CHUNK = 500  # items per transaction when a change fans out


def subject(state: AppState, gtin: str, serial: str) -> str:
    """The subject of an item's passport versions: its canonical Digital Link (as events name it)."""
    return item_uri(state.settings.resolver_base_url, gtin, serial)


def build(
    session: Session,
    state: AppState,
    items: Sequence[Item],
    reason: str,
    at: datetime | None = None,
    across: dict[str, Any] | None = None,
) -> list[Added]:
    """Store the next passport version of each of `items` whose content changed, in the session's transaction.
    `across` carries what chunks of one change share (the rules' view of the events already read)."""
    if not items:
        return []
    gtins = sorted({item.gtin for item in items})
    products = {p.gtin: p for p in session.scalars(select(Product).where(Product.gtin.in_(gtins)))}
    shared: dict[str, Any] = {}  # items of one run share their materials and provenance
    kept = [item for item in items if item.gtin in products]
    subjects = [subject(state, item.gtin, item.serial) for item in kept]
    if len(kept) > 1:  # the events of every item at once, and every actor's name
        shared["events"] = events = pp.events_by_uri(session, subjects)
        shared["actors"] = pp.actors_by_address(session)
        rows = (row for found in events.values() for row in found)
        known = across.get("known") if across is not None else None
        shared["known"] = pp.known_subjects(state, session, rows, known)
        if across is not None:
            across["known"] = shared["known"]
    wanted = [
        NewVersion(uri, pp.passport_content(session, state, products[item.gtin], item, shared), reason)
        for uri, item in zip(subjects, kept, strict=True)
    ]
    return add_versions(session, KIND, wanted, at)


def has_version(session: Session, state: AppState, item: Item) -> bool:
    """Whether `item` has a passport version."""
    return bool(heads(session, KIND, [subject(state, item.gtin, item.serial)]))


def _item_keys(state: AppState, uris: Iterable[str]) -> list[tuple[str, str]]:
    prefix = state.settings.resolver_base_url.rstrip("/") + "/01/"
    keys = set()
    for uri in uris:
        if not uri.startswith(prefix):
            continue
        parts = uri[len(prefix) :].split("/")
        if len(parts) == 3 and parts[1] == "21":
            keys.add((parts[0], unquote(parts[2])))
    return sorted(keys)


def items_named(session: Session, state: AppState, uris: Iterable[str]) -> list[Item]:
    """The registered items among `uris` (canonical item Digital Links at this resolver)."""
    ordered = _item_keys(state, uris)
    found: list[Item] = []
    for start in range(0, len(ordered), CHUNK):
        part = ordered[start : start + CHUNK]
        found += session.scalars(select(Item).where(tuple_(Item.gtin, Item.serial).in_(part)))
    return found


def ids_named(session: Session, state: AppState, uris: Iterable[str]) -> list[int]:
    """The ids of the registered items among `uris` (a batch can name a hundred thousand: no entities)."""
    ordered = _item_keys(state, uris)
    found: list[int] = []
    for start in range(0, len(ordered), CHUNK):
        part = ordered[start : start + CHUNK]
        found += session.scalars(select(Item.id).where(tuple_(Item.gtin, Item.serial).in_(part)))
    return sorted(found)


def after_events(session: Session, state: AppState, events: Iterable[dict[str, Any]]) -> list[Added]:
    """The versions a write's events make (in the write's transaction): every registered item they name; and for
    a correction (an event with an EPCIS ``errorDeclaration``), every item whose passport shows a lot it names."""
    uris: set[str] = set()
    corrected: set[str] = set()
    for event in events:
        named = event_epcs(event)
        uris |= named
        if event.get("errorDeclaration"):
            corrected |= named
    added = build(session, state, items_named(session, state, uris), "event")
    if corrected:
        for lot in session.scalars(select(Lot).where(Lot.uri.in_(sorted(corrected)))):
            added += after_lot(session, state, lot)
    return added


def _every_item_where(
    session: Session, state: AppState, condition: ColumnElement[bool], reason: str
) -> list[Added]:
    """A version of every item matching `condition`, built in chunks of :data:`CHUNK` that share the rules' view."""
    added: list[Added] = []
    across: dict[str, Any] = {}
    ids = list(session.scalars(select(Item.id).where(condition).order_by(Item.id)))
    for start in range(0, len(ids), CHUNK):
        items = list(session.scalars(select(Item).where(Item.id.in_(ids[start : start + CHUNK]))))
        added += build(session, state, items, reason, across=across)
    return added


def after_product(session: Session, state: AppState, gtin: str) -> list[Added]:
    """A product's master data changed: every item of the GTIN."""
    return _every_item_where(session, state, Item.gtin == gtin, "product")


def after_brand(session: Session, state: AppState, brand_id: int) -> list[Added]:
    """A brand's operator data changed: every item of the brand."""
    return _every_item_where(session, state, Item.brand_id == brand_id, "brand")


def items_showing_lot(session: Session, lot_id: str, max_generations: int) -> list[int]:
    """The ids of the items whose passport shows lot `lot_id`: those made of it, and, generation after generation,
    those made of the recovered lots their ancestors were recycled into (their provenance shows it)."""
    found: list[int] = []
    seen: set[int] = set()
    lots = {lot_id.lower()}
    for _ in range(max_generations):
        # A run's items share one composition: compositions are matched as text, a lot id being 66 unique hex
        # characters, and only the matching rows decoded.
        items: list[tuple[int, str | None]] = []
        for lot in sorted(lots):
            query = select(Item.id, Item.recovered_into).where(cast(Item.composition, Text).contains(lot))
            items += [(int(i), r) for i, r in session.execute(query)]
        new = [(i, r) for i, r in items if i not in seen]
        if not new:
            break
        for item_id, _ in new:
            seen.add(item_id)
            found.append(item_id)
        lots = {str(r) for _, r in new if r}
        if not lots:
            break
    return found


def after_lot(session: Session, state: AppState, lot: Lot) -> list[Added]:
    """A lot's data changed: every item whose passport shows it."""
    ids = items_showing_lot(session, lot.lot_id, state.api_settings.provenance_max_generations)
    added: list[Added] = []
    across: dict[str, Any] = {}
    for start in range(0, len(ids), CHUNK):
        items = list(session.scalars(select(Item).where(Item.id.in_(ids[start : start + CHUNK]))))
        added += build(session, state, items, "lot", across=across)
    return added


def after_anchoring(state: AppState, result: AnchorResult | int) -> int:
    """A batch was anchored: the passports whose timeline shows one of its events get their next version, a chunk
    of items per transaction. Idempotent: a batch is marked done once every chunk is in (a crash in between is
    finished by :func:`catch_up`, and unchanged content makes no version). Returns how many versions it made."""
    batch_id = result.batch_id if isinstance(result, AnchorResult) else result
    with _BUSY_LOCK:  # the worker's hook and the catch-up thread of one process never do a batch twice at once
        busy: set[int] = state.extra.setdefault("versions_busy", set())
        if batch_id in busy:
            return 0
        busy.add(batch_id)
    try:
        return _after_anchoring(state, batch_id)
    finally:
        with _BUSY_LOCK:
            busy.discard(batch_id)


_BUSY_LOCK = threading.Lock()


def _after_anchoring(state: AppState, batch_id: int) -> int:
    made = 0
    across: dict[str, Any] = {}
    with state.service.sessions() as session:
        if session.get(PassportBatch, batch_id) is not None:
            return 0
        uris = set(
            session.scalars(
                select(EventEpc.epc)
                .join(OutboxEvent, OutboxEvent.id == EventEpc.event_pk)
                .where(OutboxEvent.batch_id == batch_id)
                .distinct()
            )
        )
        ids = ids_named(session, state, uris)
    for start in range(0, len(ids), CHUNK):
        for attempt in range(3):
            try:
                with state.service.sessions.begin() as session:
                    items = list(session.scalars(select(Item).where(Item.id.in_(ids[start : start + CHUNK]))))
                    made += len(build(session, state, items, "anchoring", across=across))
                break
            except IntegrityError:  # another process made a version of one of them at the same moment: again
                if attempt == 2:
                    raise
    with state.service.sessions.begin() as session:
        if session.get(PassportBatch, batch_id) is None:
            session.add(PassportBatch(batch_id=batch_id, done_at=utcnow()))
    return made


def catch_up(state: AppState, backfill: bool = False) -> int:
    """What :func:`after_anchoring` has not done yet (batches confirmed by a worker of another process, or before a
    crash), and with `backfill` the first version of every item that has none. Returns how many versions it made."""
    with state.service.sessions() as session:
        done = select(PassportBatch.batch_id)
        batches = list(
            session.scalars(
                select(Batch.id)
                .where(Batch.status == BatchStatus.CONFIRMED, Batch.id.not_in(done))
                .order_by(Batch.id)
            )
        )
    made = sum(after_anchoring(state, batch_id) for batch_id in batches)
    if backfill:
        made += _backfill(state)
    return made


def install(state: AppState, *, start: bool = True) -> None:
    """Rebuild passports after every batch the app's service anchors: once per service (two apps sharing one would
    rebuild each passport twice), until the last start of the app that installed it stops (:func:`uninstall`).

    Starts (`start`: a lifespan, not the app's construction) are counted: a second lifespan of the same app (a test
    client, schemathesis' ASGI runner) ends without taking the hook from the first, which is still serving."""
    starts = int(state.extra.get("versions_hook_starts", 0)) + int(start)
    if state.extra.get("versions_hook") is not None:
        state.extra["versions_hook_starts"] = starts
        return
    if any(getattr(hook, "passport_versions", False) for hook in state.service.after_anchoring):
        return
    hook = partial(after_anchoring, state)
    hook.passport_versions = True  # type: ignore[attr-defined]
    state.extra["versions_hook"] = hook
    state.extra["versions_hook_starts"] = starts
    state.service.after_anchoring.append(hook)


def uninstall(state: AppState) -> None:
    starts = int(state.extra.get("versions_hook_starts", 0)) - 1
    if starts > 0:
        state.extra["versions_hook_starts"] = starts
        return
    state.extra.pop("versions_hook_starts", None)
    hook = state.extra.pop("versions_hook", None)
    if hook is not None and hook in state.service.after_anchoring:
        state.service.after_anchoring.remove(hook)


class CatchUp:
    """A thread that runs :func:`catch_up` every `interval_s` (the first time with the backfill)."""

    def __init__(self, state: AppState, interval_s: float) -> None:
        self.state = state
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="passport-catch-up", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        backfill = True
        while not self._stop.is_set():
            try:
                catch_up(self.state, backfill=backfill)
                backfill = False
            except Exception as exc:  # the database or the node is away: next time
                log.warning("passport versions not caught up yet: %s", exc)
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _backfill(state: AppState) -> int:
    with state.service.sessions() as session:
        keys = session.execute(select(Item.id, Item.gtin, Item.serial)).all()
        have = heads(session, KIND, (subject(state, gtin, serial) for _, gtin, serial in keys))
    missing = [item_id for item_id, gtin, serial in keys if subject(state, gtin, serial) not in have]
    made = 0
    for start in range(0, len(missing), CHUNK):
        with state.service.sessions.begin() as session:
            items = list(session.scalars(select(Item).where(Item.id.in_(missing[start : start + CHUNK]))))
            made += len(build(session, state, items, "backfill"))
    if made:
        log.info("made the first passport version of %d items", made)
    return made


__all__ = [
    "KIND",
    "REASONS",
    "CatchUp",
    "after_anchoring",
    "after_brand",
    "after_events",
    "after_lot",
    "after_product",
    "build",
    "catch_up",
    "has_version",
    "ids_named",
    "install",
    "items_named",
    "items_showing_lot",
    "subject",
    "uninstall",
]
