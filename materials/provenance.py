"""Provenance: what an item (or a lot) is made of, generation by generation, back through every recycling.

Generation 1 holds the lots the item was made of. Generation n + 1 holds the items recycled into generation n's
recovered lots, and the lots those items were made of (with how many of them used each lot, and how many grams they
drew from it). A lot already walked is shown again where it is used but never walked twice, so a cycle cannot loop.

The walk asks its :class:`ProvenanceSource` one question per generation for the items recycled into a *set* of
recovered lots, and one for a set of lots' records: the API answers each with one set-based query. One call per item
and per lot was 20 to 40 times slower at the third generation (docs/performance.md, the trace).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias

from .accounting import LotRecord

# An item recycled into a recovered lot: its identity (whatever the source names items by) and its composition as
# ``(lot id, grams)`` pairs. A plain pair: a third-generation walk reads about a thousand of them.
Ancestor: TypeAlias = tuple[Hashable, Sequence[tuple[str, int]]]


@dataclass(frozen=True)
class LotUse:
    """A lot in a generation: `grams` drawn from it by that generation's items, `items` of them using it (both None
    where the walk starts, unless the start says how many grams)."""

    lot_id: str
    grams: int | None
    items: int | None


@dataclass(frozen=True)
class Generation:
    """Generation `index`: its lots, and the items whose recycling yielded the previous generation's recovered lots
    (none for generation 1)."""

    index: int
    lots: tuple[LotUse, ...]
    source_items: tuple[Ancestor, ...] = ()


class ProvenanceSource(Protocol):
    """What the walk asks, a set at a time."""

    def ancestors(self, recovered_lots: Sequence[str]) -> Sequence[Ancestor]:
        """The items recycled into any of `recovered_lots`."""
        ...

    def lots(self, lot_ids: Sequence[str]) -> Mapping[str, LotRecord]:
        """The records of those of `lot_ids` that exist."""
        ...


def provenance(
    source: ProvenanceSource, start: Sequence[tuple[LotRecord, int | None]], max_generations: int = 20
) -> list[Generation]:
    """Walk back from `start` (the lots of an item with its grams of each, or one lot with None) for at most
    `max_generations` generations. A lot is recovered, and walked, when it has source items."""
    generations = [Generation(1, tuple(LotUse(lot.lot_id, grams, None) for lot, grams in start))]
    seen = {lot.lot_id for lot, _ in start}
    frontier = [lot.lot_id for lot, _ in start if lot.source_items]
    while frontier and len(generations) < max_generations:
        ancestors = source.ancestors(sorted(frontier))
        if not ancestors:
            break
        uses: dict[str, int] = defaultdict(int)
        grams: dict[str, int] = defaultdict(int)
        for _, parts in ancestors:
            for lot_id, part_grams in parts:
                uses[lot_id] += 1
                grams[lot_id] += part_grams
        records = source.lots(list(uses))
        lot_ids = sorted(records)
        generations.append(
            Generation(
                len(generations) + 1,
                tuple(LotUse(lot_id, grams[lot_id], uses[lot_id]) for lot_id in lot_ids),
                tuple(ancestors),
            )
        )
        frontier = [lot_id for lot_id in lot_ids if records[lot_id].source_items and lot_id not in seen]
        seen.update(lot_ids)
    return generations


__all__ = ["Ancestor", "Generation", "LotUse", "ProvenanceSource", "provenance"]
