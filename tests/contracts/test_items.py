"""ItemRegistry registration: single items (storage), runs (one Merkle root), materialization and its proofs."""

from __future__ import annotations

import string

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak

from ledger.client import ItemState, RunCommitment
from ledger.ids import item_id
from ledger.merkle import MerkleTree

from .conftest import GTIN_A, GTIN_B, World
from .helpers import CONTENT, COTTON, POLYESTER, ZERO32, ZERO_ADDRESS, events, gtin, logs, reverts, send, state

GTIN_A2 = gtin("9506000", "777")
CSET82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
NOT_CSET82 = [*sorted(set(string.printable) - set(CSET82)), "é", "€", "\x00", "\x7f"]


@pytest.fixture
def lot(world: World) -> bytes:
    return world.ledger.register_lot(world.brand_a, gtin("9506000", "99"), "L1", COTTON, 1_000_000)


def _register(world: World, serial: str, lots: list[bytes], grams: list[int], gtin14: str = GTIN_A) -> object:
    return send(world, world.brand_a, world.ledger.items.functions.registerItem(gtin14, serial, lots, grams, CONTENT))


# -- single items ------------------------------------------------------------------------------------------------------
def test_register_item(world: World, lot: bytes) -> None:
    ledger = world.ledger
    other = ledger.register_material_lot(world.brand_a, POLYESTER, "P1", 1_000)
    receipt = _register(world, "SN-1", [lot, other], [300, 45])
    ident = item_id(GTIN_A, "SN-1")
    assert ident == keccak(abi_encode(["string", "string"], [GTIN_A, "SN-1"]))
    assert logs(ledger, receipt) == [
        ("MaterialLots", "LotAllocated", {"lotId": lot, "account": world.brand_a.address, "grams": 300}),
        ("MaterialLots", "LotAllocated", {"lotId": other, "account": world.brand_a.address, "grams": 45}),
        ("ItemRegistry", "ItemRegistered", {"itemId": ident, "brand": world.brand_a.address, "gtin": GTIN_A,
                                            "serial": "SN-1", "lotIds": [lot, other], "grams": [300, 45],
                                            "contentHash": CONTENT}),
        ("ItemRegistry", "ItemStateChanged", {"itemId": ident, "from": ItemState.NONE, "to": ItemState.MANUFACTURED,
                                              "account": world.brand_a.address}),
    ]
    assert ledger.item(ident) == {"brand": world.brand_a.address, "massGrams": 345, "state": ItemState.MANUFACTURED}
    assert ledger.available_grams(lot) == 1_000_000 - 300
    with reverts("ItemAlreadyRegistered", itemId=ident):
        _register(world, "SN-1", [lot], [1])


def test_register_item_checks(world: World, lot: bytes) -> None:
    with reverts("GtinNotOwned", gtin=GTIN_B, account=world.brand_a.address):
        _register(world, "S", [lot], [1], GTIN_B)
    with reverts("InvalidGtin", gtin="09506000134353"):
        _register(world, "S", [lot], [1], "09506000134353")
    with reverts("InvalidComposition", lotCount=0, gramsCount=0):
        _register(world, "S", [], [])
    with reverts("InvalidComposition", lotCount=2, gramsCount=1):
        _register(world, "S", [lot, lot], [1])
    with reverts("InvalidComposition", lotCount=1, gramsCount=2):
        _register(world, "S", [lot], [1, 1])
    with reverts("LotNotFound", lotId=b"\x03" * 32):
        _register(world, "S", [b"\x03" * 32], [1])
    with reverts("ZeroMass"):
        _register(world, "S", [lot], [0])
    # An item's mass is a uint88: a composition heavier than that is refused before any grams are taken.
    with reverts("SafeCastOverflowedUintDowncast", bits=88, value=2**88):
        _register(world, "S", [lot, lot], [2**87, 2**87])


def test_same_lot_twice_in_a_composition(world: World, lot: bytes) -> None:
    _register(world, "S", [lot, lot], [10, 15])
    assert world.ledger.item(item_id(GTIN_A, "S"))["massGrams"] == 25
    assert world.ledger.lot(lot)["allocatedGrams"] == 25


def test_serial_accepts_all_of_cset82(world: World, lot: bytes) -> None:
    chunks = [CSET82[i:i + 20] for i in range(0, len(CSET82), 20)]
    for serial in [*chunks, "1", "A" * 20]:
        _register(world, serial, [lot], [1])
        assert state(world.ledger, item_id(GTIN_A, serial)) is ItemState.MANUFACTURED


@pytest.mark.parametrize("serial", ["", "A" * 21, *[f"A{c}B" for c in NOT_CSET82]],
                         ids=lambda s: repr(s)[:12])
