"""CircularAccess (the shared role registry), RoleGated, and every role check of every contract."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from ledger.client import Role

from .conftest import GTIN_A, World
from .helpers import COTTON, ZERO32, events, reverts, send

ROLE_NAMES = ["BRAND_ROLE", "RECYCLER_ROLE", "RETAILER_ROLE", "REPAIRER_ROLE", "ANCHORER_ROLE", "LOT_MANAGER_ROLE"]


def test_role_constants(world: World) -> None:
    access = world.ledger.access
    for name in ROLE_NAMES:
        assert getattr(access.functions, name)().call() == keccak(text=name)
        assert Role.by_name(name.removesuffix("_ROLE")) == keccak(text=name)
    assert access.functions.DEFAULT_ADMIN_ROLE().call() == ZERO32
    assert access.functions.BRAND_ROLE().call() == Role.BRAND
    assert access.functions.LOT_MANAGER_ROLE().call() == Role.LOT_MANAGER
    assert world.ledger.anchor.functions.ANCHORER_ROLE().call() == Role.ANCHORER
    assert world.ledger.anchor.functions.DEFAULT_ADMIN_ROLE().call() == ZERO32
    for name in ROLE_NAMES:
        assert access.functions.getRoleAdmin(keccak(text=name)).call() == ZERO32


def test_wiring(world: World) -> None:
    ledger = world.ledger
    access = ledger.access.address
    for contract in (ledger.prefixes, ledger.lots, ledger.items):
        assert contract.functions.access().call() == access
    assert ledger.lots.functions.prefixes().call() == ledger.prefixes.address
    assert ledger.items.functions.prefixes().call() == ledger.prefixes.address
    assert ledger.items.functions.lots().call() == ledger.lots.address
    assert ledger.access.functions.hasRole(Role.LOT_MANAGER, ledger.items.address).call()
    assert ledger.access.functions.hasRole(Role.ADMIN, world.admin.address).call()
    assert ledger.anchor.functions.hasRole(Role.ADMIN, world.admin.address).call()


@pytest.mark.parametrize("contract", ["access", "anchor"])
def test_supports_interface(world: World, contract: str) -> None:
    functions = getattr(world.ledger, contract).functions
    assert functions.supportsInterface(bytes.fromhex("01ffc9a7")).call()  # IERC165
    assert functions.supportsInterface(bytes.fromhex("7965db0b")).call()  # IAccessControl
    assert not functions.supportsInterface(bytes.fromhex("ffffffff")).call()


@pytest.mark.parametrize("contract", ["access", "anchor"])
def test_grant_revoke_renounce(world: World, contract: str) -> None:
    ledger = world.ledger
    holder = getattr(ledger, contract)
    role = Role.ANCHORER if contract == "anchor" else Role.REPAIRER
    who = world.stranger.address

    receipt = send(world, world.admin, holder.functions.grantRole(role, who))
    assert events(ledger, receipt, "RoleGranted") == [{"role": role, "account": who, "sender": world.admin.address}]
    assert holder.functions.hasRole(role, who).call()
    # Granting again is a no-op: no event.
    assert events(ledger, send(world, world.admin, holder.functions.grantRole(role, who)), "RoleGranted") == []

    receipt = send(world, world.admin, holder.functions.revokeRole(role, who))
    assert events(ledger, receipt, "RoleRevoked") == [{"role": role, "account": who, "sender": world.admin.address}]
    assert not holder.functions.hasRole(role, who).call()

    send(world, world.admin, holder.functions.grantRole(role, who))
    with reverts("AccessControlBadConfirmation"):
        send(world, world.stranger, holder.functions.renounceRole(role, world.admin.address))
    receipt = send(world, world.stranger, holder.functions.renounceRole(role, who))
    assert events(ledger, receipt, "RoleRevoked") == [{"role": role, "account": who, "sender": who}]
    assert not holder.functions.hasRole(role, who).call()


@pytest.mark.parametrize("contract", ["access", "anchor"])
@pytest.mark.parametrize("function", ["grantRole", "revokeRole"])
def test_only_admin_manages_roles(world: World, contract: str, function: str) -> None:
    holder = getattr(world.ledger, contract)
    for caller in (world.stranger, world.brand_a):
        with reverts("AccessControlUnauthorizedAccount", account=caller.address, neededRole=Role.ADMIN):
            send(world, caller, getattr(holder.functions, function)(Role.BRAND, world.stranger.address))


def test_anchorer_role_lives_in_event_anchor_only(world: World) -> None:
    """EventAnchor keeps its own ANCHORER_ROLE: holding it in CircularAccess grants nothing there."""
    send(world, world.admin, world.ledger.access.functions.grantRole(Role.ANCHORER, world.stranger.address))
    with reverts("AccessControlUnauthorizedAccount", account=world.stranger.address, neededRole=Role.ANCHORER):
        send(world, world.stranger, world.ledger.anchor.functions.anchor(b"\x01" * 32, 1))


def test_revoking_a_role_takes_effect_everywhere(world: World) -> None:
    ledger = world.ledger
    lot = ledger.register_lot(world.brand_a, GTIN_A, "L1", COTTON, 1_000)
    ledger.revoke_role(world.admin, "brand", world.brand_a.address)
    with reverts("AccessControlUnauthorizedAccount", account=world.brand_a.address, neededRole=Role.BRAND):
        ledger.register_lot(world.brand_a, GTIN_A, "L2", COTTON, 1_000)
    with reverts("AccessControlUnauthorizedAccount", account=world.brand_a.address, neededRole=Role.BRAND):
        ledger.register_item(world.brand_a, GTIN_A, "S1", [(lot, 10)])
    ledger.grant_role(world.admin, "brand", world.brand_a.address)
    ledger.register_item(world.brand_a, GTIN_A, "S1", [(lot, 10)])


# -- every role-gated function refuses a caller without its role -------------------------------------------------------
Call = Callable[[World], Any]
GATED: list[tuple[str, Call, bytes]] = [
    ("CompanyPrefixRegistry.assignPrefix",
     lambda w: w.ledger.prefixes.functions.assignPrefix("123456", w.stranger.address), Role.ADMIN),
    ("CompanyPrefixRegistry.revokePrefix", lambda w: w.ledger.prefixes.functions.revokePrefix("9506000"), Role.ADMIN),
    ("MaterialLots.registerLot",
     lambda w: w.ledger.lots.functions.registerLot(GTIN_A, "L", COTTON, 1, 0, ZERO32), Role.BRAND),
    # Brand or recycler: the check names the recycler role, the second one tried.
    ("MaterialLots.registerMaterialLot",
     lambda w: w.ledger.lots.functions.registerMaterialLot(COTTON, "L", 1, 0, ZERO32), Role.RECYCLER),
    ("MaterialLots.registerRecoveredLot",
     lambda w: w.ledger.lots.functions.registerRecoveredLot(w.recycler.address, COTTON, "L", 1, ZERO32, ZERO32),
     Role.LOT_MANAGER),
    ("MaterialLots.allocate", lambda w: w.ledger.lots.functions.allocate(ZERO32, w.brand_a.address, 1),
     Role.LOT_MANAGER),
    ("ItemRegistry.registerItem",
     lambda w: w.ledger.items.functions.registerItem(GTIN_A, "S", [ZERO32], [1], ZERO32), Role.BRAND),
    ("ItemRegistry.registerRun",
     lambda w: w.ledger.items.functions.registerRun((GTIN_A, b"\x01" * 32, 1, [ZERO32], [1], ZERO32, b"S")),
     Role.BRAND),
    ("ItemRegistry.recycle",
     lambda w: w.ledger.items.functions.recycle([b"\x01" * 32], [(COTTON, "R", 1, ZERO32)]), Role.RECYCLER),
    ("EventAnchor.anchor", lambda w: w.ledger.anchor.functions.anchor(b"\x01" * 32, 1), Role.ANCHORER),
    ("EventAnchor.anchorWithUri",
     lambda w: w.ledger.anchor.functions.anchorWithUri(b"\x01" * 32, 1, "https://b.example/1"), Role.ANCHORER),
]


def _callers(world: World, role: bytes) -> list[LocalAccount]:
    """A stranger, and actors holding roles other than `role`."""
    others = {
        Role.ADMIN: [world.brand_a, world.anchorer],
        Role.BRAND: [world.recycler, world.retailer, world.admin],
        Role.RECYCLER: [world.retailer, world.repairer, world.admin],
        Role.LOT_MANAGER: [world.brand_a, world.recycler, world.admin],
        Role.ANCHORER: [world.brand_a, world.admin],
    }[role]
    return [world.stranger, *others]


@pytest.mark.parametrize(("label", "make", "role"), GATED, ids=[g[0] for g in GATED])
def test_role_gated(world: World, label: str, make: Call, role: bytes) -> None:
    for caller in _callers(world, role):
        with reverts("AccessControlUnauthorizedAccount", account=caller.address, neededRole=role):
            send(world, caller, make(world))
