"""MaterialLots: GTIN-keyed and material-keyed lots, allowances, and mass balance at its exact boundary."""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount

from ledger.client import Role
from ledger.ids import gtin_lot_id, material_lot_id

from .conftest import GTIN_A, GTIN_B, World
from .helpers import CONTENT, COTTON, POLYESTER, ZERO32, ZERO_ADDRESS, events, gtin, logs, reverts, send, view

GTIN_A_LOTS = gtin("9506000", "99")  # a second GTIN of brand A, for its material


def test_register_gtin_lot(world: World) -> None:
    ledger = world.ledger
    receipt = send(world, world.brand_a,
                   ledger.lots.functions.registerLot(GTIN_A_LOTS, "LOT-1", COTTON, 25_000, 3_500, CONTENT))
    lot = gtin_lot_id(GTIN_A_LOTS, "LOT-1")
    assert logs(ledger, receipt) == [("MaterialLots", "LotRegistered", {
        "lotId": lot, "owner": world.brand_a.address, "materialCode": COTTON, "gtin": GTIN_A_LOTS,
        "lotNumber": "LOT-1", "massGrams": 25_000, "recycledShareBps": 3_500, "contentHash": CONTENT,
        "lineageHash": ZERO32,
    })]
    assert ledger.lot(lot) == {"owner": world.brand_a.address, "massGrams": 25_000, "allocatedGrams": 0,
                               "recycledShareBps": 3_500, "materialCode": COTTON, "contentHash": CONTENT,
                               "lineageHash": ZERO32}
    assert ledger.available_grams(lot) == 25_000
    assert ledger.register_lot(world.brand_a, GTIN_A_LOTS, "LOT-2", COTTON, 1, 10_000) == gtin_lot_id(GTIN_A_LOTS,
                                                                                                       "LOT-2")


def test_gtin_lot_needs_own_prefix(world: World) -> None:
    with reverts("GtinNotOwned", gtin=GTIN_B, account=world.brand_a.address):
        send(world, world.brand_a, world.ledger.lots.functions.registerLot(GTIN_B, "L", COTTON, 1, 0, ZERO32))
    bad = GTIN_A[:-1] + str((int(GTIN_A[-1]) + 1) % 10)
    with reverts("InvalidGtin", gtin=bad):
        send(world, world.brand_a, world.ledger.lots.functions.registerLot(bad, "L", COTTON, 1, 0, ZERO32))


@pytest.mark.parametrize("keyed", ["gtin", "material"])
def test_lot_validation(world: World, keyed: str) -> None:
    functions = world.ledger.lots.functions

    def register(code: bytes, mass: int, share: int, number: str = "L") -> object:
        if keyed == "gtin":
            return send(world, world.brand_a, functions.registerLot(GTIN_A, number, code, mass, share, ZERO32))
        return send(world, world.brand_a, functions.registerMaterialLot(code, number, mass, share, ZERO32))

    with reverts("ZeroMass"):
        register(COTTON, 0, 0)
    with reverts("InvalidRecycledShare", shareBps=10_001):
        register(COTTON, 1, 10_001)
    with reverts("InvalidRecycledShare", shareBps=65_535):
        register(COTTON, 1, 65_535)
    with reverts("InvalidMaterialCode", materialCode=ZERO32):
        register(ZERO32, 1, 0)
    register(COTTON, 2**96 - 1, 10_000)
    lot = gtin_lot_id(GTIN_A, "L") if keyed == "gtin" else material_lot_id(world.brand_a.address, COTTON, "L")
    with reverts("LotAlreadyRegistered", lotId=lot):
        register(COTTON, 5, 0)
    if keyed == "gtin":  # the id is the GS1 key: the material code takes no part in it
        with reverts("LotAlreadyRegistered", lotId=lot):
            register(POLYESTER, 5, 0)


@pytest.mark.parametrize("owner", ["brand_a", "recycler"])
def test_register_material_lot(world: World, owner: str) -> None:
    ledger = world.ledger
    account: LocalAccount = getattr(world, owner)
    receipt = send(world, account, ledger.lots.functions.registerMaterialLot(POLYESTER, "PES-7", 900, 10_000, CONTENT))
    lot = material_lot_id(account.address, POLYESTER, "PES-7")
    assert events(ledger, receipt, "LotRegistered") == [{
        "lotId": lot, "owner": account.address, "materialCode": POLYESTER, "gtin": "", "lotNumber": "PES-7",
        "massGrams": 900, "recycledShareBps": 10_000, "contentHash": CONTENT, "lineageHash": ZERO32,
    }]
    assert ledger.lot(lot)["owner"] == account.address


