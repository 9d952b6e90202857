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

The contracts enforce the mass balance on-chain (a lot never supplies more grams than it holds, a recovered lot is
never heavier than the items recycled into it; ``tests/materials/model.py`` is the in-memory model the property tests
hold these rules against). The ledger and the API ask this module for the arithmetic and repeat none of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .errors import InvalidComposition

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


def share_bps(part_grams: int, total_grams: int) -> int:
    """`part_grams` as a share of `total_grams` in basis points, rounded down (0 of nothing)."""
    return part_grams * FULL_SHARE_BPS // total_grams if total_grams else 0


def bps_to_fraction(bps: int) -> float:
    """A share in basis points as a fraction of 1 (7,300 bps: 0.73), for display."""
    return bps / FULL_SHARE_BPS


def bps_to_percent(bps: int) -> float:
    """A share in basis points in percent (7,350 bps: 73.5), for display."""
    return bps / (FULL_SHARE_BPS // 100)


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


def recovery_excess(recovered_grams: int, input_grams: Iterable[int]) -> int:
    """The grams a recovered lot claims beyond the mass of the items recycled into it; 0 when it balances.

    Recycling loses mass (sorting, washing, yield) and never gains any: the rule the contracts enforce, here as a
    measure for the audit of records the contracts never saw (captured EPCIS events).
    """
    return max(recovered_grams - sum(input_grams), 0)


__all__ = [
    "FULL_SHARE_BPS",
    "Composition",
    "LotRecord",
    "Part",
    "bps_to_fraction",
    "bps_to_percent",
    "by_material",
    "recovery_excess",
    "recycled_grams",
    "recycled_share_bps",
    "share_bps",
]
