"""Composition arithmetic, mass balance and recycled-content accounting, in integer grams.

Method: the **mass balance** chain-of-custody model of ISO 22095:2020 ("Chain of custody — General terminology and
models", clause 5.4), as used for recycled content by ISCC PLUS and in the EU's recycled-content rules: material
is tracked by mass through every step, a lot can never supply more grams than it holds, and a characteristic
(here: being recycled) is allocated to outputs in proportion to the inputs that carry it.

Allocation rule. Each lot carries a recycled share in basis points (0..10,000): 10,000 for a lot recovered from
items (post-consumer), a declared share for pre-consumer content of a virgin lot. An item's recycled grams are the
sum over its parts of ``grams * share // 10,000``: rounded down per part, so a claim never exceeds the part's grams
and is never rounded up. Recycled content propagates through any number of generations because recycling yields a
recovered lot, 100% recycled, from which the next generation draws its grams.

The contracts enforce the same rules on-chain; the ledger and the API ask this module and repeat none of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .catalogue import material, recovered_material
from .errors import AlreadyRecycled, InvalidComposition, MassBalanceExceeded, RecoveredMassExceeded

FULL_SHARE_BPS = 10_000


@dataclass(frozen=True)
class Part:
    """`grams` of lot `lot_id`, in an item's composition."""

    lot_id: str
    grams: int


@dataclass(frozen=True)
class Composition:
    """An item's parts: distinct lots, each a positive whole number of grams."""

    parts: tuple[Part, ...]

    def __post_init__(self) -> None:
        if not self.parts:
            raise InvalidComposition("a composition needs at least one part")
        seen: set[str] = set()
        for part in self.parts:
            if not isinstance(part.grams, int) or part.grams <= 0:
                raise InvalidComposition(f"lot {part.lot_id}: grams must be a positive integer, got {part.grams!r}")
            if part.lot_id in seen:
                raise InvalidComposition(f"lot {part.lot_id} is listed twice")
            seen.add(part.lot_id)

    @classmethod
    def of(cls, parts: Iterable[tuple[str, int]]) -> Composition:
        return cls(tuple(Part(lot, grams) for lot, grams in parts))

    @property
    def mass_grams(self) -> int:
        return sum(p.grams for p in self.parts)

    def times(self, copies: int) -> Composition:
        """What `copies` identical items draw from each lot (a run)."""
        if copies <= 0:
            raise InvalidComposition("a run holds at least one item")
        return Composition(tuple(Part(p.lot_id, p.grams * copies) for p in self.parts))


@dataclass(frozen=True)
class LotRecord:
    """What accounting needs of a lot."""

    lot_id: str
    material_code: str
    mass_grams: int
    recycled_share_bps: int
    source_items: tuple[str, ...] = ()


