"""The authorisation matrix: every role (and no key at all) against every authenticated endpoint.

Anonymous requests get 401; a role the API refuses gets the API's own 403 (before any chain call); an allowed role
gets through (the contract, which checks roles again, then agrees). ``brand_b`` stands for "a brand, but not the
owner": it must not act on brand A's GTINs, lots or items.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from api.problems import PROBLEM_NS

from .conftest import GTIN_A, GTIN_A_LOTS, GTIN_B, World

ROLES = ("anonymous", "admin", "brand", "brand_b", "recycler", "retailer", "repairer")
ALL = frozenset(ROLES) - {"anonymous"}
SUPPLY_CHAIN = frozenset({"brand", "brand_b", "recycler", "retailer", "repairer"})


def _capture_doc() -> dict[str, Any]:
    return {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-01T10:00:00.000Z",
        "epcisBody": {
            "eventList": [
                {
                    "type": "ObjectEvent",
                    "eventTime": "2026-11-01T10:00:00.000Z",
                    "eventTimeZoneOffset": "+00:00",
                    "epcList": ["https://id.circular.example/01/00614141107346/21/AUTHZ"],  # nobody's GTIN here
                    "action": "OBSERVE",
                    "bizStep": "inspecting",
                }
            ]
        },
    }


Request = Callable[[World, dict[str, str], bool], Any]
_SHARED: dict[tuple[str, str], Any] = {}


def shared(world: World, name: str, make: Callable[[], Any], fresh: bool) -> Any:
    """A fresh resource for a request that will go through; one shared per world for requests that will not."""
    if fresh:
        return make()
    key = (world.db, name)
    if key not in _SHARED:
        _SHARED[key] = make()
    return _SHARED[key]


def _big_lot(w: World) -> dict[str, Any]:
    return shared(w, "lot", lambda: w.lot(grams=50_000_000), False)


def _collected(w: World) -> dict[str, Any]:
    item = w.item([(_big_lot(w)["lotId"], 100)])
    for action, role in [("sold", "retailer"), ("returned", "retailer"), ("collected", "recycler")]:
        assert w.act(item, action, role).status_code == 201
    return item


def _requests() -> dict[str, tuple[frozenset[str], Request]]:
    def create_actor(w: World, h: dict[str, str], fresh: bool) -> Any:
        return w.client.post("/api/v1/actors", json={"name": w.unique("Retailer "), "role": "retailer"}, headers=h)

    def revoke(w: World, h: dict[str, str], fresh: bool) -> Any:
        victim = shared(
            w,
            "victim",
            lambda: w.post("/api/v1/actors", "admin", {"name": w.unique("Victim "), "role": "repairer"}).json(),
            fresh,
        )
        return w.client.post(f"/api/v1/actors/{victim['actor']['id']}/revoke", headers=h)

    def put_product(w: World, h: dict[str, str], fresh: bool) -> Any:
        return w.client.put(f"/api/v1/products/{GTIN_A}", json={"name": "Organic T-shirt"}, headers=h)

    def gtin_lot(w: World, h: dict[str, str], fresh: bool) -> Any:
        return w.client.post(
            "/api/v1/lots",
            json={"gtin": GTIN_A_LOTS, "lotNumber": w.unique("Z"), "materialCode": "CO", "massGrams": 100},
            headers=h,
        )

    def material_lot(w: World, h: dict[str, str], fresh: bool) -> Any:
        return w.client.post(
            "/api/v1/lots", json={"lotNumber": w.unique("Z"), "materialCode": "CO", "massGrams": 100}, headers=h
        )

    def approve(w: World, h: dict[str, str], fresh: bool) -> Any:
        lot = _big_lot(w)  # brand A's
        return w.client.post(
            f"/api/v1/lots/{lot['lotId']}/approvals",
            json={"operatorId": w.actor_ids["brand_b"], "grams": 10},
            headers=h,
        )

    def make_item(w: World, h: dict[str, str], fresh: bool) -> Any:
        lot = _big_lot(w)
        return w.client.post(
            "/api/v1/items",
            json={"gtin": GTIN_A, "serial": w.unique(), "composition": [{"lotId": lot["lotId"], "grams": 10}]},
            headers=h,
        )

    def make_run(w: World, h: dict[str, str], fresh: bool) -> Any:
        lot = _big_lot(w)
        return w.client.post(
            "/api/v1/runs",
            json={
                "gtin": GTIN_A,
                "serials": [w.unique(), w.unique()],
                "composition": [{"lotId": lot["lotId"], "grams": 10}],
            },
            headers=h,
        )

    def recycle(w: World, h: dict[str, str], fresh: bool) -> Any:
        item = shared(w, "collected", lambda: _collected(w), fresh)
        return w.client.post(
            "/api/v1/recycling",
            json={
                "items": [{"gtin": GTIN_A, "serial": item["serial"]}],
                "materialCode": "rCO",
                "lotNumber": w.unique("RZ"),
                "massGrams": 90,
            },
            headers=h,
        )

    def capture(w: World, h: dict[str, str], fresh: bool) -> Any:
        return w.client.post("/epcis/capture", json=_capture_doc(), headers=h)

    return {
        "POST /actors": (frozenset({"admin"}), create_actor),
        "GET /actors": (frozenset({"admin"}), lambda w, h, f: w.client.get("/api/v1/actors", headers=h)),
        "POST /actors/{id}/revoke": (frozenset({"admin"}), revoke),
        "GET /actors/me": (ALL, lambda w, h, f: w.client.get("/api/v1/actors/me", headers=h)),
        "PUT /products/{gtin}": (frozenset({"brand"}), put_product),
        "POST /lots (GTIN)": (frozenset({"brand"}), gtin_lot),
        "POST /lots (material)": (frozenset({"brand", "brand_b", "recycler"}), material_lot),
        "POST /lots/{id}/approvals": (frozenset({"brand"}), approve),
        "POST /items": (frozenset({"brand"}), make_item),
        "POST /runs": (frozenset({"brand"}), make_run),
        "POST /recycling": (frozenset({"recycler"}), recycle),
        "POST /epcis/capture": (SUPPLY_CHAIN, capture),
        "GET /epcis/capture": (ALL, lambda w, h, f: w.client.get("/epcis/capture", headers=h)),
    }


REQUESTS = _requests()

# action → (roles allowed, the steps from "manufactured" to a state where each allowed role may take it)
LIFECYCLE: dict[str, tuple[frozenset[str], dict[str, list[tuple[str, str]]]]] = {
    "sold": (frozenset({"brand", "retailer"}), {}),
    "in_use": (
        frozenset({"brand", "retailer", "repairer"}),
        {
            "brand": [("sold", "retailer")],
            "retailer": [("sold", "retailer")],
            "repairer": [("sold", "retailer"), ("returned", "retailer"), ("refurbished", "repairer")],
        },
    ),
    "returned": (
        frozenset({"brand", "retailer", "recycler"}),
        {
            "brand": [("sold", "retailer")],
            "retailer": [("sold", "retailer")],
            "recycler": [("sold", "retailer"), ("in_use", "retailer")],
        },
    ),
    "collected": (frozenset({"recycler"}), {"recycler": [("sold", "retailer"), ("returned", "retailer")]}),
    "repaired": (
        frozenset({"brand", "repairer"}),
        {"brand": [("sold", "retailer")], "repairer": [("sold", "retailer")]},
    ),
    "refurbished": (
        frozenset({"brand", "repairer"}),
        {
            "brand": [("sold", "retailer"), ("returned", "retailer")],
            "repairer": [("sold", "retailer"), ("returned", "retailer")],
        },
    ),
    "resold": (
        frozenset({"brand", "retailer"}),
        {
            "brand": [("sold", "retailer"), ("returned", "retailer")],
            "retailer": [("sold", "retailer"), ("returned", "retailer")],
        },
    ),
    "disposed": (frozenset({"brand", "recycler"}), {}),
}


def _headers(world: World, role: str) -> dict[str, str]:
    return {} if role == "anonymous" else world.auth(role)


def _assert_outcome(response: Any, role: str, allowed: frozenset[str]) -> None:
    if role == "anonymous":
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"].startswith("Bearer")
    elif role in allowed:
        assert 200 <= response.status_code < 300, response.text
    else:
        assert response.status_code == 403, response.text
        problem = response.json()
        assert problem["type"] != PROBLEM_NS + "contract-revert"  # refused by the API, before the chain
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", list(REQUESTS))
def test_endpoint_matrix(world: World, endpoint: str, role: str) -> None:
    allowed, request = REQUESTS[endpoint]
    _assert_outcome(request(world, _headers(world, role), role in allowed), role, allowed)


@pytest.fixture(scope="module")
def lot_a(world: World) -> dict[str, Any]:
    return _big_lot(world)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(LIFECYCLE))
def test_lifecycle_matrix(world: World, lot_a: dict[str, Any], action: str, role: str) -> None:
    allowed, steps = LIFECYCLE[action]
    fresh = role in allowed
    item = shared(world, "manufactured", lambda: world.item([(lot_a["lotId"], 10)]), fresh)
    if fresh:
        for step, actor in steps.get(role, []):
            assert world.act(item, step, actor).status_code == 201
    body = {"gtin": GTIN_A, "serial": item["serial"], "action": action}
    response = world.client.post("/api/v1/lifecycle-events", json=body, headers=_headers(world, role))
    _assert_outcome(response, role, allowed)


def test_a_brand_never_acts_on_another_brands_item(world: World, lot_a: dict[str, Any]) -> None:
    item = world.item([(lot_a["lotId"], 10)])
    response = world.act(item, "sold", "brand_b")
    assert response.status_code == 403 and response.json()["title"] == "Not your item"


def test_revocation_is_immediate(world: World) -> None:
    created = world.post("/api/v1/actors", "admin", {"name": world.unique("Temp "), "role": "retailer"}).json()
    headers = {"Authorization": f"Bearer {created['apiKey']}"}
    assert world.client.get("/api/v1/actors/me", headers=headers).status_code == 200
    revoked = world.post(f"/api/v1/actors/{created['actor']['id']}/revoke", "admin", {})
    assert revoked.status_code == 200 and revoked.json()["revoked"]
    assert world.client.get("/api/v1/actors/me", headers=headers).status_code == 401


def test_wrong_or_malformed_keys_are_401(world: World) -> None:
    for value in ("Bearer clk_nope", "Basic dXNlcjpwYXNz", "Bearer", "clk_nope"):
        response = world.client.get("/api/v1/actors/me", headers={"Authorization": value})
        assert response.status_code == 401, value


def test_keys_are_stored_hashed(world: World) -> None:
    from sqlalchemy import select

    from api.models import Actor

    with world.service.sessions() as session:
        stored = list(session.scalars(select(Actor.key_hash)))
    assert world.keys["brand"] not in stored and all(len(h) == 64 for h in stored)


def test_gtin_b_is_brand_bs(world: World) -> None:
    response = world.client.put(f"/api/v1/products/{GTIN_B}", json={"name": "Hoodie"}, headers=world.auth("brand"))
    assert response.status_code == 403
