"""Stateful API fuzzing: random sequences of operations whose later calls use what earlier ones answered (products,
lots, items, runs, lifecycle events by every role, approvals, recycling, anchoring, passport and EPCIS reads), each
response checked against the app's own OpenAPI document.

schemathesis's stateful machine (``schema.as_state_machine()``) needs OpenAPI links, which this API does not
declare, and its pytest plugin does not run under pytest 9; so this is a ``hypothesis.stateful`` machine driving
the TestClient, with a conformance check of its own:

- no 5xx;
- a documented status: the body validates against the documented schema (``jsonschema``, refs resolved inside the
  OpenAPI document);
- an undocumented 4xx: an RFC 9457 problem (``application/problem+json``, the ``Problem`` schema);
- an undocumented 3xx (the resolver's redirects): a ``Location`` header;
- and the model's expectations: what the model says must go through does (201), what it says must be refused is a
  4xx, and an item's state is what the model says after every step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote

import jsonschema
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from api.problems import PROBLEM_JSON
from tests.api.conftest import GTIN_A, GTIN_A_LOTS, GTIN_B, World

SEQUENCES = 12
STEPS = 15
STATS: dict[str, Any] = {"sequences": 0, "steps": 0, "checked": 0, "by_status": {}, "recycled": 0, "moves": 0}

# Who may take each lifecycle action through the API (api/README.md), and the contract's graph (state → action →
# next state). "brand" is the item's own brand.
ACTION_ROLES = {
    "sold": {"brand", "retailer"}, "resold": {"brand", "retailer"},
    "in_use": {"brand", "retailer", "repairer"}, "returned": {"brand", "retailer", "recycler"},
    "collected": {"recycler"}, "repaired": {"brand", "repairer"}, "refurbished": {"brand", "repairer"},
    "disposed": {"brand", "recycler"},
}
_COLLECT = {"collected": ("collected", {"recycler"})}  # intake: from every state in circulation
GRAPH: dict[str, dict[str, tuple[str, set[str]]]] = {
    "manufactured": {"sold": ("sold", {"brand", "retailer"}), "disposed": ("disposed", {"brand", "recycler"}),
                     "returned": ("returned", {"brand", "retailer", "recycler"}), **_COLLECT},
    "sold": {"in_use": ("in_use", {"brand", "retailer"}), "returned": ("returned", {"brand", "retailer"}),
             **_COLLECT},
    "resold": {"in_use": ("in_use", {"brand", "retailer"}), "returned": ("returned", {"brand", "retailer"}),
               **_COLLECT},
    "in_use": {"returned": ("returned", {"brand", "retailer", "recycler"}), **_COLLECT,
               "refurbished": ("refurbished", {"brand", "repairer"})},
    "returned": {**_COLLECT, "disposed": ("disposed", {"recycler"}),
                 "refurbished": ("refurbished", {"brand", "repairer"}), "resold": ("resold", {"brand", "retailer"})},
    "collected": {"disposed": ("disposed", {"recycler"}), "refurbished": ("refurbished", {"brand", "repairer"})},
    "refurbished": {"in_use": ("in_use", {"brand", "retailer", "repairer"}),
                    "resold": ("resold", {"brand", "retailer"}), **_COLLECT},
}
REPAIRABLE = {"sold", "in_use", "returned", "collected", "refurbished", "resold"}
ROLES = ("brand", "brand_b", "retailer", "recycler", "repairer")


class Conformance:
    """Checks responses against the app's OpenAPI document."""

    def __init__(self, openapi: dict[str, Any]) -> None:
        self.openapi = openapi
        self.components = openapi.get("components", {})
        self.problem = self._validator({"$ref": "#/components/schemas/Problem"})
        self.violations: list[str] = []

    def _validator(self, schema: dict[str, Any]) -> jsonschema.protocols.Validator:
        # The refs are "#/components/schemas/X": with the components at the root, they resolve as written.
        return jsonschema.Draft202012Validator({**schema, "components": self.components})

    def check(self, method: str, template: str, response: Any) -> None:
        status = response.status_code
        STATS["checked"] += 1
        by_status: dict[int, int] = STATS["by_status"]
        by_status[status] = by_status.get(status, 0) + 1
        where = f"{method} {template} -> {status}"
        if status >= 500:
            self.violations.append(f"{where}: server error {response.text[:200]}")
            return
        operation = self.openapi["paths"][template][method.lower()]
        documented = operation["responses"].get(str(status))
        media = response.headers.get("content-type", "").split(";")[0].strip()
        if documented is None:
            if 300 <= status < 400:
                if "location" not in response.headers:
                    self.violations.append(f"{where}: redirect without Location")
            elif 400 <= status < 500:
                if media != PROBLEM_JSON:
                    self.violations.append(f"{where}: {media}, not problem details")
                else:
                    self._validate(self.problem, response, where)
            else:
                self.violations.append(f"{where}: undocumented status")
            return
        content = documented.get("content") or {}
        if not content:
            return
        if media not in content:
            if all(not entry.get("schema") for entry in content.values()):
                return  # documented as "anything" (the resolver's pages, JSON-LD and images)
            self.violations.append(f"{where}: content type {media}, documented {sorted(content)}")
            return
        schema = content[media].get("schema") or {}
        if schema:
            self._validate(self._validator(schema), response, where)

    def _validate(self, validator: jsonschema.protocols.Validator, response: Any, where: str) -> None:
        errors = list(validator.iter_errors(response.json()))
        if errors:
            self.violations.append(f"{where}: {errors[0].message[:200]} at {list(errors[0].absolute_path)}")


