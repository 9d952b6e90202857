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


__all__ = [
    "InvalidComposition",
    "MaterialsError",
    "UnknownMaterial",
]
