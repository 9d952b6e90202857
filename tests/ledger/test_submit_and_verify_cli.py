"""Events signed elsewhere are refused when the signature does not verify or the signer lacks a role; `circular export`
and `circular verify` work on a persisted chain and exit non-zero on any tampering."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from circular.cli import app
from ledger.chain import EthTesterBackend
from ledger.epcis import events as ev
from ledger.errors import InvalidSignature
from ledger.service import LedgerService
from ledger.settings import Settings
from tests.conftest import migrated

ITEM = "https://id.example/01/09506000134352/21/V1"
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def test_submit_checks_signature_deadline_and_role(service: LedgerService) -> None:
    brand, stranger = service.backend.dev_accounts()[1], service.backend.dev_accounts()[7]
    event = ev.lifecycle(ev.Lifecycle.SOLD, [ITEM], at=T0)
    good = service.sign(brand, event)
    assert service.submit([good])[0].created
    with pytest.raises(InvalidSignature, match="signed by"):
        service.submit([replace(good, signer=stranger.address)])
    with pytest.raises(InvalidSignature, match="holds no"):
        service.submit([service.sign(stranger, ev.lifecycle(ev.Lifecycle.SOLD, [ITEM + "x"], at=T0))])
    with pytest.raises(InvalidSignature, match="expired"):
        service.submit([replace(good, deadline=int(time.time()) - 1)])
    with pytest.raises(InvalidSignature):
        service.submit([replace(good, signature=good.signature[:-1])])


def test_export_and_verify_from_the_command_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = Settings(data_dir=data)
    service = LedgerService(migrated(settings))
    admin, brand, anchorer = service.account("admin"), service.backend.dev_accounts()[1], service.account("anchorer")
    ledger = service.deploy(admin)
    ledger.grant_role(admin, "brand", brand.address)
    ledger.grant_role(admin, "anchorer", anchorer.address)
    service.record(brand, [ev.lifecycle(ev.Lifecycle.SOLD, [ITEM], at=T0),
                           ev.lifecycle(ev.Lifecycle.IN_USE, [ITEM], at=T0)])
    service.worker(anchorer).drain()
    service.close()
    assert isinstance(service.backend, EthTesterBackend)

    runner = CliRunner()
    bundle_path = tmp_path / "bundle.json"
    exported = runner.invoke(app, ["export", ITEM, "-o", str(bundle_path), "--data-dir", str(data)])
    assert exported.exit_code == 0, exported.output
    verified = runner.invoke(app, ["verify", str(bundle_path), "--data-dir", str(data)])
    assert verified.exit_code == 0, verified.output
    assert "verified" in verified.output and verified.output.count("ok") >= 2
    by_link = runner.invoke(app, ["verify", ITEM, "--data-dir", str(data)])
    assert by_link.exit_code == 0, by_link.output

    bundle = json.loads(bundle_path.read_text())
    bundle["events"][0]["event"]["disposition"] = "returned"
    bundle_path.write_text(json.dumps(bundle))
    tampered = runner.invoke(app, ["verify", str(bundle_path), "--data-dir", str(data)])
    assert tampered.exit_code == 1 and "FAIL" in tampered.output
    missing = runner.invoke(app, ["export", ITEM + "-none", "--data-dir", str(data)])
    assert missing.exit_code == 1 and missing.output.startswith("error:")
