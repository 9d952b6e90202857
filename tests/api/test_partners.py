"""Partners through the write API: a brand authorises the retailers, recyclers and repairers that may move its items
(``/api/v1/partners``), and the contract refuses everyone else, on SQLite and PostgreSQL.

The world's brands have authorised the cast's retailer, recycler and repairer; a recycler onboarded here is no one's
partner until a brand says so.
"""

from __future__ import annotations

from typing import Any

from api import add_actor
from api.models import Actor

from .conftest import World


def _newcomer(world: World, role: str) -> tuple[int, dict[str, str]]:
    """A new actor of `role`, holding the on-chain role but no brand's partner: its id and auth header."""
    with world.service.sessions() as session:
        actor, key = add_actor(
            world.service, session, role, world.unique(f"{role} "), keys=world.client.app.state.circular.keys
        )
    return actor.id, {"Authorization": f"Bearer {key}"}


def _state(world: World, item: dict[str, Any]) -> str:
    admin = world.auth("admin")
    body: dict[str, Any] = world.client.get(f"/api/v1/items/{item['gtin']}/{item['serial']}", headers=admin).json()
    return str(body["state"])


def test_a_brand_lists_its_partners(world: World) -> None:
    response = world.client.get("/api/v1/partners", headers=world.auth("brand"))
    assert response.status_code == 200, response.text
    partners = response.json()["partners"]
    assert {(p["actorId"], p["role"], p["authorized"]) for p in partners} >= {
        (world.actor_ids[r], r, True) for r in ("recycler", "retailer", "repairer")
    }
    assert all(p["address"].startswith("0x") and p["txHash"] is None for p in partners)


def test_a_recycler_that_is_not_the_brands_partner_is_refused(world: World) -> None:
    """The reported attack through the API: a recycler disposed of a brand's never-sold item (terminal)."""
    lot = world.lot()
    item = world.item([(lot["lotId"], 100)])
    rogue_id, rogue = _newcomer(world, "recycler")
    body = {"gtin": item["gtin"], "serial": item["serial"], "action": "disposed"}
    refused = world.client.post("/api/v1/lifecycle-events", json=body, headers=rogue)
    assert refused.status_code == 403, refused.text
    problem = refused.json()
    assert problem["error"] == "NotBrandPartner"
    assert problem["args"]["account"].lower() == _address(world, rogue_id).lower()
    assert _state(world, item) == "manufactured"

    # Brand A authorises it: from then on the same request goes through.
    added = world.post("/api/v1/partners", "brand", {"actorId": rogue_id})
    assert added.status_code == 201, added.text
    assert added.json() | {"txHash": None} == {
        "actorId": rogue_id,
        "name": added.json()["name"],
        "role": "recycler",
        "address": _address(world, rogue_id),
        "authorized": True,
        "txHash": None,
    }
    assert added.json()["txHash"].startswith("0x")
    assert world.service.ledger.is_partner(_address(world, "brand"), _address(world, rogue_id), "recycler")
    accepted = world.client.post("/api/v1/lifecycle-events", json=body, headers=rogue)
    assert accepted.status_code == 201, accepted.text
    assert _state(world, item) == "disposed"


def test_a_revoked_partner_is_refused_at_once(world: World) -> None:
    retailer_id, retailer = _newcomer(world, "retailer")
    assert world.post("/api/v1/partners", "brand", {"actorId": retailer_id}).status_code == 201
    lot = world.lot()
    first, second = world.item([(lot["lotId"], 100)]), world.item([(lot["lotId"], 100)])
    sell = {"action": "sold"}
    ok = world.client.post(
        "/api/v1/lifecycle-events", json={**sell, "gtin": first["gtin"], "serial": first["serial"]}, headers=retailer
    )
    assert ok.status_code == 201, ok.text

    removed = world.client.delete(f"/api/v1/partners/{retailer_id}", headers=world.auth("brand"))
    assert removed.status_code == 200, removed.text
    assert removed.json()["authorized"] is False and removed.json()["txHash"].startswith("0x")
    listed = world.client.get("/api/v1/partners", headers=world.auth("brand")).json()["partners"]
    assert retailer_id not in {p["actorId"] for p in listed}
    refused = world.client.post(
        "/api/v1/lifecycle-events", json={**sell, "gtin": second["gtin"], "serial": second["serial"]}, headers=retailer
    )
    assert refused.status_code == 403 and refused.json()["error"] == "NotBrandPartner"
    assert _state(world, second) == "manufactured"
    # Removing it again: it is no partner any more.
    again = world.client.delete(f"/api/v1/partners/{retailer_id}", headers=world.auth("brand"))
    assert again.status_code == 404 and again.json()["title"] == "Not a partner"
    # Brand B's partnership is its own: brand A's removal of the cast's retailer would not touch it.
    assert world.service.ledger.is_partner(_address(world, "brand_b"), _address(world, "retailer"), "retailer")


