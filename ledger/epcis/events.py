"""EPCIS 2.0 events for every supply-chain action, as JSON-LD dicts valid against the EPCIS 2.0 JSON schema.

Each action's bizStep and disposition come from the lifecycle table, ``ledger.lifecycle.LIFECYCLE`` (its docstring
has them side by side); ours extend CBV under ``https://ns.circular-ledger.org/voc/`` (prefix ``circ``). Every
lifecycle event also carries ``circ:lifecycle`` (the action's name): CBV uses one vocabulary for a sale and a resale,
and for a repair and a refurbishment. Masses are in grams, UN/CEFACT unit code ``GRM``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from materials import FULL_SHARE_BPS

from ..lifecycle import BIZSTEP_IN_USE, BIZSTEP_RECYCLING, EXT_NS, LIFECYCLE, Action, Lifecycle

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
CONTEXT: list[Any] = [EPCIS_CONTEXT, {"circ": EXT_NS}]
GRAM = "GRM"
_LOT, _MANUFACTURED, _RECYCLED = (LIFECYCLE[a] for a in (Action.LOT, Action.MANUFACTURED, Action.RECYCLED))


def _time(at: datetime | None) -> tuple[str, str]:
    """eventTime in UTC with milliseconds, and its zone offset (we record events in UTC)."""
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z", "+00:00"


def _base(kind: str, at: datetime | None, read_point: str | None) -> dict[str, Any]:
    event_time, offset = _time(at)
    # Each event carries its own @context, so that it stays self-contained (hashable, verifiable) outside a document.
    event: dict[str, Any] = {
        "@context": CONTEXT,
        "type": kind,
        "eventTime": event_time,
        "eventTimeZoneOffset": offset,
    }
    if read_point:
        event["readPoint"] = {"id": read_point}
    return event


def lot_registered(
    lot_uri: str,
    material_code: str,
    mass_grams: int,
    recycled_share_bps: int = 0,
    *,
    certificates: Sequence[str] = (),
    origin: str | None = None,
    at: datetime | None = None,
    read_point: str | None = None,
) -> dict[str, Any]:
    """A material lot commissioned: `mass_grams` of `material_code`, with its recycled share and certificates."""
    event = _base("ObjectEvent", at, read_point)
    event.update(
        {
            "action": "ADD",
            "quantityList": [{"epcClass": lot_uri, "quantity": mass_grams, "uom": GRAM}],
            "bizStep": _LOT.biz_step,
            "disposition": _LOT.disposition,
            "ilmd": {
                "circ:materialCode": material_code,
                "circ:massGrams": mass_grams,
                "circ:recycledShareBps": recycled_share_bps,
                **({"circ:origin": origin} if origin else {}),
            },
        }
    )
    if certificates:
        event["certificationInfo"] = list(certificates)
    return event


def items_manufactured(
    item_uris: Sequence[str],
    inputs: Sequence[tuple[str, int]],
    *,
    at: datetime | None = None,
    read_point: str | None = None,
) -> dict[str, Any]:
    """Items made from lots: `inputs` are (lot URI, total grams drawn for all the items)."""
    event = _base("TransformationEvent", at, read_point)
    event.update(
        {
            "inputQuantityList": [{"epcClass": lot, "quantity": grams, "uom": GRAM} for lot, grams in inputs],
            "outputEPCList": list(item_uris),
            "bizStep": _MANUFACTURED.biz_step,
            "disposition": _MANUFACTURED.disposition,
        }
    )
    return event


def lifecycle(
    action: Lifecycle, item_uris: Sequence[str], *, at: datetime | None = None, read_point: str | None = None
) -> dict[str, Any]:
    """Sold, in use, returned, collected, repaired, refurbished, resold or disposed."""
    name = Lifecycle(action)
    row = LIFECYCLE[Action(name)]
    event = _base(row.event_type, at, read_point)
    event.update(
        {"epcList": list(item_uris), "action": "OBSERVE", "bizStep": row.biz_step, "disposition": row.disposition}
    )
    # CBV gives a first sale and a resale (or a repair and a refurbishment) the same vocabulary: our extension
    # field names the action, so the two are different events with different hashes.
    event["circ:lifecycle"] = name.value
    return event


def items_recycled(
    item_uris: Sequence[str],
    recovered_lot_uri: str,
    mass_grams: int,
    material_code: str,
    *,
    at: datetime | None = None,
    read_point: str | None = None,
) -> dict[str, Any]:
    """Items recycled into a recovered-material lot of `mass_grams` (100% recycled)."""
    event = _base("TransformationEvent", at, read_point)
    event.update(
        {
            "inputEPCList": list(item_uris),
            "outputQuantityList": [{"epcClass": recovered_lot_uri, "quantity": mass_grams, "uom": GRAM}],
            "bizStep": _RECYCLED.biz_step,
            "disposition": _RECYCLED.disposition,
            "ilmd": {
                "circ:materialCode": material_code,
                "circ:massGrams": mass_grams,
                "circ:recycledShareBps": FULL_SHARE_BPS,
            },
        }
    )
    return event


def items_recycled_into(
    item_uris: Sequence[str],
    outputs: Sequence[tuple[str, int, str]],
    *,
    at: datetime | None = None,
    read_point: str | None = None,
) -> dict[str, Any]:
    """Items recycled into recovered lots, one per material: `outputs` are (lot URI, grams, material code). One
    output is :func:`items_recycled`'s event exactly; several are one TransformationEvent with every lot in its
    ``outputQuantityList`` and each lot's material and grams in the ILMD's ``circ:recoveredLots`` (ILMD applies to
    every output of an event, so a per-lot field of its own would be ambiguous)."""
    if len(outputs) == 1:
        uri, grams, code = outputs[0]
        return items_recycled(item_uris, uri, grams, code, at=at, read_point=read_point)
    event = _base("TransformationEvent", at, read_point)
    event.update(
        {
            "inputEPCList": list(item_uris),
            "outputQuantityList": [{"epcClass": uri, "quantity": grams, "uom": GRAM} for uri, grams, _ in outputs],
            "bizStep": _RECYCLED.biz_step,
            "disposition": _RECYCLED.disposition,
            "ilmd": {
                "circ:recycledShareBps": FULL_SHARE_BPS,
                "circ:recoveredLots": [
                    {"epcClass": uri, "circ:materialCode": code, "circ:massGrams": grams}
                    for uri, grams, code in outputs
                ],
            },
        }
    )
    return event


def epcis_document(events: Sequence[dict[str, Any]], *, created: datetime | None = None) -> dict[str, Any]:
    """An EPCISDocument holding `events`."""
    creation, _ = _time(created)
    return {
        "@context": CONTEXT,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": creation,
        "epcisBody": {"eventList": list(events)},
    }


__all__ = [
    "BIZSTEP_IN_USE",
    "BIZSTEP_RECYCLING",
    "CONTEXT",
    "EXT_NS",
    "Lifecycle",
    "epcis_document",
    "items_manufactured",
    "items_recycled",
    "items_recycled_into",
    "lifecycle",
    "lot_registered",
]
