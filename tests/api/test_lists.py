"""Lists and names: an actor's items, lots and products a page at a time, a lot's grams used and left, lots named by
their lot number in compositions, and material codes checked against the catalogue."""

from __future__ import annotations

from typing import Any

from materials import catalogue

from .conftest import GTIN_A, GTIN_A_LOTS, GTIN_B, World


def _get(world: World, path: str, role: str, **params: Any) -> Any:
    response = world.client.get(path, params=params, headers=world.auth(role))
    assert response.status_code == 200, response.text
    return response.json()


def test_a_lot_shows_its_grams_used_and_left(world: World) -> None:
    lot = world.lot(grams=1_000)
    assert (lot["allocatedGrams"], lot["availableGrams"], lot["material"]) == (0, 1_000, "Cotton")
    world.item([(lot["lotId"], 300)])
    serials = [world.unique("R") for _ in range(3)]
    run = {"gtin": GTIN_A, "serials": serials, "composition": [{"lotId": lot["lotId"], "grams": 100}]}
    assert world.post("/api/v1/runs", "brand", run).status_code == 201
    seen = world.client.get(f"/api/v1/lots/{lot['lotId']}", headers=world.auth("admin")).json()
    assert (seen["allocatedGrams"], seen["availableGrams"]) == (600, 400)
    # What the API says is left is what the contract says is left.
    assert world.service.ledger.available_grams(bytes.fromhex(lot["lotId"][2:])) == 400


def test_a_composition_names_a_lot_by_its_lot_number(world: World) -> None:
    lot = world.lot(grams=1_000)
    body = {"gtin": GTIN_A, "serial": world.unique(), "composition": [{"lotNumber": lot["lotNumber"], "grams": 250}]}
    response = world.post("/api/v1/items", "brand", body)
    assert response.status_code == 201, response.text
    part = response.json()["items"][0]["composition"][0]
    assert part == {"lotId": lot["lotId"], "lotNumber": lot["lotNumber"], "grams": 250}
    # A lot number that names no lot of the caller's, or a part naming its lot twice over, is a 422.
    unknown = world.post("/api/v1/items", "brand_b", {**body, "gtin": GTIN_B, "serial": world.unique()})
    assert unknown.status_code == 422 and unknown.json()["title"] == "Unknown lot"
    assert lot["lotNumber"] in unknown.json()["detail"]
    both = {"lotId": lot["lotId"], "lotNumber": lot["lotNumber"], "grams": 1}
    refused = world.post("/api/v1/items", "brand", {**body, "serial": world.unique(), "composition": [both]})
    assert refused.status_code == 422
    twice = [{"lotId": lot["lotId"], "grams": 1}, {"lotNumber": lot["lotNumber"], "grams": 1}]
    refused = world.post("/api/v1/items", "brand", {**body, "serial": world.unique(), "composition": twice})
    assert refused.status_code == 422 and refused.json()["title"] == "Invalid composition"


def test_an_ambiguous_lot_number_names_the_candidates(world: World) -> None:
    number = world.unique("L")
    gtin_lot = world.post(
        "/api/v1/lots", "brand", {"gtin": GTIN_A_LOTS, "lotNumber": number, "materialCode": "CO", "massGrams": 10}
    ).json()["lot"]
    material_lot = world.post(
        "/api/v1/lots", "brand", {"lotNumber": number, "materialCode": "PES", "massGrams": 10}
    ).json()["lot"]
    body = {"gtin": GTIN_A, "serial": world.unique(), "composition": [{"lotNumber": number, "grams": 1}]}
    response = world.post("/api/v1/items", "brand", body)
    assert response.status_code == 422 and response.json()["title"] == "Ambiguous lot number"
    assert sorted(response.json()["lotIds"]) == sorted([gtin_lot["lotId"], material_lot["lotId"]])


def test_an_unknown_material_code_is_a_422_naming_the_valid_ones(world: World) -> None:
    body = {"lotNumber": world.unique("L"), "materialCode": "UNOBTAINIUM", "massGrams": 10}
    response = world.post("/api/v1/lots", "brand", body)
    assert response.status_code == 422
    problem = response.json()
    assert problem["title"] == "Unknown material" and "UNOBTAINIUM" in problem["detail"]
    assert problem["validCodes"] == sorted(catalogue()) and "CO" in problem["detail"]
    assert _get(world, "/api/v1/lots", "brand", lotNumber=body["lotNumber"])["count"] == 0


