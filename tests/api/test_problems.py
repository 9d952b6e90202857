"""Errors are RFC 9457 problem details, 4xx for every bad input, never a 500 nor an error with 200."""

from __future__ import annotations

from typing import Any

import pytest

from api.problems import PROBLEM_NS

from .conftest import GTIN_A, World


def _assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["type"]
    return body


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/no/such/page", None, 404),
        ("GET", "/favicon.ico", None, 404),
        ("DELETE", "/api/v1/actors/me", None, 405),
        ("POST", "/api/v1/lots", {"lotNumber": "X", "materialCode": "CO", "massGrams": 1}, 401),
        ("GET", "/api/v1/lots/0x1234", None, 422),
        ("GET", "/api/v1/lots/0x" + "ab" * 32, None, 404),
        ("GET", f"/api/v1/items/{GTIN_A}/NOPE", None, 404),
        ("GET", "/api/v1/items/123/NOPE", None, 400),
        ("GET", "/api/v1/products/09506000134353", None, 400),
    ],
)
def test_problems(world: World, method: str, path: str, body: Any, status: int) -> None:
    # One item's or lot's record is read with a key (tests/security/test_write_api_reads.py): the admin's, here.
    keyed = method == "GET" and path.startswith(("/api/v1/lots/", "/api/v1/items/"))
    headers = world.auth("admin") if keyed else {}
    _assert_problem(world.client.request(method, path, json=body, headers=headers), status)


def test_unknown_fields_are_refused(world: World) -> None:
    response = world.post(
        "/api/v1/lots", "brand", {"lotNumber": "X1", "materialCode": "CO", "massGrams": 1, "colour": "red"}
    )
    problem = _assert_problem(response, 422)
    assert problem["type"] == PROBLEM_NS + "invalid-request"
    assert any(error["loc"][-1] == "colour" for error in problem["errors"])


@pytest.mark.parametrize(
    "body",
    [
        {"gtin": "09506000134353", "lotNumber": "X", "materialCode": "CO", "massGrams": 1},  # check digit
        {"lotNumber": "bad lot", "materialCode": "CO", "massGrams": 1},  # space in a lot number
        {"lotNumber": "X", "materialCode": "", "massGrams": 1},
        {"lotNumber": "X", "materialCode": "CO", "massGrams": 0},
        {"lotNumber": "X", "materialCode": "CO", "massGrams": 1, "recycledShareBps": 10_001},
        {"lotNumber": "X", "materialCode": "CO", "massGrams": 1, "certificates": ["ftp://x"]},
    ],
)
def test_bad_lot_bodies_are_422(world: World, body: dict[str, Any]) -> None:
    _assert_problem(world.post("/api/v1/lots", "brand", body), 422)


def test_malformed_json_is_422(world: World) -> None:
    response = world.client.post(
        "/api/v1/lots", content=b"{not json", headers={**world.auth("brand"), "Content-Type": "application/json"}
    )
    _assert_problem(response, 422)


def test_duplicate_actor_is_409(world: World) -> None:
    _assert_problem(world.post("/api/v1/actors", "admin", {"name": "Brand A", "role": "brand"}), 409)


def test_prefixes_only_for_brands(world: World) -> None:
    response = world.post(
        "/api/v1/actors", "admin", {"name": world.unique("R "), "role": "retailer", "prefixes": ["1234567"]}
    )
    _assert_problem(response, 422)


def test_an_unexpected_error_is_a_500_problem(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    import api.routes.resolver as resolver

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(resolver, "request_base", boom)
    client = TestClient(world.client.app, raise_server_exceptions=False)
    response = client.get("/.well-known/gs1resolver")
    problem = _assert_problem(response, 500)
    assert "boom" not in str(problem)
