"""The EPCIS query interface answers actors only, each about what is its business.

The attack: ``GET /epcis/events`` answered a request without a key, and returned another brand's
``bizTransactionList`` (a purchase order number) and destination.

Now ``GET /epcis/events`` and ``GET /epcis/events/{id}`` need an API key (401 otherwise), and each actor reads the
events it signed, those naming the lots it owns or is approved on, a brand those about its own products' items and
lots (its partners' sales of them included), a retailer, recycler or repairer those about the items it holds; the
admin reads all (``api/epcis_store.visible_to``). The public passport keeps its own public view. On SQLite and
PostgreSQL (the rules are SQL).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from ledger.epcis import events as ev
from tests.api.conftest import GTIN_B, World

PURCHASE_ORDER = "urn:epcglobal:cbv:bt:4012345000009:PO-77231"
DESTINATION = "urn:epc:id:sgln:4012345.00001.0"


def _events(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text[:300]
    found: list[dict[str, Any]] = response.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    return found


@pytest.fixture(scope="module")
def shipment(any_db_world: World) -> dict[str, Any]:
    """Brand B ships its own tote, naming its purchase order and destination (a capture of its own item)."""
    w = any_db_world
    lot = w.lot(role="brand_b", gtin=None)
    tote = w.item([(lot["lotId"], 300)], role="brand_b", gtin=GTIN_B)
    event = {
        "type": "ObjectEvent", "eventTime": "2026-11-02T09:00:00.000Z", "eventTimeZoneOffset": "+00:00",
        "epcList": [tote["digitalLink"]], "action": "OBSERVE", "bizStep": "shipping", "disposition": "in_transit",
        "bizTransactionList": [{"type": "po", "bizTransaction": PURCHASE_ORDER}],
        "destinationList": [{"type": "owning_party", "destination": DESTINATION}],
    }
    captured = w.client.post("/epcis/capture", content=json.dumps(ev.epcis_document([event])),
                             headers={**w.auth("brand_b"), "Content-Type": "application/ld+json"})
    assert captured.status_code == 202, captured.text
    job = w.client.get(captured.headers["location"], headers=w.auth("brand_b")).json()
    assert job["success"], job
    return {"tote": tote, "lot": lot, "event_id": job["eventIDs"][0]}


def test_without_a_key_nothing_is_answered(any_db_world: World, shipment: dict[str, Any]) -> None:
    w = any_db_world
    for params in ({}, {"MATCH_anyEPC": shipment["tote"]["digitalLink"]}, {"EQ_eventID": shipment["event_id"]}):
        anonymous = w.client.get("/epcis/events", params=params)
        assert anonymous.status_code == 401, anonymous.text[:300]
        assert PURCHASE_ORDER not in anonymous.text
    single = w.client.get(f"/epcis/events/{quote(shipment['event_id'], safe='')}")
    assert single.status_code == 401 and PURCHASE_ORDER not in single.text
    forged = w.client.get("/epcis/events", headers={"Authorization": "Bearer clk_" + "x" * 43})
    assert forged.status_code == 401


@pytest.mark.parametrize("role", ["brand", "retailer", "recycler", "repairer"])
def test_another_brands_events_are_not_shown(any_db_world: World, shipment: dict[str, Any], role: str) -> None:
    """Brand A, and partners that hold nothing of it, ask for Brand B's shipment every way the interface allows."""
    w = any_db_world
    headers = w.auth(role)
    tote = shipment["tote"]
    for params in (
        {"MATCH_anyEPC": tote["digitalLink"]},
        {"MATCH_epc": tote["digitalLink"]},
        {"EQ_eventID": shipment["event_id"]},
        {"EQ_bizStep": "shipping", "perPage": "1000"},
        {"MATCH_anyEPCClass": shipment["lot"]["uri"]},
    ):
        response = w.client.get("/epcis/events", params=params, headers=headers)
        assert PURCHASE_ORDER not in response.text and DESTINATION not in response.text, (role, params)
        assert all(tote["digitalLink"] not in json.dumps(e) for e in _events(response)), (role, params)
    single = w.client.get(f"/epcis/events/{quote(shipment['event_id'], safe='')}", headers=headers)
    assert single.status_code == 404 and PURCHASE_ORDER not in single.text


def test_the_brand_and_the_admin_see_it(any_db_world: World, shipment: dict[str, Any]) -> None:
    w = any_db_world
    for role in ("brand_b", "admin"):
        found = _events(w.client.get("/epcis/events", params={"MATCH_epc": shipment["tote"]["digitalLink"]},
                                     headers=w.auth(role)))
        shipping = [e for e in found if e.get("bizStep") == "shipping"]
        assert [e["bizTransactionList"][0]["bizTransaction"] for e in shipping] == [PURCHASE_ORDER], role
        single = w.client.get(f"/epcis/events/{quote(shipment['event_id'], safe='')}", headers=w.auth(role))
        assert single.status_code == 200 and PURCHASE_ORDER in single.text


def test_partners_see_what_they_hold_and_brands_what_partners_did(any_db_world: World) -> None:
    """Brand A's item sold by the retailer: the brand sees the sale, the retailer the item's history while it holds
    it; the recycler, which holds nothing of it, sees none of it until it collects the item."""
    w = any_db_world
    lot = w.lot()
    item = w.item([(lot["lotId"], 150)])
    assert w.act(item, "sold", "retailer").status_code == 201
    link = {"MATCH_anyEPC": item["digitalLink"]}

    def steps(role: str) -> list[str]:
        return [e["bizStep"] for e in _events(w.client.get("/epcis/events", params=link, headers=w.auth(role)))]

    assert "retail_selling" in steps("brand")
    assert "retail_selling" in steps("retailer") and len(steps("retailer")) == len(steps("brand"))
    assert steps("recycler") == []
    assert w.act(item, "collected", "recycler").status_code == 201
    assert len(steps("recycler")) == len(steps("brand"))  # it holds the item now
    assert steps("retailer") == ["retail_selling"]  # no longer its: its own sale only


def test_the_public_passport_keeps_its_own_view(any_db_world: World, shipment: dict[str, Any]) -> None:
    w = any_db_world
    path = f"/01/{GTIN_B}/21/{shipment['tote']['serial']}"
    page = w.client.get(path + "/passport.jsonld")
    assert page.status_code == 200
    assert PURCHASE_ORDER not in page.text