def test_material_lots_are_namespaced_by_owner(world: World) -> None:
    """The same code and lot number are different lots for different owners: no one can claim another's ids."""
    ledger = world.ledger
    ids = {ledger.register_material_lot(actor, COTTON, "SAME", 100) for actor in (world.brand_a, world.brand_b,
                                                                                   world.recycler)}
    assert ids == {material_lot_id(a.address, COTTON, "SAME") for a in (world.brand_a, world.brand_b, world.recycler)}
    with reverts("LotAlreadyRegistered", lotId=material_lot_id(world.brand_b.address, COTTON, "SAME")):
        ledger.register_material_lot(world.brand_b, COTTON, "SAME", 100)


def test_views_of_unknown_lot(world: World) -> None:
    ledger = world.ledger
    assert ledger.lot(b"\x07" * 32)["owner"] == ZERO_ADDRESS
    assert ledger.available_grams(b"\x07" * 32) == 0
    assert ledger.lots.functions.allowance(b"\x07" * 32, world.brand_a.address).call() == 0


def test_approve(world: World) -> None:
    ledger = world.ledger
    lot = ledger.register_material_lot(world.recycler, COTTON, "R1", 1_000)
    receipt = ledger.approve_lot(world.recycler, lot, world.brand_b.address, 400)
    assert events(ledger, receipt, "LotAllowanceSet") == [{"lotId": lot, "operator": world.brand_b.address,
                                                            "grams": 400}]
    assert ledger.lots.functions.allowance(lot, world.brand_b.address).call() == 400
    ledger.approve_lot(world.recycler, lot, world.brand_b.address, 150)  # replaces, does not add
    assert ledger.lots.functions.allowance(lot, world.brand_b.address).call() == 150
    ledger.approve_lot(world.recycler, lot, world.brand_b.address, 0)
    assert ledger.lots.functions.allowance(lot, world.brand_b.address).call() == 0
    for caller in (world.brand_b, world.admin, world.stranger):
        with reverts("NotLotOwner", lotId=lot, account=caller.address):
            ledger.approve_lot(caller, lot, caller.address, 1)
    with reverts("NotLotOwner", lotId=b"\x09" * 32, account=world.recycler.address):
        ledger.approve_lot(world.recycler, b"\x09" * 32, world.brand_b.address, 1)


# -- mass balance through items ----------------------------------------------------------------------------------------
def test_allocating_exactly_the_remaining_grams_passes_one_more_fails(world: World) -> None:
    ledger = world.ledger
    lot = ledger.register_lot(world.brand_a, GTIN_A_LOTS, "L1", COTTON, 1_000)
    with reverts("LotMassExceeded", lotId=lot, requestedGrams=1_001, availableGrams=1_000):
        ledger.register_item(world.brand_a, GTIN_A, "S0", [(lot, 1_001)])
    ledger.register_item(world.brand_a, GTIN_A, "S1", [(lot, 600)])
    with reverts("LotMassExceeded", lotId=lot, requestedGrams=401, availableGrams=400):
        ledger.register_item(world.brand_a, GTIN_A, "S2", [(lot, 401)])
    receipt = send(world, world.brand_a, ledger.items.functions.registerItem(GTIN_A, "S2", [lot], [400], ZERO32))
    assert events(ledger, receipt, "LotAllocated") == [{"lotId": lot, "account": world.brand_a.address,
                                                         "grams": 400}]
    assert ledger.lot(lot)["allocatedGrams"] == 1_000 and ledger.available_grams(lot) == 0
    with reverts("LotMassExceeded", lotId=lot, requestedGrams=1, availableGrams=0):
        ledger.register_item(world.brand_a, GTIN_A, "S3", [(lot, 1)])


def test_run_takes_item_count_times_grams_at_the_boundary(world: World) -> None:
    ledger = world.ledger
    lot = ledger.register_lot(world.brand_a, GTIN_A_LOTS, "L1", COTTON, 1_000)
    with reverts("LotMassExceeded", lotId=lot, requestedGrams=1_005, availableGrams=1_000):
        ledger.register_run(world.brand_a, GTIN_A, [f"R{i}" for i in range(5)], [(lot, 201)])
    run = ledger.register_run(world.brand_a, GTIN_A, [f"R{i}" for i in range(5)], [(lot, 200)])
    assert events(ledger, run.receipt, "LotAllocated") == [{"lotId": lot, "account": world.brand_a.address,
                                                             "grams": 1_000}]
    assert ledger.available_grams(lot) == 0


