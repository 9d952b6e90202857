"""A transaction reorganised out below the confirmation depth, an anchor's or an API write's (one protocol,
``ledger.durable``): it is sent again or failed, and nothing is ever marked anchored or completed against a block
that is not on the canonical chain."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from api import intents
from api.models import Actor, WriteIntent
from ledger.epcis import events as ev
from ledger.outbox import Batch, BatchStatus, EventStatus
from ledger.service import LedgerService
from ledger.settings import Settings
from tests.conftest import AnvilNode, migrated
from tests.reliability.recovery_world import GTIN, GTIN_LOTS, ApiWorld, open_world, settings_for

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


# -- API writes: the same protocol as anchors ------------------------------------------------------------------------
class _BlockMiner:
    """A block every `every_s` from a thread of its own, so that writes waiting for confirmations get them."""

    def __init__(self, url: str, every_s: float = 0.05) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._mine, args=(url, every_s), daemon=True)
        self._thread.start()

    def _mine(self, url: str, every_s: float) -> None:
        with httpx.Client() as client:
            while not self._stop.wait(every_s):
                client.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "evm_mine", "params": []})

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@contextmanager
def _api_world(tmp_path: Path, confirmations: int) -> Iterator[tuple[AnvilNode, ApiWorld, dict[str, Any]]]:
    """An API on Anvil that waits for `confirmations`, with one manufactured item, its world set up (partners
    included) while blocks were mined; from then on, the test alone decides when blocks come."""
    node = AnvilNode()
    miner = _BlockMiner(node.url)
    try:
        settings = settings_for(tmp_path, node.url).model_copy(update={"confirmations": confirmations})
        with open_world(settings, deploy=True) as world:
            lot = world.call("POST", "/api/v1/lots", "brand", {"gtin": GTIN_LOTS, "lotNumber": "CO-R",
                                                               "materialCode": "CO", "massGrams": 10_000})["lot"]
            item = world.call("POST", "/api/v1/items", "brand", {
                "gtin": GTIN, "serial": "REORG-1", "composition": [{"lotId": lot["lotId"], "grams": 100}],
            })["items"][0]
            miner.stop()
            yield node, world, item
    finally:
        miner.stop()
        node.stop()


def _sale_left_pending(world: ApiWorld, item: dict[str, Any]) -> WriteIntent:
    """A sale whose transaction is mined but not deep enough before the request stops waiting: 503, pending."""
    world.service.ledger.tx.receipt_timeout = 0.5  # how long a request waits for its confirmations
    response = world.client.post("/api/v1/lifecycle-events",
                                 json={"gtin": GTIN, "serial": item["serial"], "action": "sold"},
                                 headers={"Authorization": f"Bearer {world.keys['retailer']}"})
    assert response.status_code == 503, response.text
    assert response.json()["title"] == "Write pending"
    with world.service.sessions() as session:
        intent = session.scalars(select(WriteIntent).where(WriteIntent.subject == item["itemId"],
                                                           WriteIntent.kind == "lifecycle")).one()
        session.expunge(intent)
    assert intent.status == intents.PENDING and response.json()["txHash"] == intent.tx_hash
    return intent


def _item_state(world: ApiWorld, item: dict[str, Any]) -> str:
    return str(world.call("GET", f"/api/v1/items/{GTIN}/{item['serial']}", "brand")["state"])  # its brand reads it


def _sales(world: ApiWorld, item: dict[str, Any]) -> int:
    rows = world.service.outbox.events_for(item["digitalLink"])
    return sum(row.event.get("circ:lifecycle") == "sold" for row in rows)


def _reorg_out(world: ApiWorld, tx_hash: bytes) -> int:
    """Replace the block holding `tx_hash`, and every block after it, with empty ones; the depth replaced."""
    web3 = world.service.backend.web3
    mined_in = web3.eth.get_transaction_receipt(tx_hash)["blockNumber"]
    depth = int(web3.eth.block_number - mined_in + 1)
    web3.provider.make_request("anvil_reorg", [depth, []])
    assert world.service.ledger.tx.receipt_of(tx_hash) is None
    return depth


def test_reorged_api_write_is_re_sent_and_completed_only_when_deep(tmp_path: Path) -> None:
    with _api_world(tmp_path, confirmations=3) as (_, world, item):
        state = world.client.app.state.circular  # type: ignore[attr-defined]
        intent = _sale_left_pending(world, item)
        tx_hash = bytes.fromhex(intent.tx_hash[2:])
        first_block = world.service.backend.web3.eth.get_transaction_receipt(tx_hash)["blockHash"]
        assert _item_state(world, item) == "manufactured" and _sales(world, item) == 0  # mined, not complete

        depth = _reorg_out(world, tx_hash)
        assert intents.reconcile(state) == 0  # notices, sends the same bytes again; nothing completed yet
        receipt = world.service.ledger.tx.receipt_of(tx_hash)
        assert receipt is not None and receipt["blockHash"] != first_block  # the recorded bytes, in a new block
        assert _item_state(world, item) == "manufactured" and _sales(world, item) == 0

        world.service.backend.mine(3)
        assert intents.reconcile(state) == 1
        with world.service.sessions() as session:
            done = session.get_one(WriteIntent, intent.id)
            assert done.status == intents.DONE and done.tx_hash == intent.tx_hash
        web3 = world.service.backend.web3
        receipt = web3.eth.get_transaction_receipt(tx_hash)
        assert web3.eth.get_block(receipt["blockNumber"])["hash"] == receipt["blockHash"]  # on the canonical chain
        assert _item_state(world, item) == "sold" and _sales(world, item) == 1
        deep = web3.eth.block_number - receipt["blockNumber"]
        print(f"\nreorg of depth {depth} dropped an API sale; the same bytes re-sent, completed {deep} blocks deep")


def test_reorged_api_write_whose_nonce_was_taken_fails_and_can_be_retried(tmp_path: Path) -> None:
    with _api_world(tmp_path, confirmations=3) as (node, world, item):
        state = world.client.app.state.circular  # type: ignore[attr-defined]
        intent = _sale_left_pending(world, item)
        _reorg_out(world, bytes.fromhex(intent.tx_hash[2:]))
        # Another sender of the same key (another tool, a process that lost its database) takes the nonce the
        # reorganisation freed, before the intent is reconciled.
        retailer = state.keys.account(_actor(world, "retailer"))
        ledger = world.service.ledger
        ledger.tx.forget_nonce(retailer.address)
        any_call = ledger.items.functions.canTransition(1, 2, retailer.address, retailer.address)
        other = ledger.tx.send(retailer, any_call)
        assert other["status"] == 1 and ledger.tx.mined_count(retailer.address) > intent.nonce
        world.service.backend.mine(3)

        assert intents.reconcile(state) == 1
        with world.service.sessions() as session:
            failed = session.get_one(WriteIntent, intent.id)
            assert failed.status == intents.FAILED and "nonce" in (failed.error or "")
        assert _item_state(world, item) == "manufactured" and _sales(world, item) == 0  # nothing half-written

        world.service.ledger.tx.receipt_timeout = 30
        miner = _BlockMiner(node.url)  # the retry, with blocks coming
        try:
            world.call("POST", "/api/v1/lifecycle-events", "retailer",
                       {"gtin": GTIN, "serial": item["serial"], "action": "sold"})
        finally:
            miner.stop()
        assert _item_state(world, item) == "sold" and _sales(world, item) == 1


def _actor(world: ApiWorld, role: str) -> Actor:
    with world.service.sessions() as session:
        actor = session.get_one(Actor, world.actor_ids[role])
        session.expunge(actor)
        return actor
