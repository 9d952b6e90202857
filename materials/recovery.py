"""Per-material mass balance of recycling: what a set of items can yield, material by material.

Recycling turns collected items into recovered lots, one per material: cotton fibre into recycled cotton, polyester
into recycled polyester. A recovered lot of material M never holds more grams of M than the items held of the
materials that recycle into M, by their compositions (a part of recycled cotton, from an earlier generation, counts
as cotton again: recycled cotton recycles into recycled cotton). Grams of a material that recycles into nothing
(elastane, silk) yield nothing. So ten T-shirts of 1,500 g cotton and 500 g polyester yield at most 1,500 g of
recycled cotton and 500 g of recycled polyester: an 1,800 g lot of cotton from them is refused, a split into
1,400 g + 450 g is not.

A recovered lot may be named by the recovered material's code (``rCO``) or by the virgin one it recycles (``CO``):
both mean recycled cotton. The contracts check what the chain holds (the lots together weigh at most the items, each
material once); this module checks the rest, before the transaction, and the audit checks records written before
the rule existed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .catalogue import material, recovered_material
from .errors import MaterialsError, UnknownMaterial


class RecoveryError(MaterialsError, ValueError):
    """Recovered lots that the recycled items cannot yield."""


class NotRecoverable(RecoveryError):
    """A recovered lot named by a material that recycling does not yield (a code outside the catalogue, or of a
    material that is not recyclable)."""

    def __init__(self, code: str, reason: str) -> None:
        self.code = code
        super().__init__(f"no recovered lot of {code}: {reason}")


class MaterialMassExceeded(RecoveryError):
    """Recovered lots of `material` holding `requested` grams from items that held only `available` grams of what
    recycles into it."""

    def __init__(self, material: str, requested: int, available: int, sources: Sequence[str]) -> None:
        self.material, self.requested, self.available, self.sources = material, requested, available, tuple(sources)
        name = recovered_material(material).name if _known(material) else material
        held = ", ".join(sources) or "none of it"
        super().__init__(
            f"{requested:,} g of {name} ({material}) from items that held {available:,} g of what recycles into it "
            f"({held})"
        )


def _known(code: str) -> bool:
    try:
        material(code)
    except UnknownMaterial:
        return False
    return True


def recovered_code(code: str) -> str:
    """The recovered material a lot of `code` is, or recycles into: ``rCO`` for ``CO``, ``LI`` and ``rCO``. A code
    outside the catalogue, or of a material recycling does not recover, raises :class:`NotRecoverable`."""
    try:
        found = material(code)
    except UnknownMaterial:
        raise NotRecoverable(code, "it is not in the catalogue") from None
    if found.is_recovered:
        return found.code
    try:
        return recovered_material(code).code
    except UnknownMaterial:
        raise NotRecoverable(code, f"{found.name} is not recyclable") from None


def _yield_of(code: str) -> str | None:
    """What grams of `code` in an item recycle into; None for a material recycling does not recover (or unknown)."""
    try:
        return recovered_code(code)
    except NotRecoverable:
        return None


@dataclass(frozen=True)
class MaterialBalance:
    """Grams in and out of one recycling, per recovered material: `available` of what recycles into it (and which
    materials those grams were), `requested` in recovered lots."""

    material: str
    available: int
    requested: int
    sources: tuple[str, ...]

    @property
    def excess(self) -> int:
        return max(self.requested - self.available, 0)


def recoverable(parts: Iterable[tuple[str, int]]) -> dict[str, dict[str, int]]:
    """Recovered material → {input material → grams} of the items' parts, given as (material code, grams) pairs."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for code, grams in parts:
        target = _yield_of(code)
        if target is not None:
            out[target][code] += int(grams)
    return {target: dict(by_source) for target, by_source in out.items()}


def balance(parts: Iterable[tuple[str, int]], outputs: Iterable[tuple[str, int]]) -> list[MaterialBalance]:
    """Grams in and out per recovered material: `parts` are the recycled items' parts as (material code, grams),
    `outputs` the recovered lots as (material code, grams). One entry per recovered material an output names, in
    code order."""
    available = recoverable(parts)
    requested: dict[str, int] = defaultdict(int)
    for code, grams in outputs:
        requested[recovered_code(code)] += int(grams)
    return [
        MaterialBalance(
            target,
            sum(available.get(target, {}).values()),
            requested[target],
            tuple(f"{code} {grams:,} g" for code, grams in sorted(available.get(target, {}).items())),
        )
        for target in sorted(requested)
    ]


def check_recovery(parts: Iterable[tuple[str, int]], outputs: Sequence[tuple[str, int]]) -> list[MaterialBalance]:
    """:func:`balance`, refusing the first material whose recovered lots exceed what the items held of it
    (:class:`MaterialMassExceeded`) or a lot of a material recycling does not yield (:class:`NotRecoverable`)."""
    result = balance(parts, outputs)
    for entry in result:
        if entry.excess:
            raise MaterialMassExceeded(entry.material, entry.requested, entry.available, entry.sources)
    return result


def item_parts(
    compositions: Iterable[Sequence[tuple[str, int]]], material_of: Mapping[str, str]
) -> list[tuple[str, int]]:
    """The items' parts as (material code, grams), from their compositions as (lot id, grams) and each lot's code;
    a part of a lot missing from `material_of` is left out (it proves no material)."""
    return [
        (material_of[lot_id], int(grams)) for parts in compositions for lot_id, grams in parts if lot_id in material_of
    ]


__all__ = [
    "MaterialBalance",
    "MaterialMassExceeded",
    "NotRecoverable",
    "RecoveryError",
    "balance",
    "check_recovery",
    "item_parts",
    "recoverable",
    "recovered_code",
]
