"""Writes: lots, items, runs, lifecycle and recycling: each a contract call as the actor and a signed EPCIS event;
contract reverts become problems that name the Solidity error and its arguments."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from sqlalchemy import select

from api.problems import PROBLEM_NS
from ledger.client import ItemState
from ledger.ids import item_id
from ledger.outbox import OutboxEvent

from .conftest import GTIN_A, GTIN_A_LOTS, GTIN_B, RESOLVER, World


def _event(world: World, event_id: str) -> dict[str, Any]:
    with world.service.sessions() as session:
        row = session.scalar(select(OutboxEvent).where(OutboxEvent.event_id == event_id))
        assert row is not None
        return {"event": row.event, "signer": row.signer}


def test_register_a_gtin_lot(world: World) -> None:
    number = world.unique("L")
    response = world.post(
        "/api/v1/lots",
        "brand",
        {
            "gtin": GTIN_A_LOTS,
            "lotNumber": number,
            "materialCode": "CO",
            "massGrams": 5000,
            "recycledShareBps": 2000,
            "certificates": ["https://certs.example/1"],
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    lot = body["lot"]
    assert lot["uri"] == f"{RESOLVER}/01/{GTIN_A_LOTS}/10/{number}"
    assert body["txHash"].startswith("0x") and len(body["txHash"]) == 66
    assert body["event"]["eventId"].startswith("ni:///sha-256;") and body["event"]["anchoring"] == "pending"
    recorded = _event(world, body["event"]["eventId"])
    assert recorded["event"]["bizStep"] == "commissioning"
    assert recorded["event"]["quantityList"][0] == {"epcClass": lot["uri"], "quantity": 5000, "uom": "GRM"}
    assert recorded["signer"] == world.client.get("/api/v1/actors/me", headers=world.auth("brand")).json()["address"]
    chain = world.service.ledger.lot(bytes.fromhex(lot["lotId"][2:]))
    assert chain["massGrams"] == 5000 and chain["recycledShareBps"] == 2000
    assert world.client.get(f"/api/v1/lots/{lot['lotId']}", headers=world.auth("admin")).json()["lotNumber"] == number


def test_register_material_lots(world: World) -> None:
    for role in ("brand", "recycler"):
        lot = world.lot(role=role, gtin=None, code="PES")
        assert lot["gtin"] is None and lot["uri"] == f"{RESOLVER}/lots/{lot['lotId']}"


def test_a_lot_registered_twice_is_409(world: World) -> None:
    body = {"gtin": GTIN_A_LOTS, "lotNumber": world.unique("L"), "materialCode": "CO", "massGrams": 10}
    assert world.post("/api/v1/lots", "brand", body).status_code == 201
    again = world.post("/api/v1/lots", "brand", body)
    assert again.status_code == 409 and again.json()["title"] == "LotAlreadyRegistered"


def test_a_mass_the_database_cannot_hold_is_422_before_any_transaction(world: World) -> None:
    # schemathesis found it: 2**63 g fit the contract's uint96, then failed to be stored (a 500, the chain written).
    lot_number = world.unique("L")
    body = {"lotNumber": lot_number, "materialCode": "CO", "massGrams": 2**63}
    response = world.post("/api/v1/lots", "brand", body)
    assert response.status_code == 422 and response.json()["errors"][0]["loc"][-1] == "massGrams"
    assert world.post("/api/v1/lots", "brand", {**body, "massGrams": 2**63 - 1}).status_code == 201


def test_a_lot_under_another_brands_gtin_is_refused(world: World) -> None:
    response = world.post(
        "/api/v1/lots",
        "brand_b",
        {"gtin": "09506000134376", "lotNumber": world.unique("L"), "materialCode": "CO", "massGrams": 10},
    )
    assert response.status_code == 403
    assert response.json()["title"] == "Not your GTIN"


def test_make_an_item(world: World) -> None:
    lot = world.lot()
    response = world.post(
        "/api/v1/items",
        "brand",
        {"gtin": GTIN_A, "serial": world.unique(), "composition": [{"lotId": lot["lotId"], "grams": 250}]},
    )
    assert response.status_code == 201, response.text
    item = response.json()["items"][0]
    assert item["state"] == "manufactured" and item["massGrams"] == 250 and item["materialized"]
    assert item["digitalLink"] == f"{RESOLVER}/01/{GTIN_A}/21/{item['serial']}"
    on_chain = world.service.ledger.item(item_id(GTIN_A, item["serial"]))
    assert on_chain["state"] == ItemState.MANUFACTURED and on_chain["massGrams"] == 250
    event = _event(world, response.json()["event"]["eventId"])["event"]
    assert event["type"] == "TransformationEvent" and event["outputEPCList"] == [item["digitalLink"]]
    admin = world.auth("admin")
    found = world.client.get(f"/api/v1/items/{GTIN_A}/{item['serial']}", headers=admin).json()
    assert found["itemId"] == item["itemId"]


def test_mass_balance_is_enforced_by_the_contract(world: World) -> None:
    lot = world.lot(grams=100)
    response = world.post(
        "/api/v1/items",
        "brand",
        {"gtin": GTIN_A, "serial": world.unique(), "composition": [{"lotId": lot["lotId"], "grams": 101}]},
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["error"] == "LotMassExceeded"
    assert problem["args"] == {"lotId": lot["lotId"], "requestedGrams": 101, "availableGrams": 100}


def test_run_of_thousands_in_one_transaction(world: World) -> None:
    lot = world.lot(grams=2_000_000)
    serials = [world.unique("R") for _ in range(2000)]
    response = world.post(
        "/api/v1/runs",
        "brand",
        {"gtin": GTIN_A, "serials": serials, "composition": [{"lotId": lot["lotId"], "grams": 150}]},
    )
    assert response.status_code == 201, response.text
    run = response.json()
    assert run["count"] == 2000 and run["first"] == f"{RESOLVER}/01/{GTIN_A}/21/{serials[0]}"
    receipt = world.service.backend.web3.eth.get_transaction_receipt(run["txHash"])
    assert receipt["status"] == 1
    assert world.service.ledger.available_grams(bytes.fromhex(lot["lotId"][2:])) == 2_000_000 - 300_000
    item = world.client.get(f"/api/v1/items/{GTIN_A}/{serials[1234]}", headers=world.auth("admin")).json()
    assert item["runId"] == run["runId"] and not item["materialized"]
    # its first transition proves it into the run on-chain
    sold = world.act(item, "sold", "retailer")
    assert sold.status_code == 201, sold.text
    assert sold.json()["item"]["materialized"] and sold.json()["item"]["state"] == "sold"
    assert world.service.ledger.item(item_id(GTIN_A, serials[1234]))["state"] == ItemState.SOLD
    assert world.client.get(f"/01/{GTIN_A}/21/{serials[1999]}", follow_redirects=False).status_code == 307


def test_run_limits(world: World) -> None:
    lot = world.lot()
    too_many = world.post(
        "/api/v1/runs",
        "brand",
        {
            "gtin": GTIN_A,
            "serials": [f"X{i}" for i in range(5001)],
            "composition": [{"lotId": lot["lotId"], "grams": 1}],
        },
    )
    assert too_many.status_code == 422
    twice = world.post(
        "/api/v1/runs",
        "brand",
        {"gtin": GTIN_A, "serials": ["D1", "D1"], "composition": [{"lotId": lot["lotId"], "grams": 1}]},
    )
    assert twice.status_code == 422


def test_full_lifecycle_and_recycling(world: World) -> None:
    lot = world.lot()
    item = world.item([(lot["lotId"], 300)])
    for action, role, state in [
        ("sold", "retailer", "sold"),
        ("in_use", "retailer", "in_use"),
        ("repaired", "repairer", "in_use"),
        ("returned", "retailer", "returned"),
        ("refurbished", "repairer", "refurbished"),
        ("resold", "retailer", "resold"),
        ("in_use", "brand", "in_use"),
        ("collected", "recycler", "collected"),
    ]:
        response = world.act(item, action, role)
        assert response.status_code == 201, (action, response.text)
        body = response.json()
        assert body["item"]["state"] == state
        assert (body["txHash"] is None) == (action == "repaired")
    response = world.post(
        "/api/v1/recycling",
        "recycler",
        {
            "items": [{"gtin": GTIN_A, "serial": item["serial"]}],
            "materialCode": "rCO",
            "lotNumber": world.unique("R"),
            "massGrams": 280,
        },
    )
    assert response.status_code == 201, response.text
    recovered = response.json()["lot"]
    assert recovered["recovered"] and recovered["recycledShareBps"] == 10_000
    assert recovered["sourceItems"] == [item["itemId"]]
    after = world.client.get(f"/api/v1/items/{GTIN_A}/{item['serial']}", headers=world.auth("admin")).json()
    assert after["state"] == "recycled" and after["recoveredInto"] == recovered["lotId"]
    event = _event(world, response.json()["event"]["eventId"])["event"]
    assert event["inputEPCList"] == [item["digitalLink"]]
    assert event["outputQuantityList"][0]["epcClass"] == recovered["uri"]


def test_illegal_transition_is_409_with_the_error(world: World) -> None:
    lot = world.lot()
    item = world.item([(lot["lotId"], 10)])
    response = world.act(item, "in_use", "retailer")  # manufactured → in use has no edge
    assert response.status_code == 409
    problem = response.json()
    assert problem["error"] == "IllegalTransition" and problem["type"] == PROBLEM_NS + "contract-revert"
    assert problem["args"]["current"] == "manufactured" and problem["args"]["requested"] == "in_use"
    assert problem["args"]["allowed"] == ["sold", "returned", "collected", "disposed"]
    assert problem["allowedNext"] == ["sold", "returned", "collected", "disposed"]
    assert problem["args"]["itemId"] == item["itemId"]


def test_repair_of_an_unsold_item_is_409(world: World) -> None:
    lot = world.lot()
    item = world.item([(lot["lotId"], 10)])
    response = world.act(item, "repaired", "repairer")
    assert response.status_code == 409 and response.json()["error"] == "IllegalTransition"


def test_recycling_more_than_collected_is_refused(world: World) -> None:
    lot = world.lot()
    item = world.item([(lot["lotId"], 100)])
    for action, role in [("sold", "retailer"), ("returned", "retailer"), ("collected", "recycler")]:
        assert world.act(item, action, role).status_code == 201
    response = world.post(
        "/api/v1/recycling",
        "recycler",
        {
            "items": [{"gtin": GTIN_A, "serial": item["serial"]}],
            "materialCode": "rCO",
            "lotNumber": world.unique("R"),
            "massGrams": 101,
        },
    )
    assert response.status_code == 422 and response.json()["error"] == "RecoveredMassExceeded"


def test_brands_use_only_their_own_or_approved_lots(world: World) -> None:
    lot_a = world.lot()
    refused = world.post(
        "/api/v1/items",
        "brand_b",
        {"gtin": GTIN_B, "serial": world.unique(), "composition": [{"lotId": lot_a["lotId"], "grams": 1}]},
    )
    assert refused.status_code == 403 and refused.json()["title"] == "Not your lot"
    unknown = world.post(
        "/api/v1/items",
        "brand_b",
        {"gtin": GTIN_B, "serial": world.unique(), "composition": [{"lotId": "0x" + "12" * 32, "grams": 1}]},
    )
    assert unknown.status_code == 422 and unknown.json()["title"] == "Unknown lot"


def test_an_approval_above_the_allowance_is_refused_by_the_contract(world: World) -> None:
    recovered_source = world.lot(role="recycler", gtin=None, code="rPES", share=10_000)
    approval = world.post(
        f"/api/v1/lots/{recovered_source['lotId']}/approvals",
        "recycler",
        {"operatorId": world.actor_ids["brand_b"], "grams": 50},
    )
    assert approval.status_code == 201, approval.text
    over = world.post(
        "/api/v1/items",
        "brand_b",
        {"gtin": GTIN_B, "serial": world.unique(), "composition": [{"lotId": recovered_source["lotId"], "grams": 60}]},
    )
    assert over.status_code == 403 and over.json()["error"] == "LotAllocationUnauthorized"
    within = world.post(
        "/api/v1/items",
        "brand_b",
        {"gtin": GTIN_B, "serial": world.unique(), "composition": [{"lotId": recovered_source["lotId"], "grams": 50}]},
    )
    assert within.status_code == 201, within.text


def test_anchoring_status(world: World) -> None:
    lot = world.lot()
    item = world.item([(lot["lotId"], 10)])
    event_id = world.act(item, "sold", "retailer").json()["event"]["eventId"]
    path = f"/api/v1/anchoring/{quote(event_id, safe='')}"
    pending = world.client.get(path, headers=world.auth("retailer")).json()
    assert pending["anchoring"] == "pending" and pending["batch"] is None
    world.drain()
    anchored = world.client.get(f"/api/v1/anchoring/{event_id}", headers=world.auth("retailer")).json()
    assert anchored["anchoring"] == "anchored" and anchored["batch"]["txHash"].startswith("0x")
    assert anchored["proof"] is not None and anchored["signer"].startswith("0x")
    assert world.client.get(path, headers=world.auth("brand")).status_code == 200  # the item's brand reads it too
    unknown = "/api/v1/anchoring/ni:///sha-256;00?ver=CBV2.0"
    assert world.client.get(unknown, headers=world.auth("retailer")).status_code == 404


def test_anchoring_status_names_its_signer_only_to_who_may_read_the_event(world: World) -> None:
    lot = world.lot()
    item = world.item([(lot["lotId"], 10)])
    event_id = world.act(item, "sold", "retailer").json()["event"]["eventId"]
    path = f"/api/v1/anchoring/{quote(event_id, safe='')}"
    anonymous = world.client.get(path)
    assert anonymous.status_code == 401 and "signer" not in anonymous.text
    # Brand B neither made nor sold the item: the event is not its business, and it is told no more than "unknown".
    other = world.client.get(path, headers=world.auth("brand_b"))
    assert other.status_code == 404 and "0x" not in other.json()["detail"].replace(event_id, "")


def test_the_contract_checks_roles_too(world: World) -> None:
    """An actor whose on-chain role was revoked keeps its API key: the contract refuses it (authorised twice)."""
    created = world.post(
        "/api/v1/actors",
        "admin",
        {"name": world.unique("Brand "), "role": "brand", "prefixes": [f"95{world.unique('')[1:]}"]},
    )
    assert created.status_code == 201, created.text
    key, address = created.json()["apiKey"], created.json()["actor"]["address"]
    from api.actors import chain_admin

    world.service.ledger.revoke_role(chain_admin(world.service), "brand", address)
    response = world.client.post(
        "/api/v1/lots",
        json={"lotNumber": "X1", "materialCode": "CO", "massGrams": 1},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 403
    assert response.json()["error"] == "AccessControlUnauthorizedAccount"
    assert response.json()["args"]["account"] == address


def test_products(world: World) -> None:
    response = world.client.put(
        f"/api/v1/products/{GTIN_B}", json={"name": "Hoodie", "language": "nl"}, headers=world.auth("brand_b")
    )
    assert response.status_code == 200 and response.json()["language"] == "nl"
    assert world.client.get(f"/api/v1/products/{GTIN_B}").json()["name"] == "Hoodie"
    foreign = world.client.put(f"/api/v1/products/{GTIN_B}", json={"name": "Mine"}, headers=world.auth("brand"))
    assert foreign.status_code == 403
    not_owned = world.client.put("/api/v1/products/09506000134376", json={"name": "x"}, headers=world.auth("brand_b"))
    assert not_owned.status_code == 403
    assert world.client.get("/api/v1/products/09506000134353").status_code == 400


def test_ids_beyond_the_database_are_refused_not_looked_up(world: World) -> None:
    too_big = 2**31
    revoke = world.post(f"/api/v1/actors/{too_big}/revoke", "admin", {})
    assert revoke.status_code == 422
    lot = world.lot(role="recycler", gtin=None, code="PES")
    approval = world.post(f"/api/v1/lots/{lot['lotId']}/approvals", "recycler", {"operatorId": 2**70, "grams": 1})
    assert approval.status_code == 422 and approval.json()["errors"][0]["loc"][-1] == "operatorId"
