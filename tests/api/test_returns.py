"""The return loop closes: a consumer's drop-off code is what a recycler types at intake; it names the item and its
request, the collection closes the request, and the consumer's passport page says the item was received. A refused
step names the item's state and what it may do next."""

from __future__ import annotations

from typing import Any

from api.audit import run_audit
from api.problems import revert_problem
from api.scans import scans_for
from ledger.audit import RoleHistory, role_changes
from ledger.errors import ContractRevert
from ledger.lifecycle import ItemState, next_actions

from .conftest import GTIN_A, World


def _request_return(world: World, item: dict[str, Any], client: str) -> str:
    path = f"/01/{item['gtin']}/21/{item['serial']}/return-requests"
    response = world.client.post(path, json={}, headers={"X-Forwarded-For": client})
    assert response.status_code == 201, response.text
    code: str = response.json()["dropOffCode"]
    return code


def _sold_and_used(world: World) -> dict[str, Any]:
    item = world.item([(world.lot()["lotId"], 200)])
    for action in ("sold", "in_use"):
        assert world.act(item, action, "retailer").status_code == 201
    return item


def test_the_return_loop_closes(world: World) -> None:
    item = _sold_and_used(world)
    page = f"/01/{GTIN_A}/21/{item['serial']}/passport"
    assert 'id="return-form"' in world.client.get(page).text

    # 1. The consumer asks for a drop-off code on the passport page.
    code = _request_return(world, item, f"10.9.{world.unique('')[-3:]}.1")

    # 2. At the counter the recycler types it (any case, dashes or not) and sees which item it is for.
    typed = code.replace("-", "").lower()
    seen = world.client.get(f"/api/v1/return-requests/{typed}", headers=world.auth("recycler"))
    assert seen.status_code == 200, seen.text
    assert seen.json()["serial"] == item["serial"] and seen.json()["status"] == "open"
    assert world.client.get(f"/api/v1/return-requests/{typed}").status_code == 401

    # 3. The intake: a collection named by the code alone.
    collected = world.post("/api/v1/lifecycle-events", "recycler", {"dropOffCode": typed, "action": "collected"})
    assert collected.status_code == 201, collected.text
    body = collected.json()
    assert body["item"]["serial"] == item["serial"] and body["item"]["state"] == "collected"
    assert body["returnRequest"]["status"] == "received" and body["returnRequest"]["receivedBy"] == "Recycler"
    assert body["returnRequest"]["dropOffCode"] == code
    on_chain = world.service.ledger.item(bytes.fromhex(item["itemId"][2:]))
    assert on_chain["state"] == ItemState.COLLECTED

    # 4. The consumer's page says the item was received, by whom; the form is gone.
    html = world.client.get(page).text
    assert 'id="return-received"' in html and "Recycler" in html and 'id="return-form"' not in html
    passport = world.client.get(f"/01/{GTIN_A}/21/{item['serial']}/passport.jsonld").json()
    assert passport["circ:howToReturn"]["circ:received"]["circ:actor"] == "Recycler"
    assert passport["circ:howToReturn"]["circ:received"]["circ:label"] == "Collected for recycling"
    status = world.client.get(f"/api/v1/return-requests/{code}", headers=world.auth("recycler")).json()
    assert status["status"] == "received" and status["receivedAt"] is not None

    # 5. The code is spent.
    again = world.post("/api/v1/lifecycle-events", "recycler", {"dropOffCode": code, "action": "collected"})
    assert again.status_code == 409 and again.json()["title"] == "Drop-off code used"


def test_a_collection_without_the_code_closes_the_request_too(world: World) -> None:
    item = _sold_and_used(world)
    code = _request_return(world, item, f"10.8.{world.unique('')[-3:]}.1")
    assert world.act(item, "collected", "recycler").status_code == 201
    status = world.client.get(f"/api/v1/return-requests/{code}", headers=world.auth("recycler")).json()
    assert status["status"] == "received" and status["receivedBy"] == "Recycler"


def test_a_drop_off_code_names_an_item_at_intake_only(world: World) -> None:
    item = _sold_and_used(world)
    code = _request_return(world, item, f"10.7.{world.unique('')[-3:]}.1")
    sale = world.post("/api/v1/lifecycle-events", "retailer", {"dropOffCode": code, "action": "resold"})
    assert sale.status_code == 422 and sale.json()["title"] == "Not an intake"
    unknown = world.post("/api/v1/lifecycle-events", "recycler", {"dropOffCode": "ZZZZ-ZZZZ", "action": "collected"})
    assert unknown.status_code == 404 and unknown.json()["title"] == "Unknown drop-off code"
    both = {"gtin": GTIN_A, "serial": item["serial"], "dropOffCode": code, "action": "collected"}
    assert world.post("/api/v1/lifecycle-events", "recycler", both).status_code == 422
    # A store takes it back with the code: a return is an intake too.
    returned = world.post("/api/v1/lifecycle-events", "retailer", {"dropOffCode": code, "action": "returned"})
    assert returned.status_code == 201, returned.text
    assert returned.json()["returnRequest"]["receivedBy"] == "Retailer"


