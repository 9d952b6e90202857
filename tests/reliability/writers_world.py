"""A deployed world served by a real uvicorn process, for the writers' reliability tests.

Anvil (JSON-RPC), a database (SQLite file or a fresh PostgreSQL schema), two brands with actors made through
``api.add_actor``, lots and runs of items made in-process; then ``uvicorn --factory api.main:create_app`` is started
on the same data directory and database, configured only through ``CIRCULAR_*`` variables as a deployment would be.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from ledger.service import LedgerService
from ledger.settings import Settings
from tests.api.conftest import PG_URL
from tests.conftest import ROOT, AnvilNode, _free_port, migrated

RESOLVER = "https://id.circular.example"
BRANDS = {"brand": ("Brand A", "9506000", "09506000134352"), "brand_b": ("Brand B", "4012345", "04012345123456")}
LOTS_GTIN = {"brand": "09506000134369", "brand_b": "04012345000016"}
PASSWORD = "writers-tests"


@dataclass
class WritersWorld:
    node: AnvilNode
    settings: Settings
    service: LedgerService
    env: dict[str, str]
    keys: dict[str, str] = field(default_factory=dict)  # role → API key
    server: subprocess.Popen[bytes] | None = None
    url: str = ""
    log_path: Path | None = None

    # -- the API process --------------------------------------------------------------------------------------
    def start_api(self, workers: int = 1) -> None:
        assert self.server is None
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app", "--host", "127.0.0.1"]
        command += ["--port", str(port)]
        command += ["--log-level", "warning", "--no-access-log"]
        if workers > 1:
            command += ["--workers", str(workers)]
        assert self.log_path is not None
        log = self.log_path.open("ab")
        # A session of its own: kill -9 of the group takes every worker with the supervisor.
        self.server = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                pytest.fail(f"the API exited with {self.server.returncode}: {self.log_text()[-2000:]}")
            try:
                response = httpx.get(f"{self.url}/api/v1/actors/me", headers=self.auth("brand"), timeout=2)
                if response.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.kill_api()
        pytest.fail(f"the API did not start within 60 s: {self.log_text()[-2000:]}")

    def kill_api(self, sig: int = signal.SIGKILL) -> None:
        if self.server is None:
            return
        if self.server.poll() is None:
            os.killpg(self.server.pid, sig)
            self.server.wait(timeout=30)
        self.server = None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    # -- clients ----------------------------------------------------------------------------------------------
    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


@contextmanager
def writers_world(tmp_path: Path, db: str, *, anvil_args: tuple[str, ...] = ()) -> Iterator[WritersWorld]:
    """The world, torn down afterwards (the API process, Anvil, the PostgreSQL schema)."""
    node = AnvilNode(*anvil_args)
    schema = f"writers_{uuid.uuid4().hex[:12]}"
    admin_engine = None
    db_url: str | None = None
    if db == "postgresql":
        from sqlalchemy import create_engine, text

        admin_engine = create_engine(PG_URL)
        try:
            with admin_engine.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        except Exception as exc:  # pragma: no cover - no server
            node.stop()
            pytest.skip(f"PostgreSQL not reachable: {exc}")
        db_url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    data_dir = tmp_path / "data"
    settings = Settings(
        data_dir=data_dir,
        rpc_url=node.url,
        db_url=db_url,
        resolver_base_url=RESOLVER,
        keystore_password=PASSWORD,  # type: ignore[arg-type]
        run_worker_in_api=False,
        batch_size=1000,
        batch_max_wait_s=0,
    )
    env = {
        **os.environ,
        "CIRCULAR_DATA_DIR": str(data_dir),
        "CIRCULAR_RPC_URL": node.url,
        "CIRCULAR_KEYSTORE_PASSWORD": PASSWORD,
        "CIRCULAR_RUN_WORKER_IN_API": "false",
        "CIRCULAR_RESOLVER_BASE_URL": RESOLVER,
        "CIRCULAR_API_MAX_RUN_SIZE": "5000",
    }
    if db_url is not None:
        env["CIRCULAR_DB_URL"] = db_url
    service = LedgerService(migrated(settings))
    world = WritersWorld(node, settings, service, env, log_path=tmp_path / "api.log")
    try:
        _deploy(world)
        yield world
    finally:
        world.kill_api()
        service.close()
        node.stop()
        if admin_engine is not None:
            from sqlalchemy import text

            with admin_engine.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin_engine.dispose()


def _deploy(world: WritersWorld) -> None:
    from api import add_actor, create_app

    service = world.service
    dev = service.backend.dev_accounts()
    ledger = service.deploy(dev[0])
    ledger.grant_role(dev[0], "anchorer", dev[9].address)
    app = create_app(world.settings, service)
    with TestClient(app), service.sessions() as session:  # the lifespan migrates the database
        for role, (name, prefix, _) in BRANDS.items():
            _, key = add_actor(service, session, "brand", name, prefixes=(prefix,), keys=app.state.circular.keys)
            world.keys[role] = key


def make_runs(world: WritersWorld, role: str, prefix: str, count: int) -> list[str]:
    """`count` items of one run of `role`'s GTIN, made in-process (no API process needed); their serials."""
    from api import create_app

    _, _, gtin = BRANDS[role]
    serials = [f"{prefix}{i:05d}" for i in range(count)]
    with TestClient(create_app(world.settings, world.service)) as client:
        lot = client.post(
            "/api/v1/lots",
            json={
                "gtin": LOTS_GTIN[role],
                "lotNumber": f"L{prefix}",
                "materialCode": "CO",
                "massGrams": 100 * count + 1000,
                "recycledShareBps": 0,
            },
            headers=world.auth(role),
        )
        assert lot.status_code == 201, lot.text
        parts = [{"lotId": lot.json()["lot"]["lotId"], "grams": 100}]
        run = client.post(
            "/api/v1/runs",
            json={"gtin": gtin, "serials": serials, "composition": parts},
            headers=world.auth(role),
        )
        assert run.status_code == 201, run.text
    return serials


def lifecycle_body(role: str, serial: str, action: str) -> dict[str, Any]:
    return {"gtin": BRANDS[role][2], "serial": serial, "action": action}


def item_uri(role: str, serial: str) -> str:
    return f"{RESOLVER}/01/{BRANDS[role][2]}/21/{serial}"


__all__ = ["BRANDS", "WritersWorld", "item_uri", "lifecycle_body", "make_runs", "writers_world"]
