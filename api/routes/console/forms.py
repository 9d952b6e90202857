"""Reading the console's forms into the write API's own input schemas, and their errors back onto the fields."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from .web import validation_errors

M = TypeVar("M", bound=BaseModel)


def text_fields(form: FormData) -> dict[str, str]:
    """The form's text fields (not files), stripped; a NUL character (no database stores it) is dropped."""
    return {key: value.replace("\x00", "").strip() for key, value in form.items() if isinstance(value, str)}


def aliases(model: type[BaseModel]) -> dict[str, str]:
    """The model's JSON names (camelCase) → its field names (the forms' names)."""
    return {(info.alias or name): name for name, info in model.model_fields.items()}


def parse(model: type[M], data: Mapping[str, Any]) -> tuple[M | None, dict[str, str]]:
    """`data` as `model` (what the write API would accept), or the errors by form field."""
    try:
        return model.model_validate(dict(data)), {}
    except ValidationError as exc:
        return None, validation_errors(exc, aliases(model))


def optional(value: str | None) -> str | None:
    return value if value else None


def percent_to_bps(value: str) -> int | str:
    """A percentage typed in a form ("30", "12.5", "12,5") as basis points; the text itself when it is none."""
    try:
        bps = Decimal(value.replace(",", ".").removesuffix("%").strip() or "0") * 100
    except InvalidOperation:
        return value
    return int(bps) if bps == bps.to_integral_value() else value


def lines(value: str) -> list[str]:
    """One entry per line (or separated by spaces or |), empty ones dropped."""
    return [part for part in value.replace("|", " ").split() if part]


__all__ = ["aliases", "lines", "optional", "parse", "percent_to_bps", "text_fields"]
