"""EPCIS 2.0 events for every supply-chain action, as JSON-LD dicts valid against the EPCIS 2.0 JSON schema.

Vocabulary: CBV 2.0 bizStep and disposition values wherever CBV has one. Where it has none we use our own
namespace, ``https://ns.circular-ledger.org/voc/`` (prefix ``circ``), documented in ``ledger/README.md``:

=============  ===================================  ==========================  =================
action         bizStep                              disposition                 event
=============  ===================================  ==========================  =================
lot            commissioning                        active                      ObjectEvent ADD
manufactured   commissioning                        active                      TransformationEvent
sold, resold   retail_selling                       retail_sold                 ObjectEvent OBSERVE
in use         circ:bizstep-in_use (extension)      active                      ObjectEvent OBSERVE
returned       receiving                            returned                    ObjectEvent OBSERVE
collected      collecting                           non_sellable_other          ObjectEvent OBSERVE
repaired       repairing                            conformant                  ObjectEvent OBSERVE
refurbished    repairing                            sellable_accessible         ObjectEvent OBSERVE
recycled       circ:bizstep-recycling (extension)   active (the recovered lot)  TransformationEvent
disposed       destroying                           disposed                    ObjectEvent OBSERVE
=============  ===================================  ==========================  =================

Every lifecycle event also carries ``circ:lifecycle`` (the action's name): CBV uses one vocabulary for a sale and a
resale, and for a repair and a refurbishment. Masses are in grams, UN/CEFACT unit code ``GRM``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
EXT_NS = "https://ns.circular-ledger.org/voc/"
CONTEXT: list[Any] = [EPCIS_CONTEXT, {"circ": EXT_NS}]
GRAM = "GRM"

BIZSTEP_IN_USE = f"{EXT_NS}bizstep-in_use"
BIZSTEP_RECYCLING = f"{EXT_NS}bizstep-recycling"


class Lifecycle(StrEnum):
    """Lifecycle actions that are plain ObjectEvents on items."""

    SOLD = "sold"
    IN_USE = "in_use"
    RETURNED = "returned"
    COLLECTED = "collected"
    REPAIRED = "repaired"
    REFURBISHED = "refurbished"
    RESOLD = "resold"
    DISPOSED = "disposed"


_LIFECYCLE_VOCAB: dict[Lifecycle, tuple[str, str]] = {
    Lifecycle.SOLD: ("retail_selling", "retail_sold"),
    Lifecycle.IN_USE: (BIZSTEP_IN_USE, "active"),
    Lifecycle.RETURNED: ("receiving", "returned"),
    Lifecycle.COLLECTED: ("collecting", "non_sellable_other"),
    Lifecycle.REPAIRED: ("repairing", "conformant"),
    Lifecycle.REFURBISHED: ("repairing", "sellable_accessible"),
    Lifecycle.RESOLD: ("retail_selling", "retail_sold"),
    Lifecycle.DISPOSED: ("destroying", "disposed"),
}


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
            "bizStep": "commissioning",
            "disposition": "active",
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
            "bizStep": "commissioning",
            "disposition": "active",
        }
    )
    return event


def lifecycle(
    action: Lifecycle, item_uris: Sequence[str], *, at: datetime | None = None, read_point: str | None = None
) -> dict[str, Any]:
    """Sold, in use, returned, collected, repaired, refurbished, resold or disposed."""
    biz_step, disposition = _LIFECYCLE_VOCAB[Lifecycle(action)]
    event = _base("ObjectEvent", at, read_point)
    event.update({"epcList": list(item_uris), "action": "OBSERVE", "bizStep": biz_step, "disposition": disposition})
    # CBV gives a first sale and a resale (or a repair and a refurbishment) the same vocabulary: our extension
    # field names the action, so the two are different events with different hashes.
    event["circ:lifecycle"] = Lifecycle(action).value
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
            "bizStep": BIZSTEP_RECYCLING,
            "disposition": "active",
            "ilmd": {"circ:materialCode": material_code, "circ:massGrams": mass_grams, "circ:recycledShareBps": 10_000},
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
    "lifecycle",
    "lot_registered",
]