def test_invalid_serial(world: World, lot: bytes, serial: str) -> None:
    with reverts("InvalidSerial", serial=serial):
        _register(world, serial, [lot], [1])


def test_items_of_different_gtins_are_different(world: World, lot: bytes) -> None:
    _register(world, "S", [lot], [1])
    _register(world, "S", [lot], [1], GTIN_A2)
    assert item_id(GTIN_A, "S") != item_id(GTIN_A2, "S")
    assert state(world.ledger, item_id(GTIN_A2, "S")) is ItemState.MANUFACTURED


# -- runs --------------------------------------------------------------------------------------------------------------
def _raw_run(world: World, gtin14: str, serials: list[str], item_count: int, lot: bytes, grams: int,
             tree_serials: list[str] | None = None) -> tuple[bytes, MerkleTree, object]:
    """Commit a run whose tree holds `tree_serials` (default `serials`) but claims `item_count` items."""
    tree = MerkleTree.of([item_id(gtin14, s) for s in (tree_serials or serials)])
    run_input = (gtin14, tree.root, item_count, [lot], [grams], CONTENT, "\n".join(serials).encode())
    receipt = send(world, world.brand_a, world.ledger.items.functions.registerRun(run_input))
    return keccak(abi_encode(["string", "bytes32"], [gtin14, tree.root])), tree, receipt


def test_register_run(world: World, lot: bytes) -> None:
    ledger = world.ledger
    serials = [f"R{i}" for i in range(7)]
    run = ledger.register_run(world.brand_a, GTIN_A, serials, [(lot, 150)], CONTENT)
    tree = MerkleTree.of([item_id(GTIN_A, s) for s in serials])
    assert run.items_root == tree.root
    assert run.run_id == keccak(abi_encode(["string", "bytes32"], [GTIN_A, tree.root]))
    assert logs(ledger, run.receipt) == [
        ("MaterialLots", "LotAllocated", {"lotId": lot, "account": world.brand_a.address, "grams": 7 * 150}),
        ("ItemRegistry", "RunRegistered", {"runId": run.run_id, "brand": world.brand_a.address, "gtin": GTIN_A,
                                           "itemsRoot": tree.root, "itemCount": 7, "contentHash": CONTENT}),
        ("ItemRegistry", "RunContents", {"runId": run.run_id, "lotIds": [lot], "gramsPerItem": [150],
                                         "serials": "\n".join(serials).encode()}),
    ]
    assert ledger.items.functions.run(run.run_id).call() == (world.brand_a.address, 150, 7)
    # No per-item storage: every item is still None until its first transition.
    assert all(state(ledger, item_id(GTIN_A, s)) is ItemState.NONE for s in serials)
    assert ledger.items.functions.run(b"\x01" * 32).call() == (ZERO_ADDRESS, 0, 0)


def test_register_run_checks(world: World, lot: bytes) -> None:
    ledger = world.ledger
    with reverts("EmptyRun"):
        _raw_run(world, GTIN_A, ["A"], 0, lot, 1)
    with reverts("GtinNotOwned", gtin=GTIN_B, account=world.brand_a.address):
        _raw_run(world, GTIN_B, ["A"], 1, lot, 1)
    with reverts("InvalidComposition", lotCount=0, gramsCount=1):
        send(world, world.brand_a, ledger.items.functions.registerRun((GTIN_A, b"\x01" * 32, 1, [], [1], ZERO32,
                                                                       b"")))
    # One item's mass must fit an item's uint88 and a run's uint64 ...
    with reverts("SafeCastOverflowedUintDowncast", bits=88, value=2**95):
        _raw_run(world, GTIN_A, ["A", "B"], 2, lot, 2**95)
    with reverts("SafeCastOverflowedUintDowncast", bits=64, value=2**64):
        _raw_run(world, GTIN_A, ["A"], 1, lot, 2**64)
    # ... so the largest allocation, (2**64 - 1) * (2**32 - 1) grams, still fits a uint96: mass balance decides.
    biggest = (2**64 - 1) * (2**32 - 1)
    with reverts("LotMassExceeded", lotId=lot, requestedGrams=biggest, availableGrams=1_000_000):
        _raw_run(world, GTIN_A, ["A"], 2**32 - 1, lot, 2**64 - 1)
    run_id, _, _ = _raw_run(world, GTIN_A, ["A", "B"], 2, lot, 10)
    with reverts("RunAlreadyRegistered", runId=run_id):
        _raw_run(world, GTIN_A, ["A", "B"], 2, lot, 10)


