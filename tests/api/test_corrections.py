"""Corrections the EPCIS way, through the API: a mistaken sale declared in error with the return that corrects it,
shown corrected on the passport and verified in the evidence; a lot's origin corrected with its history kept; and a
product's previous master data kept."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from ledger.evidence import verify_bundle

from .conftest import GTIN_A, GTIN_A_LOTS, World


def _passport(world: World, item: dict[str, Any]) -> dict[str, Any]:
    path = f"/01/{item['gtin']}/21/{item['serial']}/passport.jsonld"
    body: dict[str, Any] = world.client.get(path, headers=world.auth("authority")).json()
    return body


def test_a_mistaken_sale_is_declared_in_error_and_corrected(world: World) -> None:
    item = world.item([(world.lot()["lotId"], 100)])
    sale = world.act(item, "sold", "retailer").json()["event"]["eventId"]
    # Someone else may not declare the retailer's event; nobody may declare an unknown one.
    body = {"eventId": sale, "reason": "did_not_occur", "corrective": [{"action": "returned"}]}
    assert world.post("/api/v1/corrections", "recycler", body).status_code == 403
    unknown = {**body, "eventId": "ni:///sha-256;" + "00" * 32 + "?ver=CBV2.0"}
    assert world.post("/api/v1/corrections", "retailer", unknown).status_code == 404

    answer = world.post("/api/v1/corrections", "retailer", body)
    assert answer.status_code == 201, answer.text
    corrected = answer.json()
    assert corrected["correctedEventId"] == sale
    assert [c["item"]["state"] for c in corrected["corrective"]] == ["returned"]
    returned = corrected["corrective"][0]["event"]["eventId"]
    declaration = corrected["declaration"]["eventId"]
    assert declaration not in (sale, returned)

    lifecycle = {e["@id"]: e for e in _passport(world, item)["circ:lifecycle"]}
    assert declaration not in lifecycle  # no step of its own: it marks the sale
    correction = lifecycle[sale]["circ:correction"]
    assert correction["circ:reason"] == "did_not_occur" and correction["circ:declaredBy"] == "Retailer"
    assert correction["circ:correctiveEventIDs"] == [returned]
    assert lifecycle[returned]["circ:corrective"] is True
    page = world.client.get(f"/01/{GTIN_A}/21/{item['serial']}/passport").text
    assert "<del><strong>Sold</strong></del>" in page and "Corrected: did not happen" in page

    again = world.post("/api/v1/corrections", "retailer", {**body, "corrective": []})
    assert again.status_code == 409 and again.json()["title"] == "Already corrected"
    declared = {**body, "eventId": declaration}
    refused = world.post("/api/v1/corrections", "retailer", declared)
    assert refused.status_code == 422 and refused.json()["title"] == "Not correctable"

    # The correction is signed and anchored like any event, and the evidence verifies.
    world.drain()
    bundle = world.client.get(f"/01/{GTIN_A}/21/{item['serial']}/evidence", headers=world.auth("authority")).json()
    ids = {e["eventID"] for e in bundle["events"]}
    assert {sale, returned, declaration} <= ids
    verdict = verify_bundle(bundle, world.service.backend.web3)
    assert verdict.ok, verdict.problems
    # A brand may correct an event on its own item.
    other = world.item([(world.lot()["lotId"], 100)])
    sale2 = world.act(other, "sold", "retailer").json()["event"]["eventId"]
    by_brand = world.post("/api/v1/corrections", "brand", {"eventId": sale2, "reason": "incorrect_data"})
    assert by_brand.status_code == 201, by_brand.text


def test_a_lot_correction_keeps_what_it_said_before(world: World) -> None:
    lot = world.lot(origin="Turkey", certificates=["https://certs.example/OLD"])
    item = world.item([(lot["lotId"], 100)])
    body = {"origin": "Greece", "certificates": ["https://certs.example/NEW"], "reason": "wrong farm on the form"}
    path = f"/api/v1/lots/{lot['lotId']}"
    assert world.client.patch(path, json=body, headers=world.auth("brand_b")).status_code == 403
    answer = world.client.patch(f"/api/v1/lots/{lot['lotId']}", json=body, headers=world.auth("brand"))
    assert answer.status_code == 200, answer.text
    corrected = answer.json()
    assert corrected["lot"]["origin"] == "Greece" and corrected["lot"]["certificates"] == ["https://certs.example/NEW"]
    assert corrected["change"]["previous"] == {"origin": "Turkey", "certificates": ["https://certs.example/OLD"]}
    history = world.client.get(f"/api/v1/lots/{lot['lotId']}/history", headers=world.auth("brand")).json()
    assert history["count"] == 1 and history["data"][0]["reason"] == "wrong farm on the form"
    assert history["data"][0]["by"] == "Brand A"
    assert history["data"][0]["declarationId"] == corrected["declaration"]["eventId"]
    # The lot's page and its JSON-LD show the correction: what it said before, what it says since, and why; the
    # origin and the certificates to those whose tier sees them (api/access.py), that a correction was made to all.
    path = urlsplit(lot["uri"]).path
    sees_all = world.auth("authority")
    page = world.client.get(path + "/passport", headers=sees_all).text
    assert 'id="corrections"' in page and "wrong farm on the form" in page and "<del>Turkey</del> &rarr; Greece" in page
    assert "<del>https://certs.example/OLD</del> &rarr; https://certs.example/NEW" in page
    full = world.client.get(path + "/passport.jsonld", headers=sees_all).json()
    assert full["circ:origin"] == "Greece"
    assert [(c["by"], c["reason"], c["previous"]["origin"], c["current"]["origin"])
            for c in full["circ:corrections"]] == [("Brand A", "wrong farm on the form", "Turkey", "Greece")]
    public = world.client.get(path + "/passport.jsonld").json()
    assert "circ:origin" not in public and "Turkey" not in json.dumps(public) and "OLD" not in json.dumps(public)
    assert [c["reason"] for c in public["circ:corrections"]] == ["wrong farm on the form"]
    assert "wrong farm on the form" in world.client.get(path + "/passport").text
    # The passport shows the corrected lot, and the item's evidence verifies with the corrective registration.
    passport = _passport(world, item)
    lots = [lot_view for g in passport["circ:provenance"] for lot_view in g["circ:lots"]]
    assert [v["origin"] for v in lots if v["lotId"] == lot["lotId"]] == ["Greece"]
    world.drain()
    bundle = world.client.get(f"/01/{GTIN_A}/21/{item['serial']}/evidence", headers=world.auth("brand")).json()
    verdict = verify_bundle(bundle, world.service.backend.web3)
    assert verdict.ok, verdict.problems
    item_row = world.client.get(f"/api/v1/items/{GTIN_A}/{item['serial']}", headers=world.auth("brand")).json()
    assert item_row["itemId"] == item["itemId"]
    nothing = world.client.patch(f"/api/v1/lots/{lot['lotId']}", json=body, headers=world.auth("brand"))
    assert nothing.status_code == 422 and nothing.json()["title"] == "Nothing to correct"


def test_a_product_keeps_its_previous_master_data(world: World) -> None:
    put = {"name": "Field jacket", "care": "Wash cold"}
    headers = world.auth("brand")
    assert world.client.put(f"/api/v1/products/{GTIN_A_LOTS}", json=put, headers=headers).status_code == 200
    renamed = {**put, "name": "Field jacket, waxed"}
    assert world.client.put(f"/api/v1/products/{GTIN_A_LOTS}", json=renamed, headers=headers).status_code == 200
    history = world.client.get(f"/api/v1/products/{GTIN_A_LOTS}/history", headers=headers).json()
    latest = history["data"][0]
    assert latest["previous"] == {"name": "Field jacket"} and latest["current"] == {"name": "Field jacket, waxed"}
    assert latest["by"] == "Brand A"
    page = world.client.get(f"/01/{GTIN_A_LOTS}/product").text
    assert 'id="corrections"' in page and "<del>Field jacket</del> &rarr; Field jacket, waxed" in page