def test_allocation_from_a_lot_of_another_needs_an_allowance(world: World) -> None:
    ledger = world.ledger
    lot = ledger.register_lot(world.brand_a, GTIN_A_LOTS, "L1", COTTON, 1_000)
    with reverts("LotAllocationUnauthorized", lotId=lot, account=world.brand_b.address, requestedGrams=10,
                 allowedGrams=0):
        ledger.register_item(world.brand_b, GTIN_B, "S1", [(lot, 10)])
    ledger.approve_lot(world.brand_a, lot, world.brand_b.address, 300)
    ledger.register_item(world.brand_b, GTIN_B, "S1", [(lot, 200)])
    assert ledger.lots.functions.allowance(lot, world.brand_b.address).call() == 100
    with reverts("LotAllocationUnauthorized", lotId=lot, account=world.brand_b.address, requestedGrams=101,
                 allowedGrams=100):
        ledger.register_item(world.brand_b, GTIN_B, "S2", [(lot, 101)])
    ledger.register_item(world.brand_b, GTIN_B, "S2", [(lot, 100)])
    assert ledger.lots.functions.allowance(lot, world.brand_b.address).call() == 0
    assert ledger.available_grams(lot) == 700


def test_an_allowance_does_not_exceed_the_lot(world: World) -> None:
    ledger = world.ledger
    lot = ledger.register_lot(world.brand_a, GTIN_A_LOTS, "L1", COTTON, 100)
    ledger.approve_lot(world.brand_a, lot, world.brand_b.address, 10_000)
    with reverts("LotMassExceeded", lotId=lot, requestedGrams=101, availableGrams=100):
        ledger.register_item(world.brand_b, GTIN_B, "S1", [(lot, 101)])
    assert ledger.lots.functions.allowance(lot, world.brand_b.address).call() == 10_000  # the revert changed nothing


# -- allocate and registerRecoveredLot: the LOT_MANAGER's functions ----------------------------------------------------
@pytest.fixture
def manager(world: World) -> LocalAccount:
    """The stranger, made a lot manager so the suite can call allocate/registerRecoveredLot directly."""
    world.ledger.grant_role(world.admin, "lot_manager", world.stranger.address)
    return world.stranger


def test_allocate_directly(world: World, manager: LocalAccount) -> None:
    ledger = world.ledger
    functions = ledger.lots.functions
    lot = ledger.register_lot(world.brand_a, GTIN_A_LOTS, "L1", COTTON, 500)
    with reverts("LotNotFound", lotId=b"\x05" * 32):
        send(world, manager, functions.allocate(b"\x05" * 32, world.brand_a.address, 1))
    with reverts("ZeroMass"):
        send(world, manager, functions.allocate(lot, world.brand_a.address, 0))
    with reverts("LotAllocationUnauthorized", lotId=lot, account=world.brand_b.address, requestedGrams=1,
                 allowedGrams=0):
        send(world, manager, functions.allocate(lot, world.brand_b.address, 1))
    receipt = send(world, manager, functions.allocate(lot, world.brand_a.address, 499))
    assert events(ledger, receipt, "LotAllocated") == [{"lotId": lot, "account": world.brand_a.address,
                                                         "grams": 499}]
    with reverts("LotMassExceeded", lotId=lot, requestedGrams=2, availableGrams=1):
        send(world, manager, functions.allocate(lot, world.brand_a.address, 2))
    send(world, manager, functions.allocate(lot, world.brand_a.address, 1))
    assert ledger.lot(lot)["allocatedGrams"] == 500


def test_register_recovered_lot_directly(world: World, manager: LocalAccount) -> None:
    ledger = world.ledger
    lineage = b"\x0a" * 32
    call = ledger.lots.functions.registerRecoveredLot(world.recycler.address, COTTON, "RX", 700, CONTENT, lineage)
    receipt = send(world, manager, call)
    lot = material_lot_id(world.recycler.address, COTTON, "RX")
    assert events(ledger, receipt, "LotRegistered") == [{
        "lotId": lot, "owner": world.recycler.address, "materialCode": COTTON, "gtin": "", "lotNumber": "RX",
        "massGrams": 700, "recycledShareBps": 10_000, "contentHash": CONTENT, "lineageHash": lineage,
    }]
    assert ledger.lot(lot)["lineageHash"] == lineage
    with reverts("LotAlreadyRegistered", lotId=lot):
        send(world, manager, call)
    with reverts("ZeroMass"):
        send(world, manager, ledger.lots.functions.registerRecoveredLot(world.recycler.address, COTTON, "RY", 0,
                                                                        CONTENT, lineage))
    with reverts("InvalidMaterialCode", materialCode=ZERO32):
        send(world, manager, ledger.lots.functions.registerRecoveredLot(world.recycler.address, ZERO32, "RY", 1,
                                                                        CONTENT, lineage))
    # The recycler itself, without the manager role, cannot.
    with reverts("AccessControlUnauthorizedAccount", account=world.recycler.address, neededRole=Role.LOT_MANAGER):
        send(world, world.recycler, ledger.lots.functions.registerRecoveredLot(world.recycler.address, COTTON, "RZ",
                                                                               1, CONTENT, lineage))
    assert view(ledger.lots.functions.availableGrams(lot)) == 700