@dataclass
class LotModel:
    lot_id: str
    owner: str
    grams: int
    drawn: int = 0
    approved: dict[str, int] = field(default_factory=dict)


@dataclass
class ItemModel:
    gtin: str
    serial: str
    brand: str
    grams: int
    state: str = "manufactured"


class ApiMachine(RuleBasedStateMachine):
    world: ClassVar[World]
    conformance: ClassVar[Conformance]

    lots = Bundle("lots")
    items = Bundle("items")

    def __init__(self) -> None:
        super().__init__()
        self.event_ids: list[str] = []
        STATS["sequences"] += 1

    # -- plumbing --------------------------------------------------------------------------------------------------
    def call(self, method: str, template: str, path: str, role: str | None = None, body: Any = None,
             **kwargs: Any) -> Any:
        w = self.world
        headers = w.auth(role) if role else {}
        response = w.client.request(method, path, json=body, headers=headers, follow_redirects=False, **kwargs)
        self.conformance.check(method, template, response)
        assert response.status_code < 500, f"{method} {path}: {response.status_code} {response.text[:300]}"
        event = (response.json().get("event") or {}) if response.status_code in (200, 201) and \
            response.headers.get("content-type", "").startswith("application/json") and \
            isinstance(response.json(), dict) else {}
        if event.get("eventId"):
            self.event_ids.append(event["eventId"])
        return response

    def unique(self, prefix: str) -> str:
        return self.world.unique(prefix)

    # -- writes ----------------------------------------------------------------------------------------------------
    @initialize(target=lots)
    def first_lot(self) -> Any:
        return self.register_lot("brand", 100_000)

    @rule(target=lots, owner=st.sampled_from(["brand", "brand_b", "recycler"]), grams=st.integers(1, 100_000))
    def register_lot(self, owner: str, grams: int) -> Any:
        body: dict[str, Any] = {"lotNumber": self.unique("FL"), "materialCode": "CO", "massGrams": grams,
                                "recycledShareBps": 0}
        if owner == "brand":
            body["gtin"] = GTIN_A_LOTS
        response = self.call("POST", "/api/v1/lots", "/api/v1/lots", owner, body)
        assert response.status_code == 201, response.text
        return LotModel(response.json()["lot"]["lotId"], owner, grams)

    @rule(lot=lots, operator=st.sampled_from(["brand", "brand_b"]), grams=st.integers(0, 50_000),
          as_owner=st.booleans())
    def approve(self, lot: LotModel, operator: str, grams: int, as_owner: bool) -> None:
        caller = lot.owner if as_owner else ("brand_b" if lot.owner != "brand_b" else "brand")
        body = {"operatorId": self.world.actor_ids[operator], "grams": grams}
        template = "/api/v1/lots/{lot_id}/approvals"
        response = self.call("POST", template, f"/api/v1/lots/{lot.lot_id}/approvals", caller, body)
        if as_owner:
            assert response.status_code == 201, response.text
            lot.approved[operator] = grams
        else:
            assert response.status_code == 403, response.text

    @rule(target=items, lot=lots, maker=st.sampled_from(["brand", "brand_b", "retailer"]),
          grams=st.integers(1, 40_000))
    def make_item(self, lot: LotModel, maker: str, grams: int) -> Any:
        gtin = GTIN_B if maker == "brand_b" else GTIN_A
        body = {"gtin": gtin, "serial": self.unique("FZ"), "composition": [{"lotId": lot.lot_id, "grams": grams}]}
        response = self.call("POST", "/api/v1/items", "/api/v1/items", maker, body)
        allowed = maker in ("brand", "brand_b") and (lot.owner == maker or lot.approved.get(maker, 0) >= grams)
        if allowed and lot.drawn + grams <= lot.grams:
            assert response.status_code == 201, response.text
            lot.drawn += grams
            if lot.owner != maker:
                lot.approved[maker] -= grams
            return ItemModel(gtin, body["serial"], maker, grams)
        assert 400 <= response.status_code < 500, response.text
        return multiple()

    @rule(target=items, lot=lots, count=st.integers(1, 3), grams=st.integers(1, 5_000))
    def make_run(self, lot: LotModel, count: int, grams: int) -> Any:
        serials = [self.unique("FR") for _ in range(count)]
        body = {"gtin": GTIN_A, "serials": serials, "composition": [{"lotId": lot.lot_id, "grams": grams}]}
        response = self.call("POST", "/api/v1/runs", "/api/v1/runs", "brand", body)
        allowed = lot.owner == "brand" or lot.approved.get("brand", 0) >= grams * count
        if allowed and lot.drawn + grams * count <= lot.grams:
            assert response.status_code == 201, response.text
            lot.drawn += grams * count
            if lot.owner != "brand":
                lot.approved["brand"] -= grams * count
            return multiple(*[ItemModel(GTIN_A, s, "brand", grams) for s in serials])
        assert 400 <= response.status_code < 500, response.text
        return multiple()

    @rule(item=items, action=st.sampled_from(sorted(ACTION_ROLES)), role=st.sampled_from(ROLES))
    def act(self, item: ItemModel, action: str, role: str) -> None:
        body = {"gtin": item.gtin, "serial": item.serial, "action": action}
        response = self.call("POST", "/api/v1/lifecycle-events", "/api/v1/lifecycle-events", role, body)
        kind = "brand" if role == "brand_b" else role  # the API's and the contract's name for the role
        own = role == item.brand or kind != "brand"  # a brand acts only on its own items
        allowed = kind in ACTION_ROLES[action] and own
        if action == "repaired":  # no on-chain state: recorded for items someone holds
            ok, target = allowed and item.state in REPAIRABLE, item.state
        else:
            edge = GRAPH.get(item.state, {}).get(action)
            ok = allowed and edge is not None and kind in edge[1]
            target = edge[0] if edge else item.state
        if ok:
            assert response.status_code == 201, (item, action, role, response.text)
            assert response.json()["item"]["state"] == target
            item.state = target
            STATS["moves"] += 1
        else:
            assert 400 <= response.status_code < 500, (item, action, role, response.text)

    @rule(item=items, data=st.data())
    def advance(self, item: ItemModel, data: st.DataObject) -> None:
        """A legal move, by a role allowed to make it: random moves alone rarely get an item far along the graph."""
        moves = GRAPH.get(item.state, {})
        if not moves:
            return
        action = data.draw(st.sampled_from(sorted(moves)), label="action")
        roles = sorted(r for r in moves[action][1] if r in ACTION_ROLES[action])
        role = data.draw(st.sampled_from(roles), label="role")
        self.act(item, action, item.brand if role == "brand" else role)

    @rule(target=lots, item=consumes(items))
    def collect_and_recycle(self, item: ItemModel) -> Any:
        """Walk an item to Collected along the graph (every step checked), then recycle it alone."""
        path = {"manufactured": ["sold", "in_use", "collected"], "sold": ["in_use", "collected"],
                "resold": ["in_use", "collected"], "in_use": ["collected"], "returned": ["collected"],
                "refurbished": ["in_use", "collected"], "collected": []}
        for action in path.get(item.state, []):
            self.act(item, action, "recycler" if action == "collected" else "retailer")
        return self.recycle([item], 100)

    @rule(target=lots, picks=st.lists(consumes(items), min_size=1, max_size=3, unique_by=id),
          share=st.integers(1, 100))
    def recycle(self, picks: list[ItemModel], share: int) -> Any:
        # Consumed: a recycled item leaves the pool (what comes back is the recovered lot); refused ones go back.
        unique = list({(i.gtin, i.serial): i for i in picks}.values())
        total = sum(i.grams for i in unique)
        mass = max(1, total * share // 100)
        body = {"items": [{"gtin": i.gtin, "serial": i.serial} for i in unique], "materialCode": "CO",
                "lotNumber": self.unique("RC"), "massGrams": mass}
        response = self.call("POST", "/api/v1/recycling", "/api/v1/recycling", "recycler", body)
        if all(i.state == "collected" for i in unique):
            assert response.status_code == 201, response.text
            for i in unique:
                i.state = "recycled"
            STATS["recycled"] += len(unique)
            return LotModel(response.json()["lot"]["lotId"], "recycler", mass)
        assert 400 <= response.status_code < 500, response.text
        return multiple()

    @rule()
    def anchor(self) -> None:
        self.world.drain()
        for event_id in self.event_ids[-3:]:
            response = self.call("GET", "/api/v1/anchoring/{event_id}", f"/api/v1/anchoring/{quote(event_id)}",
                                 "admin")
            assert response.status_code == 200
            assert response.json()["anchoring"] == "anchored"

    # -- reads -----------------------------------------------------------------------------------------------------
    @rule(item=items, view=st.sampled_from(["api", "passport", "passport.jsonld", "qr.svg", "evidence",
                                            "verification", "resolver"]))
    def read_item(self, item: ItemModel, view: str) -> None:
        serial = quote(item.serial, safe="")
        if view == "api":
            response = self.call("GET", "/api/v1/items/{gtin}/{serial}", f"/api/v1/items/{item.gtin}/{serial}", "admin")
            assert response.status_code == 200
            assert response.json()["state"] == item.state
            return
        suffix = "" if view == "resolver" else f"/{view}"
        reader = "authority" if view == "evidence" else None  # the evidence bundle is an authority's
        response = self.call("GET", "/01/{path}", f"/01/{item.gtin}/21/{serial}{suffix}", reader)
        assert response.status_code in ((307,) if view == "resolver" else (200,)), response.text[:300]

    @rule(lot=lots)
    def read_lot(self, lot: LotModel) -> None:
        response = self.call("GET", "/api/v1/lots/{lot_id}", f"/api/v1/lots/{lot.lot_id}", "admin")
        assert response.status_code == 200
        assert response.json()["massGrams"] == lot.grams
        self.call("GET", "/lots/{lot_id}", f"/lots/{lot.lot_id}")

    @rule(item=items)
    def query_events(self, item: ItemModel) -> None:
        uri = f"{self.world.settings.resolver_base_url}/01/{item.gtin}/21/{quote(item.serial, safe='')}"
        response = self.call("GET", "/epcis/events", "/epcis/events", "admin", params={"MATCH_anyEPC": uri})
        assert response.status_code == 200
        assert response.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"], uri

    @invariant()
    def count_steps(self) -> None:
        STATS["steps"] += 1


@pytest.mark.slow
def test_stateful_api_fuzzing(security_world: World) -> None:
    conformance = Conformance(security_world.client.app.openapi())
    machine = type("Machine", (ApiMachine,), {"world": security_world, "conformance": conformance})
    run_state_machine_as_test(machine, settings=settings(
        max_examples=SEQUENCES, stateful_step_count=STEPS, deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    ))
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(STATS["by_status"].items()))
    print(f"\nFIGURE stateful-fuzz: {STATS['sequences']} sequences, {STATS['steps']} steps, {STATS['checked']} "
          f"responses checked against the OpenAPI document ({statuses}); {STATS['moves']} lifecycle moves, "
          f"{STATS['recycled']} items recycled; {len(conformance.violations)} violations")
    assert conformance.violations == [], "\n".join(conformance.violations[:20])


def test_conformance_check_catches_violations(security_world: World) -> None:
    """The checker is not a rubber stamp: a body off its schema, an undocumented error shape and a 5xx are caught."""
    conformance = Conformance(security_world.client.app.openapi())

    class Fake:
        def __init__(self, status: int, body: Any, media: str = "application/json") -> None:
            self.status_code, self._body, self.headers = status, body, {"content-type": media}
            self.text = str(body)

        def json(self) -> Any:
            return self._body

    conformance.check("GET", "/api/v1/lots/{lot_id}", Fake(200, {"lotId": 5}))
    conformance.check("POST", "/api/v1/items", Fake(404, {"detail": "nope"}))
    conformance.check("POST", "/api/v1/items", Fake(409, {"title": "x"}, PROBLEM_JSON))
    conformance.check("POST", "/api/v1/lots", Fake(422, {"detail": []}, "application/json"))
    conformance.check("GET", "/epcis/events", Fake(500, {}))
    assert len(conformance.violations) == 5, conformance.violations
