"""Passport versions through the API: made by every change a passport shows, before the write's answer (freshness),
listed, readable by number, and caught up after anchorings and for items that have none."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, func, select

from api import versions
from api.models import Item, Lot, PassportBatch
from ledger.epcis import events as ev
from ledger.versions import DocumentVersion

from .conftest import GTIN_A, RESOLVER, World


def _path(item: dict[str, Any]) -> str:
    return f"/01/{item['gtin']}/21/{item['serial']}"


def _current(world: World, item: dict[str, Any]) -> dict[str, Any]:
    response = world.client.get(_path(item) + "/passport.jsonld")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _history(world: World, item: dict[str, Any]) -> dict[str, Any]:
    response = world.client.get(_path(item) + "/passport/versions")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_each_write_answers_after_its_versions_exist(world: World) -> None:
    lot = world.lot()
    item = world.item([(lot["lotId"], 100)])
    assert _history(world, item)["current"] == 1  # made with the item, before the 201
    for action, role, state in (("sold", "retailer", "sold"), ("in_use", "retailer", "in_use")):
        assert world.act(item, action, role).status_code == 201
        assert _current(world, item)["circ:state"] == state  # the very next read
    listing = _history(world, item)
    assert [v["number"] for v in listing["versions"]] == [1, 2, 3] and listing["current"] == 3
    assert [v["reason"] for v in listing["versions"]] == ["event", "event", "event"]
    assert all(v["createdAt"].endswith("Z") and len(v["createdAt"]) == 24 for v in listing["versions"])
    assert all(v["anchoring"] == {"status": "pending"} for v in listing["versions"])
    assert listing["item"] == f"{RESOLVER}{_path(item)}"


def test_a_past_version_is_read_by_its_number(world: World) -> None:
    item = world.item([(world.lot()["lotId"], 100)])
    assert world.act(item, "sold", "retailer").status_code == 201
    first = world.client.get(_path(item) + "/passport.jsonld?version=1")
    assert first.status_code == 200 and first.headers["passport-version"] == "1"
    assert first.json()["circ:state"] == "manufactured" and first.json()["circ:version"]["circ:number"] == 1
    page = world.client.get(_path(item) + "/passport?version=1")
    assert page.status_code == 200 and "An earlier version" in page.text
    assert world.client.get(_path(item) + "/passport?version=9").status_code == 404
    bad = world.client.get(_path(item) + "/passport.jsonld?version=zero")
    assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"
    assert world.client.get(_path(item) + "/passport.jsonld").json()["circ:version"]["circ:number"] == 2


def test_anchoring_makes_the_version_that_shows_it_and_anchors_it_too(world: World) -> None:
    item = world.item([(world.lot()["lotId"], 100)])
    world.drain()
    listing = _history(world, item)
    assert [v["reason"] for v in listing["versions"]] == ["event", "anchoring"]
    assert all(v["anchoring"]["status"] == "anchored" for v in listing["versions"])
    body = _current(world, item)
    assert body["circ:verification"]["circ:status"] == "verified"
    assert body["circ:verification"]["circ:anchor"]["circ:root"] == listing["versions"][1]["anchoring"]["root"]


def test_a_bulk_write_answers_after_its_versions_exist(world: World) -> None:
    lot = world.lot(grams=100_000)
    serials = [world.unique("VB") for _ in range(5)]
    body = {"gtin": GTIN_A, "serials": serials, "composition": [{"lotId": lot["lotId"], "grams": 100}]}
    assert world.post("/api/v1/runs", "brand", body).status_code == 201
    keys = [{"gtin": GTIN_A, "serial": s} for s in serials]
    sold = world.post("/api/v1/lifecycle-batches", "retailer", {"action": "sold", "items": keys})
    assert sold.status_code == 200 and sold.json()["recorded"] == 5, sold.text
    for serial in serials:
        assert _current(world, {"gtin": GTIN_A, "serial": serial})["circ:state"] == "sold"


def test_a_captured_event_is_on_the_passport_when_the_job_reports_done(world: World) -> None:
    item = world.item([(world.lot()["lotId"], 100)])
    uri = f"{RESOLVER}{_path(item)}"
    inspected = {
        "type": "ObjectEvent",
        "eventTime": "2026-11-01T10:00:00.000Z",
        "eventTimeZoneOffset": "+00:00",
        "epcList": [uri],
        "action": "OBSERVE",
        "bizStep": "inspecting",
    }
    response = world.client.post(
        "/epcis/capture",
        content=json.dumps(ev.epcis_document([inspected])),
        headers={**world.auth("brand"), "Content-Type": "application/ld+json"},
    )
    assert response.status_code == 202, response.text
    job = world.client.get(response.headers["location"], headers=world.auth("brand")).json()
    assert job["success"] is True and not job["running"]
    assert len(_current(world, item)["circ:lifecycle"]) == 2  # made, then inspected
    assert _history(world, item)["current"] == 2


def test_a_product_correction_makes_a_version_of_every_item_showing_it(world: World) -> None:
    items = [world.item([(world.lot()["lotId"], 100)]) for _ in range(3)]
    before = {i["serial"]: _history(world, i)["current"] for i in items}
    body = {"name": "Organic T-shirt", "description": "Corrected", "care": "Wash at 30 °C"}
    assert world.client.put(f"/api/v1/products/{GTIN_A}", json=body, headers=world.auth("brand")).status_code == 200
    for item in items:
        listing = _history(world, item)
        assert listing["current"] == before[item["serial"]] + 1 and listing["versions"][-1]["reason"] == "product"
        assert 'Wash at 30 °C' in world.client.get(_path(item) + "/passport").text
    # The same master data again: nothing a passport shows changed, no version.
    assert world.client.put(f"/api/v1/products/{GTIN_A}", json=body, headers=world.auth("brand")).status_code == 200
    assert all(_history(world, i)["current"] == before[i["serial"]] + 1 for i in items)


def test_a_lot_correction_reaches_every_generation_showing_the_lot(world: World) -> None:
    lot = world.lot(grams=100_000)
    parent = world.item([(lot["lotId"], 400)])
    child_of_other = world.item([(world.lot()["lotId"], 100)])
    for action, role in (("sold", "retailer"), ("in_use", "retailer"), ("collected", "recycler")):
        assert world.act(parent, action, role).status_code == 201
    recycled = world.post(
        "/api/v1/recycling",
        "recycler",
        {"items": [{"gtin": GTIN_A, "serial": parent["serial"]}], "materialCode": "CO",
         "lotNumber": world.unique("RL"), "massGrams": 300},
    )
    assert recycled.status_code == 201, recycled.text
    recovered = recycled.json()["lot"]["lotId"]
    approval = {"operatorId": world.actor_ids["brand"], "grams": 300}
    assert world.post(f"/api/v1/lots/{recovered}/approvals", "recycler", approval).status_code == 201
    child = world.item([(recovered, 200)])
    with world.service.sessions() as session:
        found = versions.items_showing_lot(session, lot["lotId"], 12)
        serials = set(session.scalars(select(Item.serial).where(Item.id.in_(found))))
    assert serials == {parent["serial"], child["serial"]} and child_of_other["serial"] not in serials
    state = world.client.app.state.circular  # type: ignore[attr-defined]
    before = _history(world, child)["current"]
    with world.service.sessions.begin() as session:  # a correction's write: the lot's row and its declaration
        row = session.get(Lot, lot["lotId"])
        assert row is not None
        row.origin = "Corrected origin"
        declared = ev.lot_registered(row.uri, "CO", 100_000, 0)
        declared["errorDeclaration"] = {"declarationTime": "2026-12-07T00:00:00.000Z", "reason": "incorrect_data"}
        made = versions.after_events(session, state, [declared])
    assert {m.subject for m in made} == {f"{RESOLVER}{_path(parent)}", f"{RESOLVER}{_path(child)}"}
    listing = _history(world, child)
    assert listing["current"] == before + 1 and listing["versions"][-1]["reason"] == "lot"
    # a lot's origin is for readers with a legitimate interest (api/access.py): a recycler's key
    assert "Corrected origin" in world.client.get(_path(child) + "/passport", headers=world.auth("recycler")).text
    assert "Corrected origin" not in world.client.get(_path(child) + "/passport").text


def test_batches_anchored_elsewhere_and_items_without_versions_are_caught_up(world: World) -> None:
    state = world.client.app.state.circular  # type: ignore[attr-defined]
    item = world.item([(world.lot()["lotId"], 100)])
    versions.uninstall(state)  # as if another process's worker anchored: no hook here
    try:
        world.drain()
    finally:
        versions.install(state)
    assert [v["reason"] for v in _history(world, item)["versions"]] == ["event"]
    assert versions.catch_up(state) >= 1
    assert [v["reason"] for v in _history(world, item)["versions"]] == ["event", "anchoring"]
    with world.service.sessions() as session:
        done = session.scalar(select(func.count()).select_from(PassportBatch))
    assert done and versions.catch_up(state) == 0  # each batch once

    other = world.item([(world.lot()["lotId"], 100)])
    subject = f"{RESOLVER}{_path(other)}"
    with world.service.sessions.begin() as session:  # an item from before versions existed
        session.execute(delete(DocumentVersion).where(DocumentVersion.subject == subject))
    assert versions.catch_up(state, backfill=True) >= 1
    assert [v["reason"] for v in _history(world, other)["versions"]] == ["backfill"]


def test_an_item_without_a_version_gets_its_first_on_its_first_read(world: World) -> None:
    item = world.item([(world.lot()["lotId"], 100)])
    subject = f"{RESOLVER}{_path(item)}"
    with world.service.sessions.begin() as session:
        session.execute(delete(DocumentVersion).where(DocumentVersion.subject == subject))
    assert world.client.get(_path(item) + "/passport").status_code == 200
    assert [v["reason"] for v in _history(world, item)["versions"]] == ["backfill"]


def test_a_second_lifespan_of_the_app_leaves_the_anchoring_hook_to_the_first(world: World) -> None:
    """An app started twice (schemathesis' ASGI runner beside the test client) keeps rebuilding passports after
    anchorings until its last start stops: the second stop does not take the first one's hook."""
    from fastapi.testclient import TestClient

    service = world.service

    def hooks() -> int:
        return sum(getattr(hook, "passport_versions", False) for hook in service.after_anchoring)

    assert hooks() == 1
    with TestClient(world.client.app):
        assert hooks() == 1  # one hook however often the app starts
    assert hooks() == 1  # still there: the world's own client is serving
