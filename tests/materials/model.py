"""An in-memory model of the mass balance the contracts enforce: lots, items made from them, recycling into recovered
lots. The property tests of ``test_materials.py`` hold the rules against it (grams are never created or destroyed);
the production code has no use for it, since the chain is the ledger of record (``contracts/MaterialLots.sol``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from materials import (
    FULL_SHARE_BPS,
    Composition,
    InvalidComposition,
    LotRecord,
    MaterialsError,
    material,
    recovered_material,
)


class MassBalanceExceeded(MaterialsError, ValueError):
    """Taking `requested` grams from a lot that has only `available` left."""

    def __init__(self, lot_id: str, requested: int, available: int) -> None:
        self.lot_id, self.requested, self.available = lot_id, requested, available
        super().__init__(f"lot {lot_id}: {requested} g requested, {available} g available")


class RecoveredMassExceeded(MaterialsError, ValueError):
    """A recovered lot heavier than the items it is recovered from."""

    def __init__(self, requested: int, recycled: int) -> None:
        self.requested, self.recycled = requested, recycled
        super().__init__(f"a recovered lot of {requested} g exceeds the {recycled} g of the items recycled")


class AlreadyRecycled(MaterialsError, ValueError):
    """An item recycled a second time."""


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
