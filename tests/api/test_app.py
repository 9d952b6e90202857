"""The app factory: an app that opens its own ledger (migrating its database first), and its OpenAPI document."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

import api
from ledger.settings import Settings


def test_an_app_opens_its_own_ledger(tmp_path: Path) -> None:
    app = api.create_app(Settings(data_dir=tmp_path / "data", run_worker_in_api=False))
    with TestClient(app) as client:
        assert client.get("/openapi.json").status_code == 200
        assert client.get("/.well-known/gs1resolver").status_code == 200
        assert client.get("/01/09506000134352").status_code == 404  # nothing registered yet
        assert client.get("/docs").status_code == 200
    assert (tmp_path / "data" / "circular.sqlite").exists()


def test_openapi_documents_every_route(tmp_path: Path) -> None:
    app = api.create_app(Settings(data_dir=tmp_path / "data", run_worker_in_api=False))
    with TestClient(app) as client:
        paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/v1/lots",
        "/api/v1/runs",
        "/api/v1/lifecycle-events",
        "/api/v1/recycling",
        "/epcis/capture",
        "/epcis/events",
        "/.well-known/gs1resolver",
        "/01/{path}",
    ):
        assert path in paths
    assert set(paths["/01/{path}"]) == {"get", "head", "options", "post"}


def test_public_surface() -> None:
    assert {"create_app", "add_actor", "upgrade", "ApiSettings"} <= set(api.__all__)