def recycled_grams(composition: Composition, lots: Mapping[str, LotRecord]) -> int:
    """Grams of the item that are recycled, by the proportional rule above (rounded down per part)."""
    return sum(p.grams * lots[p.lot_id].recycled_share_bps // FULL_SHARE_BPS for p in composition.parts)


def recycled_share_bps(composition: Composition, lots: Mapping[str, LotRecord]) -> int:
    """The item's recycled content in basis points (0..10,000), rounded down."""
    return recycled_grams(composition, lots) * FULL_SHARE_BPS // composition.mass_grams


def by_material(composition: Composition, lots: Mapping[str, LotRecord]) -> dict[str, int]:
    """Grams per material code."""
    totals: dict[str, int] = {}
    for part in composition.parts:
        code = lots[part.lot_id].material_code
        totals[code] = totals.get(code, 0) + part.grams
    return totals


@dataclass
class _LotState:
    record: LotRecord
    allocated: int = 0

    @property
    def available(self) -> int:
        return self.record.mass_grams - self.allocated


@dataclass
class MassBalance:
    """An in-memory ledger of lots and items that refuses anything creating or destroying grams."""

    lots: dict[str, _LotState] = field(default_factory=dict)
    items: dict[str, Composition] = field(default_factory=dict)
    recycled: dict[str, str] = field(default_factory=dict)  # item → the recovered lot it went into

    def register_lot(self, lot_id: str, material_code: str, mass_grams: int, recycled_share_bps: int = 0) -> LotRecord:
        material(material_code)
        if mass_grams <= 0:
            raise InvalidComposition("a lot's mass must be positive")
        if not 0 <= recycled_share_bps <= FULL_SHARE_BPS:
            raise InvalidComposition(f"a recycled share is 0..{FULL_SHARE_BPS} bps, got {recycled_share_bps}")
        if lot_id in self.lots:
            raise InvalidComposition(f"lot {lot_id} exists already")
        record = LotRecord(lot_id, material_code, mass_grams, recycled_share_bps)
        self.lots[lot_id] = _LotState(record)
        return record

    def available(self, lot_id: str) -> int:
        return self.lots[lot_id].available

    def make(self, item_ids: Sequence[str], composition: Composition) -> None:
        """Make `item_ids`, each of `composition`: all of it is drawn, or nothing (checked before any change)."""
        if not item_ids or len(set(item_ids)) != len(item_ids) or any(i in self.items for i in item_ids):
            raise InvalidComposition("items must be new and distinct")
        needed = composition.times(len(item_ids))
        for part in needed.parts:
            state = self.lots.get(part.lot_id)
            if state is None:
                raise InvalidComposition(f"no lot {part.lot_id}")
            if part.grams > state.available:
                raise MassBalanceExceeded(part.lot_id, part.grams, state.available)
        for part in needed.parts:
            self.lots[part.lot_id].allocated += part.grams
        for item in item_ids:
            self.items[item] = composition

    def recycle(self, item_ids: Sequence[str], lot_id: str, mass_grams: int) -> LotRecord:
        """Recycle items into a recovered lot (100% recycled) no heavier than they are."""
        if not item_ids or len(set(item_ids)) != len(item_ids):
            raise InvalidComposition("recycle at least one item, each once")
        for item in item_ids:
            if item not in self.items:
                raise InvalidComposition(f"no item {item}")
            if item in self.recycled:
                raise AlreadyRecycled(f"item {item} was recycled into {self.recycled[item]}")
        recycled_mass = sum(self.items[i].mass_grams for i in item_ids)
        if not 0 < mass_grams <= recycled_mass:
            raise RecoveredMassExceeded(mass_grams, recycled_mass)
        codes = {self.lots[p.lot_id].record.material_code for i in item_ids for p in self.items[i].parts}
        target = recovered_material(max(codes, key=lambda c: self._grams_of(item_ids, c))).code
        if lot_id in self.lots:
            raise InvalidComposition(f"lot {lot_id} exists already")
        record = LotRecord(lot_id, target, mass_grams, FULL_SHARE_BPS, tuple(item_ids))
        self.lots[lot_id] = _LotState(record)
        for item in item_ids:
            self.recycled[item] = lot_id
        return record

    def _grams_of(self, item_ids: Sequence[str], code: str) -> int:
        return sum(
            p.grams for i in item_ids for p in self.items[i].parts if self.lots[p.lot_id].record.material_code == code
        )

    def records(self) -> dict[str, LotRecord]:
        return {lot_id: state.record for lot_id, state in self.lots.items()}


def recovery_excess(recovered_grams: int, input_grams: Iterable[int]) -> int:
    """The grams a recovered lot claims beyond the mass of the items recycled into it; 0 when it balances.

    Recycling loses mass (sorting, washing, yield) and never gains any: the rule :meth:`MassBalance.recycle` and the
    contracts enforce, here as a measure for the audit of records the contracts never saw (captured EPCIS events).
    """
    return max(recovered_grams - sum(input_grams), 0)


class MaterialGraph(Protocol):
    """What a provenance walk needs: one item's composition, one lot's record. The API's passports do not use it:
    they walk their database a generation at a time with set-based queries (``api/passport.py``), since one call
    per item and lot was 20 to 40 times slower at the third generation (docs/performance.md, the trace)."""

    def lot(self, lot_id: str) -> LotRecord | None: ...

    def composition(self, item_id: str) -> Composition | None: ...


@dataclass(frozen=True)
class Generation:
    """Generation n: the lots of the items of generation n (n = 1: the item itself), and the items whose recycling
    yielded the recovered lots among them (which are generation n + 1's items)."""

    index: int
    lots: tuple[str, ...]
    source_items: tuple[str, ...]


def provenance(graph: MaterialGraph, item_id: str, max_generations: int = 20) -> list[Generation]:
    """Walk back generation by generation; each lot and item is visited once, so a cycle cannot loop."""
    generations: list[Generation] = []
    items, seen_items, seen_lots = [item_id], {item_id}, set()
    while items and len(generations) < max_generations:
        lots: list[str] = []
        for item in items:
            composition = graph.composition(item)
            for part in composition.parts if composition else ():
                if part.lot_id not in seen_lots:
                    seen_lots.add(part.lot_id)
                    lots.append(part.lot_id)
        sources: list[str] = []
        for lot_id in lots:
            record = graph.lot(lot_id)
            for source in record.source_items if record else ():
                if source not in seen_items:
                    seen_items.add(source)
                    sources.append(source)
        generations.append(Generation(len(generations) + 1, tuple(lots), tuple(sources)))
        items = sources
    return generations


__all__ = [
    "FULL_SHARE_BPS",
    "Composition",
    "Generation",
    "LotRecord",
    "MassBalance",
    "MaterialGraph",
    "Part",
    "by_material",
    "provenance",
    "recovery_excess",
    "recycled_grams",
    "recycled_share_bps",
]