def test_a_refused_step_names_the_state_and_the_steps_allowed_next(world: World) -> None:
    item = world.item([(world.lot()["lotId"], 200)])
    assert world.act(item, "sold", "retailer").status_code == 201
    refused = world.act(item, "resold", "retailer")
    assert refused.status_code == 409
    problem = refused.json()
    assert problem["error"] == "IllegalTransition"
    assert problem["args"]["current"] == "sold" and problem["args"]["requested"] == "resold"
    assert problem["allowedNext"] == [a.value for a in next_actions(ItemState.SOLD)]
    # The contract's own error names the states it allows next; the API names them, and the actions reaching them.
    assert problem["args"]["allowed"] == ["in_use", "returned", "collected"]
    assert "in_use" in problem["allowedNext"] and "sold" in problem["detail"] and "in_use" in problem["detail"]
    # An edge that exists for others: the recycler may not take a sold item back, a retailer may.
    other = world.act(item, "returned", "recycler")
    assert other.status_code == 403 and other.json()["error"] == "UnauthorizedTransition"
    assert "returned" in other.json()["allowedNext"] and "sold" in other.json()["detail"]
    # A repair, which the contract never sees, is refused by the table in the same shape.
    unsold = world.item([(world.lot()["lotId"], 200)])
    repair = world.act(unsold, "repaired", "repairer")
    assert repair.status_code == 409 and repair.json()["allowedNext"] == [
        a.value for a in next_actions(ItemState.MANUFACTURED)
    ]
    # Nothing reached the chain.
    assert world.service.ledger.item(bytes.fromhex(item["itemId"][2:]))["state"] == ItemState.SOLD


def test_a_contract_refusal_names_the_steps_allowed_next() -> None:
    allowed = [ItemState.IN_USE, ItemState.RETURNED, ItemState.COLLECTED]
    revert = ContractRevert("IllegalTransition", {"itemId": b"\x01" * 32, "current": 2, "requested": 7,
                                                  "allowed": [int(s) for s in allowed]})
    problem = revert_problem(revert)
    assert problem.status == 409
    assert problem.extra["allowedNext"] == ["in_use", "returned", "collected", "repaired"]
    assert problem.extra["args"]["allowed"] == ["in_use", "returned", "collected"]
    assert problem.extra["args"]["current"] == "sold"
    assert "it can next be in_use, returned, collected, repaired" in (problem.detail or "")
    # From a terminal state, nothing; an error without the list (an older deployment) falls back to the table.
    final = revert_problem(ContractRevert("IllegalTransition", {"itemId": b"\x01" * 32, "current": 8,
                                                                "requested": 5, "allowed": []}))
    assert final.extra["allowedNext"] == [] and "nothing (it is final)" in (final.detail or "")
    legacy = revert_problem(ContractRevert("IllegalTransition", {"itemId": b"\x01" * 32, "current": 2,
                                                                 "requested": 7}))
    assert legacy.extra["allowedNext"] == [a.value for a in next_actions(ItemState.SOLD)]


def test_a_gift_never_recorded_sold_is_taken_in_by_its_code(world: World) -> None:
    """Deadstock, gifts and items of other channels were never recorded sold: the recycler's intake takes them all
    the same, by the drop-off code (and a store takes back unsold stock)."""
    gift = world.item([(world.lot()["lotId"], 200)])
    code = _request_return(world, gift, f"10.6.{world.unique('')[-3:]}.1")
    collected = world.post("/api/v1/lifecycle-events", "recycler", {"dropOffCode": code, "action": "collected"})
    assert collected.status_code == 201, collected.text
    assert collected.json()["item"]["state"] == "collected"
    assert collected.json()["returnRequest"]["status"] == "received"
    assert world.service.ledger.item(bytes.fromhex(gift["itemId"][2:]))["state"] == ItemState.COLLECTED
    html = world.client.get(f"/01/{GTIN_A}/21/{gift['serial']}/passport").text
    assert 'id="return-received"' in html
    # Unsold stock in bulk: a store sends it back, a recycler collects another batch of it.
    stock = [world.item([(world.lot()["lotId"], 100)]) for _ in range(3)]
    keys = [{"gtin": i["gtin"], "serial": i["serial"]} for i in stock]
    back = world.post("/api/v1/lifecycle-batches", "retailer", {"action": "returned", "items": keys[:1]}).json()
    assert back["recorded"] == 1, back
    taken = world.post("/api/v1/lifecycle-batches", "recycler", {"action": "collected", "items": keys[1:]}).json()
    assert taken["recorded"] == 2, taken


def test_the_audit_takes_a_brands_unsold_stock_back_as_no_anomaly(world: World) -> None:
    """Unsold stock back with its brand is ordinary; an unsold item returned at a store is flagged for a look."""
    home, store = (world.item([(world.lot()["lotId"], 100)]) for _ in range(2))
    assert world.act(home, "returned", "brand").status_code == 201
    assert world.act(store, "returned", "retailer").status_code == 201
    scans_for(world.client.app.state.circular).flush()
    with world.service.sessions() as session:
        found = run_audit(session, RoleHistory(role_changes(world.service.ledger))).anomalies
    flagged = {a.subject for a in found if a.rule == "return-without-sale"}
    assert f"{GTIN_A}/{store['serial']}" in flagged and f"{GTIN_A}/{home['serial']}" not in flagged
