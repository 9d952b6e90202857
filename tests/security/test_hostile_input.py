"""Hostile bodies and identifiers: every one gets a 4xx problem (or, where it is legal, is stored verbatim and
rendered escaped), never a 500.

- oversized bodies: 413 from ``api/limits.py`` before the body is read (a declared ``Content-Length``) or as soon as
  a chunked body passes the limit (checked on a real uvicorn server, over a raw socket);
- JSON nested 10,000 levels deep: 4xx, not ``RecursionError``;
- Unicode tricks, SQL-looking strings, path traversal, bad GS1 check digits in identifiers;
- ``<script>`` in a product name comes out escaped on the passport page;
- an extra field (``owner``, ``role``, ``verified``) in any input model is a 422.
"""

from __future__ import annotations

import inspect
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import uvicorn
from pydantic import ValidationError

from api import schemas
from api.problems import PROBLEM_JSON
from tests.api.conftest import GTIN_A, World
from tests.conftest import ROOT, _free_port
from tests.contracts.helpers import gtin as make_gtin

MIB = 1024 * 1024
HUGE = 20 * MIB  # above both limits: 2 MB (the write API) and 20,000,000 bytes (EPCIS capture)
DEEP = 10_000


def assert_problem(response: Any, low: int = 400, high: int = 499) -> dict[str, Any]:
    assert low <= response.status_code <= high, f"{response.status_code}: {response.text[:300]}"
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers["content-type"]
    body: dict[str, Any] = response.json()
    assert body["status"] == response.status_code
    return body


@pytest.fixture(scope="module")
def lot(security_world: World) -> dict[str, Any]:
    return security_world.lot(grams=10_000_000)


def make_item(w: World, lot: dict[str, Any], serial: str, gtin: str = GTIN_A) -> Any:
    body = {"gtin": gtin, "serial": serial, "composition": [{"lotId": lot["lotId"], "grams": 10}]}
    # json.dumps escapes to ASCII (\\ud800 ...): httpx's own encoder cannot encode a lone surrogate at all.
    return w.client.post("/api/v1/items", content=json.dumps(body),
                         headers={**w.auth("brand"), "Content-Type": "application/json"})


# -- sizes ------------------------------------------------------------------------------------------------------------
WRITE_ENDPOINTS = [
    ("POST", "/api/v1/actors", "admin"),
    ("PUT", f"/api/v1/products/{GTIN_A}", "brand"),
    ("POST", "/api/v1/lots", "brand"),
    ("POST", "/api/v1/items", "brand"),
    ("POST", "/api/v1/runs", "brand"),
    ("POST", "/api/v1/lifecycle-events", "retailer"),
    ("POST", "/api/v1/recycling", "recycler"),
    ("POST", "/epcis/capture", "brand"),
]


def test_oversized_bodies_get_413(security_world: World) -> None:
    w = security_world
    body = b'{"name": "' + b"A" * HUGE + b'"}'
    for method, path, role in WRITE_ENDPOINTS:
        response = w.client.request(method, path, content=body,
                                    headers={**w.auth(role), "Content-Type": "application/json"})
        problem = assert_problem(response, 413, 413)
        assert "bytes" in problem["detail"]
    # Anonymous, on a public POST (return requests) and on an unknown path: the limit comes before anything else.
    for path in (f"/01/{GTIN_A}/21/NOPE/return-requests", "/no/such/path"):
        assert_problem(w.client.post(path, content=body, headers={"Content-Type": "application/json"}), 413, 413)
    print(f"\nFIGURE hostile-oversized: {len(body)} bytes refused with 413 on {len(WRITE_ENDPOINTS) + 2} endpoints")


