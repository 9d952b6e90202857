"""Fixtures of the API tests: one deployed world per database (SQLite, and PostgreSQL in its own schema).

A world is an in-process eth-tester chain with the contracts deployed from its dev accounts, a LedgerService, the app
(FastAPI's TestClient) and one actor per role, created through ``api.add_actor`` as ``circular actors add`` would.
Tests share a world and stay independent by using fresh serials and lot numbers (``world.unique``).
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ledger.chain import EthTesterBackend
from ledger.settings import Settings
from tests.conftest import migrated

PG_URL = os.environ.get("CIRCULAR_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
RESOLVER = "https://id.circular.example"
GTIN_A = "09506000134352"  # brand A, prefix 9506000
GTIN_A_LOTS = "09506000134369"
GTIN_B = "04012345123456"  # brand B, prefix 4012345
GTIN_UNKNOWN = "04012345000016"  # under brand B's prefix, never registered with the resolver
ROLES = ("admin", "brand", "brand_b", "recycler", "retailer", "repairer", "authority")


@dataclass
class World:
    db: str
    client: TestClient
    service: Any
    settings: Settings
    keys: dict[str, str]  # role → API key
    actor_ids: dict[str, int]
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def unique(self, prefix: str = "S") -> str:
        return f"{prefix}{next(self.counter):05d}"

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def post(self, path: str, role: str | None, body: Any, **kwargs: Any) -> Any:
        headers = self.auth(role) if role else {}
        return self.client.post(path, json=body, headers=headers, **kwargs)

    # -- building blocks for tests --------------------------------------------------------------------------------
    def lot(
        self,
        role: str = "brand",
        grams: int = 1_000_000,
        gtin: str | None = GTIN_A_LOTS,
        code: str = "CO",
        share: int = 0,
        **extra: Any,
    ) -> dict[str, Any]:
        body = {
            "lotNumber": self.unique("L"),
            "materialCode": code,
            "massGrams": grams,
            "recycledShareBps": share,
            **extra,
        }
        if gtin is not None:
            body["gtin"] = gtin
        response = self.post("/api/v1/lots", role, body)
        assert response.status_code == 201, response.text
        lot: dict[str, Any] = response.json()["lot"]
        return lot

    def item(self, lots: list[tuple[str, int]], role: str = "brand", gtin: str = GTIN_A) -> dict[str, Any]:
        body = {"gtin": gtin, "serial": self.unique(), "composition": [{"lotId": i, "grams": g} for i, g in lots]}
        response = self.post("/api/v1/items", role, body)
        assert response.status_code == 201, response.text
        item: dict[str, Any] = response.json()["items"][0]
        return item

    def act(self, item: dict[str, Any], action: str, role: str) -> Any:
        return self.post(
            "/api/v1/lifecycle-events", role, {"gtin": item["gtin"], "serial": item["serial"], "action": action}
        )

    def drain(self) -> None:
        anchorer = self.service.backend.dev_accounts()[6]
        self.service.worker(anchorer).drain()


def _pg_schema_url(schema: str) -> str:
    return f"{PG_URL}?options=-csearch_path%3D{schema}"


def _make_world(db: str, data_dir: Path, backend: Any = None) -> Iterator[World]:
    """A world on `db`, on the in-process chain unless another `backend` (an Anvil node's) is given."""
    from sqlalchemy import create_engine, text

    from api import ApiSettings, CollectionPoint, add_actor, create_app
    from ledger.service import LedgerService

    schema = f"api_test_{uuid.uuid4().hex[:12]}"
    if db == "postgresql":
        admin_engine = create_engine(PG_URL)
        try:
            with admin_engine.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        except Exception as exc:  # pragma: no cover - no server
            pytest.skip(f"PostgreSQL not reachable: {exc}")
        db_url: str | None = _pg_schema_url(schema)
    else:
        db_url = None
    backend = backend if backend is not None else EthTesterBackend()
    settings = Settings(
        data_dir=data_dir,
        db_url=db_url,
        resolver_base_url=RESOLVER,
        keystore_password="api-tests",  # type: ignore[arg-type]
        run_worker_in_api=False,
        batch_size=1000,
        batch_max_wait_s=0,
    )
    service = LedgerService(migrated(settings), backend=backend)
    dev = backend.dev_accounts()
    ledger = service.deploy(dev[0])
    ledger.grant_role(dev[0], "anchorer", dev[6].address)
    api_settings = ApiSettings(
        collection_points=[
            CollectionPoint(
                id="cp-1", name="Central drop-off", city="Brussels", country="BE", latitude=50.85, longitude=4.35
            ),
            CollectionPoint(
                id="cp-2", name="North store", city="Amsterdam", country="NL", latitude=52.37, longitude=4.90
            ),
            CollectionPoint(id="cp-3", name="South depot", city="Paris", country="FR", latitude=48.86, longitude=2.35),
        ],
        nearest_points=2,
        return_requests_per_minute=3,
        # The TestClient (its address is "testclient") plays a TLS-terminating proxy: tests name the client's address
        # with X-Forwarded-For. tests/security builds apps that trust no proxy to show the default.
        trusted_proxies=["testclient"],
        geo_header="cf-ipcountry",  # ... a CDN's, which sets the client's country
        version_catch_up_s=3600,  # the tests' anchorings run the app's hook; no other process anchors here
        max_run_size=5000,
    )
    app = create_app(settings, service, api_settings=api_settings)
    keys: dict[str, str] = {}
    ids: dict[str, int] = {}
    with TestClient(app) as client:
        with service.sessions() as session:
            for role, name, prefixes in [
                ("admin", "Admin", ()),
                ("brand", "Brand A", ("9506000",)),
                ("brand_b", "Brand B", ("4012345",)),
                ("recycler", "Recycler", ()),
                ("retailer", "Retailer", ()),
                ("repairer", "Repairer", ()),
                ("authority", "Market surveillance", ()),
            ]:
                actor, key = add_actor(
                    service, session, role.removesuffix("_b"), name, prefixes=prefixes, keys=app.state.circular.keys
                )
                keys[role], ids[role] = key, actor.id
        # Both brands work with the cast's retailer, recycler and repairer (the contract refuses anyone else).
        for brand in ("brand", "brand_b"):
            for partner in ("recycler", "retailer", "repairer"):
                headers = {"Authorization": f"Bearer {keys[brand]}"}
                response = client.post("/api/v1/partners", json={"actorId": ids[partner]}, headers=headers)
                assert response.status_code == 201, response.text
        yield World(db, client, service, settings, keys, ids)
    service.engine.dispose()
    backend.close()
    if db == "postgresql":
        with admin_engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin_engine.dispose()


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from _make_world(request.param, tmp_path_factory.mktemp(f"api-{request.param}"))


@pytest.fixture(scope="session")
def sqlite_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A SQLite-only world, for tests whose subject is not the database."""
    yield from _make_world("sqlite", tmp_path_factory.mktemp("api-sqlite-only"))
