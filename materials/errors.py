"""The exception tree of the material domain: every error derives from :class:`MaterialsError`."""

from __future__ import annotations


class MaterialsError(Exception):
    """Root of every error raised by :mod:`materials`."""


class UnknownMaterial(MaterialsError, KeyError):
    """No material in the catalogue has this code."""

    def __str__(self) -> str:  # KeyError's default repr-quotes its argument
        return str(self.args[0]) if self.args else "unknown material"


class InvalidComposition(MaterialsError, ValueError):
    """A composition with no parts, a part of zero or negative grams, or a lot listed twice."""


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


__all__ = [
    "AlreadyRecycled",
    "InvalidComposition",
    "MassBalanceExceeded",
    "MaterialsError",
    "RecoveredMassExceeded",
    "UnknownMaterial",
]