def test_bodies_under_the_limit_still_reach_the_route(security_world: World) -> None:
    """The limit is not so tight that it refuses ordinary bodies: 1.5 MB reaches validation (a 422, not a 413)."""
    w = security_world
    body = {"lotNumber": "X1", "materialCode": "CO", "massGrams": 1, "origin": "o" * (3 * MIB // 2)}
    problem = assert_problem(w.post("/api/v1/lots", "brand", body), 422, 422)
    assert any(e["loc"][-1] == "origin" for e in problem["errors"])


@pytest.fixture(scope="module")
def live_server(security_world: World) -> Iterator[tuple[str, int]]:
    """The world's app on a real uvicorn server (its state is already set up: no lifespan)."""
    port = _free_port()
    config = uvicorn.Config(security_world.client.app, host="127.0.0.1", port=port, lifespan="off",
                            log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    yield "127.0.0.1", port
    server.should_exit = True
    thread.join(timeout=10)


def _read_status(sock: socket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1])


def test_declared_oversize_is_refused_before_the_body_is_sent(live_server: tuple[str, int],
                                                                security_world: World) -> None:
    """Only the headers go out: the 413 comes back without the server waiting for a single byte of the body."""
    host, port = live_server
    auth = security_world.auth("brand")["Authorization"]
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(f"POST /api/v1/lots HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {HUGE}\r\n\r\n".encode())
        assert _read_status(sock) == 413


def test_chunked_oversize_is_cut_off_while_streaming(live_server: tuple[str, int], security_world: World) -> None:
    """A chunked body has no length to check up front: it is counted as it arrives and cut off at the limit, so a
    client streaming 20 MB gets its 413 (and a closed connection) long before it has sent them."""
    host, port = live_server
    auth = security_world.auth("brand")["Authorization"]
    chunk = b"A" * 65_536
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    status = None
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(f"POST /api/v1/lots HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n"
                     "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
        sock.settimeout(0.2)
        try:
            while sent < HUGE:
                sock.sendall(frame)
                sent += len(chunk)
                try:
                    sock.setblocking(False)
                    peek = sock.recv(16, socket.MSG_PEEK)
                    if peek:
                        break
                except BlockingIOError:
                    pass
                finally:
                    sock.settimeout(0.2)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the server stopped reading and closed: what we want
        sock.settimeout(10)
        try:
            status = _read_status(sock)
        except (ConnectionResetError, ValueError, IndexError):
            status = None
    print(f"\nFIGURE hostile-chunked: {sent} of {HUGE} bytes sent before the server refused (limit 2,000,000)")
    assert status == 413
    assert sent < HUGE // 2


# -- nesting ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("method", "path", "role"), WRITE_ENDPOINTS, ids=[p for _, p, _ in WRITE_ENDPOINTS])
def test_deeply_nested_json_is_a_4xx(security_world: World, method: str, path: str, role: str) -> None:
    w = security_world
    headers = {**w.auth(role), "Content-Type": "application/json"}
    for body in ("[" * DEEP + "]" * DEEP, '{"a":' * DEEP + "1" + "}" * DEEP,
                 '{"name": ' + "[" * DEEP + "]" * DEEP + "}"):
        assert_problem(w.client.request(method, path, content=body, headers=headers))


CRASH_PROBE = """
import sys
from fastapi.testclient import TestClient
from api.main import create_app
from ledger.settings import Settings

assert sys.getrecursionlimit() >= 100_000, sys.getrecursionlimit()  # raised by py-evm / py_ecc at import
client = TestClient(create_app(Settings()))  # no lifespan: the guard answers before any route or state
for path in ("/api/v1/lots", "/epcis/capture"):
    response = client.post(path, content="[" * 99_000 + "]" * 99_000, headers={"Content-Type": "application/json"})
    print(path, response.status_code, flush=True)
"""


def test_nesting_that_would_overflow_the_c_stack(tmp_path: Path) -> None:
    """py-evm and py_ecc raise Python's recursion limit to 100,000 when imported, so ``json.loads`` no longer stops
    at depth 1,000 with a RecursionError: 99,000 nested brackets (198 KB, far under the size limit) overflow the C
    stack of the thread that parses them and kill the whole server (SIGSEGV). The nesting guard refuses them first.
    Run in a child process, so that a regression fails this test instead of crashing the test run."""
    env = {**os.environ, "CIRCULAR_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", CRASH_PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-1000:]}"
    statuses = dict(line.split() for line in done.stdout.splitlines())
    assert statuses == {"/api/v1/lots": "422", "/epcis/capture": "400"}, done.stdout


def test_nesting_just_under_the_limit_is_no_server_error(security_world: World) -> None:
    """60 levels pass the guard: the EPCIS schema validation and the hashing must cope with them (4xx or 202)."""
    w = security_world
    nested: Any = "leaf"
    for _ in range(55):
        nested = {"circ:x": nested}
    document = {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2026-11-01T10:00:00.000Z",
        "epcisBody": {"eventList": [{
            "type": "ObjectEvent", "eventTime": "2026-11-01T10:00:00.000Z", "eventTimeZoneOffset": "+00:00",
            # An item not ours (another company prefix): only the nesting is judged here, not who may record it.
            "epcList": ["https://id.circular.example/01/00614141000012/21/DEEP"], "action": "OBSERVE",
            "circ:deep": nested}]},
    }
    response = w.post("/epcis/capture", "brand", document)
    assert response.status_code in (202, 400), response.text[:300]
    if response.status_code == 202:
        job = w.client.get(response.headers["Location"], headers=w.auth("brand"))
        assert job.status_code == 200


# -- identifiers ------------------------------------------------------------------------------------------------------
ILLEGAL_SERIALS = {
    "rtl-override": "AB\u202eC",
    "zero-width": "AB\u200bC",
    "cyrillic-a": "\u0410BC",  # looks like "ABC"
    "cyrillic-a-lower": "b\u0430c",  # looks like "bac"
    "nul": "AB\x00C",
    "lone-surrogate": "AB\ud800",
    "trailing-newline": "ABC\n",
    "space": "A B",
    "sql-or": "' OR 1=1 --",
    "sql-drop": "; DROP TABLE items",
    "too-long": "A" * 21,
    "empty": "",
    "script-too-long": "<script>alert(1)</script>",
}
# Legal in GS1 character set 82 (AI 21): they must be stored as they are and found again, not "sanitised".
LEGAL_ODD_SERIALS = ["'OR'1'='1", "../../etc/passwd", "a%2Fb", '"x";--', "<b>", "<script>x</script>"]
BAD_GTINS = {
    "check-digit": "09506000134353",
    "arabic-indic-digits": "\u0660\u0669\u0665\u0660\u0666\u0660\u0660\u0660\u0661\u0663\u0664\u0663\u0665\u0662",
    "fullwidth-digits": "\uff10\uff19\uff15\uff10\uff16\uff10\uff10\uff10\uff11\uff13\uff14\uff13\uff15\uff12",
    "cyrillic-o": "\u041e9506000134352",
    "sql": "0' OR '1'='1",
    "nul": "0950600013435\x00",
}


@pytest.mark.parametrize("name", list(ILLEGAL_SERIALS))
def test_illegal_serials_are_refused(security_world: World, lot: dict[str, Any], name: str) -> None:
    problem = assert_problem(make_item(security_world, lot, ILLEGAL_SERIALS[name]), 422, 422)
    if name == "nul":  # refused before the route, by the body guard (see test_free_text_on_both_databases)
        assert "NUL" in problem["detail"]
    else:
        assert any("serial" in e["loc"] for e in problem["errors"]), problem


@pytest.mark.parametrize("name", list(BAD_GTINS))
def test_bad_gtins_are_refused(security_world: World, lot: dict[str, Any], name: str) -> None:
    w = security_world
    value = BAD_GTINS[name]
    assert_problem(make_item(w, lot, w.unique("G"), gtin=value), 422, 422)
    assert_problem(w.client.put(f"/api/v1/products/{quote(value, safe='')}", json={"name": "x"},
                                headers=w.auth("brand")))
    assert_problem(w.client.get(f"/01/{quote(value, safe='')}"))


def test_legal_odd_serials_are_stored_verbatim(security_world: World, lot: dict[str, Any]) -> None:
    w = security_world
    for serial in LEGAL_ODD_SERIALS:
        made = make_item(w, lot, serial)
        assert made.status_code == 201, made.text
        assert made.json()["items"][0]["serial"] == serial
        found = w.client.get(f"/01/{GTIN_A}/21/{quote(serial, safe='')}/passport.jsonld")
        assert found.status_code == 200, (serial, found.text[:300])
        assert quote(serial, safe="") in found.text or serial in found.text
    # ... and a look-alike of one of them is not that item.
    assert w.client.get(f"/01/{GTIN_A}/21/{quote(chr(0x2019) + 'OR', safe='')}").status_code >= 400


@pytest.mark.parametrize("path", [
    "/01/%2e%2e/%2e%2e/etc/passwd",
    f"/01/{GTIN_A}/21/..%2F..%2F..%2Fetc%2Fpasswd",
    f"/01/{GTIN_A}/21/%2e%2e/%2e%2e/%2e%2e/api/config.py",
    "/static/..%2F..%2Fapi%2Fconfig.py",
    "/static/%2e%2e/%2e%2e/pyproject.toml",
    "/static/%2e%2e%2f%2e%2e%2fpyproject.toml",
    f"/01/{GTIN_A}/21/%C0%AF%C0%AE",  # overlong UTF-8 for "/."
    f"/01/{GTIN_A}/21/%00",
    f"/01/{GTIN_A}/21/%ED%A0%80",  # an encoded lone surrogate
    "/epcis/events/..%2F..%2Fetc%2Fpasswd",
    f"/api/v1/items/{GTIN_A}/..%2F..%2F..%2Fetc%2Fshadow",
])
def test_path_traversal_and_bad_encodings(security_world: World, path: str) -> None:
    response = security_world.client.get(path, follow_redirects=False)
    assert response.status_code < 500, response.text[:300]
    assert response.status_code >= 300
    for secret in ("root:x:", "[project]", "class ApiSettings", "hatchling"):
        assert secret not in response.text


def test_overlong_utf8_and_lone_surrogates_in_bodies(security_world: World, lot: dict[str, Any]) -> None:
    w = security_world
    headers = {**w.auth("brand"), "Content-Type": "application/json"}
    overlong = b'{"gtin": "09506000134352", "serial": "\xc0\xaf", "composition": []}'
    assert_problem(w.client.post("/api/v1/items", content=overlong, headers=headers))
    surrogate_name = b'{"name": "Shirt \\ud800"}'
    assert_problem(w.client.put(f"/api/v1/products/{GTIN_A}", content=surrogate_name, headers=headers))
    assert_problem(w.client.post("/epcis/capture", content=b'{"type": "EPCISDocument", "x": "\xff\xfe"}',
                                 headers=headers))


FREE_TEXT_LEGAL = ["Shirt \u202eevil", "Zero\u200bwidth", "\u0421otton", "' OR 1=1 --", "<script>x</script>",
                   "emoji \U0001f455", "\\u0000 (a backslash, not a NUL)"]
FREE_TEXT_ILLEGAL = {"nul": "A\x00B", "lone-surrogate": "A\ud800B"}


def test_free_text_on_both_databases(any_db_world: World) -> None:
    """Free text (names, descriptions, origins, EPCIS extensions) is stored verbatim, however odd, except what no
    database can store alike: NUL (PostgreSQL refuses it: it was a 500 there) and lone surrogates. Those are a 4xx
    on both databases."""
    w = any_db_world
    headers = {**w.auth("brand"), "Content-Type": "application/json"}
    product_gtin = make_gtin("9506000", "55001")
    for text in FREE_TEXT_LEGAL:
        body = json.dumps({"name": text, "description": text})
        response = w.client.put(f"/api/v1/products/{product_gtin}", content=body, headers=headers)
        assert response.status_code == 200, (w.db, text, response.text[:300])
        assert w.client.get(f"/api/v1/products/{product_gtin}").json()["description"] == text
    for name, text in FREE_TEXT_ILLEGAL.items():
        body = json.dumps({"name": "x", "description": text})
        assert_problem(w.client.put(f"/api/v1/products/{product_gtin}", content=body, headers=headers))
        lot = {"lotNumber": w.unique("NUL"), "materialCode": "CO", "massGrams": 5, "origin": text}
        assert_problem(w.client.post("/api/v1/lots", content=json.dumps(lot), headers=headers))
        document = {
            "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
            "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2026-11-01T10:00:00.000Z",
            "epcisBody": {"eventList": [{
                "type": "ObjectEvent", "eventTime": "2026-11-01T10:00:00.000Z", "eventTimeZoneOffset": "+00:00",
                "epcList": [f"https://id.circular.example/01/00614141107346/21/{name}"], "action": "OBSERVE",
                "circ:note": text}]},
        }
        response = w.client.post("/epcis/capture", content=json.dumps(document), headers=headers)
        if response.status_code == 202:  # refused per event, in the job (the hash of a lone surrogate fails)
            job = w.client.get(response.headers["Location"], headers=w.auth("brand")).json()
            assert not job["success"] and job["eventIDs"] == [], (name, job)
        else:
            assert_problem(response, 400, 400)
        assert w.client.get("/epcis/events", params={"perPage": "1"}, headers=w.auth("brand")).status_code == 200


def test_sql_looking_text_is_stored_verbatim(security_world: World) -> None:
    w = security_world
    product_gtin = make_gtin("9506000", "77001")
    name = "Robert'); DROP TABLE api_products;-- ' OR 1=1 --"
    response = w.client.put(f"/api/v1/products/{product_gtin}", json={"name": name}, headers=w.auth("brand"))
    assert response.status_code == 200, response.text
    assert w.client.get(f"/api/v1/products/{product_gtin}").json()["name"] == name
    assert w.client.get(f"/api/v1/products/{GTIN_A}").status_code in (200, 404)  # the table is still there
    brand = w.auth("brand")
    out_of_range = w.client.get(
        "/epcis/events", params={"GE_eventTime": "9999-12-31T23:59:59.000-14:00"}, headers=brand
    )
    assert_problem(out_of_range, 400, 400)
    query = w.client.get(
        "/epcis/events", params={"MATCH_epc": "' OR 1=1 --", "EQ_bizStep": "x' OR '1'='1"}, headers=brand
    )
    assert query.status_code in (200, 400), query.text[:300]
    if query.status_code == 200:
        assert query.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"] == []


def test_script_in_names_is_escaped_on_the_passport(security_world: World, lot: dict[str, Any]) -> None:
    w = security_world
    product_gtin = make_gtin("9506000", "66001")
    payload = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    response = w.client.put(f"/api/v1/products/{product_gtin}",
                            json={"name": payload, "description": payload, "care": payload},
                            headers=w.auth("brand"))
    assert response.status_code == 200, response.text
    serial = w.unique("X")
    assert make_item(w, lot, serial, gtin=product_gtin).status_code == 201
    page = w.client.get(f"/01/{product_gtin}/21/{serial}/passport")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "<script>alert(" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;alert(" in page.text
    # A serial may legally hold "<", ">" and "/" (GS1 character set 82): its passport shows it escaped.
    script_serial = "<script>x</script>"
    if make_item(w, lot, script_serial, gtin=product_gtin).status_code == 201:
        page = w.client.get(f"/01/{product_gtin}/21/{quote(script_serial, safe='')}/passport")
        assert page.status_code == 200
        assert "<script>x" not in page.text and "&lt;script&gt;x" in page.text
    # The unknown-serial page names what was asked for: escaped too.
    unknown = w.client.get(f"/01/{product_gtin}/21/{quote('<b>x', safe='')}", headers={"Accept": "text/html"},
                           follow_redirects=True)
    assert "<b>x" not in unknown.text


# -- extra fields -----------------------------------------------------------------------------------------------------
INPUT_MODELS = sorted(
    (cls for _, cls in inspect.getmembers(schemas, inspect.isclass)
     if issubclass(cls, schemas.Input) and cls is not schemas.Input),
    key=lambda cls: cls.__name__,
)
LOT_ID = "0x" + "ab" * 32
VALID: dict[str, dict[str, Any]] = {
    "ActorCreate": {"name": "Someone", "role": "retailer"},
    "ProductCreate": {"name": "Shirt"},
    "LotCreate": {"lotNumber": "L1", "materialCode": "CO", "massGrams": 1},
    "ApprovalCreate": {"operatorId": 1, "grams": 1},
    "Part": {"lotId": LOT_ID, "grams": 1},
    "ItemCreate": {"gtin": GTIN_A, "serial": "S1", "composition": [{"lotId": LOT_ID, "grams": 1}]},
    "RunCreate": {"gtin": GTIN_A, "serials": ["S1"], "composition": [{"lotId": LOT_ID, "grams": 1}]},
    "LifecycleCreate": {"gtin": GTIN_A, "serial": "S1", "action": "sold"},
    "ItemRef": {"gtin": GTIN_A, "serial": "S1"},
    "RecyclingCreate": {"items": [{"gtin": GTIN_A, "serial": "S1"}], "materialCode": "CO", "lotNumber": "R1",
                        "massGrams": 1},
    "ReturnRequestCreate": {},
    "ItemKey": {"gtin": GTIN_A, "serial": "S1"},
    "LifecycleBatchCreate": {"action": "sold", "items": [{"gtin": GTIN_A, "serial": "S1"}]},
    "CorrectiveStep": {"action": "returned"},
    "CorrectionCreate": {"eventId": "ni:///sha-256;" + "ab" * 32 + "?ver=CBV2.0", "reason": "did_not_occur"},
    "LotCorrection": {"origin": "Greece", "reason": "wrong farm"},
    "PartnerCreate": {"actorId": 1},
    "CredentialRevocationCreate": {"gtin": GTIN_A, "serial": "S1"},
    "OperatorCreate": {"identifier": "9506000000015", "street": "Main street", "postCode": "1000", "city": "Lisbon",
                       "country": "PT", "email": "a@b.example"},
}
EXTRA = {"owner": "0x" + "11" * 20, "role": "admin", "verified": True}


def test_every_input_model_is_listed() -> None:
    """A new input model must be added to VALID (and so to the extra-field checks)."""
    assert {cls.__name__ for cls in INPUT_MODELS} == set(VALID)


@pytest.mark.parametrize("model", INPUT_MODELS, ids=lambda cls: cls.__name__)
def test_extra_fields_are_refused_by_every_input_model(model: type[schemas.Input]) -> None:
    model.model_validate(VALID[model.__name__])  # the body is valid without the extra field
    for field, value in EXTRA.items():
        if field in model.model_fields:
            continue  # e.g. ActorCreate.role is a real field
        with pytest.raises(ValidationError) as info:
            model.model_validate({**VALID[model.__name__], field: value})
        assert [e["type"] for e in info.value.errors()] == ["extra_forbidden"]


def _endpoints(w: World, lot: dict[str, Any]) -> list[tuple[str, str, str | None, dict[str, Any], tuple[Any, ...]]]:
    """(method, path, role, body with an extra field, where the error must point)."""
    owner = {"owner": EXTRA["owner"]}
    item_doc = dict(VALID["ItemCreate"])
    return [
        ("POST", "/api/v1/actors", "admin", {**VALID["ActorCreate"], "verified": True}, ("body", "verified")),
        ("PUT", f"/api/v1/products/{GTIN_A}", "brand", {**VALID["ProductCreate"], **owner}, ("body", "owner")),
        ("POST", "/api/v1/lots", "brand", {**VALID["LotCreate"], **owner}, ("body", "owner")),
        ("POST", f"/api/v1/lots/{lot['lotId']}/approvals", "brand", {**VALID["ApprovalCreate"], **owner},
         ("body", "owner")),
        ("POST", "/api/v1/items", "brand", {**item_doc, "role": "admin"}, ("body", "role")),
        ("POST", "/api/v1/items", "brand", {**item_doc, "composition": [{**VALID["Part"], **owner}]},
         ("body", "composition", 0, "owner")),
        ("POST", "/api/v1/runs", "brand", {**VALID["RunCreate"], "verified": True}, ("body", "verified")),
        ("POST", "/api/v1/lifecycle-events", "retailer", {**VALID["LifecycleCreate"], "role": "brand"},
         ("body", "role")),
        ("POST", "/api/v1/lifecycle-batches", "retailer", {**VALID["LifecycleBatchCreate"], "role": "brand"},
         ("body", "role")),
        ("POST", "/api/v1/lifecycle-batches", "retailer",
         {**VALID["LifecycleBatchCreate"], "items": [{**VALID["ItemKey"], "verified": True}]},
         ("body", "items", 0, "verified")),
        ("POST", "/api/v1/recycling", "recycler", {**VALID["RecyclingCreate"], **owner}, ("body", "owner")),
        ("POST", "/api/v1/partners", "brand", {**VALID["PartnerCreate"], **owner}, ("body", "owner")),
        ("PUT", "/api/v1/operator", "brand", {**VALID["OperatorCreate"], **owner}, ("body", "owner")),
        ("POST", "/api/v1/recycling", "recycler",
         {**VALID["RecyclingCreate"], "items": [{**VALID["ItemRef"], "verified": True}]},
         ("body", "items", 0, "verified")),
    ]


def test_extra_fields_are_refused_by_every_endpoint(security_world: World, lot: dict[str, Any]) -> None:
    w = security_world
    endpoints = _endpoints(w, lot)
    for method, path, role, body, loc in endpoints:
        response = w.client.request(method, path, json=body, headers=w.auth(role) if role else {})
        problem = assert_problem(response, 422, 422)
        assert [(tuple(e["loc"]), e["type"]) for e in problem["errors"]] == [(loc, "extra_forbidden")], (path, problem)
    # The public return request (validated by hand in the passport route): one request, under its rate limit.
    serial = w.unique("RR")
    assert make_item(w, lot, serial).status_code == 201
    response = w.client.post(f"/01/{GTIN_A}/21/{serial}/return-requests", json={"latitude": 1.0, "verified": True})
    problem = assert_problem(response, 422, 422)
    assert [e["type"] for e in problem["errors"]] == ["extra_forbidden"]
    print(f"\nFIGURE hostile-extra-fields: {len(INPUT_MODELS)} input models, {len(endpoints) + 1} endpoints, "
          "every extra field refused")
