"""Hypothesis over EPCIS 2.0 capture documents: valid ones built with the ledger's own event builders
(``ledger/epcis/events.py``), and mutations of them (missing fields, wrong types, huge numbers, bad dates and time
zones, bad URIs, duplicated events, wrong claimed eventIDs).

- a valid document gets 202; its capture job succeeds; each stored event is the input event, with its CBV 2.0 Event
  Hash ID as ``eventID`` (recomputed here, independently of the capture path) and a ``recordTime``;
- an invalid one gets a 4xx problem+json (400 with an ``epcisException`` type);
- nothing gets a 5xx, and no capture job ends in an internal failure ("capture failed: ...").
"""

from __future__ import annotations

import copy
import json
import string
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.problems import PROBLEM_JSON
from ledger.epcis import events as build
from ledger.epcis.hashing import event_hash_id
from tests.api.conftest import RESOLVER, World
from tests.contracts.helpers import gtin as make_gtin

VALID_EXAMPLES = 60
INVALID_EXAMPLES = 200
CSET82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
COUNTS = {"valid": 0, "invalid": 0, "tolerated": 0}

serials = st.text(alphabet=CSET82, min_size=1, max_size=20)
# Items and lots no brand registered here (GS1's example prefix, another resolver): capture judges events about
# registered ones by who may write about them (tests/security/test_capture_authorisation.py); these are about
# documents themselves, which anyone may record about identifiers that are not ours.
ELSEWHERE = "https://id.elsewhere.example"
gtins = st.sampled_from(["0614141", "0614142", "0614143"]).flatmap(
    lambda prefix: st.from_regex(r"\A[0-9]{5}\Z").map(lambda ref: make_gtin(prefix, ref)))
item_uris = st.builds(lambda g, s: f"{RESOLVER}/01/{g}/21/{_pct(s)}", gtins, serials)
lot_uris = st.binary(min_size=32, max_size=32).map(lambda b: f"{ELSEWHERE}/lots/0x{b.hex()}")
grams = st.integers(1, 2**63 - 1)
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31),
                       timezones=st.just(UTC))
codes = st.from_regex(r"\A[A-Za-z0-9._-]{1,32}\Z")
read_points = st.one_of(st.none(), st.builds(lambda n: f"urn:epc:id:sgln:9506000.00001.{n}", st.integers(0, 999)))


def _pct(value: str) -> str:
    return quote(value, safe="")


events = st.one_of(
    st.builds(build.lot_registered, lot_uris, codes, grams, st.integers(0, 10_000),
              certificates=st.lists(st.just("https://certs.example/gots/1"), max_size=2),
              origin=st.one_of(st.none(), st.text(string.ascii_letters + " ", min_size=1, max_size=30)),
              at=moments, read_point=read_points),
    st.builds(build.items_manufactured, st.lists(item_uris, min_size=1, max_size=4, unique=True),
              st.lists(st.tuples(lot_uris, grams), min_size=1, max_size=3), at=moments, read_point=read_points),
    st.builds(build.lifecycle, st.sampled_from(list(build.Lifecycle)),
              st.lists(item_uris, min_size=1, max_size=4, unique=True), at=moments, read_point=read_points),
    st.builds(build.items_recycled, st.lists(item_uris, min_size=1, max_size=4, unique=True), lot_uris, grams,
              codes, at=moments, read_point=read_points),
)
documents = st.builds(build.epcis_document, st.lists(events, min_size=1, max_size=3), created=moments)


def capture(w: World, document: Any, role: str = "brand") -> Any:
    # ensure_ascii: a lone surrogate in a mutation must still be sendable (as an escape)
    return w.client.post("/epcis/capture", content=json.dumps(document, allow_nan=True),
                         headers={**w.auth(role), "Content-Type": "application/ld+json"})


def job_of(w: World, response: Any) -> dict[str, Any]:
    job = w.client.get(response.headers["Location"], headers=w.auth("brand"))
    assert job.status_code == 200, job.text[:300]
    body: dict[str, Any] = job.json()
    assert not body["running"]  # TestClient runs the background task before it returns
    internal = [e for e in body["errors"] if "capture failed" in str(e.get("error", ""))]
    assert internal == [], internal
    return body


def assert_problem_4xx(response: Any, name: str) -> None:
    assert 400 <= response.status_code < 500, f"{name}: {response.status_code} {response.text[:300]}"
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    problem = response.json()
    assert problem["status"] == response.status_code
    assert problem["type"].startswith("epcisException:"), problem


