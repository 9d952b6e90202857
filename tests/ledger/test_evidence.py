"""Evidence bundles verify with public tools alone, and any tampering is detected."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from ledger.epcis import events as ev
from ledger.evidence import export_bundle, verify_bundle
from ledger.service import LedgerService

ITEM = "https://id.example/01/09506000134352/21/S1"
LOT = "https://id.example/01/09506000134369/10/L1"
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def bundle(service: LedgerService) -> dict[str, Any]:
    brand, retailer, anchorer = (service.backend.dev_accounts()[i] for i in (1, 4, 6))
    service.record(
        brand, [ev.lot_registered(LOT, "CO", 1000, at=T0), ev.items_manufactured([ITEM], [(LOT, 200)], at=T0)]
    )
    service.record(retailer, [ev.lifecycle(ev.Lifecycle.SOLD, [ITEM], at=T0)])
    service.record(brand, [ev.lifecycle(ev.Lifecycle.SOLD, ["https://id.example/01/09506000134352/21/OTHER"])])
    service.worker(anchorer).drain()
    return export_bundle(service.outbox, service.chain_id, service.ledger.anchor.address, ITEM)


def test_an_honest_bundle_verifies(service: LedgerService, bundle: dict[str, Any]) -> None:
    assert len(bundle["events"]) == 3  # the lot, the manufacture and the sale; not the other item's sale
    verdict = verify_bundle(bundle, service.backend.web3)
    assert verdict.ok, verdict
    assert all(e.checks == {"hash": True, "signature": True, "proof": True, "onChain": True} for e in verdict.events)


def _tampered(bundle: dict[str, Any], change: Any) -> dict[str, Any]:
    forged = copy.deepcopy(bundle)
    change(forged)
    return forged


@pytest.mark.parametrize(
    ("name", "change", "failed"),
    [
        ("event field", lambda b: b["events"][2]["event"].update(disposition="returned"), "hash"),
        ("event time", lambda b: b["events"][1]["event"].update(eventTime="2026-11-01T12:00:01.000Z"), "hash"),
        ("quantity", lambda b: b["events"][0]["event"]["quantityList"][0].update(quantity=999), "hash"),
        ("eventID", lambda b: b["events"][0].update(eventID=b["events"][1]["eventID"]), "hash"),
        ("proof element", lambda b: b["events"][2]["proof"].__setitem__(0, "0x" + "11" * 32), "proof"),
        ("root", lambda b: b["events"][2]["anchor"].update(root="0x" + "22" * 32), "proof"),
        ("signer", lambda b: b["events"][2]["signature"].update(signer="0x" + "33" * 20), "signature"),
        (
            "signature",
            lambda b: b["events"][2]["signature"].update(value=b["events"][1]["signature"]["value"]),
            "signature",
        ),
        ("tx hash", lambda b: b["events"][2]["anchor"].update(txHash="0x" + "44" * 32), "onChain"),
    ],
)
def test_tampering_is_detected(
    service: LedgerService, bundle: dict[str, Any], name: str, change: Any, failed: str
) -> None:
    verdict = verify_bundle(_tampered(bundle, change), service.backend.web3)
    assert not verdict.ok, name
    assert any(e.checks.get(failed) is False for e in verdict.events), (name, verdict)


def test_a_look_alike_contract_is_refused(service: LedgerService, bundle: dict[str, Any]) -> None:
    forged = _tampered(bundle, lambda b: b.update(contract=service.ledger.lots.address))
    verdict = verify_bundle(forged, service.backend.web3)
    assert not verdict.ok  # signatures were made for the real EventAnchor, and its logs name the real address


def test_offline_verification_says_the_chain_was_not_asked(bundle: dict[str, Any]) -> None:
    verdict = verify_bundle(bundle, None)
    assert not verdict.ok
    assert any("on-chain checks skipped" in p for p in verdict.problems)
    assert all(e.checks.get("proof") for e in verdict.events)
