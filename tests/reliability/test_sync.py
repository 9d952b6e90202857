"""A database restored from an older snapshot is caught up with the chain by `circular sync`: after backup → more
writes → restore → sync, every passport is byte for byte the live one's (the rebuild test's comparison), and the
items move on from the state the chain has. `circular rebuild` refuses a database that holds anything, and a rebuild
that fails half-way leaves nothing behind. SQLite and PostgreSQL (a database of its own: a snapshot is a whole
database)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from circular.cli import app
from tests.conftest import AnvilNode
from tests.reliability.pg import PG_URL
from tests.reliability.recovery_world import GTIN, ApiWorld, cli_args, open_world, passport_path, settings_for

pytestmark = [pytest.mark.anvil]
runner = CliRunner()
SERIALS = [f"S{i:03d}" for i in range(40)]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    name = f"sync_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # pragma: no cover - no server
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _step(world: ApiWorld, serial: str, action: str, role: str) -> None:
    world.call("POST", "/api/v1/lifecycle-events", role, {"gtin": GTIN, "serial": serial, "action": action})


def _passports(world: ApiWorld, serials: list[str]) -> dict[str, bytes]:
    found = {}
    for serial in serials:
        response = world.client.get(passport_path(GTIN, serial))
        assert response.status_code == 200, (serial, response.text)
        found[serial] = response.content
    return found


def _rows(url: str) -> dict[str, int]:
    from api.models import Item  # noqa: F401  (the API's tables in the metadata)
    from ledger.db import Base

    engine = create_engine(url)
    try:
        with Session(engine) as session:
            return {
                table.name: int(session.scalar(select(func.count()).select_from(table)) or 0)
                for table in Base.metadata.sorted_tables
            }
    finally:
        engine.dispose()


def test_backup_writes_restore_sync_equals_live(node: AnvilNode, tmp_path: Path, database: str | None) -> None:
    settings = settings_for(tmp_path / "data", node.url, database)
    snapshot = tmp_path / "snapshot.db"
    with open_world(settings, deploy=True) as world:
        world.call("PUT", f"/api/v1/products/{GTIN}", "brand", {"name": "Field jacket", "care": "Wash cold"})
        lot = world.call(
            "POST",
            "/api/v1/lots",
            "brand",
            {"lotNumber": "CO-1", "materialCode": "CO", "massGrams": 1_000_000, "recycledShareBps": 2_500},
        )["lot"]
        part = [{"lotId": lot["lotId"], "grams": 600}]
        world.call("POST", "/api/v1/runs", "brand", {"gtin": GTIN, "serials": SERIALS, "composition": part})
        world.drain()
        _step(world, SERIALS[0], "sold", "retailer")  # not anchored yet when the snapshot is taken
        result = runner.invoke(app, ["backup", str(snapshot), *cli_args(settings)[2:]])
        assert result.exit_code == 0, result.output

        # After the snapshot: sales, a collection and a recycling, a new item of recovered material.
        world.drain()
        for serial in SERIALS[1:6]:
            _step(world, serial, "sold", "retailer")
        for serial in SERIALS[:3]:
            _step(world, serial, "in_use", "retailer")
            _step(world, serial, "collected", "recycler")
        recovered = world.call(
            "POST",
            "/api/v1/recycling",
            "recycler",
            {"items": [{"gtin": GTIN, "serial": s} for s in SERIALS[:3]], "materialCode": "CO", "lotNumber": "R-1",
             "massGrams": 1_500},
        )["lot"]
        world.call(
            "POST",
            f"/api/v1/lots/{recovered['lotId']}/approvals",
            "recycler",
            {"operatorId": world.actor_ids["brand"], "grams": 1_000},
        )
        world.call(
            "POST",
            "/api/v1/items",
            "brand",
            {"gtin": GTIN, "serial": "LATER", "composition": [{"lotId": recovered["lotId"], "grams": 500}]},
        )
        world.drain()
        serials = [*SERIALS, "LATER"]
        live = _passports(world, serials)
        keys = world.keys
    assert b'"circ:status":"verified"' in live["LATER"]

    result = runner.invoke(app, ["restore", str(snapshot), *cli_args(settings)[2:]])
    assert result.exit_code == 0, result.output
    with open_world(settings, deploy=False) as world:  # restored: behind the chain, as the issue describes
        assert world.client.get(passport_path(GTIN, "LATER")).status_code == 404

    result = runner.invoke(app, ["sync", *cli_args(settings)])
    assert result.exit_code == 0, result.output
    assert "caught up" in result.output
    with open_world(settings, deploy=False) as world:
        world.keys.update(keys)
        synced = _passports(world, serials)
        different = [s for s in serials if synced[s] != live[s]]
        assert not different, (different[:3], live[different[0]][:1500], synced[different[0]][:1500])
        _step(world, SERIALS[4], "returned", "retailer")  # sold after the snapshot: it moves on from "sold"
        _step(world, "LATER", "sold", "retailer")

    # A second sync has nothing left to do.
    result = runner.invoke(app, ["sync", *cli_args(settings)])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "0 events recovered" in said and ", 0 rows brought up to date" in said, said
    # rebuild refuses the kept database in one line, and writes nothing.
    before = _rows(settings.database_url)
    result = runner.invoke(app, ["rebuild", *cli_args(settings)])
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1 and "not empty" in result.output, result.output
    assert _rows(settings.database_url) == before
    print(f"\nFIGURE sync: {len(serials)} passports equal to live after backup, writes, restore and sync")


def test_a_rebuild_that_fails_half_way_writes_nothing(
    node: AnvilNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(tmp_path / "data", node.url)
    with open_world(settings, deploy=True) as world:
        lot = world.call(
            "POST",
            "/api/v1/lots",
            "brand",
            {"lotNumber": "H-1", "materialCode": "CO", "massGrams": 10_000, "recycledShareBps": 0},
        )["lot"]
        world.call(
            "POST", "/api/v1/items", "brand", {"gtin": GTIN, "serial": "HALF", "composition": [
                {"lotId": lot["lotId"], "grams": 100}]}
        )
        world.drain()
    (settings.data_dir / "circular.sqlite").unlink()

    import api.recovery

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("the disk filled up")  # after the projection and the events were written in the session

    monkeypatch.setattr(api.recovery, "restore_api_tables", broken)
    result = runner.invoke(app, ["rebuild", *cli_args(settings)])
    assert result.exit_code == 1 and "the disk filled up" in result.output
    assert not any(_rows(settings.database_url).values())  # nothing half-written
    monkeypatch.undo()
    result = runner.invoke(app, ["rebuild", *cli_args(settings)])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def node() -> Iterator[AnvilNode]:
    anvil = AnvilNode()
    yield anvil
    anvil.stop()
