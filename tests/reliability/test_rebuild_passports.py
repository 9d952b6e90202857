"""The database is deleted and `circular rebuild` restores it from the chain and the batch archive; every
passport's JSON-LD comes back byte for byte, for 1,000 items (and the lots, lineage and events behind them)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from circular.cli import app
from tests.conftest import AnvilNode
from tests.reliability.recovery_world import (
    GTIN,
    GTIN_LOTS,
    ApiWorld,
    cli_args,
    open_world,
    passport_path,
    settings_for,
)

pytestmark = [pytest.mark.anvil, pytest.mark.slow]
runner = CliRunner()
ITEMS = 1_000
PG_URL = os.environ.get("CIRCULAR_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="module")
def node() -> Iterator[AnvilNode]:
    anvil = AnvilNode()
    yield anvil
    anvil.stop()


def _populate(world: ApiWorld) -> list[str]:
    """Product master data, two lots, a run of 1,000 items, a few lifecycles, a recycling and a second generation.
    Returns every serial."""
    world.call(
        "PUT",
        f"/api/v1/products/{GTIN}",
        "brand",
        {"name": "Field jacket", "description": "Waxed cotton", "care": "Wash cold", "returnInfo": "Any store"},
    )
    cotton = world.call(
        "POST",
        "/api/v1/lots",
        "brand",
        {
            "gtin": GTIN_LOTS,
            "lotNumber": "CO-1",
            "materialCode": "CO",
            "massGrams": 2_000_000,
            "recycledShareBps": 2_500,
            "origin": "Aegean cotton cooperative",
            "certificates": ["urn:gots:certificate:12345"],
        },
    )["lot"]
    polyester = world.call(
        "POST",
        "/api/v1/lots",
        "brand",
        {"lotNumber": "PES-1", "materialCode": "PES", "massGrams": 1_000_000, "recycledShareBps": 10_000},
    )["lot"]
    serials = [f"R{i:05d}" for i in range(ITEMS)]
    composition = [{"lotId": cotton["lotId"], "grams": 600}, {"lotId": polyester["lotId"], "grams": 150}]
    world.call("POST", "/api/v1/runs", "brand", {"gtin": GTIN, "serials": serials, "composition": composition})
    for serial in serials[:6]:
        world.call("POST", "/api/v1/lifecycle-events", "retailer", {"gtin": GTIN, "serial": serial, "action": "sold"})
    for serial in serials[:3]:
        for action, role in (("in_use", "retailer"), ("collected", "recycler")):
            world.call("POST", "/api/v1/lifecycle-events", role, {"gtin": GTIN, "serial": serial, "action": action})
    recovered = world.call(
        "POST",
        "/api/v1/recycling",
        "recycler",
        {
            "items": [{"gtin": GTIN, "serial": s} for s in serials[:3]],
            "materialCode": "CO",
            "lotNumber": "REC-1",
            "massGrams": 1_800,
        },
    )["lot"]
    world.call(
        "POST",
        f"/api/v1/lots/{recovered['lotId']}/approvals",
        "recycler",
        {"operatorId": world.actor_ids["brand"], "grams": 2_000},
    )
    world.call(
        "POST",
        "/api/v1/items",
        "brand",
        {"gtin": GTIN, "serial": "GEN2", "composition": [{"lotId": recovered["lotId"], "grams": 700}]},
    )
    world.drain()
    return [*serials, "GEN2"]


def _passports(world: ApiWorld, serials: list[str]) -> dict[str, bytes]:
    found = {}
    for serial in serials:
        response = world.client.get(passport_path(GTIN, serial))
        assert response.status_code == 200, response.text
        found[serial] = response.content
    return found


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> Iterator[tuple[str | None, Callable[[Path], None]]]:
    """(database URL, how to delete the database): the SQLite file, or the PostgreSQL schema dropped and recreated
    empty."""
    if request.param == "sqlite":
        yield None, lambda data_dir: (data_dir / "circular.sqlite").unlink()
        return
    from sqlalchemy import create_engine, text

    schema = f"rebuild_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # pragma: no cover - no server
        pytest.skip(f"PostgreSQL not reachable: {exc}")

    def drop(_: Path) -> None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))

    yield f"{PG_URL}?options=-csearch_path%3D{schema}", drop
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


def test_a_deleted_database_is_rebuilt_with_identical_passports(
    node: AnvilNode, tmp_path: Path, database: tuple[str | None, Callable[[Path], None]]
) -> None:
    db_url, delete_database = database
    settings = settings_for(tmp_path / "data", node.url, db_url)
    with open_world(settings, deploy=True) as world:
        serials = _populate(world)
        before = _passports(world, serials)
        events = sum(world.service.outbox.counts().values())
    assert b'"circ:status":"verified"' in before["GEN2"] and b"Field jacket" in before["R00000"]

    delete_database(settings.data_dir)  # the whole off-chain database; the chain, the archive and the keys remain
    started = time.perf_counter()
    result = runner.invoke(app, ["rebuild", *cli_args(settings)])
    seconds = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    assert f"{events} events recovered" in result.output, result.output

    with open_world(settings, deploy=False) as world:
        after = _passports(world, serials)
    identical = sum(before[s] == after[s] for s in serials)
    different = [s for s in serials if before[s] != after[s]]
    assert not different, (different[:3], before[different[0]][:2000], after[different[0]][:2000])
    dialect = settings.database_url.split(":")[0].split("+")[0]
    print(
        f"\nFIGURE rebuild ({dialect}): {len(serials)} passports, {identical} identical, "
        f"{events} events recovered, {seconds:.1f} s"
    )


def test_rebuild_reports_a_batch_missing_from_the_archive(node: AnvilNode, tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "data", node.url)
    with open_world(settings, deploy=True) as world:
        lot = world.call(
            "POST",
            "/api/v1/lots",
            "brand",
            {"lotNumber": "M-1", "materialCode": "CO", "massGrams": 10_000, "recycledShareBps": 0},
        )["lot"]
        world.drain()
        part = {"lotId": lot["lotId"], "grams": 100}
        world.call("POST", "/api/v1/items", "brand", {"gtin": GTIN, "serial": "ONE", "composition": [part]})
        world.drain()
    batches = sorted((settings.archive_path / "batches").glob("*.jsonld"), key=lambda path: path.stat().st_mtime_ns)
    # The lot's event; the item's event with the passport's first version; the version that shows it anchored.
    assert len(batches) == 3
    batches[1].unlink()
    (settings.data_dir / "circular.sqlite").unlink()
    result = runner.invoke(app, ["rebuild", *cli_args(settings)])
    assert result.exit_code == 1
    assert "not in the archive" in result.output
    assert "2 anchored records (events, passport versions) could not be recovered" in result.output
