from __future__ import annotations

import pytest

from ledger.client import ItemState
from ledger.errors import ContractRevert

from .conftest import GTIN_A, World

COTTON = b"CO".ljust(32, b"\x00")


def test_lot_item_recycle_loop(world: World) -> None:
    ledger = world.ledger
    lot = ledger.register_lot(world.brand_a, GTIN_A, "LOT1", COTTON, 10_000, 0)
    item = ledger.register_item(world.brand_a, GTIN_A, "S1", [(lot, 300)])
    assert ledger.available_grams(lot) == 9_700
    for actor, state in [(world.retailer, ItemState.SOLD), (world.retailer, ItemState.IN_USE),
                         (world.recycler, ItemState.COLLECTED)]:
        ledger.transition(actor, item, state)
    recovered = ledger.recycle(world.recycler, [item], COTTON, "R1", 280)
    assert ledger.lot(recovered)["recycledShareBps"] == 10_000
    assert ledger.item(item)["state"] is ItemState.RECYCLED


def test_mass_balance_revert_is_decoded(world: World) -> None:
    ledger = world.ledger
    lot = ledger.register_lot(world.brand_a, GTIN_A, "LOT1", COTTON, 100, 0)
    with pytest.raises(ContractRevert) as info:
        ledger.register_item(world.brand_a, GTIN_A, "S1", [(lot, 101)])
    assert info.value.name == "LotMassExceeded"
    assert info.value.args_by_name == {"lotId": lot, "requestedGrams": 101, "availableGrams": 100}
