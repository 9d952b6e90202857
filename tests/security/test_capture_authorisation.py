"""Nobody writes onto another brand's passport through EPCIS capture.

The attack: ``POST /epcis/capture`` checked the capturer's role and nothing else. A retailer's and a recycler's keys
captured ``destroying`` and ``retail_selling`` events on Brand B's tote; the passport showed "Sold by Recycler" and
"Disposed of by Retailer", anchored, badge "verified". Adding ``"circ:lifecycle": "inspected"`` made them pass the
audit, which trusted the event's own field and let an unknown kind be recorded by every role. An event naming a lot
reached every item made from it.

Now capture judges every event by the write API's rules (``api/authority.py``, on the lifecycle table): per item and
lot it names and per bizStep; a refused document is a 403 and nothing of it is stored. Events that reached the
outbox another way (before the fix, or signed and submitted elsewhere) are hidden from the passport and reported by
`circular audit`; third-party events the rules allow are shown, labelled. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from api.audit import run_audit
from api.models import Actor
from ledger.audit import RoleHistory, role_changes
from ledger.epcis import events as ev
from ledger.outbox import OutboxEvent
from tests.api.conftest import GTIN_B, World, _make_world


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def authz_world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A world of its own: the audit below reads every event, and other suites record odd ones on purpose."""
    yield from _make_world(request.param, tmp_path_factory.mktemp(f"capture-authz-{request.param}"))


@pytest.fixture(scope="module")
def tote(authz_world: World) -> dict[str, Any]:
    """Brand B's tote, made from Brand B's own lot."""
    w = authz_world
    lot = w.lot(role="brand_b", gtin=None)
    item = w.item([(lot["lotId"], 300)], role="brand_b", gtin=GTIN_B)
    return {"item": item, "lot": lot, "link": item["digitalLink"], "path": f"/01/{GTIN_B}/21/{item['serial']}"}


def _observe(epc: str, step: str = "inspecting", **extra: Any) -> dict[str, Any]:
    return {"type": "ObjectEvent", "eventTime": "2026-11-01T10:00:00.000Z", "eventTimeZoneOffset": "+00:00",
            "epcList": [epc], "action": "OBSERVE", "bizStep": step, **extra}


def _capture(w: World, role: str, *events: dict[str, Any], behaviour: str = "rollback") -> Any:
    return w.client.post("/epcis/capture", content=json.dumps(ev.epcis_document(list(events))),
                         headers={**w.auth(role), "Content-Type": "application/ld+json",
                                  "GS1-Capture-Error-Behaviour": behaviour})


def _stored(w: World) -> int:
    with w.service.sessions() as session:
        return len(session.scalars(select(OutboxEvent.id)).all())


def _timeline(w: World, path: str) -> list[dict[str, Any]]:
    body = w.client.get(path + "/passport.jsonld", headers=w.auth("authority")).json()  # who recorded each step
    entries: list[dict[str, Any]] = body["circ:lifecycle"]
    return entries