def test_run_of_one_item_has_an_empty_proof(world: World, lot: bytes) -> None:
    run = world.ledger.register_run(world.brand_a, GTIN_A, ["ONLY"], [(lot, 5)])
    assert run.proofs["ONLY"] == []
    world.ledger.materialize(world.stranger, run, "ONLY")
    assert world.ledger.item(item_id(GTIN_A, "ONLY")) == {"brand": world.brand_a.address, "massGrams": 5,
                                                            "state": ItemState.MANUFACTURED}


# -- materialize -------------------------------------------------------------------------------------------------------
@pytest.fixture
def run(world: World, lot: bytes) -> RunCommitment:
    return world.ledger.register_run(world.brand_a, GTIN_A, [f"R{i}" for i in range(10)], [(lot, 120)])


def test_materialize_by_anyone(world: World, run: RunCommitment) -> None:
    ledger = world.ledger
    ident = item_id(GTIN_A, "R3")
    receipt = ledger.materialize(world.stranger, run, "R3")
    assert logs(ledger, receipt) == [
        ("ItemRegistry", "ItemMaterialized", {"itemId": ident, "runId": run.run_id, "serial": "R3"}),
        ("ItemRegistry", "ItemStateChanged", {"itemId": ident, "from": ItemState.NONE, "to": ItemState.MANUFACTURED,
                                              "account": world.stranger.address}),
    ]
    assert ledger.item(ident) == {"brand": world.brand_a.address, "massGrams": 120, "state": ItemState.MANUFACTURED}
    assert ledger.items.functions.run(run.run_id).call()[2] == 9
    with reverts("ItemAlreadyRegistered", itemId=ident):
        ledger.materialize(world.stranger, run, "R3")


def test_materialize_proof_checks(world: World, lot: bytes, run: RunCommitment) -> None:
    ledger = world.ledger
    items = ledger.items.functions
    other = ledger.register_run(world.brand_a, GTIN_A, [f"Q{i}" for i in range(6)], [(lot, 1)])

    def attempt(gtin14: str, serial: str, root: bytes, proof: list[bytes]) -> None:
        send(world, world.retailer, items.materialize(gtin14, serial, root, proof))

    # A proof for an item of another run, against this run's root.
    with reverts("InvalidRunProof", runId=run.run_id, itemId=item_id(GTIN_A, "Q1")):
        attempt(GTIN_A, "Q1", run.items_root, other.proofs["Q1"])
    # This run's item with the proof of another of its items, or from another run.
    with reverts("InvalidRunProof", runId=run.run_id, itemId=item_id(GTIN_A, "R1")):
        attempt(GTIN_A, "R1", run.items_root, run.proofs["R2"])
    with reverts("InvalidRunProof", runId=run.run_id, itemId=item_id(GTIN_A, "R1")):
        attempt(GTIN_A, "R1", run.items_root, other.proofs["Q1"])
    # A tampered proof: one bit flipped, a node dropped, a node added.
    proof = list(run.proofs["R1"])
    flipped = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
    for bad in (flipped, proof[:-1], [*proof, b"\x00" * 32]):
        with reverts("InvalidRunProof", runId=run.run_id, itemId=item_id(GTIN_A, "R1")):
            attempt(GTIN_A, "R1", run.items_root, bad)
    # A serial that is not in the run.
    with reverts("InvalidRunProof", runId=run.run_id, itemId=item_id(GTIN_A, "R99")):
        attempt(GTIN_A, "R99", run.items_root, run.proofs["R1"])
    # Unknown root, or the right root under the wrong GTIN: no such run.
    with reverts("RunNotFound", runId=keccak(abi_encode(["string", "bytes32"], [GTIN_A, b"\x01" * 32]))):
        attempt(GTIN_A, "R1", b"\x01" * 32, run.proofs["R1"])
    with reverts("RunNotFound", runId=keccak(abi_encode(["string", "bytes32"], [GTIN_A2, run.items_root]))):
        attempt(GTIN_A2, "R1", run.items_root, run.proofs["R1"])
    # An invalid serial (checked once the run is found).
    with reverts("InvalidSerial", serial="R 1"):
        attempt(GTIN_A, "R 1", run.items_root, run.proofs["R1"])
    # Nothing was materialized by any of it.
    assert ledger.items.functions.run(run.run_id).call()[2] == 10
    assert state(ledger, item_id(GTIN_A, "R1")) is ItemState.NONE


