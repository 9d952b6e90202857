"""A brand's material flow, in grams: from virgin material and recycled content through the items it made, their
fates, recycling into recovered material, and that material's use in new items; and its recycled content, month by
month.

Every figure follows this module's accounting (:mod:`materials.accounting`), the one the passports use: an item's
recycled grams are :func:`~materials.accounting.recycled_grams` of its composition (each part's grams times its
lot's recycled share, rounded down per part). Recovered material is attributed to the brand in proportion to the
mass its items brought into each recovered lot (rounded down), and so is that lot's use in new items.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .accounting import Composition, LotRecord, recycled_grams, share_bps

# What became of the items: the fates a caller maps its item states onto.
IN_USE, RETURNED, RECYCLED, DISPOSED = "in circulation", "returned or collected", "recycled", "disposed of"
FATES = (IN_USE, RETURNED, RECYCLED, DISPOSED)

VIRGIN = "virgin material"
RECYCLED_CONTENT = "recycled content"
MADE = "items made"
RECOVERED = "recovered material"
LOSS = "recycling loss"
REUSED = "used in new items"
UNUSED = "recovered, not yet used"
NODES = (VIRGIN, RECYCLED_CONTENT, MADE, *FATES, RECOVERED, LOSS, REUSED, UNUSED)


@dataclass(frozen=True)
class FlowItems:
    """`count` items of one composition, fate and month (a run's items share their composition)."""

    composition: Composition
    fate: str
    month: str  # YYYY-MM
    count: int = 1
    recovered_into: str | None = None  # the recovered lot they were recycled into

    def __post_init__(self) -> None:
        if self.fate not in FATES:
            raise ValueError(f"a fate is one of {', '.join(FATES)}: {self.fate!r}")
        if self.count < 1:
            raise ValueError("count is at least 1")


@dataclass(frozen=True)
class FlowLink:
    source: str
    target: str
    grams: int


@dataclass(frozen=True)
class MonthShare:
    month: str
    grams: int
    recycled_grams: int

    @property
    def share_bps(self) -> int:
        return share_bps(self.recycled_grams, self.grams)


@dataclass(frozen=True)
class MaterialFlow:
    links: tuple[FlowLink, ...]
    months: tuple[MonthShare, ...]

    def grams(self, source: str, target: str) -> int:
        return sum(link.grams for link in self.links if link.source == source and link.target == target)

    def into(self, node: str) -> int:
        return sum(link.grams for link in self.links if link.target == node)

    @property
    def nodes(self) -> tuple[str, ...]:
        used = {link.source for link in self.links} | {link.target for link in self.links}
        return tuple(node for node in NODES if node in used)


def material_flow(
    items: Iterable[FlowItems],
    lots: Mapping[str, LotRecord],
    *,
    recovered_input_grams: Mapping[str, int],
    recovered_drawn_grams: Mapping[str, int],
) -> MaterialFlow:
    """The flow of a brand's `items` (their lots in `lots`).

    `recovered_input_grams`: for each recovered lot the brand's items went into, the mass of *all* items recycled
    into it (the brand's share of the lot is its items' mass over that); `recovered_drawn_grams`: the grams drawn
    from each such lot into new items (by anyone). Links of zero grams are left out.
    """
    totals: dict[tuple[str, str], int] = {}

    def add(source: str, target: str, grams: int) -> None:
        if grams > 0:
            totals[(source, target)] = totals.get((source, target), 0) + grams

    months: dict[str, list[int]] = {}
    brought: dict[str, int] = {}  # recovered lot -> mass of the brand's items recycled into it
    for group in items:
        mass = group.composition.mass_grams * group.count
        recycled = recycled_grams(group.composition, lots) * group.count
        add(VIRGIN, MADE, mass - recycled)
        add(RECYCLED_CONTENT, MADE, recycled)
        add(MADE, group.fate, mass)
        month = months.setdefault(group.month, [0, 0])
        month[0] += mass
        month[1] += recycled
        if group.fate == RECYCLED and group.recovered_into is not None:
            brought[group.recovered_into] = brought.get(group.recovered_into, 0) + mass
    recycled_mass = sum(grams for (_, target), grams in totals.items() if target == RECYCLED)
    recovered_total = 0
    for lot_id, mass in brought.items():
        lot = lots.get(lot_id)
        inputs = recovered_input_grams.get(lot_id, 0)
        if lot is None or inputs <= 0:
            continue
        share = min(mass, inputs)
        recovered = lot.mass_grams * share // inputs
        recovered_total += recovered
        drawn = min(recovered_drawn_grams.get(lot_id, 0), lot.mass_grams) * share // inputs
        add(RECOVERED, REUSED, drawn)
        add(RECOVERED, UNUSED, recovered - drawn)
    add(RECYCLED, RECOVERED, recovered_total)
    add(RECYCLED, LOSS, recycled_mass - recovered_total)
    links = tuple(FlowLink(source, target, grams) for (source, target), grams in totals.items())
    shares = tuple(MonthShare(month, grams, recycled) for month, (grams, recycled) in sorted(months.items()))
    return MaterialFlow(links, shares)


__all__ = [
    "DISPOSED",
    "FATES",
    "IN_USE",
    "LOSS",
    "MADE",
    "NODES",
    "RECOVERED",
    "RECYCLED",
    "RECYCLED_CONTENT",
    "RETURNED",
    "REUSED",
    "UNUSED",
    "VIRGIN",
    "FlowItems",
    "FlowLink",
    "MaterialFlow",
    "MonthShare",
    "material_flow",
]