def test_items_are_listed_by_state_lot_and_product_a_page_at_a_time(world: World) -> None:
    lot = world.lot(grams=10_000)
    other = world.lot(grams=10_000)
    mine = [world.item([(lot["lotId"], 10)]) for _ in range(5)]
    world.item([(other["lotId"], 10)])
    sold = mine[:2]
    for item in sold:
        assert world.act(item, "sold", "retailer").status_code == 201

    by_lot = _get(world, "/api/v1/items", "brand", lot=lot["lotId"], limit=2)
    assert by_lot["count"] == 5 and [i["serial"] for i in by_lot["data"]] == [i["serial"] for i in mine[:2]]
    page_3 = _get(world, "/api/v1/items", "brand", lot=lot["lotId"], limit=2, skip=4)
    assert [i["serial"] for i in page_3["data"]] == [mine[4]["serial"]]
    assert _get(world, "/api/v1/items", "brand", lot=lot["lotNumber"])["count"] == 5
    by_state = _get(world, "/api/v1/items", "brand", lot=lot["lotId"], state="sold")
    assert sorted(i["serial"] for i in by_state["data"]) == sorted(i["serial"] for i in sold)
    assert all(i["state"] == "sold" for i in by_state["data"])
    both = _get(world, "/api/v1/items", "brand", lot=lot["lotId"], state=["sold", "manufactured"])
    assert both["count"] == 5
    assert _get(world, "/api/v1/items", "brand", lot=lot["lotId"], gtin=GTIN_B)["count"] == 0

    # The retailer sees the items it sold (and no other), brand B none of brand A's, the admin all of them.
    retailer = _get(world, "/api/v1/items", "retailer", lot=lot["lotId"])
    assert sorted(i["serial"] for i in retailer["data"]) == sorted(i["serial"] for i in sold)
    assert _get(world, "/api/v1/items", "brand_b", lot=lot["lotId"])["count"] == 0
    assert _get(world, "/api/v1/items", "admin", lot=lot["lotId"])["count"] == 5

    bad = world.client.get("/api/v1/items", params={"state": "lost"}, headers=world.auth("brand"))
    assert bad.status_code == 422
    assert world.client.get("/api/v1/items").status_code == 401
    too_many = world.client.get("/api/v1/items", params={"limit": 100_000}, headers=world.auth("brand"))
    assert too_many.status_code == 422


def test_lots_are_listed_with_their_grams_and_filters(world: World) -> None:
    number = world.unique("L")
    own = world.post(
        "/api/v1/lots", "brand", {"gtin": GTIN_A_LOTS, "lotNumber": number, "materialCode": "WO", "massGrams": 500}
    ).json()["lot"]
    world.item([(own["lotId"], 120)])
    listed = _get(world, "/api/v1/lots", "brand", lotNumber=number)
    assert listed["count"] == 1
    assert listed["data"][0]["allocatedGrams"] == 120 and listed["data"][0]["availableGrams"] == 380
    assert listed["data"][0]["owner"] == "Brand A"
    wool = _get(world, "/api/v1/lots", "brand", materialCode="WO", gtin=GTIN_A_LOTS, limit=1000)
    assert own["lotId"] in {lot["lotId"] for lot in wool["data"]}
    assert all(lot["materialCode"] == "WO" and not lot["recovered"] for lot in wool["data"])
    assert _get(world, "/api/v1/lots", "brand", recovered=True, lotNumber=number)["count"] == 0
    # Another brand's lot is not in brand B's list until approved to it.
    assert _get(world, "/api/v1/lots", "brand_b", lotNumber=number)["count"] == 0
    approval = world.post(
        f"/api/v1/lots/{own['lotId']}/approvals", "brand", {"operatorId": world.actor_ids["brand_b"], "grams": 10}
    )
    assert approval.status_code == 201, approval.text
    assert _get(world, "/api/v1/lots", "brand_b", lotNumber=number)["count"] == 1


def test_products_are_listed_by_their_brand(world: World) -> None:
    put = world.client.put(f"/api/v1/products/{GTIN_B}", json={"name": "Tote"}, headers=world.auth("brand_b"))
    assert put.status_code == 200, put.text
    mine = _get(world, "/api/v1/products", "brand_b")
    assert [p["gtin"] for p in mine["data"]] == [GTIN_B] and mine["count"] == 1
    assert GTIN_B not in {p["gtin"] for p in _get(world, "/api/v1/products", "brand")["data"]}
    everyone = _get(world, "/api/v1/products", "retailer")
    assert GTIN_B in {p["gtin"] for p in everyone["data"]}
