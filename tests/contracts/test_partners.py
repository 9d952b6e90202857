"""Partners: a retailer, recycler or repairer moves a brand's items only once that brand has authorised it in that
role (``setPartner``); the role itself is needed too. Brand A of the suites' world has authorised the cast's
retailer, recycler and repairer; brand B no one."""

from __future__ import annotations

import pytest

from ledger.client import Role
from ledger.ids import item_id

from .conftest import GTIN_A, GTIN_B, World
from .helpers import COTTON, S, events, gtin, reverts, send, state, view, walk


@pytest.fixture
def lot_b(world: World) -> bytes:
    return world.ledger.register_lot(world.brand_b, gtin("4012345", "9"), "LB", COTTON, 1_000_000)


def test_set_partner(world: World) -> None:
    ledger = world.ledger
    brand, partner = world.brand_b, world.retailer.address
    assert not ledger.is_partner(brand.address, partner, "retailer")
    receipt = ledger.set_partner(brand, partner, "retailer")
    assert events(ledger, receipt, "PartnerSet") == [
        {"brand": brand.address, "partner": partner, "role": Role.RETAILER, "authorized": True}]
    assert ledger.is_partner(brand.address, partner, "retailer")
    # Per role: a retailer partner is no recycler partner, even if it held the recycler role.
    assert not ledger.is_partner(brand.address, partner, "recycler")
    ledger.set_partner(brand, partner, "repairer")
    receipt = ledger.set_partner(brand, partner, "retailer", authorized=False)
    assert events(ledger, receipt, "PartnerSet") == [
        {"brand": brand.address, "partner": partner, "role": Role.RETAILER, "authorized": False}]
    assert not ledger.is_partner(brand.address, partner, "retailer")
    assert ledger.is_partner(brand.address, partner, "repairer")  # the other role is kept
    # Setting it twice, or revoking what was never set, changes nothing else.
    ledger.set_partner(brand, partner, "repairer")
    ledger.set_partner(brand, partner, "retailer", authorized=False)
    assert [ledger.is_partner(brand.address, partner, r) for r in ("retailer", "recycler", "repairer")] == [
        False, False, True]


def test_only_partner_roles(world: World) -> None:
    items = world.ledger.items.functions
    for role in (Role.BRAND, Role.ADMIN, Role.ANCHORER, Role.LOT_MANAGER, b"\x07" * 32):
        with reverts("InvalidPartnerRole", role=role):
            send(world, world.brand_a, items.setPartner(world.retailer.address, role, True))
        with reverts("InvalidPartnerRole", role=role):
            view(items.isPartner(world.brand_a.address, world.retailer.address, role))
    for caller in (world.retailer, world.recycler, world.admin, world.stranger):
        with reverts("AccessControlUnauthorizedAccount", account=caller.address, neededRole=Role.BRAND):
            send(world, caller, items.setPartner(world.retailer.address, Role.RETAILER, True))


def test_a_partner_of_one_brand_is_not_a_partner_of_another(world: World, lot_b: bytes) -> None:
    """The reported attack: a recycler disposed of a brand's never-sold item. Brand A's partners hold every role
    they need, but brand B has authorised none of them."""
    ledger = world.ledger
    item = ledger.register_item(world.brand_b, GTIN_B, "B-1", [(lot_b, 100)])
    for actor, target in ((world.recycler, S.DISPOSED), (world.retailer, S.SOLD)):
        with reverts("NotBrandPartner", itemId=item, brand=world.brand_b.address, account=actor.address):
            ledger.transition(actor, item, target)
    assert state(ledger, item) is S.MANUFACTURED
    # Once brand B authorises its retailer, that retailer may sell; the recycler still may not touch the item.
    ledger.set_partner(world.brand_b, world.retailer.address, "retailer")
    ledger.transition(world.retailer, item, S.SOLD)
    ledger.transition(world.retailer, item, S.IN_USE)
    with reverts("NotBrandPartner", itemId=item, brand=world.brand_b.address, account=world.recycler.address):
        ledger.transition(world.recycler, item, S.COLLECTED)
    with reverts("NotBrandPartner", itemId=item, brand=world.brand_b.address, account=world.repairer.address):
        ledger.transition(world.repairer, item, S.REFURBISHED)
    # A role the edge does not admit is still UnauthorizedTransition, partner or not.
    with reverts("UnauthorizedTransition", itemId=item, account=world.retailer.address, current=S.IN_USE,
                 requested=S.COLLECTED):
        ledger.transition(world.retailer, item, S.COLLECTED)


