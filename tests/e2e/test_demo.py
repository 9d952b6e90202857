"""The demo loop, end to end on the embedded chain, asserting every step it claims."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from ledger.client import ItemState, Ledger
from ledger.demo import GTIN_A, ITEMS_IN_RUN, RETURNED, run_demo
from ledger.evidence import verify_bundle
from ledger.ids import item_id
from ledger.projection import ChainItem, ChainLot, Projector
from ledger.service import LedgerService
from ledger.settings import Settings


def test_demo_runs_the_whole_loop_and_its_state_survives(tmp_path: Path) -> None:
    out = tmp_path / "demo-out"
    summary = run_demo(out, Console(file=open(tmp_path / "demo.log", "w")))  # noqa: SIM115
    assert summary["verified"] is True
    assert len(summary["items"]) == ITEMS_IN_RUN + 1
    assert summary["run"]["gasUsed"] / ITEMS_IN_RUN < 500
    assert sum(a["events"] for a in summary["anchors"]) == 9
    assert json.loads(Path(summary["evidenceBundle"]).read_text())["item"] == summary["secondGenerationItem"]

    # The chain and database persist: reopen them as a later command would, and check the story from the chain.
    service = LedgerService(Settings(data_dir=out / "state"))
    try:
        ledger: Ledger = service.ledger
        recycled = ledger.item(item_id(GTIN_A, "A00001"))
        assert recycled["state"] is ItemState.RECYCLED
        assert ledger.item(item_id(GTIN_A, f"A{RETURNED + 1:05d}"))["state"] is ItemState.NONE  # lazy, untouched
        with service.sessions() as session:
            applied = Projector(ledger).rebuild(session)
            assert applied > 0
            gen2 = session.query(ChainItem).filter_by(serial="B00001").one()
            recovered = session.get_one(ChainLot, gen2.composition[0][0])
            assert recovered.recycled_share_bps == 10_000
            assert len(recovered.source_items or []) == RETURNED
            assert session.query(ChainItem).filter_by(gtin=GTIN_A).count() == ITEMS_IN_RUN
        bundle = json.loads(Path(summary["evidenceBundle"]).read_text())
        assert verify_bundle(bundle, service.backend.web3).ok
    finally:
        service.close()
