"""People survive a rebuild: the actors come back from the archive's signed master data and the chain's role
history with the same ids, names, roles and accounts (revoked where the chain took the role back), their lot approvals
come back from the chain, and `circular actors rotate-key` gives each a key that works while the old one does not.
SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from api import add_actor
from api.models import Actor, LotApproval
from circular.cli import app
from tests.conftest import AnvilNode
from tests.reliability.pg import pg_schema
from tests.reliability.recovery_world import GTIN, ApiWorld, cli_args, open_world, settings_for

pytestmark = [pytest.mark.anvil]
runner = CliRunner()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def databases(request: pytest.FixtureRequest) -> Iterator[tuple[str | None, str | None]]:
    """(the live database, the empty one the rebuild writes into); None: SQLite in the data directory."""
    if request.param == "sqlite":
        yield None, None
        return
    with pg_schema("people") as live, pg_schema("rebuilt") as empty:
        yield live, empty


@contextmanager
def _engine(url: str) -> Iterator[Session]:
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            yield session
    finally:
        engine.dispose()


def _people(url: str) -> tuple[list[tuple[int, str, str, str, bool]], set[tuple[str, int, int]]]:
    with _engine(url) as session:
        rows = session.scalars(select(Actor).order_by(Actor.id))
        actors = [(a.id, a.name, a.role, a.address, a.revoked) for a in rows]
        approvals = {(a.lot_id, a.operator_id, a.grams) for a in session.scalars(select(LotApproval))}
    return actors, approvals


def _me(world: ApiWorld, key: str) -> int:
    return world.client.get("/api/v1/actors/me", headers={"Authorization": f"Bearer {key}"}).status_code


def test_rebuild_then_sign_in(
    tmp_path: Path, databases: tuple[str | None, str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    live_url, empty_url = databases
    node = AnvilNode()
    try:
        settings = settings_for(tmp_path / "data", node.url, live_url)
        with open_world(settings, deploy=True) as world:
            state = world.client.app.state.circular  # type: ignore[attr-defined]
            with world.service.sessions() as session:
                gone, _ = add_actor(world.service, session, "retailer", "Old Shop", keys=state.keys)
            admin = world.service.account("admin")
            world.service.ledger.revoke_role(admin, "retailer", gone.address)  # the chain takes its role back
            lot = world.call(
                "POST",
                "/api/v1/lots",
                "recycler",
                {"lotNumber": "RPET-1", "materialCode": "PES", "massGrams": 50_000, "recycledShareBps": 10_000},
            )["lot"]
            world.call(
                "POST",
                f"/api/v1/lots/{lot['lotId']}/approvals",
                "recycler",
                {"operatorId": world.actor_ids["brand"], "grams": 5_000},
            )
            world.drain()
            old_keys = dict(world.keys)
            did_url = f"/brands/{world.actor_ids['brand']}/did.json"
            did_before = world.client.get(did_url).json()
            assert did_before["verificationMethod"][0]["publicKeyJwk"]["crv"] == "Ed25519"
        live = _people(settings.database_url)
        assert live[1] and any(revoked is False for *_, revoked in live[0])

        if empty_url is None:
            (settings.data_dir / "circular.sqlite").unlink()
        else:
            settings = settings_for(settings.data_dir, node.url, empty_url)
        monkeypatch.setenv("CIRCULAR_KEYSTORE_PASSWORD", "recovery-tests")  # opens the brands' credential keys
        result = runner.invoke(app, ["rebuild", *cli_args(settings)])
        assert result.exit_code == 0, result.output
        assert "credential key" not in result.output
        actors, approvals = _people(settings.database_url)
        assert [a[:4] for a in actors] == [a[:4] for a in live[0]]  # same ids, names, roles and accounts
        assert {a[1]: a[4] for a in actors} == {**{a[1]: False for a in live[0]}, "Old Shop": True}
        assert approvals == live[1]

        result = runner.invoke(app, ["actors", "rotate-key", "Brand A", *cli_args(settings)[2:]])
        assert result.exit_code == 0, result.output
        new_key = result.output.strip().splitlines()[-1]
        refused = runner.invoke(app, ["actors", "rotate-key", "Old Shop", *cli_args(settings)[2:]])
        assert refused.exit_code == 1 and "revoked" in refused.output
        with open_world(settings, deploy=False) as world:
            # The brand's credential keys came back from its keystore files: its DID document is the same.
            assert world.client.get(did_url).json() == did_before
            assert _me(world, old_keys["brand"]) == 401  # every key was lost with the database
            assert _me(world, new_key) == 200
            world.keys.update(brand=new_key)
            # The approval came back: the brand makes an item of the recycler's lot.
            part = [{"lotId": lot["lotId"], "grams": 400}]
            world.call("POST", "/api/v1/items", "brand", {"gtin": GTIN, "serial": "AFTER", "composition": part})
            again = runner.invoke(app, ["actors", "rotate-key", "Brand A", *cli_args(settings)[2:]])
            assert again.exit_code == 0, again.output
            assert _me(world, new_key) == 401  # rotated: the previous key is revoked
            assert _me(world, again.output.strip().splitlines()[-1]) == 200
    finally:
        node.stop()
    print(f"\nFIGURE rebuild actors: {len(actors)} actors with their ids, {len(approvals)} approvals, keys rotated")
