"""A node that goes away, comes back, or comes back as another chain: reads never fail and never say "verified"
without it, writes are refused with the reason, and /readyz follows (SQLite and PostgreSQL)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner
from web3 import Web3

from api.config import ApiSettings
from api.health import monitor_of
from circular.cli import app
from ledger.chain import JsonRpcBackend
from ledger.client import Ledger
from ledger.outbox import EventStatus
from tests.conftest import AnvilNode
from tests.reliability.faultproxy import FaultProxy, FaultRates
from tests.reliability.recovery_world import GTIN, ApiWorld, cli_args, open_world, passport_path, settings_for

pytestmark = [pytest.mark.anvil]
runner = CliRunner()
FAST = ApiSettings(chain_check_s=0.2)


def _wait(predicate: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _item(world: ApiWorld, serial: str) -> dict[str, Any]:
    lot = world.call(
        "POST",
        "/api/v1/lots",
        "brand",
        {"lotNumber": f"L-{serial}", "materialCode": "CO", "massGrams": 10_000, "recycledShareBps": 0},
    )["lot"]
    body = {"gtin": GTIN, "serial": serial, "composition": [{"lotId": lot["lotId"], "grams": 100}]}
    world.call("POST", "/api/v1/items", "brand", body)
    world.drain()
    return lot


def _reads_degrade(world: ApiWorld, serial: str) -> None:
    """Every public read of the item answers 200 and says verification is unavailable, never verified."""
    page = world.client.get(passport_path(GTIN, serial, "passport"))
    assert page.status_code == 200 and "Verification unavailable" in page.text and "Verified" not in page.text
    ld = world.client.get(passport_path(GTIN, serial))
    assert ld.status_code == 200, ld.text
    assert '"circ:status":"unavailable"' in ld.text and '"circ:status":"verified"' not in ld.text
    verification = world.client.get(passport_path(GTIN, serial, "verification"))
    assert verification.status_code == 200, verification.text
    body = verification.json()
    assert body["status"] == "unavailable" and body["verified"] is False
    assert body["detail"].startswith("verification unavailable right now")
    resolved = world.client.get(f"/01/{GTIN}/21/{serial}", follow_redirects=False)
    assert resolved.status_code == 307
    assert world.client.get(f"/01/{GTIN}/21/{serial}?linkType=linkset").status_code == 200


def _write(world: ApiWorld, lot: dict[str, Any], serial: str) -> Any:
    body = {"gtin": GTIN, "serial": serial, "composition": [{"lotId": lot["lotId"], "grams": 100}]}
    return world.client.post("/api/v1/items", json=body, headers={"Authorization": f"Bearer {world.keys['brand']}"})


def test_reads_degrade_and_writes_wait_while_the_node_is_away(
    anvil_node: AnvilNode, tmp_path: Path, database: str | None
) -> None:
    with FaultProxy(anvil_node.url, seed=3) as proxy:
        settings = settings_for(tmp_path / "data", proxy.url, database)
        with open_world(settings, deploy=True, api_settings=FAST) as world:
            world.client._transport.raise_server_exceptions = False  # type: ignore[attr-defined]
            lot = _item(world, "AWAY-1")
            assert world.client.get(passport_path(GTIN, "AWAY-1", "verification")).json()["status"] == "verified"
            assert world.client.get("/readyz").status_code == 200
            probe = world.client.get("/readyz", headers={"Host": "10.1.2.3:8000"})  # a pod probed by its address
            assert probe.status_code == 200 and probe.json()["checks"]["chain"]["state"] == "ok", probe.text
            assert world.client.get(f"/01/{GTIN}", headers={"Host": "10.1.2.3:8000"}).status_code == 400

            proxy.faults_on(FaultRates.only("drop"))  # every request dies: the node is away
            monitor = monitor_of(world.client.app.state.circular)  # type: ignore[attr-defined]
            _wait(monitor.degraded)
            _reads_degrade(world, "AWAY-1")
            refused = _write(world, lot, "AWAY-2")
            assert refused.status_code == 503, refused.text
            assert "does not answer" in refused.json()["detail"] and refused.headers["Retry-After"]
            started = time.perf_counter()
            ready = world.client.get("/readyz")
            took = time.perf_counter() - started
            assert ready.status_code == 503 and ready.json()["checks"]["chain"]["ok"] is False, ready.text
            assert world.client.get("/healthz").json() == {"status": "ok"}

            proxy.faults_off()  # back: the verdict and writes come back with it
            _wait(lambda: world.client.get("/readyz").status_code == 200)
            assert world.client.get(passport_path(GTIN, "AWAY-1", "verification")).json()["status"] == "verified"
            assert _write(world, lot, "AWAY-2").status_code == 201
    print(f"\nFIGURE node away: reads 200 unavailable, writes 503, /readyz 503 in {took * 1000:.0f} ms and back")


def test_a_reset_node_is_detected_and_never_written_to(
    tmp_path: Path, database: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    first = AnvilNode()
    second = AnvilNode()
    try:
        with FaultProxy(first.url) as proxy:
            settings = settings_for(tmp_path / "data", proxy.url, database)
            with open_world(settings, deploy=True, api_settings=FAST) as world:
                world.client._transport.raise_server_exceptions = False  # type: ignore[attr-defined]
                lot = _item(world, "RESET-1")
                _item(world, "RESET-P")
                sale = {"gtin": GTIN, "serial": "RESET-P", "action": "sold"}
                world.call("POST", "/api/v1/lifecycle-events", "retailer", sale)  # pending anchoring at the reset
                # The node is reset: a fresh chain, the contracts deployed again at the same addresses, and more
                # blocks than ours, so that only the missing anchor transaction tells it apart.
                backend = JsonRpcBackend(second.url)
                Ledger.deploy(backend, backend.dev_accounts()[0])
                backend.mine(500)
                backend.close()
                proxy.upstream = second.url
                monitor = monitor_of(world.client.app.state.circular)  # type: ignore[attr-defined]
                _wait(lambda: monitor.status is not None and monitor.status.foreign)
                assert "is not the chain this database was built on" in monitor.status.detail
                _reads_degrade(world, "RESET-1")
                refused = _write(world, lot, "RESET-2")
                assert refused.status_code == 503 and refused.json()["title"] == "Wrong chain", refused.text
                assert world.client.get("/readyz").status_code == 503
                keys = world.keys
                # The anchoring worker, with the app's guard, sends nothing to it.
                anchorer = world.service.account("anchorer")
                stop = threading.Event()
                worker = threading.Thread(
                    target=world.service.worker(anchorer).run_forever,
                    args=(stop,),
                    kwargs={"poll_s": 0.1, "guard": monitor.require_ours, "on_fault": monitor.fault},
                )
                with caplog.at_level(logging.INFO, logger="circular.anchoring"):
                    worker.start()
                    time.sleep(1.5)
                    stop.set()
                    worker.join(timeout=10)
                assert "not anchoring: the node at" in caplog.text
                assert Web3(Web3.HTTPProvider(second.url)).eth.get_transaction_count(anchorer.address) == 0
                assert world.service.outbox.counts().get(EventStatus.PENDING.value, 0) >= 1

            # A restarted server sees it at start-up; the worker refuses to start, in one line.
            with open_world(settings, deploy=False, api_settings=FAST) as world:
                world.client._transport.raise_server_exceptions = False  # type: ignore[attr-defined]
                world.keys.update(keys)
                assert _write(world, lot, "RESET-3").status_code == 503
            result = runner.invoke(app, ["worker", "--once", *cli_args(settings)])
            assert result.exit_code == 1
            lines = result.output.strip().splitlines()
            assert len(lines) == 1 and "not the chain this database was built on" in lines[0], result.output
    finally:
        first.stop()
        second.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    from tests.reliability.pg import pg_schema

    with pg_schema("away") as url:
        yield url
