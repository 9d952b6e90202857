"""What an evidence bundle's events prove about its item's recycled content, from the bundle alone.

The events say everything the claim rests on:

- a lot's material, mass and declared recycled share: its commissioning event (``ObjectEvent`` ADD, ILMD);
- a recovered lot's material and mass: the recycling event that made it (``outputQuantityList`` and ILMD, one lot
  per material), and which items went into it (``inputEPCList``);
- an item's composition: the event that made it (``inputQuantityList``: grams of each lot for all the items of the
  event, so each item's share is the quantity divided by the items made);
- that an item recycled was collected first: its collection event.

:func:`check_recycled_content` recomputes the item's recycled share with ``materials`` (the passport's own
arithmetic), proving each recovered lot on the way: every item recycled into it made and collected per the bundle, and
its lots, per recovered material, no heavier than what those items held of it (grams in, grams out, per material),
through every generation. A recovered lot whose recycling is missing or does not balance proves nothing: its grams
count as not recycled, and the problem is named.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from materials import FULL_SHARE_BPS, Composition, InvalidComposition, LotRecord, recycled_share_bps
from materials.recovery import RecoveryError, balance

from .epcis.corrections import declared, is_declaration
from .lifecycle import Action, action_of_event

GRAMS_PER_UNIT = {"GRM": 1, "KGM": 1_000, "TNE": 1_000_000}


def _grams(entry: Mapping[str, Any]) -> int | None:
    factor = GRAMS_PER_UNIT.get(str(entry.get("uom", "GRM")))
    quantity = entry.get("quantity")
    if factor is None or not isinstance(quantity, int | float) or isinstance(quantity, bool):
        return None
    return int(quantity * factor)


def _classes(event: Mapping[str, Any], key: str) -> list[tuple[str, int | None]]:
    return [
        (str(entry["epcClass"]), _grams(entry))
        for entry in event.get(key) or ()
        if isinstance(entry, Mapping) and "epcClass" in entry
    ]


@dataclass(frozen=True)
class LotFact:
    uri: str
    material_code: str
    mass_grams: int
    recycled_share_bps: int
    event_id: str
    recycling: str | None = None  # the recycling event that made it (a recovered lot)


@dataclass(frozen=True)
class Recycling:
    event_id: str
    inputs: tuple[str, ...]
    outputs: tuple[tuple[str, int, str], ...]  # (lot URI, grams, material code)


@dataclass
class Facts:
    """The bundle's events, read for what they say about items and lots."""

    lots: dict[str, LotFact] = field(default_factory=dict)
    compositions: dict[str, tuple[tuple[str, int], ...]] = field(default_factory=dict)
    recyclings: dict[str, Recycling] = field(default_factory=dict)
    collected: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, events: Iterable[tuple[str, Mapping[str, Any]]]) -> Facts:
        """The facts of `events`; an event declared in error (EPCIS 2.0 ``errorDeclaration``, in `events`) says
        nothing, and a declaration is no fact either: the corrective events it names say what happened."""
        listed = list(events)
        void = declared(event for _, event in listed)
        facts = cls()
        for event_id, event in listed:
            if is_declaration(event) or event_id in void:
                continue
            facts.read(event_id, event)
        return facts

    def read(self, event_id: str, event: Mapping[str, Any]) -> None:
        row = action_of_event(event)
        action = row.action if row is not None else None
        ilmd = event.get("ilmd") if isinstance(event.get("ilmd"), Mapping) else {}
        assert isinstance(ilmd, Mapping)
        if action is Action.LOT:
            for uri, grams in _classes(event, "quantityList"):
                code = ilmd.get("circ:materialCode")
                share = ilmd.get("circ:recycledShareBps", 0)
                if isinstance(code, str) and isinstance(share, int) and grams is not None:
                    self.lots.setdefault(uri, LotFact(uri, code, grams, share, event_id))
        elif action is Action.MANUFACTURED:
            items = [str(i) for i in event.get("outputEPCList") or ()]
            parts = _classes(event, "inputQuantityList")
            if not items:
                return
            per_item: list[tuple[str, int]] = []
            for uri, grams in parts:
                if grams is None or grams % len(items):
                    self.problems.append(f"event {event_id}: {grams} g of {uri} do not divide among {len(items)} items")
                    return
                per_item.append((uri, grams // len(items)))
            for item in items:
                self.compositions.setdefault(item, tuple(per_item))
        elif action is Action.RECYCLED:
            outputs = self._recovered(event_id, event, ilmd)
            recycling = Recycling(event_id, tuple(str(i) for i in event.get("inputEPCList") or ()), tuple(outputs))
            self.recyclings[event_id] = recycling
            for uri, grams, code in outputs:
                self.lots.setdefault(uri, LotFact(uri, code, grams, FULL_SHARE_BPS, event_id, event_id))
        elif action is Action.COLLECTED:
            self.collected.update(str(i) for i in event.get("epcList") or ())

    def _recovered(
        self, event_id: str, event: Mapping[str, Any], ilmd: Mapping[str, Any]
    ) -> list[tuple[str, int, str]]:
        listed = ilmd.get("circ:recoveredLots")
        outputs: list[tuple[str, int, str]] = []
        if isinstance(listed, list):
            for entry in listed:
                if isinstance(entry, Mapping) and isinstance(entry.get("circ:materialCode"), str):
                    grams = entry.get("circ:massGrams")
                    if isinstance(grams, int) and not isinstance(grams, bool):
                        outputs.append((str(entry.get("epcClass")), grams, str(entry["circ:materialCode"])))
            return outputs
        code = ilmd.get("circ:materialCode")
        for uri, grams in _classes(event, "outputQuantityList"):
            if isinstance(code, str) and grams is not None:
                outputs.append((uri, grams, code))
        if not outputs:
            self.problems.append(f"event {event_id}: a recycling that names no recovered lot and material")
        return outputs


@dataclass
class ContentCheck:
    """The recycled share the events prove for the item (None when not even its composition is in the bundle), what
    stands in the way of more, and what the check walked."""

    item: str
    share_bps: int | None
    problems: list[str] = field(default_factory=list)
    recovered_lots: int = 0
    generations: int = 0


def check_recycled_content(item: str, events: Iterable[tuple[str, Mapping[str, Any]]]) -> ContentCheck:
    """Recompute `item`'s recycled share from `events` (event id, event), proving every recovered lot on the way."""
    facts = Facts.of(events)
    result = ContentCheck(item, None, list(facts.problems))
    composition = facts.compositions.get(item)
    if composition is None:
        result.problems.append(f"no event in the bundle makes {item}: its composition is unknown")
        return result
    proven: dict[str, bool] = {}

    def prove(lot_uri: str, depth: int, walking: frozenset[str]) -> LotRecord:
        """The lot's record for the arithmetic: a recovered lot counts as recycled only once its recycling is
        proven; a lot with no event registering it counts as nothing recycled."""
        fact = facts.lots.get(lot_uri)
        if fact is None:
            result.problems.append(f"no event in the bundle registers or recovers lot {lot_uri}")
            return LotRecord(lot_uri, "?", 0, 0)
        if fact.recycling is None:
            return LotRecord(lot_uri, fact.material_code, fact.mass_grams, fact.recycled_share_bps)
        result.generations = max(result.generations, depth + 1)
        if lot_uri not in proven:
            proven[lot_uri] = False  # a lot recycled into its own ancestors proves nothing
            if lot_uri not in walking:
                proven[lot_uri] = prove_recycling(facts.recyclings[fact.recycling], depth, walking | {lot_uri})
        share = FULL_SHARE_BPS if proven[lot_uri] else 0
        return LotRecord(lot_uri, fact.material_code, fact.mass_grams, share)

    def prove_recycling(recycling: Recycling, depth: int, walking: frozenset[str]) -> bool:
        result.recovered_lots += len(recycling.outputs)
        ok = True
        parts: list[tuple[str, int]] = []
        if not recycling.inputs:
            result.problems.append(f"recycling {recycling.event_id} names no items recycled")
            return False
        for source in recycling.inputs:
            made = facts.compositions.get(source)
            if made is None:
                result.problems.append(f"{source}, recycled in {recycling.event_id}: no event in the bundle makes it")
                ok = False
                continue
            if source not in facts.collected:
                result.problems.append(f"{source}, recycled in {recycling.event_id}: never collected per the bundle")
                ok = False
            for lot_uri, grams in made:
                record = prove(lot_uri, depth + 1, walking)
                parts.append((record.material_code, grams))
        try:
            entries = balance(parts, [(code, grams) for _, grams, code in recycling.outputs])
        except RecoveryError as exc:
            result.problems.append(f"recycling {recycling.event_id}: {exc}")
            return False
        for entry in entries:
            if entry.excess:
                result.problems.append(
                    f"recycling {recycling.event_id} recovers {entry.requested:,} g of {entry.material} from items "
                    f"that held {entry.available:,} g of what recycles into it"
                )
                ok = False
        return ok

    records = {lot_uri: prove(lot_uri, 1, frozenset()) for lot_uri, _ in composition}
    try:
        result.share_bps = recycled_share_bps(Composition.of(composition), records)
    except InvalidComposition as exc:
        result.problems.append(f"{item}: {exc}")
    return result


def stated_share(versions: Sequence[Mapping[str, Any]]) -> float | None:
    """The recycled content the newest passport version in a bundle states, 0..1: its content's ``recycled`` (what
    the page shows), or ``circ:recycledContent`` (the JSON-LD's name for it)."""
    newest: tuple[int, float] | None = None
    for entry in versions:
        if entry.get("kind") != "passport":
            continue
        try:
            document = json.loads(str(entry.get("document", "")))
            content = document["content"]
            value = content["recycled"] if "recycled" in content else content["circ:recycledContent"]
            number = int(entry.get("number", document.get("number", 0)))
        except (ValueError, KeyError, TypeError):
            continue
        if isinstance(value, int | float) and (newest is None or number > newest[0]):
            newest = (number, float(value))
    return newest[1] if newest is not None else None


__all__ = ["ContentCheck", "Facts", "LotFact", "Recycling", "check_recycled_content", "stated_share"]