def test_partnership_and_role_are_both_needed(world: World) -> None:
    ledger = world.ledger
    lot = ledger.register_lot(world.brand_a, gtin("9506000", "99"), "L", COTTON, 1_000_000)
    item = ledger.register_item(world.brand_a, GTIN_A, "A-1", [(lot, 100)])
    # Brand A authorises a stranger as its retailer: without the retailer role it still may not sell.
    ledger.set_partner(world.brand_a, world.stranger.address, "retailer")
    with reverts("UnauthorizedTransition", itemId=item, account=world.stranger.address, current=S.MANUFACTURED,
                 requested=S.SOLD):
        ledger.transition(world.stranger, item, S.SOLD)
    ledger.grant_role(world.admin, "retailer", world.stranger.address)
    assert ledger.items.functions.canTransition(S.MANUFACTURED, S.SOLD, world.stranger.address,
                                                world.brand_a.address).call()
    # Revoked by the brand: refused from the next transaction on, the role notwithstanding.
    ledger.set_partner(world.brand_a, world.stranger.address, "retailer", authorized=False)
    assert not ledger.items.functions.canTransition(S.MANUFACTURED, S.SOLD, world.stranger.address,
                                                    world.brand_a.address).call()
    with reverts("NotBrandPartner", itemId=item, brand=world.brand_a.address, account=world.stranger.address):
        ledger.transition(world.stranger, item, S.SOLD)
    ledger.transition(world.retailer, item, S.SOLD)  # brand A's own retailer still may


def test_recycling_needs_every_items_brand(world: World, lot_b: bytes) -> None:
    ledger = world.ledger
    ledger.set_partner(world.brand_b, world.retailer.address, "retailer")
    ledger.set_partner(world.brand_b, world.recycler.address, "recycler")
    lot = ledger.register_lot(world.brand_a, gtin("9506000", "99"), "L", COTTON, 1_000_000)
    a = ledger.register_item(world.brand_a, GTIN_A, "A-1", [(lot, 100)])
    b = ledger.register_item(world.brand_b, GTIN_B, "B-1", [(lot_b, 100)])
    for item in (a, b):
        walk(world, item, [S.SOLD, S.IN_USE, S.COLLECTED])
    # Brand B stops working with the recycler after the collection: recycling its item is refused.
    ledger.set_partner(world.brand_b, world.recycler.address, "recycler", authorized=False)
    with reverts("NotBrandPartner", itemId=b, brand=world.brand_b.address, account=world.recycler.address):
        ledger.recycle(world.recycler, [a, b], COTTON, "R-1", 150)
    assert [state(ledger, a), state(ledger, b)] == [S.COLLECTED, S.COLLECTED]
    ledger.set_partner(world.brand_b, world.recycler.address, "recycler")
    ledger.recycle(world.recycler, [a, b], COTTON, "R-1", 150)
    assert [state(ledger, a), state(ledger, b)] == [S.RECYCLED, S.RECYCLED]


def test_run_items_follow_their_brand(world: World, lot_b: bytes) -> None:
    ledger = world.ledger
    run = ledger.register_run(world.brand_b, GTIN_B, ["R1", "R2"], [(lot_b, 10)])
    with reverts("NotBrandPartner", itemId=item_id(GTIN_B, "R1"), brand=world.brand_b.address,
                 account=world.retailer.address):
        ledger.transition_run_item(world.retailer, run, "R1", S.SOLD)
    assert state(ledger, item_id(GTIN_B, "R1")) is S.NONE  # atomic: not even materialized
    ledger.set_partner(world.brand_b, world.retailer.address, "retailer")
    ledger.transition_run_item(world.retailer, run, "R1", S.SOLD)
    assert state(ledger, item_id(GTIN_B, "R1")) is S.SOLD
