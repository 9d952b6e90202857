"""CompanyPrefixRegistry: assignment, revocation, nesting, and GTIN ownership with the GS1 check digit."""

from __future__ import annotations

import pytest

from .conftest import BRAND_A_PREFIX, GTIN_A, GTIN_B, World
from .helpers import COTTON, ZERO_ADDRESS, check_digit, events, gtin, reverts, send, view


def _assign(world: World, prefix: str, brand: str) -> dict[str, object]:
    receipt = world.ledger.assign_prefix(world.admin, prefix, brand)
    [event] = events(world.ledger, receipt, "CompanyPrefixAssigned")
    return event


def test_assign_and_look_up(world: World) -> None:
    prefixes = world.ledger.prefixes.functions
    assert _assign(world, "5012345678", world.brand_b.address) == {"prefix": "5012345678",
                                                                    "brand": world.brand_b.address}
    assert prefixes.prefixOwner("5012345678").call() == world.brand_b.address
    assert prefixes.prefixOwner("501234567").call() == ZERO_ADDRESS
    assert prefixes.gtinOwner(gtin("5012345678", "12")).call() == world.brand_b.address
    # The fixture's prefixes.
    assert prefixes.prefixOwner(BRAND_A_PREFIX).call() == world.brand_a.address
    assert prefixes.gtinOwner(GTIN_A).call() == world.brand_a.address
    assert prefixes.gtinOwner(GTIN_B).call() == world.brand_b.address
    prefixes.checkGtinOwner(GTIN_A, world.brand_a.address).call()


@pytest.mark.parametrize("length", [4, 5, 8, 11, 12])
def test_prefix_lengths_4_to_12(world: World, length: int) -> None:
    prefix = "7" + "3" * (length - 1)
    _assign(world, prefix, world.brand_b.address)
    assert world.ledger.prefixes.functions.gtinOwner(gtin(prefix, "")).call() == world.brand_b.address


@pytest.mark.parametrize("prefix", ["123", "1234567890123", "", "12a4", "12 45", "-1234", "\uff11\uff12\uff13\uff14"])
def test_invalid_prefix(world: World, prefix: str) -> None:
    with reverts("InvalidCompanyPrefix", prefix=prefix):
        world.ledger.assign_prefix(world.admin, prefix, world.brand_b.address)


def test_zero_brand_refused(world: World) -> None:
    """An assignment to the zero address could never be revoked yet would block its nested prefixes for good."""
    with reverts("InvalidBrand", brand=ZERO_ADDRESS):
        world.ledger.assign_prefix(world.admin, "7777777", ZERO_ADDRESS)
    _assign(world, "77777", world.brand_b.address)  # a shorter prefix is still free


def test_same_prefix_taken(world: World) -> None:
    with reverts("CompanyPrefixTaken", prefix=BRAND_A_PREFIX, owner=world.brand_a.address):
        world.ledger.assign_prefix(world.admin, BRAND_A_PREFIX, world.brand_b.address)


@pytest.mark.parametrize("longer", ["95060001", "950600012345"])
def test_longer_nested_prefix_refused(world: World, longer: str) -> None:
    """A prefix extending an assigned one is refused, naming the holder of the shorter one."""
    with reverts("CompanyPrefixTaken", prefix=longer, owner=world.brand_a.address):
        world.ledger.assign_prefix(world.admin, longer, world.brand_b.address)


@pytest.mark.parametrize("shorter", ["9506", "950600"])
def test_shorter_nested_prefix_refused(world: World, shorter: str) -> None:
    """A prefix that an assigned one extends is refused; the owner argument is zero (there may be several)."""
    with reverts("CompanyPrefixTaken", prefix=shorter, owner=ZERO_ADDRESS):
        world.ledger.assign_prefix(world.admin, shorter, world.brand_b.address)


def test_siblings_are_not_nested(world: World) -> None:
    _assign(world, "9506001", world.brand_b.address)
    _assign(world, "95060020", world.brand_b.address)
    assert world.ledger.prefixes.functions.gtinOwner(gtin("9506001", "1")).call() == world.brand_b.address
    assert world.ledger.prefixes.functions.gtinOwner(GTIN_A).call() == world.brand_a.address


