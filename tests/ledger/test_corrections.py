"""EPCIS 2.0 error declarations: valid against the standard's schema, hashing to the event they declare (the CBV 2.0
hash leaves errorDeclaration out), and recorded under an id of their own that binds what they declare."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest

from ledger.epcis import events as ev
from ledger.epcis.corrections import declaration_id, declared, error_declaration, record_id
from ledger.epcis.hashing import event_hash_id, hash_digest
from ledger.evidence import export_bundle, verify_bundle
from ledger.service import LedgerService
from tests.conftest import standards_dir

ITEM = "https://id.example/01/09506000134352/21/C1"
LOT = "https://id.example/01/09506000134369/10/L9"
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _sale() -> dict[str, Any]:
    sale = ev.lifecycle(ev.Lifecycle.SOLD, [ITEM], at=T0)
    return {**sale, "eventID": event_hash_id(sale)}


def test_a_declaration_is_valid_epcis_and_hashes_to_its_event() -> None:
    sale = _sale()
    fix = ev.lifecycle(ev.Lifecycle.RETURNED, [ITEM], at=T0)
    declaration = error_declaration(sale, "did_not_occur", [event_hash_id(fix)], at=T0)
    schema = json.loads((standards_dir() / "epcis" / "EPCIS-JSON-Schema.json").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    assert not list(validator.iter_errors(ev.epcis_document([declaration], created=T0)))
    assert declaration["errorDeclaration"] == {
        "declarationTime": "2026-11-01T12:00:00.000Z",
        "reason": "did_not_occur",
        "correctiveEventIDs": [event_hash_id(fix)],
    }
    # The standard's hash: the declaration is the event it declares; the ledger's record of it is not.
    assert event_hash_id(declaration) == sale["eventID"] == declaration["eventID"]
    assert record_id(declaration) == declaration_id(declaration) != sale["eventID"]
    assert record_id(sale) == sale["eventID"]
    hash_digest(record_id(declaration))  # shaped like an Event Hash ID: signed and anchored the same way
    other = copy.deepcopy(declaration)
    other["errorDeclaration"]["reason"] = "incorrect_data"
    assert record_id(other) != record_id(declaration)
    assert declared([sale, declaration]) == {sale["eventID"]: declaration}
    with pytest.raises(ValueError):
        error_declaration(sale, "oops")
    with pytest.raises(ValueError):
        error_declaration(declaration, "did_not_occur")


def test_a_declaration_is_signed_anchored_and_verified(service: LedgerService) -> None:
    brand, retailer, anchorer = (service.backend.dev_accounts()[i] for i in (1, 4, 6))
    sale = _sale()
    made = [ev.lot_registered(LOT, "CO", 1000, at=T0), ev.items_manufactured([ITEM], [(LOT, 200)], at=T0)]
    service.record(brand, made)
    stored = service.record(retailer, [sale])
    assert stored[0].event_id == sale["eventID"]
    declaration = error_declaration(sale, "did_not_occur", at=T0)
    recorded = service.record(retailer, [declaration])
    assert recorded[0].created and recorded[0].event_id == record_id(declaration)
    service.worker(anchorer).drain()
    bundle = export_bundle(service.outbox, service.chain_id, service.ledger.anchor.address, ITEM)
    kept = [e for e in bundle["events"] if "errorDeclaration" in e["event"]]
    assert len(kept) == 1 and kept[0]["eventID"] == record_id(declaration)
    assert kept[0]["event"]["eventID"] == sale["eventID"]
    verdict = verify_bundle(bundle, service.backend.web3)
    assert verdict.ok, verdict.problems
    forged = copy.deepcopy(bundle)
    for entry in forged["events"]:
        if "errorDeclaration" in entry["event"]:
            entry["event"]["errorDeclaration"]["reason"] = "incorrect_data"
    assert not verify_bundle(forged, service.backend.web3).ok  # the record binds what is declared
