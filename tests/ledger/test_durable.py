"""The durable-transaction protocol (``ledger.durable``) on both backends: each outcome of a recorded transaction
settled by hash, and each answer of a broadcast read by what it says about the transaction."""

from __future__ import annotations

import time

from ledger.chain import BroadcastRefusal, broadcast_refusal
from ledger.client import ItemState
from ledger.durable import REPLACED_SETTLE_S, DurableTransactions, Outcome, RecordedTx, Sent
from tests.contracts.conftest import GTIN_A, World
from tests.contracts.helpers import COTTON


def _item(world: World, serial: str) -> bytes:
    lot = world.ledger.register_lot(world.brand_a, "09506000134369", f"L-{serial}", COTTON, 10_000)
    return world.ledger.register_item(world.brand_a, GTIN_A, serial, [(lot, 10)])


def _recorded(world: World, item: bytes, to: ItemState, gas: int | None = 100_000) -> RecordedTx:
    """Step 1 without a database: a sale signed with the retailer's next nonce, not sent."""
    tx = world.ledger.tx
    unsigned = tx.build(world.retailer, world.ledger.transition_call(item, to), gas=gas)
    return RecordedTx.of(tx.sign_with_nonce(world.retailer, unsigned))


def test_recorded_never_sent_is_lost_then_confirmed_once_sent(world: World) -> None:
    durable = DurableTransactions(world.ledger.tx)
    recorded = _recorded(world, _item(world, "D1"), ItemState.SOLD)
    assert durable.settle(recorded).outcome is Outcome.LOST  # the node never had it, its nonce is free
    assert durable.broadcast(recorded.raw, recorded.sender).sent is Sent.ACCEPTED
    settled = durable.wait(recorded, timeout_s=10)
    assert settled.outcome is Outcome.CONFIRMED and settled.tx_hash == recorded.tx_hash
    assert settled.receipt is not None and settled.receipt["status"] == 1
    assert durable.broadcast(recorded.raw, recorded.sender).sent in (Sent.KNOWN, Sent.NONCE_USED)
    assert durable.settle(recorded).outcome is Outcome.CONFIRMED  # sent twice, mined once


def test_wait_sends_a_lost_transaction_again(world: World) -> None:
    durable = DurableTransactions(world.ledger.tx)
    recorded = _recorded(world, _item(world, "D2"), ItemState.SOLD)
    settled = durable.wait(recorded, timeout_s=10)
    assert settled.outcome is Outcome.CONFIRMED and settled.tx_hash == recorded.tx_hash


def test_a_mined_failure_is_reverted(world: World) -> None:
    durable = DurableTransactions(world.ledger.tx)
    item = _item(world, "D3")
    recorded = _recorded(world, item, ItemState.RECYCLED)  # never through transition(): mined with status 0
    durable.broadcast(recorded.raw, recorded.sender)
    settled = durable.wait(recorded, timeout_s=10)
    assert settled.outcome is Outcome.REVERTED and settled.receipt is not None and settled.receipt["status"] == 0


def test_a_nonce_taken_by_another_transaction_is_replaced(world: World) -> None:
    durable = DurableTransactions(world.ledger.tx)
    item = _item(world, "D4")
    recorded = _recorded(world, item, ItemState.SOLD)
    world.ledger.tx.forget_nonce(world.retailer.address)  # another sender of the same key takes the nonce
    world.ledger.transition(world.retailer, item, ItemState.SOLD)
    assert durable.settle(recorded).outcome is Outcome.WAITING  # a first look: a node may lag behind its count
    sent = durable.broadcast(recorded.raw, recorded.sender)
    assert sent.sent is Sent.NONCE_USED and sent.error is not None  # never raised, never mined
    time.sleep(REPLACED_SETTLE_S)
    assert durable.settle(recorded).outcome is Outcome.REPLACED  # a second look, a moment later
    assert durable.wait(recorded, timeout_s=5).outcome is Outcome.REPLACED


def test_an_effect_found_elsewhere_counts_like_our_receipt(world: World) -> None:
    durable = DurableTransactions(world.ledger.tx)
    item = _item(world, "D5")
    receipt = world.ledger.transition(world.retailer, item, ItemState.SOLD)
    recorded = _recorded(world, _item(world, "D6"), ItemState.SOLD)  # never sent
    found = (bytes(receipt["transactionHash"]), int(receipt["blockNumber"]))
    settled = durable.settle(recorded, elsewhere=lambda: found)
    assert settled.outcome is Outcome.CONFIRMED and settled.tx_hash == found[0] and settled.receipt is None


def test_confirmations_hold_a_receipt_until_it_is_deep(world: World) -> None:
    durable = DurableTransactions(world.ledger.tx, confirmations=2)
    recorded = _recorded(world, _item(world, "D7"), ItemState.SOLD)
    durable.broadcast(recorded.raw, recorded.sender)
    settled = durable.wait(recorded, timeout_s=0.3)
    assert settled.outcome is Outcome.WAITING and settled.receipt is not None  # mined, not 2 blocks deep
    world.backend.mine(2)
    assert durable.settle(recorded).outcome is Outcome.CONFIRMED


def test_the_in_process_chains_nonce_refusals_are_read_too() -> None:
    too_low, gap = (ValueError(f"Invalid transaction nonce: Expected 5, but got {n}") for n in (4, 6))
    assert broadcast_refusal(too_low) is BroadcastRefusal.NONCE_USED
    assert broadcast_refusal(gap) is None


def test_a_pipeline_is_settled_together(world: World) -> None:
    durable = DurableTransactions(world.ledger.tx)
    items = [_item(world, f"P{n}") for n in range(3)]
    tx = world.ledger.tx
    moves = [ItemState.SOLD, ItemState.RECYCLED, ItemState.SOLD]  # the second reverts: only recycle() recycles
    calls = [world.ledger.transition_call(item, to) for item, to in zip(items, moves, strict=True)]
    start = tx.pending_count(world.retailer.address)
    prepared = tx.sign_many(world.retailer, calls, [100_000] * 3, [start, start + 1, start + 2])
    assert durable.broadcast_many([p.raw for p in prepared], world.retailer.address) is None
    settled = durable.wait_many([RecordedTx.of(p) for p in prepared], timeout_s=10)
    assert [s.outcome for s in settled] == [Outcome.CONFIRMED, Outcome.REVERTED, Outcome.CONFIRMED]
    assert all(s.receipt is not None for s in settled)
