"""Pipelined transactions (Transactor.send_many, Ledger.transition_many): on both backends, with JSON-RPC batching on
Anvil and one-by-one sends on the in-process chain."""

from __future__ import annotations

import pytest

from ledger.client import ItemState, Ledger, RunCommitment
from ledger.errors import ContractRevert, PipelineFailed
from ledger.ids import item_id
from tests.contracts.conftest import GTIN_A, World

COTTON = b"CO".ljust(32, b"\x00")


def _sold_run(world: World, items: int) -> tuple[Ledger, RunCommitment, list[bytes]]:
    """A run of `items` items, each sold by the retailer through one pipeline of first (proof-carrying) moves."""
    ledger = world.ledger
    lot = ledger.register_lot(world.brand_a, GTIN_A, "PIPE", COTTON, 10**9)
    run = ledger.register_run(world.brand_a, GTIN_A, [f"P{i:03d}" for i in range(items)], [(lot, 150)])
    receipts = ledger.transition_run_items(world.retailer, run, [(s, ItemState.SOLD) for s in run.serials])
    assert [r["status"] for r in receipts] == [1] * items
    return ledger, run, [item_id(GTIN_A, serial) for serial in run.serials]


def _moved_items(ledger: Ledger, receipts: list[dict[str, object]]) -> list[bytes]:
    """The item each receipt moved, read from its ItemStateChanged log."""
    return [
        bytes(ledger.items.events.ItemStateChanged().process_receipt(r)[0]["args"]["itemId"])  # type: ignore[arg-type]
        for r in receipts
    ]


def test_pipeline_sends_every_move_in_order_across_batches(world: World) -> None:
    ledger, _, ids = _sold_run(world, 5)
    calls = [ledger.items.functions.transition(ident, int(ItemState.IN_USE)) for ident in ids]
    receipts = ledger.tx.send_many(world.retailer, calls, gas=50_000, batch_size=2)  # batches of 2, 2 and 1
    assert _moved_items(ledger, receipts) == ids  # receipt i is the receipt of call i
    nonces = [ledger.web3.eth.get_transaction(r["transactionHash"])["nonce"] for r in receipts]
    assert nonces == list(range(nonces[0], nonces[0] + 5))
    assert all(ledger.item(ident)["state"] is ItemState.IN_USE for ident in ids)
    # The cache kept up: a plain send right after uses the next nonce and goes through.
    assert ledger.transition(world.retailer, ids[0], ItemState.RETURNED)["status"] == 1


def test_revert_in_the_middle_is_reported_by_index_and_the_later_moves_still_happen(world: World) -> None:
    ledger, _, ids = _sold_run(world, 4)
    unknown = item_id(GTIN_A, "NEVER-MADE")
    moves = [(ids[0], ItemState.IN_USE), (unknown, ItemState.IN_USE), (ids[1], ItemState.IN_USE),
             (ids[2], ItemState.RESOLD), (ids[3], ItemState.IN_USE)]  # SOLD → RESOLD is no edge
    with pytest.raises(PipelineFailed) as failed:
        ledger.transition_many(world.retailer, moves)
    error = failed.value
    assert error.index == 1 and sorted(error.failures) == [1, 3]
    assert isinstance(error.error, ContractRevert) and error.error.name == "ItemNotFound"
    assert isinstance(error.failures[3], ContractRevert) and error.failures[3].name == "IllegalTransition"
    assert [r["status"] for r in error.receipts] == [1, 0, 1, 0, 1]
    # Defined semantics: every transaction was mined; the reverted ones changed nothing, the others took effect.
    states = [ledger.item(ident)["state"] for ident in ids]
    assert states == [ItemState.IN_USE, ItemState.IN_USE, ItemState.SOLD, ItemState.IN_USE]
    # Reverted transactions used their nonces too, so the cache is still right for the next send.
    address = world.retailer.address
    assert ledger.tx.next_nonce(address) == ledger.web3.eth.get_transaction_count(address)
    ledger.tx.forget_nonce(address)
    assert ledger.transition(world.retailer, ids[2], ItemState.IN_USE)["status"] == 1


def test_a_refused_transaction_stops_the_pipeline_and_the_nonce_is_read_again(world: World) -> None:
    ledger, _, ids = _sold_run(world, 3)
    address = world.retailer.address
    used = ledger.web3.eth.get_transaction_count(address)
    ledger.tx.forget_nonce(address)
    ledger.tx._nonces[address] = used - 1  # a stale cache: the first transaction reuses a mined nonce
    calls = [ledger.items.functions.transition(ident, int(ItemState.IN_USE)) for ident in ids]
    with pytest.raises(PipelineFailed) as failed:
        ledger.tx.send_many(world.retailer, calls, gas=50_000, batch_size=1)
    assert failed.value.index == 0 and failed.value.receipts == [None, None, None]  # nothing after it was sent
    assert ledger.web3.eth.get_transaction_count(address) == used
    assert all(ledger.item(ident)["state"] is ItemState.SOLD for ident in ids)
    # The stale cache was dropped: the same moves now go through.
    receipts = ledger.transition_many(world.retailer, [(ident, ItemState.IN_USE) for ident in ids])
    assert [r["status"] for r in receipts] == [1] * 3


def test_nothing_to_send_and_a_bad_batch_size(world: World) -> None:
    assert world.ledger.tx.send_many(world.retailer, [], gas=50_000) == []
    call = world.ledger.items.functions.transition(b"\x01" * 32, int(ItemState.SOLD))
    with pytest.raises(ValueError, match="batch_size"):
        world.ledger.tx.send_many(world.retailer, [call], gas=50_000, batch_size=0)


def test_the_pipelines_calldata_is_web3s(world: World) -> None:
    """send_many encodes calls with eth-abi directly; the bytes are web3's, for every function it pipelines."""
    from hexbytes import HexBytes

    from ledger.client import _calldata

    ledger, run, ids = _sold_run(world, 3)
    proof = run.proofs[run.serials[0]]
    calls = [
        ledger.items.functions.transition(ids[0], int(ItemState.IN_USE)),
        ledger.items.functions.transitionRunItem(run.gtin, run.serials[0], run.items_root, proof, 2),
        ledger.items.functions.transitionRunItem(run.gtin, "P999", run.items_root, [], 3),
    ]
    for call in calls:
        assert _calldata(call) == bytes(HexBytes(call._encode_transaction_data()))
    # what eth-abi does not take as it is goes through web3: keyword arguments, a hex string for bytes32
    assert _calldata(ledger.items.functions.transition(itemId=ids[0], to=2)) is None
    assert _calldata(ledger.items.functions.transition("0x" + ids[0].hex(), 2)) is None


def test_legacy_gas_prices_take_the_libraries_path(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A node without EIP-1559 fees gets type-0 transactions from web3 and eth-account, in the same pipeline."""
    ledger, _, ids = _sold_run(world, 3)
    price = ledger.web3.eth.gas_price * 2
    monkeypatch.setattr(type(ledger.tx), "_pipeline_fees", lambda self, account, first, gas: {"gasPrice": price})
    receipts = ledger.transition_many(world.retailer, [(ident, ItemState.IN_USE) for ident in ids])
    assert _moved_items(ledger, receipts) == ids
    sent = [ledger.web3.eth.get_transaction(r["transactionHash"]) for r in receipts]
    assert {tx["type"] for tx in sent} == {0} and {tx["gasPrice"] for tx in sent} == {price}
