"""EPCIS capture's schema check has a compiled fast path (jsonschema-rs) in front of jsonschema: it must never accept a
document that jsonschema rejects, and never reject one that jsonschema accepts."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from api.epcis_store import _fast_validator, epcis_schema, validate_document
from ledger.epcis import events as ev

Mutation = Callable[[dict[str, Any]], None]


def _document() -> dict[str, Any]:
    item = "https://id.circular.example/01/09506000134352/21/V1"
    lot = "https://id.circular.example/01/09506000134369/10/L1"
    return ev.epcis_document(
        [
            ev.lifecycle(ev.Lifecycle.SOLD, [item]),
            ev.items_manufactured([item], [(lot, 200)]),
            ev.lot_registered(lot, "CO", 1000, certificates=["https://certs.example/1"]),
        ]
    )


def _event(index: int, key: str, value: Any) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        document["epcisBody"]["eventList"][index][key] = value

    return mutate


def _drop(index: int, key: str) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        del document["epcisBody"]["eventList"][index][key]

    return mutate


MUTATIONS: dict[str, Mutation] = {
    "valid": lambda d: None,
    "time-words": _event(0, "eventTime", "yesterday"),
    "time-no-zone": _event(0, "eventTime", "2026-01-01T10:00:00"),
    "time-bad-month": _event(0, "eventTime", "2026-13-01T10:00:00Z"),
    "time-date-only": _event(0, "eventTime", "2026-01-01"),
    "time-offset": _event(0, "eventTime", "2026-01-01T10:00:00.123+02:00"),
    "time-number": _event(0, "eventTime", 1767261600),
    "zone-bad": _event(0, "eventTimeZoneOffset", "2 hours"),
    "type-unknown": _event(0, "type", "MagicEvent"),
    "action-unknown": _event(0, "action", "DESTROY"),
    "epc-not-uri": _event(0, "epcList", ["not a uri"]),
    "epc-relative": _event(0, "epcList", ["/01/09506000134352/21/V1"]),
    "epc-urn": _event(0, "epcList", ["urn:epc:id:sgtin:9506000.134352.V1"]),
    "epc-list-not-list": _event(0, "epcList", "https://id.example/01/1/21/2"),
    "no-event-time": _drop(0, "eventTime"),
    "no-action": _drop(0, "action"),
    "quantity-string": _event(1, "inputQuantityList", [{"epcClass": "https://x.example/l", "quantity": "many"}]),
    "quantity-no-class": _event(1, "inputQuantityList", [{"quantity": 3}]),
    "biz-step-custom-uri": _event(0, "bizStep", "https://ns.example/steps/inspected"),
    "biz-step-bare-word": _event(0, "bizStep", "not a known step"),
    "read-point-no-id": _event(0, "readPoint", {"name": "shop"}),
    "certification-not-list": _event(2, "certificationInfo", 5),
    "extension-field": _event(0, "circ:note", {"deep": [1, 2, 3]}),
    "document-no-body": lambda d: d.pop("epcisBody"),
    "document-schema-version": lambda d: d.update(schemaVersion=2),
    "document-creation-date": lambda d: d.update(creationDate="today"),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_the_fast_path_agrees_with_jsonschema(name: str) -> None:
    document = copy.deepcopy(_document())
    MUTATIONS[name](document)
    reference = jsonschema_errors(document)
    assert _fast_validator().is_valid(document) == (not reference), reference
    assert validate_document(document) == reference[:20]


def jsonschema_errors(document: Any) -> list[dict[str, str]]:
    """The slow path alone, as validate_document answered before the fast path."""
    import jsonschema

    schema = epcis_schema()
    cls = jsonschema.validators.validator_for(schema)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    errors = []
    for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path)):
        path = "/" + "/".join(str(p) for p in error.absolute_path)
        errors.append({"path": path, "message": error.message[:500]})
    return errors


def test_some_mutations_are_invalid() -> None:
    """The table above exercises both answers (else the agreement would prove little)."""
    verdicts = set()
    for mutate in MUTATIONS.values():
        document = copy.deepcopy(_document())
        mutate(document)
        verdicts.add(not jsonschema_errors(document))
    assert verdicts == {True, False}