def test_wrong_gtin_with_a_run_of_that_gtin(world: World, lot: bytes, run: RunCommitment) -> None:
    """A run under another GTIN with the same root exists: the item id (gtin, serial) is then not in the tree."""
    run_input = (GTIN_A2, run.items_root, 10, [lot], [1], ZERO32, b"")
    send(world, world.brand_a, world.ledger.items.functions.registerRun(run_input))
    run_id = keccak(abi_encode(["string", "bytes32"], [GTIN_A2, run.items_root]))
    with reverts("InvalidRunProof", runId=run_id, itemId=item_id(GTIN_A2, "R1")):
        send(world, world.retailer, world.ledger.items.functions.transitionRunItem(
            GTIN_A2, "R1", run.items_root, run.proofs["R1"], ItemState.SOLD))


def test_a_run_never_materializes_more_items_than_it_took_grams_for(world: World, lot: bytes) -> None:
    """A root holding more items than `itemCount` cannot mint mass: only `itemCount` items ever materialize."""
    ledger = world.ledger
    serials = ["X0", "X1", "X2"]
    run_id, tree, receipt = _raw_run(world, GTIN_A, serials[:2], 2, lot, 100, tree_serials=serials)
    assert events(ledger, receipt, "LotAllocated")[0]["grams"] == 200
    for serial in serials[:2]:
        ident = item_id(GTIN_A, serial)
        send(world, world.retailer, ledger.items.functions.materialize(GTIN_A, serial, tree.root, tree.proof(ident)))
    assert ledger.items.functions.run(run_id).call() == (world.brand_a.address, 100, 0)
    ident = item_id(GTIN_A, "X2")
    with reverts("RunItemCountExceeded", runId=run_id):
        send(world, world.retailer, ledger.items.functions.materialize(GTIN_A, "X2", tree.root, tree.proof(ident)))
    assert state(ledger, ident) is ItemState.NONE


# -- transitionRunItem: materialize + first transition -----------------------------------------------------------------
def test_transition_run_item(world: World, run: RunCommitment) -> None:
    ledger = world.ledger
    ident = item_id(GTIN_A, "R5")
    assert state(ledger, ident) is ItemState.NONE  # lazy: no record before its first transition
    receipt = ledger.transition_run_item(world.retailer, run, "R5", ItemState.SOLD)
    assert logs(ledger, receipt) == [
        ("ItemRegistry", "ItemMaterialized", {"itemId": ident, "runId": run.run_id, "serial": "R5"}),
        ("ItemRegistry", "ItemStateChanged", {"itemId": ident, "from": ItemState.NONE, "to": ItemState.MANUFACTURED,
                                              "account": world.retailer.address}),
        ("ItemRegistry", "ItemStateChanged", {"itemId": ident, "from": ItemState.MANUFACTURED, "to": ItemState.SOLD,
                                              "account": world.retailer.address}),
    ]
    assert ledger.item(ident) == {"brand": world.brand_a.address, "massGrams": 120, "state": ItemState.SOLD}
    # From then on it is an ordinary item: plain transitions; a second materialization is refused.
    with reverts("ItemAlreadyRegistered", itemId=ident):
        ledger.transition_run_item(world.retailer, run, "R5", ItemState.IN_USE)
    ledger.transition(world.retailer, ident, ItemState.IN_USE)
    assert state(ledger, ident) is ItemState.IN_USE
    # Other items of the run are untouched.
    assert state(ledger, item_id(GTIN_A, "R6")) is ItemState.NONE


def test_transition_run_item_is_atomic(world: World, run: RunCommitment) -> None:
    """A refused first transition leaves the item unmaterialized."""
    ledger = world.ledger
    ident = item_id(GTIN_A, "R2")
    with reverts("IllegalTransition", itemId=ident, current=ItemState.MANUFACTURED, requested=ItemState.IN_USE):
        ledger.transition_run_item(world.retailer, run, "R2", ItemState.IN_USE)
    with reverts("UnauthorizedTransition", itemId=ident, account=world.stranger.address,
                 current=ItemState.MANUFACTURED, requested=ItemState.SOLD):
        ledger.transition_run_item(world.stranger, run, "R2", ItemState.SOLD)
    with reverts("UnauthorizedTransition", itemId=ident, account=world.brand_b.address,
                 current=ItemState.MANUFACTURED, requested=ItemState.SOLD):
        ledger.transition_run_item(world.brand_b, run, "R2", ItemState.SOLD)
    with reverts("InvalidRunProof", runId=run.run_id, itemId=ident):
        send(world, world.retailer, ledger.items.functions.transitionRunItem(
            GTIN_A, "R2", run.items_root, run.proofs["R3"], ItemState.SOLD))
    assert state(ledger, ident) is ItemState.NONE
    assert ledger.items.functions.run(run.run_id).call()[2] == 10
    # The owning brand may take the first step itself.
    ledger.transition_run_item(world.brand_a, run, "R2", ItemState.SOLD)
    assert state(ledger, ident) is ItemState.SOLD
