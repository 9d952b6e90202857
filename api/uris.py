"""The URIs that name items and lots in events: GS1 Digital Links at the configured resolver.

Lots without a GS1 key (material lots keyed by material code, recovered lots) are named
``<resolver>/lots/<lot id>``.
"""

from __future__ import annotations

from typing import Any

from ledger.ids import digital_link


def item_uri(resolver_base_url: str, gtin: str, serial: str) -> str:
    return digital_link(resolver_base_url, gtin, serial)


def lot_uri(resolver_base_url: str, lot_id: str, gtin: str | None = None, lot_number: str | None = None) -> str:
    if gtin is not None and lot_number is not None:
        return digital_link(resolver_base_url, gtin, lot=lot_number)
    return f"{resolver_base_url.rstrip('/')}/lots/{lot_id.lower()}"


def hex32(value: bytes) -> str:
    return "0x" + value.hex()


def unhex32(value: str) -> bytes:
    raw = bytes.fromhex(value.removeprefix("0x"))
    if len(raw) != 32:
        raise ValueError("expected 32 bytes")
    return raw


def event_id_from(request: Any, path_value: str) -> str:
    """An event id from a path, also when the client left its ``?ver=CBV2.0`` unencoded (it then arrives as the
    query string)."""
    query = request.url.query
    if path_value.startswith("ni:///") and "?" not in path_value and query.startswith("ver="):
        return f"{path_value}?{query}"
    return path_value


__all__ = ["event_id_from", "hex32", "item_uri", "lot_uri", "unhex32"]