def test_revoke(world: World) -> None:
    ledger = world.ledger
    prefixes = ledger.prefixes.functions
    lot = ledger.register_lot(world.brand_a, GTIN_A, "L1", COTTON, 1_000)
    item = ledger.register_item(world.brand_a, GTIN_A, "S1", [(lot, 10)])

    receipt = send(world, world.admin, prefixes.revokePrefix(BRAND_A_PREFIX))
    assert events(ledger, receipt, "CompanyPrefixRevoked") == [{"prefix": BRAND_A_PREFIX,
                                                                 "brand": world.brand_a.address}]
    assert prefixes.prefixOwner(BRAND_A_PREFIX).call() == ZERO_ADDRESS
    assert prefixes.gtinOwner(GTIN_A).call() == ZERO_ADDRESS
    # What was registered under it stays registered; nothing new can be.
    assert ledger.lot(lot)["owner"] == world.brand_a.address
    assert ledger.item(item)["brand"] == world.brand_a.address
    with reverts("GtinNotOwned", gtin=GTIN_A, account=world.brand_a.address):
        ledger.register_item(world.brand_a, GTIN_A, "S2", [(lot, 10)])
    with reverts("CompanyPrefixNotAssigned", prefix=BRAND_A_PREFIX):
        send(world, world.admin, prefixes.revokePrefix(BRAND_A_PREFIX))

    # The nesting counters went back down: both a shorter and a longer prefix can now be assigned (not both).
    snapshot = world.backend.snapshot()
    _assign(world, "950600", world.brand_b.address)
    assert prefixes.gtinOwner(GTIN_A).call() == world.brand_b.address
    world.rollback(snapshot)
    _assign(world, "95060001", world.brand_b.address)
    with reverts("CompanyPrefixTaken", prefix="950600", owner=ZERO_ADDRESS):
        world.ledger.assign_prefix(world.admin, "950600", world.brand_b.address)


def test_revoke_unassigned(world: World) -> None:
    for prefix in ("1234567", "950600", "95060001", ""):
        with reverts("CompanyPrefixNotAssigned", prefix=prefix):
            send(world, world.admin, world.ledger.prefixes.functions.revokePrefix(prefix))


def test_revoke_and_reassign_to_another_brand(world: World) -> None:
    send(world, world.admin, world.ledger.prefixes.functions.revokePrefix(BRAND_A_PREFIX))
    _assign(world, BRAND_A_PREFIX, world.brand_b.address)
    world.ledger.prefixes.functions.checkGtinOwner(GTIN_A, world.brand_b.address).call()


# -- GTINs -------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("body", ["0950600013435", "1950600013435", "0950600099999", "0950600000000", "9950600012345"])
def test_check_digit(world: World, body: str) -> None:
    """Exactly one of the ten final digits is valid, the one GS1's algorithm gives."""
    prefixes = world.ledger.prefixes.functions
    good = check_digit(body)
    assert prefixes.gtinOwner(body + good).call() == world.brand_a.address
    for digit in "0123456789":
        if digit != good:
            with reverts("InvalidGtin", gtin=body + digit):
                view(prefixes.gtinOwner(body + digit))


@pytest.mark.parametrize("bad", ["9506000134352", "009506000134352", "0950600013435a", "", "0950600013435 ",
                                 "+9506000134352"])
def test_invalid_gtin_shape(world: World, bad: str) -> None:
    with reverts("InvalidGtin", gtin=bad):
        view(world.ledger.prefixes.functions.gtinOwner(bad))
    with reverts("InvalidGtin", gtin=bad):
        view(world.ledger.prefixes.functions.checkGtinOwner(bad, world.brand_a.address))


def test_gtin_not_owned(world: World) -> None:
    prefixes = world.ledger.prefixes.functions
    unowned = gtin("5555555", "1")
    assert prefixes.gtinOwner(unowned).call() == ZERO_ADDRESS
    with reverts("GtinNotOwned", gtin=unowned, account=world.brand_a.address):
        view(prefixes.checkGtinOwner(unowned, world.brand_a.address))
    with reverts("GtinNotOwned", gtin=GTIN_B, account=world.brand_a.address):
        view(prefixes.checkGtinOwner(GTIN_B, world.brand_a.address))
