"""EPCIS 2.0 REST bindings: capture (schema-validated, asynchronous jobs, Event Hash IDs, anchored through the
outbox), event queries with filters and pagination, and single events."""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import quote

import jsonschema
import pytest
from sqlalchemy import select

from api import add_actor
from ledger.epcis.hashing import event_hash_id
from tests.conftest import standards_dir

from .conftest import GTIN_B, RESOLVER, World

# A GTIN no brand registered here (GS1's example prefix): events about it are not a registered item's, so any
# supply-chain actor may capture them (api/authority.py); these tests are about the EPCIS interface itself.
GTIN_ELSEWHERE = "00614141107346"

EPCIS = standards_dir() / "epcis"
BASE_CONTEXT = ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"]


def _schema_validate(document: dict[str, Any]) -> None:
    schema = json.loads((EPCIS / "EPCIS-JSON-Schema.json").read_text())
    jsonschema.Draft7Validator(schema).validate(document)


def _example(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((EPCIS / "examples" / name).read_text())
    return document


def _doc(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "@context": BASE_CONTEXT,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-01T10:00:00.000Z",
        "epcisBody": {"eventList": events},
    }


def _observe(
    epc: str, step: str = "inspecting", time: str = "2026-11-01T10:00:00.000Z", disposition: str | None = None
) -> dict[str, Any]:
    event = {
        "type": "ObjectEvent",
        "eventTime": time,
        "eventTimeZoneOffset": "+00:00",
        "epcList": [epc],
        "action": "OBSERVE",
        "bizStep": step,
    }
    if disposition:
        event["disposition"] = disposition
    return event


def _capture(world: World, document: dict[str, Any], role: str = "retailer", **headers: str) -> Any:
    return world.client.post(
        "/epcis/capture",
        content=json.dumps(document),
        headers={**world.auth(role), "Content-Type": "application/ld+json", **headers},
    )


def _job(world: World, response: Any, role: str = "retailer") -> dict[str, Any]:
    assert response.status_code == 202, response.text
    location = response.headers["location"]
    assert location.startswith("/epcis/capture/")
    job = world.client.get(location, headers=world.auth(role))
    assert job.status_code == 200
    body: dict[str, Any] = job.json()
    return body


def _events(body: dict[str, Any]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = body["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    return events


def test_capture_the_standards_examples(world: World) -> None:
    document = _example("Example_9.6.1-ObjectEventWithDigitalLink.jsonld")
    job = _job(world, _capture(world, document))
    assert job["running"] is False and job["success"] is True and job["captureErrorBehaviour"] == "rollback"
    assert len(job["eventIDs"]) == 2
    # the examples' eventIDs are illustrative, not the events' hashes: the hash replaces them, and the job says so
    assert [r["claimed"] for r in job["replacedEventIDs"]] == [e["eventID"] for e in document["epcisBody"]["eventList"]]
    for event_id, original in zip(job["eventIDs"], document["epcisBody"]["eventList"], strict=True):
        expected = copy.deepcopy(original)
        expected.pop("eventID")
        expected["@context"] = document["@context"]
        assert event_id == event_hash_id(expected)
        single = world.client.get(f"/epcis/events/{quote(event_id, safe='')}", headers=world.auth("retailer"))
        assert single.status_code == 200 and single.headers["gs1-epcis-version"] == "2.0.0"
        body = single.json()
        _schema_validate(body)
        [stored] = _events(body)
        assert stored["eventID"] == event_id and stored["bizStep"] == original["bizStep"]
        assert "recordTime" in stored
    # captured events are anchored like any other
    world.drain()
    path = f"/api/v1/anchoring/{quote(job['eventIDs'][0], safe='')}"
    status = world.client.get(path, headers=world.auth("retailer")).json()  # the event's own signer
    assert status["anchoring"] == "anchored"


def test_capture_is_idempotent(world: World) -> None:
    document = _doc([_observe(f"{RESOLVER}/01/{GTIN_ELSEWHERE}/21/{world.unique('IDEM')}")])
    first, second = _job(world, _capture(world, document)), _job(world, _capture(world, document))
    assert first["eventIDs"] == second["eventIDs"]
    query = {"EQ_eventID": first["eventIDs"][0]}
    found = world.client.get("/epcis/events", params=query, headers=world.auth("admin")).json()
    assert len(_events(found)) == 1


@pytest.mark.parametrize(
    "name",
    [
        "Example_9.6.3-AggregationEvent.jsonld",
        "Example_9.6.4-TransformationEvent.jsonld",
        "PersistentDisposition-example.jsonld",
    ],
)
def test_other_event_types_are_captured(world: World, name: str) -> None:
    role = "retailer"
    if name == "Example_9.6.3-AggregationEvent.jsonld":
        # The example names lot 998877 of GTIN 04012345123456: Brand B's product in this world (its GS1 prefix is
        # the examples'). Events naming a registered product's lot are its owner's to capture (api/authority.py).
        lot = {"gtin": GTIN_B, "lotNumber": "998877", "materialCode": "CO", "massGrams": 1_000}
        assert world.post("/api/v1/lots", "brand_b", lot).status_code in (201, 409)
        role = "brand_b"
    job = _job(world, _capture(world, _example(name), role=role), role=role)
    assert job["success"] is True and job["eventIDs"]


def test_invalid_documents_are_400(world: World) -> None:
    broken = _doc([{"type": "ObjectEvent", "eventTime": "not a time", "action": "SHOUT"}])
    response = _capture(world, broken)
    assert response.status_code == 400
    problem = response.json()
    assert problem["type"] == "epcisException:ValidationException" and problem["errors"]
    assert _capture(world, {"type": "Nonsense"}).status_code == 400
    not_json = world.client.post(
        "/epcis/capture", content=b"{", headers={**world.auth("retailer"), "Content-Type": "application/json"}
    )
    assert not_json.status_code == 400
    empty = _capture(world, _doc([]))
    assert empty.status_code == 400


def test_capture_needs_json_and_a_supply_chain_actor(world: World) -> None:
    document = _doc([_observe(f"{RESOLVER}/01/{GTIN_ELSEWHERE}/21/X")])
    xml = world.client.post(
        "/epcis/capture", content=b"<epcis/>", headers={**world.auth("retailer"), "Content-Type": "application/xml"}
    )
    assert xml.status_code == 415
    assert world.client.post("/epcis/capture", json=document).status_code == 401
    forbidden = world.client.post("/epcis/capture", json=document, headers=world.auth("admin"))
    assert forbidden.status_code == 403
    assert forbidden.json()["type"] == "epcisException:SecurityException"
    bad_header = _capture(world, document, **{"GS1-Capture-Error-Behaviour": "maybe"})
    assert bad_header.status_code == 400


def test_capture_jobs_are_private(world: World) -> None:
    response = _capture(world, _doc([_observe(f"{RESOLVER}/01/{GTIN_ELSEWHERE}/21/{world.unique('P')}")]))
    location = response.headers["location"]
    assert world.client.get(location, headers=world.auth("brand")).status_code == 404
    assert world.client.get(location, headers=world.auth("admin")).status_code == 200
    assert world.client.get("/epcis/capture/nope", headers=world.auth("retailer")).status_code == 404
    mine = world.client.get("/epcis/capture", headers=world.auth("retailer")).json()
    assert location.rsplit("/", 1)[1] in {job["captureID"] for job in mine}


def _failing_hash(monkeypatch: pytest.MonkeyPatch, bad_epc: str) -> None:
    import api.routes.epcis as routes

    real = routes.event_hash_id

    def hash_or_fail(event: dict[str, Any]) -> str:
        if bad_epc in event.get("epcList", []):
            raise ValueError("cannot canonicalise")
        return real(event)

    monkeypatch.setattr(routes, "event_hash_id", hash_or_fail)


@pytest.mark.parametrize(("behaviour", "stored"), [("rollback", 0), ("proceed", 1)])
def test_capture_error_behaviour(world: World, monkeypatch: pytest.MonkeyPatch, behaviour: str, stored: int) -> None:
    good, bad = (f"{RESOLVER}/01/{GTIN_ELSEWHERE}/21/{world.unique(tag)}" for tag in "GB")
    _failing_hash(monkeypatch, bad)
    job = _job(
        world, _capture(world, _doc([_observe(good), _observe(bad)]), **{"GS1-Capture-Error-Behaviour": behaviour})
    )
    assert job["success"] is False and job["errors"][0]["index"] == 1
    assert len(job["eventIDs"]) == stored
    found = world.client.get("/epcis/events", params={"MATCH_epc": good}, headers=world.auth("admin")).json()
    assert len(_events(found)) == stored


def test_an_accepted_capture_is_finished_after_a_stop(world: World) -> None:
    """A process stopped between the 202 and the job (a crash, a deploy) leaves the job running with its document;
    the next start-up runs it, so an accepted capture is never lost. A job whose actor was revoked meanwhile fails
    instead of being signed with the revoked actor's key."""
    from fastapi.testclient import TestClient

    from api import create_app
    from api.models import Actor, CaptureJob, utcnow

    epc = f"{RESOLVER}/01/{GTIN_ELSEWHERE}/21/{world.unique('STOP')}"
    revoked_epc = f"{RESOLVER}/01/{GTIN_ELSEWHERE}/21/{world.unique('STOP')}"
    with world.service.sessions() as session:
        keys = world.client.app.state.circular.keys
        gone, _ = add_actor(world.service, session, "retailer", "Gone retailer", keys=keys)
        for job_id, actor_id, document in (
            ("stopped-" + world.unique(), world.actor_ids["retailer"], _doc([_observe(epc)])),
            ("stopped-" + world.unique(), gone.id, _doc([_observe(revoked_epc)])),
        ):
            session.add(CaptureJob(id=job_id, actor_id=actor_id, running=True, success=True,
                                   error_behaviour="rollback", event_count=1, event_ids=[], errors=[], replaced=[],
                                   document=document, created_at=utcnow()))
        session.get_one(Actor, gone.id).revoked = True
        session.commit()
        job_ids = [j.id for j in session.scalars(select(CaptureJob).where(CaptureJob.id.like("stopped-%")))]
    assert len(job_ids) == 2

    restarted = create_app(world.settings, world.service)
    with TestClient(restarted):  # start-up resumes the jobs; nothing has run them before
        pass

    with world.service.sessions() as session:
        jobs = {j.actor_id: j for j in session.scalars(select(CaptureJob).where(CaptureJob.id.in_(job_ids)))}
        done, refused = jobs[world.actor_ids["retailer"]], jobs[gone.id]
        assert not done.running and done.success and done.document is None and len(done.event_ids) == 1
        assert not refused.running and not refused.success and refused.document is None
        assert "revoked" in refused.errors[0]["error"]
        session.delete(done)  # other tests list the retailer's jobs
        session.commit()
    admin = world.auth("admin")
    assert len(_events(world.client.get("/epcis/events", params={"MATCH_epc": epc}, headers=admin).json())) == 1
    assert _events(world.client.get("/epcis/events", params={"MATCH_epc": revoked_epc}, headers=admin).json()) == []


@pytest.fixture(scope="module")
def history(world: World) -> dict[str, Any]:
    """One item's events through the write API, and other events captured around it."""
    lot = world.lot()
    item = world.item([(lot["lotId"], 100)])
    for action, role in [("sold", "retailer"), ("in_use", "retailer"), ("returned", "retailer")]:
        assert world.act(item, action, role).status_code == 201
    marker = world.unique("Q")
    epcs = [f"{RESOLVER}/01/{GTIN_ELSEWHERE}/21/{marker}-{n}" for n in range(7)]
    times = [f"2030-01-0{n + 1}T12:00:00.000Z" for n in range(7)]
    events = [
        _observe(
            epc, "shipping" if n % 2 else "receiving", times[n], disposition="in_transit" if n % 2 else "in_progress"
        )
        for n, epc in enumerate(epcs)
    ]
    job = _job(world, _capture(world, _doc(events)))
    assert job["success"]
    return {"item": item, "lot": lot, "epcs": epcs, "times": times, "ids": job["eventIDs"]}


def _query(world: World, **params: Any) -> tuple[list[dict[str, Any]], Any]:
    response = world.client.get("/epcis/events", params=params, headers=world.auth("admin"))
    assert response.status_code == 200, response.text
    body = response.json()
    _schema_validate(body)
    return _events(body), response


def test_query_by_epc(world: World, history: dict[str, Any]) -> None:
    uri = history["item"]["digitalLink"]
    by_epc, _ = _query(world, MATCH_epc=uri)
    assert [e["bizStep"] for e in by_epc] == [
        "retail_selling",
        "https://ns.circular-ledger.org/voc/bizstep-in_use",
        "receiving",
    ]
    any_epc, _ = _query(world, MATCH_anyEPC=uri)
    assert len(any_epc) == 4 and any_epc[0]["type"] == "TransformationEvent"  # outputEPCList counts for anyEPC
    by_class, _ = _query(world, MATCH_anyEPCClass=history["lot"]["uri"])
    assert {e["type"] for e in by_class} == {"ObjectEvent", "TransformationEvent"}


def test_query_by_vocabulary_and_type(world: World, history: dict[str, Any]) -> None:
    epcs = "|".join(history["epcs"])
    shipping, _ = _query(world, MATCH_epc=epcs, EQ_bizStep="shipping")
    assert len(shipping) == 3
    urn, _ = _query(world, MATCH_epc=epcs, EQ_bizStep="urn:epcglobal:cbv:bizstep:shipping")
    web, _ = _query(world, MATCH_epc=epcs, EQ_bizStep="https://ref.gs1.org/cbv/BizStep-shipping")
    assert len(urn) == len(web) == 3
    in_progress, _ = _query(world, MATCH_epc=epcs, EQ_disposition="in_progress")
    assert len(in_progress) == 4
    both, _ = _query(world, MATCH_epc=epcs, EQ_disposition="in_progress|in_transit")
    assert len(both) == 7
    objects, _ = _query(world, MATCH_anyEPC=history["item"]["digitalLink"], eventType="ObjectEvent")
    assert len(objects) == 3
    transformations, _ = _query(world, MATCH_anyEPC=history["item"]["digitalLink"], eventType="TransformationEvent")
    assert len(transformations) == 1


def test_query_by_time_and_id(world: World, history: dict[str, Any]) -> None:
    epcs = "|".join(history["epcs"])
    window, _ = _query(
        world, MATCH_epc=epcs, GE_eventTime="2030-01-02T12:00:00.000Z", LT_eventTime="2030-01-05T12:00:00.000Z"
    )
    assert [e["eventTime"] for e in window] == history["times"][1:4]
    offset, _ = _query(world, MATCH_epc=epcs, GE_eventTime="2030-01-07T13:00:00.000+01:00")
    assert len(offset) == 1  # 13:00+01:00 is 12:00Z
    by_id, _ = _query(world, EQ_eventID=history["ids"][2])
    assert [e["eventID"] for e in by_id] == [history["ids"][2]]


def test_pagination(world: World, history: dict[str, Any]) -> None:
    epcs = "|".join(history["epcs"])
    seen: list[str] = []
    events, response = _query(world, MATCH_epc=epcs, perPage=3)
    pages = 1
    seen += [e["eventID"] for e in events]
    while "link" in response.headers:
        link = response.headers["link"]
        assert link.endswith('>; rel="next"')
        url = link[1 : link.index(">")]
        response = world.client.get(url, headers=world.auth("admin"))
        assert response.status_code == 200
        seen += [e["eventID"] for e in _events(response.json())]
        pages += 1
    assert pages == 3 and seen == history["ids"]


@pytest.mark.parametrize(
    "params",
    [
        {"nextPageToken": "garbage"},
        {"perPage": "0"},
        {"perPage": "many"},
        {"EQ_colour": "red"},
        {"GE_eventTime": "yesterday"},
        {"eventType": "CoffeeEvent"},
        {"MATCH_epc": ""},
    ],
)
def test_bad_queries_are_400(world: World, params: dict[str, str]) -> None:
    response = world.client.get("/epcis/events", params=params, headers=world.auth("admin"))
    assert response.status_code == 400
    assert response.json()["type"] == "epcisException:QueryParameterException"


def test_a_token_of_another_query_is_refused(world: World, history: dict[str, Any]) -> None:
    _, response = _query(world, MATCH_epc="|".join(history["epcs"]), perPage=2)
    link = response.headers["link"]
    token = link[link.index("nextPageToken=") + len("nextPageToken=") : link.index(">")]
    other = world.client.get(
        "/epcis/events", params={"EQ_bizStep": "shipping", "nextPageToken": token}, headers=world.auth("admin")
    )
    assert other.status_code == 400


def test_unknown_event_is_404(world: World) -> None:
    response = world.client.get(
        "/epcis/events/" + quote("ni:///sha-256;" + "0" * 64 + "?ver=CBV2.0", safe=""), headers=world.auth("admin")
    )
    assert response.status_code == 404
    assert response.json()["type"] == "epcisException:NoSuchResourceException"


def test_capture_options_and_top_level(world: World) -> None:
    options = world.client.options("/epcis/capture")
    assert options.status_code == 204 and int(options.headers["gs1-epcis-capture-limit"]) > 0
    assert world.client.get("/epcis").json() == ["capture", "events"]