def test_valid_documents_are_captured_as_they_are(security_world: World) -> None:
    w = security_world

    @settings(max_examples=VALID_EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(document=documents)
    def check(document: dict[str, Any]) -> None:
        response = capture(w, document)
        assert response.status_code == 202, response.text[:500]
        job = job_of(w, response)
        assert job["success"], job
        expected_ids = [event_hash_id(event) for event in document["epcisBody"]["eventList"]]
        assert job["eventIDs"] == expected_ids  # one per event, in order (a repeated event keeps its one id)
        for event, event_id in zip(document["epcisBody"]["eventList"], expected_ids, strict=True):
            found = w.client.get(f"/epcis/events/{_pct(event_id)}", headers=w.auth("brand"))
            assert found.status_code == 200, found.text[:300]
            stored = found.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
            assert len(stored) == 1
            stored_event = dict(stored[0])
            assert stored_event.pop("eventID") == event_id
            stored_event.pop("recordTime", None)
            assert stored_event == event
            assert event_hash_id({k: v for k, v in stored[0].items() if k not in ("eventID", "recordTime")}) == event_id
        COUNTS["valid"] += 1

    check()
    print(f"\nFIGURE capture-fuzz-valid: {COUNTS['valid']} valid documents captured, stored verbatim, hash ids match")


# -- mutations --------------------------------------------------------------------------------------------------------
def _set(path: tuple[Any, ...], value: Any) -> Any:
    def mutate(doc: dict[str, Any]) -> dict[str, Any]:
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return doc
    return mutate


def _drop(path: tuple[Any, ...]) -> Any:
    def mutate(doc: dict[str, Any]) -> dict[str, Any]:
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        target.pop(path[-1], None)
        return doc
    return mutate


EVENT = ("epcisBody", "eventList", 0)
# Mutations the EPCIS 2.0 schema (or the capture interface) refuses: each must be a 4xx problem.
REFUSED = {
    "no type": _drop(("type",)),
    "wrong document type": _set(("type",), "EPCISQueryDocumentX"),
    "no body": _drop(("epcisBody",)),
    "eventList not a list": _set(("epcisBody", "eventList"), {"a": 1}),
    "empty eventList": _set(("epcisBody", "eventList"), []),
    "no schemaVersion": _drop(("schemaVersion",)),
    "no event type": _drop((*EVENT, "type")),
    "unknown event type": _set((*EVENT, "type"), "MagicEvent"),
    "no eventTime": _drop((*EVENT, "eventTime")),
    "no time zone": _drop((*EVENT, "eventTimeZoneOffset")),
    "eventTime a number": _set((*EVENT, "eventTime"), 1_700_000_000),
    "eventTime month 13": _set((*EVENT, "eventTime"), "2026-13-01T10:00:00.000Z"),
    "eventTime garbage": _set((*EVENT, "eventTime"), "yesterday"),
    "eventTime without offset": _set((*EVENT, "eventTime"), "2026-11-01T10:00:00"),
    "time zone +25:00": _set((*EVENT, "eventTimeZoneOffset"), "+25:00"),
    "time zone UTC": _set((*EVENT, "eventTimeZoneOffset"), "UTC"),
    "time zone +5": _set((*EVENT, "eventTimeZoneOffset"), "+5"),
    "creationDate garbage": _set(("creationDate",), "2026-02-30T25:61:00Z"),
    "bizStep a number": _set((*EVENT, "bizStep"), 7),
    "readPoint a string": _set((*EVENT, "readPoint"), "somewhere"),
    "document a list": lambda doc: [doc],
    "document a string": lambda doc: "EPCISDocument",
}
# Mutations that may be legal (the schema does not forbid them) but must never be a 5xx or an internal job failure.
TOLERATED = {
    "huge float quantity": lambda doc: _huge(doc, 1e308),
    "huge integer quantity": lambda doc: _huge(doc, 10**80),
    "negative quantity": lambda doc: _huge(doc, -5),
    "quantity a string": lambda doc: _huge(doc, "12"),
    "bad URI in the EPC list": lambda doc: _epcs(doc, ["not a uri"]),
    "javascript URI": lambda doc: _epcs(doc, ["javascript:alert(1)"]),
    "empty URI": lambda doc: _epcs(doc, [""]),
    "NUL in a URI": lambda doc: _epcs(doc, [f"{RESOLVER}/01/09506000134352/21/A\x00B"]),
    "lone surrogate in a URI": lambda doc: _epcs(doc, [f"{RESOLVER}/01/09506000134352/21/A\ud800"]),
    "duplicated event": lambda doc: _set(("epcisBody", "eventList"), [doc["epcisBody"]["eventList"][0]] * 2)(doc),
    "duplicated eventID": lambda doc: _claim(doc, "ni:///sha-256;" + "0" * 64 + "?ver=CBV2.0", twice=True),
    "wrong eventID hash": lambda doc: _claim(doc, "ni:///sha-256;" + "ab" * 32 + "?ver=CBV2.0"),
    "eventID not a hash": lambda doc: _claim(doc, "urn:uuid:not-a-uuid"),
    "unknown extension field": _set((*EVENT, "circ:unknown"), {"deep": [1, 2, {"x": None}]}),
    "eventTime year 9999 offset -14:00": _set((*EVENT, "eventTime"), "9999-12-31T23:59:59.999-14:00"),
    "eventTime leap second": _set((*EVENT, "eventTime"), "2016-12-31T23:59:60Z"),
    "event without @context": _drop((*EVENT, "@context")),
}


def _huge(doc: dict[str, Any], value: Any) -> dict[str, Any]:
    event = doc["epcisBody"]["eventList"][0]
    for key in ("quantityList", "inputQuantityList", "outputQuantityList"):
        for element in event.get(key) or ():
            element["quantity"] = value
    event.setdefault("ilmd", {})["circ:massGrams"] = value
    return doc


def _epcs(doc: dict[str, Any], uris: list[str]) -> dict[str, Any]:
    event = doc["epcisBody"]["eventList"][0]
    key = next((k for k in ("epcList", "outputEPCList", "inputEPCList") if k in event), "epcList")
    event[key] = uris
    return doc


def _claim(doc: dict[str, Any], event_id: str, twice: bool = False) -> dict[str, Any]:
    event_list = doc["epcisBody"]["eventList"]
    event_list[0]["eventID"] = event_id
    if twice:
        other = copy.deepcopy(event_list[0])
        other["eventTime"] = "2026-01-01T00:00:00.000Z"
        event_list.append(other)
    return doc


def test_mutated_documents_get_a_4xx_never_a_5xx(security_world: World) -> None:
    w = security_world
    mutations = st.sampled_from(sorted(REFUSED) + sorted(TOLERATED))
    seen: set[str] = set()

    @settings(max_examples=INVALID_EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(document=documents, name=mutations)
    def check(document: dict[str, Any], name: str) -> None:
        mutate = REFUSED.get(name) or TOLERATED[name]
        mutated = mutate(copy.deepcopy(document))
        response = capture(w, mutated)
        assert response.status_code < 500, f"{name}: {response.status_code} {response.text[:300]}"
        seen.add(name)
        if name in REFUSED:
            assert_problem_4xx(response, name)
            COUNTS["invalid"] += 1
            return
        if response.status_code == 202:
            job = job_of(w, response)
            for event_id in job["eventIDs"]:  # whatever was stored can be read back
                found = w.client.get(f"/epcis/events/{_pct(event_id)}", headers=w.auth("brand"))
                assert found.status_code == 200, (name, found.text[:300])
            # ... and indexed without breaking the queries of everyone else (a year-9999 eventTime at -14:00 once
            # made every later query a 500: past year 9999 in UTC)
            query = w.client.get("/epcis/events", params={"perPage": "1"}, headers=w.auth("brand"))
            assert query.status_code == 200, (name, query.text[:300])
            if name in ("wrong eventID hash", "eventID not a hash"):
                assert [r["claimed"] for r in job["replacedEventIDs"]] == [mutated["epcisBody"]["eventList"][0][
                    "eventID"]]
        else:
            assert_problem_4xx(response, name)
        COUNTS["tolerated"] += 1

    check()
    # Every mutation in both lists was tried at least once, each with its expectation: sweep the ones the random
    # draw missed (so a short run still covers them all).
    for name in sorted(set(REFUSED) | set(TOLERATED)):
        if name not in seen:
            sold = build.lifecycle(build.Lifecycle.SOLD, [f"{RESOLVER}/01/09506000134352/21/S1"])
            base = build.epcis_document([sold])
            check.hypothesis.inner_test(document=base, name=name)  # type: ignore[attr-defined]
    print(f"\nFIGURE capture-fuzz-mutations: {COUNTS['invalid']} refused (4xx) and {COUNTS['tolerated']} tolerated "
          f"documents over {len(REFUSED)} + {len(TOLERATED)} mutation kinds, 0 server errors")
