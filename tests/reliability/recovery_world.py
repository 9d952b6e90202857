"""A deployed API world on its own Anvil node and data directory, reachable by the `circular` CLI as well.

The API tests' worlds run on an in-process chain that a CLI invocation cannot reach; the recovery tests need the CLI
(`circular rebuild`, `circular verify`) to act on the very chain and database the API wrote, as an operator would.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from ledger.settings import Settings

RESOLVER = "https://id.circular.example"
GTIN = "09506000134352"  # under Brand A's prefix 9506000
GTIN_LOTS = "09506000134369"


@dataclass
class ApiWorld:
    client: TestClient
    service: Any
    settings: Settings
    keys: dict[str, str]  # role → API key
    actor_ids: dict[str, int]

    def call(self, method: str, path: str, role: str | None, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.keys[role]}"} if role else {}
        response = self.client.request(method, path, json=body, headers=headers)
        assert response.status_code in (200, 201), f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    def drain(self) -> None:
        self.service.worker(self.service.account("anchorer")).drain()


def settings_for(data_dir: Path, rpc_url: str, db_url: str | None = None) -> Settings:
    return Settings(
        data_dir=data_dir,
        rpc_url=rpc_url,
        db_url=db_url,
        resolver_base_url=RESOLVER,
        keystore_password="recovery-tests",  # type: ignore[arg-type]
        run_worker_in_api=False,
        batch_size=1000,
        batch_max_wait_s=0,
    )


def cli_args(settings: Settings) -> list[str]:
    """The options that point the CLI at this world's chain, database and data directory."""
    args = ["--rpc", str(settings.rpc_url), "--data-dir", str(settings.data_dir)]
    if settings.db_url:
        args += ["--db", settings.db_url]
    return args


@contextmanager
def open_world(settings: Settings, *, deploy: bool, api_settings: Any = None) -> Iterator[ApiWorld]:
    """The API over `settings`: freshly deployed with one actor per role (`deploy`), or as a restarted server."""
    from api import add_actor, create_app
    from api.db import upgrade
    from ledger.service import LedgerService

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    service = LedgerService(settings)
    keys: dict[str, str] = {}
    ids: dict[str, int] = {}
    try:
        if deploy:
            ledger = service.deploy(service.account("admin"))
            ledger.grant_role(service.account("admin"), "anchorer", service.account("anchorer").address)
        app = create_app(settings, service, api_settings=api_settings)
        with TestClient(app) as client:
            if deploy:
                with service.sessions() as session:
                    for role, name, prefixes in [
                        ("brand", "Brand A", ("9506000",)),
                        ("recycler", "Loop Recycling", ()),
                        ("retailer", "Corner Store", ()),
                    ]:
                        actor, key = add_actor(
                            service, session, role, name, prefixes=prefixes, keys=app.state.circular.keys
                        )
                        keys[role], ids[role] = key, actor.id
                for partner in ("recycler", "retailer"):  # the brand works with both (the contract refuses others)
                    headers = {"Authorization": f"Bearer {keys['brand']}"}
                    response = client.post("/api/v1/partners", json={"actorId": ids[partner]}, headers=headers)
                    assert response.status_code == 201, response.text
            yield ApiWorld(client, service, settings, keys, ids)
    finally:
        service.close()


def passport_path(gtin: str, serial: str, resource: str = "passport.jsonld") -> str:
    return f"/01/{gtin}/21/{serial}/{resource}"


__all__ = ["GTIN", "GTIN_LOTS", "RESOLVER", "ApiWorld", "cli_args", "open_world", "passport_path", "settings_for"]
