"""Non-finite numbers (``NaN``, ``Infinity``, ``1e999``) are refused at every JSON entry point, naming the field.

The attack: Python's ``json`` reads ``NaN`` and ``Infinity``, and the EPCIS schema passes them as numbers. One
captured event with ``"quantity": NaN`` naming a lot was stored, signed and anchored; from then on every answer that
included it was a 500 (Starlette writes strict JSON): the evidence of every item made from that lot and the EPCIS
query pages. An anchored event cannot be taken back, so the damage was for good.

Now the body guard (``api/limits.py``) answers 400 (EPCIS) or 422 (the write API) with the field's JSON pointer,
before any route reads the body; the hashing refuses a non-finite number, and the database's JSON serialiser writes
strict JSON only, so that nothing reaching the outbox another way can hold one either.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import StatementError

from api.problems import PROBLEM_JSON
from ledger.epcis.hashing import EventHashError, event_hash_id
from ledger.outbox import OutboxEvent
from tests.api.conftest import GTIN_A, RESOLVER, World

CONTEXT = ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld"]


def _document(lot_uri: str, quantity: str) -> bytes:
    """An EPCIS document whose one event names `lot_uri` with the literal `quantity` (not necessarily JSON)."""
    event = {
        "type": "ObjectEvent",
        "eventTime": "2026-11-01T10:00:00.000Z",
        "eventTimeZoneOffset": "+00:00",
        "epcList": [],
        "quantityList": [{"epcClass": lot_uri, "quantity": "__Q__", "uom": "KGM"}],
        "action": "OBSERVE",
        "bizStep": "inspecting",
    }
    document = {
        "@context": CONTEXT,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-01T10:00:00.000Z",
        "epcisBody": {"eventList": [event]},
    }
    return json.dumps(document).replace('"__Q__"', quantity).encode()


def _capture(w: World, body: bytes) -> Any:
    return w.client.post("/epcis/capture", content=body,
                         headers={**w.auth("brand"), "Content-Type": "application/ld+json"})


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "-1E+400", "9" * 400 + ".5"])
def test_capture_refuses_a_non_finite_quantity(any_db_world: World, literal: str) -> None:
    w = any_db_world
    lot = w.lot(grams=10_000_000)
    items = [w.item([(lot["lotId"], 100)]) for _ in range(3)]
    before = _stored_events(w)

    response = _capture(w, _document(lot["uri"], literal))

    assert response.status_code == 400, response.text[:300]
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    detail = response.json()["detail"]
    assert "/epcisBody/eventList/0/quantityList/0/quantity" in detail and "not a finite number" in detail
    assert _stored_events(w) == before  # nothing reached the outbox
    # What the attack broke keeps working: the evidence of every item made from the lot, and the query pages.
    for item in items:
        evidence = w.client.get(f"/01/{GTIN_A}/21/{item['serial']}/evidence", headers=w.auth("authority"))
        assert evidence.status_code == 200
    query = w.client.get("/epcis/events", params={"MATCH_anyEPCClass": lot["uri"]}, headers=w.auth("brand"))
    assert query.status_code == 200


def test_a_finite_huge_float_is_still_captured(security_world: World) -> None:
    """The guard must not refuse what JSON allows: 1e308 is a finite number."""
    w = security_world
    lot = w.lot(grams=10_000_000)
    response = _capture(w, _document(lot["uri"], "1e308"))
    assert response.status_code == 202, response.text[:300]


@pytest.mark.parametrize(
    ("method", "path", "role", "body", "pointer"),
    [
        ("POST", "/api/v1/lots", "brand",
         '{"lotNumber": "NF1", "materialCode": "CO", "massGrams": NaN, "recycledShareBps": 0}', "/massGrams"),
        ("PUT", f"/api/v1/products/{GTIN_A}", "brand", '{"name": "x", "extra": [1, Infinity]}', "/extra/1"),
        ("POST", "/api/v1/lifecycle-events", "retailer",
         '{"gtin": "' + GTIN_A + '", "serial": "X", "action": "sold", "n": -Infinity}', "/n"),
    ],
)
def test_the_write_api_refuses_non_finite_numbers(
    security_world: World, method: str, path: str, role: str, body: str, pointer: str
) -> None:
    w = security_world
    response = w.client.request(method, path, content=body.encode(),
                                headers={**w.auth(role), "Content-Type": "application/json"})
    assert response.status_code == 422, response.text[:300]
    assert response.json()["detail"].startswith(pointer + ":")


def test_a_return_request_with_a_nan_latitude_is_refused(security_world: World) -> None:
    """The public's one JSON entry point: refused (pydantic refused it too), and the answer names the field."""
    w = security_world
    lot = w.lot()
    item = w.item([(lot["lotId"], 100)])
    response = w.client.post(f"/01/{GTIN_A}/21/{item['serial']}/return-requests",
                             content=b'{"latitude": NaN, "longitude": 4.5}',
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and response.json()["detail"].startswith("/latitude:")


def test_the_hashing_refuses_a_non_finite_number() -> None:
    """The outbox hashes every event it stores that the caller has not hashed: no NaN gets a hash, so none is
    signed or stored that way either."""
    event = json.loads(_document(f"{RESOLVER}/lots/0x" + "ab" * 32, "NaN"))["epcisBody"]["eventList"][0]
    event["@context"] = CONTEXT
    with pytest.raises(EventHashError, match="finite"):
        event_hash_id(event)


def test_the_database_stores_strict_json_only(any_db_world: World) -> None:
    """The last line: whatever path a NaN takes to the database, its JSON columns refuse it (no 500 later)."""
    from ledger.outbox import SignedEvent

    w = any_db_world
    event = {"type": "ObjectEvent", "eventTime": "2026-11-01T10:00:00.000Z", "eventTimeZoneOffset": "+00:00",
             "action": "OBSERVE", "epcList": [], "circ:note": math.nan}
    unhashed = "ni:///sha-256;" + "0" * 64 + "?ver=CBV2.0"  # as if the caller had hashed it: the outbox does not
    signed = SignedEvent(event, "0x" + "11" * 20, b"\0" * 65, 0, computed_id=unhashed)
    with pytest.raises((StatementError, ValueError), match=r"JSON compliant"):
        w.service.outbox.add_many([signed])
    assert not any(e.get("circ:note") is not None for e in _stored_events(w))


def test_the_scan_finds_the_field() -> None:
    from api.limits import non_finite_number

    assert non_finite_number(b'{"a": {"b/c": [0, 1.5, NaN]}}') == ("/a/b~1c/2", "NaN")
    assert non_finite_number(b'{"a": "NaN Infinity 1e999", "b": 1e308}') is None
    assert non_finite_number(b'{"a": 1') is None  # not JSON: the route's own parser answers
    assert non_finite_number(b"[" + b"7" * 2_000_000 + b"]") is None  # an int, however long, is finite


def _stored_events(w: World) -> list[dict[str, Any]]:
    with w.service.sessions() as session:
        return [e for e in session.scalars(select(OutboxEvent.event))]
