"""An anchor transaction reorganised out below the confirmation depth: the worker re-anchors, and no event is ever
marked anchored against a root that is not on the canonical chain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from ledger.epcis import events as ev
from ledger.outbox import Batch, BatchStatus, EventStatus
from ledger.service import LedgerService
from ledger.settings import Settings
from tests.conftest import AnvilNode, migrated

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def test_reorged_anchor_is_re_anchored(tmp_path: Path) -> None:
    node = AnvilNode()
    try:
        service = LedgerService(migrated(Settings(data_dir=tmp_path, rpc_url=node.url, confirmations=3,
                                                  batch_max_wait_s=0)))
        admin, brand, anchorer = (service.backend.dev_accounts()[i] for i in (0, 1, 9))
        ledger = service.deploy(admin)
        ledger.grant_role(admin, "brand", brand.address)
        ledger.grant_role(admin, "anchorer", anchorer.address)
        service.record(brand, [ev.lifecycle(ev.Lifecycle.SOLD, [f"https://id.example/01/09506000134352/21/R{i}"],
                                            at=T0 + timedelta(seconds=i)) for i in range(25)])
        worker = service.worker(anchorer)
        worker.receipt_timeout_s = 0.3
        assert worker.run_once(force=True) == []  # mined, but not 3 blocks deep
        with service.sessions() as session:
            batch = session.query(Batch).one()
            first_tx, root = batch.tx_hash, batch.root
        assert service.outbox.counts() == {"batched": 25}
        mined_in = service.backend.web3.eth.get_transaction_receipt(first_tx)["blockNumber"]

        # Replace the anchor's block (and the one after) with empty blocks: the root is gone from the chain.
        depth = service.backend.web3.eth.block_number - mined_in + 1
        service.backend.web3.provider.make_request("anvil_reorg", [depth, []])  # type: ignore[arg-type]
        assert ledger.anchor.functions.anchorOf(root).call()[0] == "0x" + "0" * 40
        assert worker.settle() == []  # notices, re-sends; nothing is confirmed against the lost block
        assert service.outbox.counts() == {"batched": 25}

        service.backend.mine(3)
        results = worker.settle()
        assert [r.events for r in results] == [25]
        with service.sessions() as session:
            batch = session.query(Batch).one()
            assert batch.status is BatchStatus.CONFIRMED
            block = service.backend.web3.eth.get_block(batch.block_number)
            receipt = service.backend.web3.eth.get_transaction_receipt(batch.tx_hash)
            assert receipt["blockHash"] == block["hash"]  # confirmed on the canonical chain
        assert ledger.anchor.functions.anchorOf(root).call()[0] == anchorer.address
        assert service.outbox.counts() == {str(EventStatus.ANCHORED): 25}
        print(f"\nreorg of depth {depth} dropped the anchor of 25 events; re-anchored in block {batch.block_number}")
        service.close()
    finally:
        node.stop()
