"""Every event the ledger writes is valid EPCIS 2.0 JSON-LD, with CBV vocabulary or our documented extension."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest

from ledger.epcis import events as ev
from ledger.epcis.hashing import document_event_hash_ids, event_hash_id
from tests.conftest import standards_dir

ITEMS = ["https://id.example/01/09506000134352/21/S1", "https://id.example/01/09506000134352/21/S2"]
LOT = "https://id.example/01/09506000134369/10/L1"
RECOVERED = "https://id.example/lots/0xabc"
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads((standards_dir() / "epcis" / "EPCIS-JSON-Schema.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def every_event() -> list[tuple[str, dict[str, Any]]]:
    built = [
        ("lot", ev.lot_registered(LOT, "CO", 200_000, 2_500, certificates=["https://cert.example/GOTS/1"], at=T0)),
        ("manufactured", ev.items_manufactured(ITEMS, [(LOT, 300)], at=T0)),
        ("recycled", ev.items_recycled(ITEMS, RECOVERED, 280, "rCO", at=T0)),
        (
            "recycled",  # into lots, one per material
            ev.items_recycled_into(ITEMS, [(RECOVERED, 200, "rCO"), (RECOVERED + "d", 60, "rPES")], at=T0),
        ),
    ]
    built += [(action.value, ev.lifecycle(action, ITEMS[:1], at=T0)) for action in ev.Lifecycle]
    return built


@pytest.mark.parametrize(("name", "event"), every_event(), ids=[n for n, _ in every_event()])
def test_event_is_valid_epcis(validator: jsonschema.protocols.Validator, name: str, event: dict[str, Any]) -> None:
    document = ev.epcis_document([event], created=T0)
    errors = sorted(validator.iter_errors(document), key=str)
    assert not errors, [e.message for e in errors[:3]]
    assert event["eventTime"] == "2026-11-01T12:00:00.000Z"


def test_vocabulary_is_cbv_or_our_namespace() -> None:
    cbv_steps = {"commissioning", "retail_selling", "receiving", "collecting", "repairing", "destroying"}
    for _, event in every_event():
        step = event["bizStep"]
        assert step in cbv_steps or step.startswith(ev.EXT_NS), step


def test_document_hashes_match_event_hashes() -> None:
    events = [e for _, e in every_event()]
    document = ev.epcis_document(events, created=T0)
    assert document_event_hash_ids(document) == [event_hash_id(e) for e in events]
    assert len(set(document_event_hash_ids(document))) == len(events)