def _attacks(tote: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    link, lot = tote["link"], tote["lot"]["uri"]
    destroyed = ev.lifecycle(ev.Lifecycle.DISPOSED, [link])
    sold = ev.lifecycle(ev.Lifecycle.SOLD, [link])
    return [
        ("retailer destroys Brand B's tote", "retailer", destroyed),
        ("recycler sells Brand B's tote", "recycler", sold),
        ("... with circ:lifecycle inspected", "retailer", {**destroyed, "circ:lifecycle": "inspected"}),
        ("... with circ:lifecycle of another action", "recycler", {**sold, "circ:lifecycle": "repaired"}),
        ("Brand A observes Brand B's tote", "brand", _observe(link)),
        ("a retailer's event names Brand B's lot", "retailer",
         {**_observe("urn:epc:id:sscc:0614141.1234567890"),
          "quantityList": [{"epcClass": lot, "quantity": 1, "uom": "KGM"}]}),
        ("a sale captured by the brand itself (the write API moves it on-chain)", "brand_b", sold),
        ("an unregistered serial of Brand B's product", "retailer",
         _observe(tote["link"].rsplit("/", 1)[0] + "/NEVER-MADE")),
    ]


def test_every_attack_is_refused_and_nothing_is_stored(authz_world: World, tote: dict[str, Any]) -> None:
    w = authz_world
    before, timeline = _stored(w), _timeline(w, tote["path"])
    for name, role, event in _attacks(tote):
        for behaviour in ("rollback", "proceed"):
            harmless = _observe("urn:epc:id:sgtin:0614141.107346.2018")  # not ours: anyone may record it
            response = _capture(w, role, harmless, event, behaviour=behaviour)
            assert response.status_code == 403, f"{name}: {response.status_code} {response.text[:300]}"
            problem = response.json()
            assert problem["type"] == "epcisException:SecurityException"
            assert [e["index"] for e in problem["errors"]] == [1], (name, problem)
    assert _stored(w) == before
    assert _timeline(w, tote["path"]) == timeline
    assert w.client.get(tote["path"] + "/verification").json()["status"] in ("verified", "pending")


def test_what_the_rules_allow_is_captured_and_labelled(authz_world: World, tote: dict[str, Any]) -> None:
    w = authz_world
    own = _capture(w, "brand_b", _observe(tote["link"], "inspecting"))
    assert own.status_code == 202, own.text[:300]
    assert w.act(tote["item"], "sold", "retailer").status_code == 201  # a sale goes through the write API
    too_early = _capture(w, "repairer", ev.lifecycle(ev.Lifecycle.REPAIRED, [tote["link"]]))
    assert too_early.status_code == 202, too_early.text[:300]  # a repair is an event only: captured
    foreign = _capture(w, "retailer", _observe("urn:epc:id:sgtin:0614141.107346.2019", "shipping"))
    assert foreign.status_code == 202  # identifiers that are not ours are not ours to judge
    by_label = {(e["circ:label"], e["circ:actor"]): e["circ:thirdParty"] for e in _timeline(w, tote["path"])}
    assert by_label[("Inspecting", "Brand B")] is False
    assert by_label[("Sold", "Retailer")] is True
    assert by_label[("Repaired", "Repairer")] is True
    page = w.client.get(tote["path"] + "/passport").text
    assert "(third party)" in page


def test_a_repair_is_refused_from_a_state_the_table_does_not_allow(authz_world: World) -> None:
    w = authz_world
    lot = w.lot(role="brand_b", gtin=None)
    fresh = w.item([(lot["lotId"], 300)], role="brand_b", gtin=GTIN_B)  # made, never sold
    refused = _capture(w, "repairer", ev.lifecycle(ev.Lifecycle.REPAIRED, [fresh["digitalLink"]]))
    assert refused.status_code == 403 and "while it is manufactured" in refused.json()["errors"][0]["error"]


def test_events_from_around_capture_are_hidden_and_audited(authz_world: World, tote: dict[str, Any]) -> None:
    """What got in before the fix (or was signed and submitted elsewhere): the passport hides it, the audit names it
    (the kind from the bizStep, the circ:lifecycle mismatch, the role, the other brand's item)."""
    w = authz_world
    keys = w.client.app.state.circular.keys  # type: ignore[attr-defined]
    with w.service.sessions() as session:
        retailer = keys.account(session.get_one(Actor, w.actor_ids["retailer"]))
        brand_a = keys.account(session.get_one(Actor, w.actor_ids["brand"]))
    forged = {**ev.lifecycle(ev.Lifecycle.DISPOSED, [tote["link"]]), "circ:lifecycle": "inspected"}
    [destroyed] = w.service.record(retailer, [forged])
    [peeked] = w.service.record(brand_a, [_observe(tote["link"], "inspecting", eventTime="2026-11-02T10:00:00Z")])

    labels = [(e["circ:label"], e["circ:actor"]) for e in _timeline(w, tote["path"])]
    assert ("Disposed of", "Retailer") not in labels and ("Inspecting", "Brand A") not in labels

    with w.service.sessions() as session:
        report = run_audit(session, RoleHistory(role_changes(w.service.ledger)))
    found = {(a.rule, a.event_id) for a in report.anomalies}
    assert ("lifecycle-mismatch", destroyed.event_id) in found
    assert ("signer-role", destroyed.event_id) in found  # disposed needs brand/recycler: read from the bizStep
    assert ("not-a-party", peeked.event_id) in found
