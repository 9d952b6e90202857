"""The catalogue of material types, kept as data (``catalogue.json``) and validated on load."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .errors import UnknownMaterial


class Material(BaseModel):
    """One material type: its code, name, family, standard, density, recyclability and what recycling yields."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    code: str = Field(min_length=1, max_length=32)
    name: str
    family: str
    standard: str
    density: float | None = Field(None, gt=0, description="g/cm3")
    recyclable: bool
    recovered: str | None = Field(None, description="The code of the material that recycling yields.")
    is_recovered: bool = Field(False, alias="isRecovered")
    resin_code: int | None = Field(None, alias="resinCode", ge=1, le=7)
    cas: str | None = Field(None, pattern=r"^\d{2,7}-\d{2}-\d$", description="CAS Registry Number, where one names it.")

    @field_validator("cas")
    @classmethod
    def _cas_check_digit(cls, value: str | None) -> str | None:
        """A CAS number's last digit: the sum of the other digits, each times its place from the right, mod 10."""
        if value is not None:
            digits = value.replace("-", "")[:-1]
            if sum(int(d) * i for i, d in enumerate(reversed(digits), start=1)) % 10 != int(value[-1]):
                raise ValueError(f"CAS number {value} has a wrong check digit")
        return value


@cache
def catalogue() -> dict[str, Material]:
    """Every material by code. Recycling targets must exist and be recovered materials themselves."""
    data = json.loads(resources.files(__package__).joinpath("catalogue.json").read_text())
    materials = {m.code: m for m in (Material.model_validate(entry) for entry in data["materials"])}
    for material in materials.values():
        if material.recovered is not None and not materials[material.recovered].is_recovered:
            raise ValueError(f"{material.code} recycles into {material.recovered}, which is not a recovered material")
    return materials


def material(code: str) -> Material:
    try:
        return catalogue()[code]
    except KeyError:
        raise UnknownMaterial(f"no material with code {code!r} in the catalogue") from None


def recovered_material(code: str) -> Material:
    """What recycling a material yields; UnknownMaterial when it is not recyclable."""
    source = material(code)
    if not source.recyclable or source.recovered is None:
        raise UnknownMaterial(f"{source.name} ({code}) is not recyclable")
    return material(source.recovered)


def material_label(code: str, *, recovered: bool = False) -> str:
    """How a lot of `code` is named to people. A recovered lot is named as the recovered material even when its code
    is a virgin one (recovered ``CO`` reads "Recycled cotton", never "Cotton"); an unknown code is shown as it is."""
    try:
        found = material(code)
    except UnknownMaterial:
        return code
    if recovered and not found.is_recovered:
        try:
            return recovered_material(code).name
        except UnknownMaterial:
            return f"Recycled {found.name[0].lower()}{found.name[1:]}"
    return found.name


def material_code_bytes32(code: str) -> bytes:
    """The on-chain form of a material code: ASCII, left-aligned, zero-padded to 32 bytes."""
    raw = code.encode("ascii")
    if not raw or len(raw) > 32:
        raise UnknownMaterial(f"a material code is 1 to 32 ASCII characters: {code!r}")
    return raw.ljust(32, b"\x00")


def material_code_from_bytes32(raw: bytes) -> str:
    return bytes(raw).rstrip(b"\x00").decode("ascii", errors="replace")


__all__ = [
    "Material",
    "catalogue",
    "material",
    "material_code_bytes32",
    "material_code_from_bytes32",
    "material_label",
    "recovered_material",
]