def test_partner_requests_are_checked(world: World) -> None:
    # Only brands manage partners.
    for role in ("retailer", "recycler", "admin"):
        response = world.post("/api/v1/partners", role, {"actorId": world.actor_ids["retailer"]})
        assert response.status_code == 403, (role, response.text)
        assert world.client.get("/api/v1/partners", headers=world.auth(role)).status_code == 403
    # A partner is a retailer, recycler or repairer.
    for other in ("brand_b", "admin"):
        response = world.post("/api/v1/partners", "brand", {"actorId": world.actor_ids[other]})
        assert response.status_code == 422, response.text
        assert response.json()["allowedRoles"] == ["recycler", "repairer", "retailer"]
    assert world.post("/api/v1/partners", "brand", {"actorId": 2**31 - 1}).status_code == 404
    for body in ({}, {"actorId": 0}, {"actorId": "x"}, {"actorId": 1, "role": "recycler"}):
        assert world.post("/api/v1/partners", "brand", body).status_code == 422, body
    assert world.client.delete("/api/v1/partners/0", headers=world.auth("brand")).status_code == 422
    assert world.client.post("/api/v1/partners", json={"actorId": 1}).status_code == 401


def _address(world: World, who: int | str) -> str:
    actor_id = who if isinstance(who, int) else world.actor_ids[who]
    with world.service.sessions() as session:
        actor = session.get(Actor, actor_id)
        assert actor is not None
        return actor.address


def test_a_repair_the_contract_never_sees_needs_the_partnership_too(world: World) -> None:
    """A repair moves no on-chain state, so no contract refuses it: the API asks the chain whether the brand has
    authorised the repairer, and refuses in the contract's own words."""
    item = world.item([(world.lot()["lotId"], 100)])
    assert world.act(item, "sold", "retailer").status_code == 201
    repairer_id, repairer = _newcomer(world, "repairer")
    body = {"gtin": item["gtin"], "serial": item["serial"], "action": "repaired"}
    refused = world.client.post("/api/v1/lifecycle-events", json=body, headers=repairer)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"] == "NotBrandPartner"
    assert refused.json()["args"]["brand"] == _address(world, "brand")
    assert world.act(item, "repaired", "repairer").status_code == 201  # the brand's own repairer may
    assert world.post("/api/v1/partners", "brand", {"actorId": repairer_id}).status_code == 201
    accepted = world.client.post("/api/v1/lifecycle-events", json=body, headers=repairer)
    assert accepted.status_code == 201, accepted.text


def test_a_bulk_write_refuses_a_non_partner_before_sending(world: World) -> None:
    lot = world.lot()
    items = [world.item([(lot["lotId"], 100)]) for _ in range(3)]
    for item in items:
        for action in ("sold", "in_use"):
            assert world.act(item, action, "retailer").status_code == 201
    _, rogue = _newcomer(world, "recycler")
    keys = [{"gtin": i["gtin"], "serial": i["serial"]} for i in items]
    response = world.client.post(
        "/api/v1/lifecycle-batches", json={"action": "collected", "items": keys}, headers=rogue
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["refused"] * 3
    assert {r["problem"]["error"] for r in results} == {"NotBrandPartner"}
    assert all(_state(world, i) == "in_use" for i in items)
    # The brand's own recycler collects the same items in one bulk write.
    own = world.post("/api/v1/lifecycle-batches", "recycler", {"action": "collected", "items": keys})
    assert [r["status"] for r in own.json()["results"]] == ["recorded"] * 3, own.text
