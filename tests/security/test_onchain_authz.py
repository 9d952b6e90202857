"""The on-chain authorisation matrix: every actor x every state-changing function of every contract, sent straight to
the contracts (no API in between), on eth-tester and on Anvil.

Each cell says exactly who may call what: the allowed callers' transaction goes through, every other caller gets
the exact custom error (name and arguments). Most resources are brand A's (a lot, items in several states, a run),
so brand B's row is "a brand, but not the owner". Brand A has authorised the cast's retailer, recycler and repairer
as its partners; brand B has authorised no one, so the rows on brand B's items show a retailer, recycler or repairer
refused for want of the brand's authorisation (``NotBrandPartner``), whatever roles it holds. The set of functions is
read from the ABIs, so a new state-changing function fails ``test_matrix_covers_every_state_changing_function``
until it has its row here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount

from ledger.client import ItemState, Role, RunCommitment
from ledger.errors import ContractRevert
from ledger.ids import item_id, material_lot_id
from ledger.lifecycle import next_states
from tests.contracts.conftest import (  # noqa: F401  (fixtures: a deployed ledger per backend)
    BRAND_A_PREFIX,
    BRAND_B_PREFIX,
    GTIN_A,
    GTIN_B,
    World,
    deployed,
    fresh_world,
)
from tests.contracts.helpers import COTTON, ZERO32, send

S = ItemState
ACTORS = ("admin", "brand_a", "brand_b", "retailer", "recycler", "repairer", "anchorer", "stranger")
Expected = tuple[str, dict[str, Any]] | None  # None: the call goes through


@dataclass
class Seed:
    """Brand A's resources, made once per backend; every cell starts from this state."""

    lot: bytes
    manufactured: bytes
    collected: bytes
    run: RunCommitment
    b_manufactured: bytes  # brand B's, which has no partners
    b_collected: bytes  # brand B's, collected while the recycler was still its partner
    snapshot: Any


@dataclass
class Cell:
    world: World
    seed: Seed
    actor: str

    @property
    def account(self) -> LocalAccount:
        account: LocalAccount = getattr(self.world, self.actor)
        return account

    @property
    def address(self) -> str:
        return str(self.account.address)


def unauthorized(cell: Cell, role: bytes) -> Expected:
    return ("AccessControlUnauthorizedAccount", {"account": cell.address, "neededRole": role})


def only(allowed: set[str], otherwise: Callable[[Cell], Expected]) -> Callable[[Cell], Expected]:
    return lambda cell: None if cell.actor in allowed else otherwise(cell)


def transition_rule(item: str, start: S, to: S, allowed: set[str]) -> Callable[[Cell], Expected]:
    def expected(cell: Cell) -> Expected:
        if cell.actor in allowed:
            return None
        ident = getattr(cell.seed, item)
        return ("UnauthorizedTransition", {"itemId": ident, "account": cell.address, "current": start,
                                           "requested": to})
    return expected


def partner_rule(item: str, start: S, to: S, allowed: set[str], partners: set[str]) -> Callable[[Cell], Expected]:
    """A move of one of brand B's items: `allowed` may; `partners` hold a role allowed on the edge but are not brand
    B's partners (NotBrandPartner); anyone else holds no allowed role (UnauthorizedTransition)."""
    def expected(cell: Cell) -> Expected:
        if cell.actor in allowed:
            return None
        ident = getattr(cell.seed, item)
        if cell.actor in partners:
            return ("NotBrandPartner", {"itemId": ident, "brand": cell.world.brand_b.address,
                                        "account": cell.address})
        return ("UnauthorizedTransition", {"itemId": ident, "account": cell.address, "current": start,
                                           "requested": to})
    return expected


def brand_gtin_rule(gtin: str, owner: str) -> Callable[[Cell], Expected]:
    """A brand-only call about `gtin`: its owner may, another brand gets GtinNotOwned, anyone else lacks the role."""
    def expected(cell: Cell) -> Expected:
        if cell.actor == owner:
            return None
        if cell.actor in ("brand_a", "brand_b"):
            return ("GtinNotOwned", {"gtin": gtin, "account": cell.address})
        return unauthorized(cell, Role.BRAND)
    return expected


def foreign_lot_rule(cell: Cell) -> Expected:
    """Brand B making an item of its own GTIN out of brand A's lot, without an allowance."""
    if cell.actor == "brand_b":
        return ("LotAllocationUnauthorized", {"lotId": cell.seed.lot, "account": cell.address,
                                              "requestedGrams": 10, "allowedGrams": 0})
    if cell.actor == "brand_a":
        return ("GtinNotOwned", {"gtin": GTIN_B, "account": cell.address})
    return unauthorized(cell, Role.BRAND)


def renounce_rule(owner: str) -> Callable[[Cell], Expected]:
    return only({owner}, lambda cell: ("AccessControlBadConfirmation", {}))


Call = Callable[[Cell], Any]
# (row name, contract.function it exercises, the call, who may / what the others get)
ROWS: list[tuple[str, str, Call, Callable[[Cell], Expected]]] = [
    ("grant brand role", "CircularAccess.grantRole",
     lambda c: c.world.ledger.access.functions.grantRole(Role.BRAND, c.world.stranger.address),
     only({"admin"}, lambda c: unauthorized(c, Role.ADMIN))),
    ("revoke retailer role", "CircularAccess.revokeRole",
     lambda c: c.world.ledger.access.functions.revokeRole(Role.RETAILER, c.world.retailer.address),
     only({"admin"}, lambda c: unauthorized(c, Role.ADMIN))),
    ("renounce brand A's role", "CircularAccess.renounceRole",
     lambda c: c.world.ledger.access.functions.renounceRole(Role.BRAND, c.world.brand_a.address),
     renounce_rule("brand_a")),
    ("grant anchorer role", "EventAnchor.grantRole",
     lambda c: c.world.ledger.anchor.functions.grantRole(Role.ANCHORER, c.world.stranger.address),
     only({"admin"}, lambda c: unauthorized(c, Role.ADMIN))),
    ("revoke anchorer role", "EventAnchor.revokeRole",
     lambda c: c.world.ledger.anchor.functions.revokeRole(Role.ANCHORER, c.world.anchorer.address),
     only({"admin"}, lambda c: unauthorized(c, Role.ADMIN))),
    ("renounce the anchorer's role", "EventAnchor.renounceRole",
     lambda c: c.world.ledger.anchor.functions.renounceRole(Role.ANCHORER, c.world.anchorer.address),
     renounce_rule("anchorer")),
    ("anchor a root", "EventAnchor.anchor",
     lambda c: c.world.ledger.anchor.functions.anchor(b"\x01" * 32, 3),
     only({"anchorer"}, lambda c: unauthorized(c, Role.ANCHORER))),
    ("anchor a root with its URI", "EventAnchor.anchorWithUri",
     lambda c: c.world.ledger.anchor.functions.anchorWithUri(b"\x02" * 32, 3, "https://batches.example/2"),
     only({"anchorer"}, lambda c: unauthorized(c, Role.ANCHORER))),
    ("assign a prefix", "CompanyPrefixRegistry.assignPrefix",
     lambda c: c.world.ledger.prefixes.functions.assignPrefix("7770001", c.world.brand_b.address),
     only({"admin"}, lambda c: unauthorized(c, Role.ADMIN))),
    ("revoke brand A's prefix", "CompanyPrefixRegistry.revokePrefix",
     lambda c: c.world.ledger.prefixes.functions.revokePrefix(BRAND_A_PREFIX),
     only({"admin"}, lambda c: unauthorized(c, Role.ADMIN))),
    ("register a lot under brand A's GTIN", "MaterialLots.registerLot",
     lambda c: c.world.ledger.lots.functions.registerLot(GTIN_A, "NEWLOT", COTTON, 1_000, 0, ZERO32),
     brand_gtin_rule(GTIN_A, "brand_a")),
    ("register a lot under brand B's GTIN", "MaterialLots.registerLot",
     lambda c: c.world.ledger.lots.functions.registerLot(GTIN_B, "NEWLOT", COTTON, 1_000, 0, ZERO32),
     brand_gtin_rule(GTIN_B, "brand_b")),
    ("register a material lot", "MaterialLots.registerMaterialLot",
     lambda c: c.world.ledger.lots.functions.registerMaterialLot(COTTON, "MAT1", 1_000, 0, ZERO32),
     # brand or recycler: the check names the recycler role, the second one tried
     only({"brand_a", "brand_b", "recycler"}, lambda c: unauthorized(c, Role.RECYCLER))),
    ("register a recovered lot directly", "MaterialLots.registerRecoveredLot",
     lambda c: c.world.ledger.lots.functions.registerRecoveredLot(c.address, COTTON, "REC1", 1, ZERO32, ZERO32),
     only(set(), lambda c: unauthorized(c, Role.LOT_MANAGER))),
    ("approve an operator on brand A's lot", "MaterialLots.approve",
     lambda c: c.world.ledger.lots.functions.approve(c.seed.lot, c.world.brand_b.address, 100),
     only({"brand_a"}, lambda c: ("NotLotOwner", {"lotId": c.seed.lot, "account": c.address}))),
    ("allocate from brand A's lot directly", "MaterialLots.allocate",
     lambda c: c.world.ledger.lots.functions.allocate(c.seed.lot, c.address, 1),
     only(set(), lambda c: unauthorized(c, Role.LOT_MANAGER))),
    ("register an item of brand A", "ItemRegistry.registerItem",
     lambda c: c.world.ledger.items.functions.registerItem(GTIN_A, "NEW1", [c.seed.lot], [10], ZERO32),
     brand_gtin_rule(GTIN_A, "brand_a")),
    ("register an item of brand B from brand A's lot", "ItemRegistry.registerItem",
     lambda c: c.world.ledger.items.functions.registerItem(GTIN_B, "NEW2", [c.seed.lot], [10], ZERO32),
     foreign_lot_rule),
    ("register a run of brand A", "ItemRegistry.registerRun",
     lambda c: c.world.ledger.items.functions.registerRun((GTIN_A, b"\x03" * 32, 2, [c.seed.lot], [10], ZERO32, b"")),
     brand_gtin_rule(GTIN_A, "brand_a")),
    ("materialize an item of brand A's run", "ItemRegistry.materialize",
     lambda c: c.world.ledger.items.functions.materialize(GTIN_A, "RUN1", c.seed.run.items_root,
                                                          c.seed.run.proofs["RUN1"]),
     only(set(ACTORS), lambda c: None)),  # anyone: it only records what the proof shows
    ("sell brand A's item", "ItemRegistry.transition",
     lambda c: c.world.ledger.items.functions.transition(c.seed.manufactured, int(S.SOLD)),
     transition_rule("manufactured", S.MANUFACTURED, S.SOLD, {"brand_a", "retailer"})),
    ("dispose of brand A's item", "ItemRegistry.transition",
     lambda c: c.world.ledger.items.functions.transition(c.seed.manufactured, int(S.DISPOSED)),
     transition_rule("manufactured", S.MANUFACTURED, S.DISPOSED, {"brand_a", "recycler"})),
    ("refurbish brand A's collected item", "ItemRegistry.transition",
     lambda c: c.world.ledger.items.functions.transition(c.seed.collected, int(S.REFURBISHED)),
     transition_rule("collected", S.COLLECTED, S.REFURBISHED, {"brand_a", "repairer"})),
    ("mark brand A's item recycled without recycling it", "ItemRegistry.transition",
     lambda c: c.world.ledger.items.functions.transition(c.seed.collected, int(S.RECYCLED)),
     lambda c: ("IllegalTransition", {"itemId": c.seed.collected, "current": S.COLLECTED,
                                      "requested": S.RECYCLED, "allowed": next_states(S.COLLECTED)})),
    ("sell an item of brand A's run", "ItemRegistry.transitionRunItem",
     lambda c: c.world.ledger.items.functions.transitionRunItem(GTIN_A, "RUN1", c.seed.run.items_root,
                                                                c.seed.run.proofs["RUN1"], int(S.SOLD)),
     lambda c: None if c.actor in ("brand_a", "retailer") else (
         "UnauthorizedTransition", {"itemId": item_id(GTIN_A, "RUN1"), "account": c.address,
                                    "current": S.MANUFACTURED, "requested": S.SOLD})),
    ("recycle brand A's collected item", "ItemRegistry.recycle",
     lambda c: c.world.ledger.items.functions.recycle([c.seed.collected], [(COTTON, "REC2", 50, ZERO32)]),
     only({"recycler"}, lambda c: unauthorized(c, Role.RECYCLER))),
    ("authorise a partner", "ItemRegistry.setPartner",
     lambda c: c.world.ledger.items.functions.setPartner(c.world.stranger.address, Role.RETAILER, True),
     only({"brand_a", "brand_b"}, lambda c: unauthorized(c, Role.BRAND))),  # each brand for its own items
    ("sell brand B's item (no partners)", "ItemRegistry.transition",
     lambda c: c.world.ledger.items.functions.transition(c.seed.b_manufactured, int(S.SOLD)),
     partner_rule("b_manufactured", S.MANUFACTURED, S.SOLD, {"brand_b"}, {"retailer"})),
    ("dispose of brand B's never-sold item (no partners)", "ItemRegistry.transition",
     lambda c: c.world.ledger.items.functions.transition(c.seed.b_manufactured, int(S.DISPOSED)),
     partner_rule("b_manufactured", S.MANUFACTURED, S.DISPOSED, {"brand_b"}, {"recycler"})),
    ("refurbish brand B's collected item (no partners)", "ItemRegistry.transition",
     lambda c: c.world.ledger.items.functions.transition(c.seed.b_collected, int(S.REFURBISHED)),
     partner_rule("b_collected", S.COLLECTED, S.REFURBISHED, {"brand_b"}, {"repairer"})),
    ("dispose of brand B's collected item (no partners)", "ItemRegistry.transition",
     lambda c: c.world.ledger.items.functions.transition(c.seed.b_collected, int(S.DISPOSED)),
     partner_rule("b_collected", S.COLLECTED, S.DISPOSED, set(), {"recycler"})),
    ("recycle brand B's collected item (no partners)", "ItemRegistry.recycle",
     lambda c: c.world.ledger.items.functions.recycle([c.seed.b_collected], [(COTTON, "REC3", 50, ZERO32)]),
     lambda c: unauthorized(c, Role.RECYCLER) if c.actor != "recycler" else (
         "NotBrandPartner", {"itemId": c.seed.b_collected, "brand": c.world.brand_b.address, "account": c.address})),
]


@pytest.fixture(scope="module")
def seeded(deployed: World) -> Iterator[tuple[World, Seed]]:  # noqa: F811
    world = fresh_world(deployed)
    base = world.backend.snapshot()
    ledger = world.ledger
    lot = ledger.register_lot(world.brand_a, GTIN_A, "AUTHZ-LOT", COTTON, 1_000_000)
    manufactured = ledger.register_item(world.brand_a, GTIN_A, "AUTHZ-M", [(lot, 100)])
    collected = ledger.register_item(world.brand_a, GTIN_A, "AUTHZ-C", [(lot, 100)])
    for target, who in ((S.SOLD, world.retailer), (S.IN_USE, world.retailer), (S.COLLECTED, world.recycler)):
        ledger.transition(who, collected, target)
    run = ledger.register_run(world.brand_a, GTIN_A, ["RUN1", "RUN2"], [(lot, 10)])
    lot_b = ledger.register_lot(world.brand_b, GTIN_B, "AUTHZ-LOT-B", COTTON, 1_000_000)
    b_manufactured = ledger.register_item(world.brand_b, GTIN_B, "AUTHZ-BM", [(lot_b, 100)])
    b_collected = ledger.register_item(world.brand_b, GTIN_B, "AUTHZ-BC", [(lot_b, 100)])
    for role, who in (("retailer", world.retailer), ("recycler", world.recycler)):
        ledger.set_partner(world.brand_b, who.address, role)
    for target, who in ((S.SOLD, world.retailer), (S.IN_USE, world.retailer), (S.COLLECTED, world.recycler)):
        ledger.transition(who, b_collected, target)
    for role, who in (("retailer", world.retailer), ("recycler", world.recycler)):
        ledger.set_partner(world.brand_b, who.address, role, authorized=False)
    seed = Seed(lot, manufactured, collected, run, b_manufactured, b_collected, world.backend.snapshot())
    yield world, seed
    world.rollback(base)


def run_cell(world: World, seed: Seed, actor: str, call: Call, rule: Callable[[Cell], Expected]) -> str | None:
    """Send the call as `actor` and compare with the rule; back to the seed either way. A mismatch, or None."""
    cell = Cell(world, seed, actor)
    expected = rule(cell)
    try:
        receipt = send(world, cell.account, call(cell))
        outcome: Expected = None if receipt["status"] == 1 else ("<mined but failed>", {})
    except ContractRevert as revert:
        outcome = (revert.name, dict(revert.args_by_name))
    finally:
        world.rollback(seed.snapshot)
        seed.snapshot = world.backend.snapshot()  # an Anvil snapshot is good for one revert
    if outcome != expected:
        return f"{actor}: expected {expected}, got {outcome}"
    return None


@pytest.mark.parametrize(("label", "function", "call", "rule"), ROWS, ids=[r[0] for r in ROWS])
def test_authorisation_matrix(seeded: tuple[World, Seed], label: str, function: str, call: Call,
                              rule: Callable[[Cell], Expected]) -> None:
    world, seed = seeded
    mismatches = [m for actor in ACTORS if (m := run_cell(world, seed, actor, call, rule))]
    assert mismatches == [], f"{function} ({label}):\n" + "\n".join(mismatches)


def test_matrix_covers_every_state_changing_function(seeded: tuple[World, Seed]) -> None:
    world, _ = seeded
    names = {"access": "CircularAccess", "prefixes": "CompanyPrefixRegistry", "lots": "MaterialLots",
             "items": "ItemRegistry", "anchor": "EventAnchor"}
    state_changing = {
        f"{names[key]}.{entry['name']}"
        for key in names
        for entry in getattr(world.ledger, key).abi
        if entry["type"] == "function" and entry["stateMutability"] in ("nonpayable", "payable")
    }
    covered = {function for _, function, _, _ in ROWS}
    assert covered == state_changing, {"missing": state_changing - covered, "unknown": covered - state_changing}
    print(f"\nFIGURE onchain-authz [{world.backend.name}]: {len(ACTORS)} actors x {len(ROWS)} calls "
          f"({len(state_changing)} state-changing functions of 5 contracts) = {len(ACTORS) * len(ROWS)} cells")


def test_a_revoked_role_stops_working_at_once(seeded: tuple[World, Seed]) -> None:
    """Revoking takes effect from the very next transaction, in every contract that asks CircularAccess."""
    world, seed = seeded
    ledger = world.ledger
    try:
        ledger.revoke_role(world.admin, "brand", world.brand_a.address)
        with pytest.raises(ContractRevert) as info:
            ledger.register_lot(world.brand_a, GTIN_A, "AFTER", COTTON, 1)
        assert (info.value.name, info.value.args_by_name) == (
            "AccessControlUnauthorizedAccount", {"account": world.brand_a.address, "neededRole": Role.BRAND})
        # Its own item: the owning-brand edge needs the brand role too.
        with pytest.raises(ContractRevert) as info:
            ledger.transition(world.brand_a, seed.manufactured, S.SOLD)
        assert info.value.name == "UnauthorizedTransition"

        ledger.revoke_role(world.admin, "retailer", world.retailer.address)
        with pytest.raises(ContractRevert) as info:
            ledger.transition(world.retailer, seed.manufactured, S.SOLD)
        assert info.value.name == "UnauthorizedTransition"

        ledger.revoke_role(world.admin, "anchorer", world.anchorer.address)
        with pytest.raises(ContractRevert) as info:
            send(world, world.anchorer, ledger.anchor.functions.anchor(b"\x09" * 32, 1))
        assert info.value.args_by_name == {"account": world.anchorer.address, "neededRole": Role.ANCHORER}

        # Brand B's prefix taken back: it still holds the brand role, but no longer its GTINs.
        send(world, world.admin, ledger.prefixes.functions.revokePrefix(BRAND_B_PREFIX))
        with pytest.raises(ContractRevert) as info:
            ledger.register_lot(world.brand_b, GTIN_B, "AFTER", COTTON, 1)
        assert (info.value.name, info.value.args_by_name) == (
            "GtinNotOwned", {"gtin": GTIN_B, "account": world.brand_b.address})

        # Granted again: works again at once.
        ledger.grant_role(world.admin, "brand", world.brand_a.address)
        ledger.register_lot(world.brand_a, GTIN_A, "AGAIN", COTTON, 1)
    finally:
        world.rollback(seed.snapshot)
        seed.snapshot = world.backend.snapshot()


def test_a_brand_cannot_reach_into_another_brands_namespace(seeded: tuple[World, Seed]) -> None:
    """Brand B registering a material lot with brand A's lot number gets a lot id of its own, not brand A's lot;
    and the admin cannot hand out a prefix nested in brand A's."""
    world, seed = seeded
    ledger = world.ledger
    try:
        mine = ledger.register_material_lot(world.brand_a, COTTON, "SAME", 1_000)
        theirs = ledger.register_material_lot(world.brand_b, COTTON, "SAME", 5)
        assert mine != theirs
        assert theirs == material_lot_id(world.brand_b.address, COTTON, "SAME")
        assert ledger.lot(mine)["owner"] == world.brand_a.address and ledger.lot(mine)["massGrams"] == 1_000
        with pytest.raises(ContractRevert) as info:
            send(world, world.admin, ledger.prefixes.functions.assignPrefix(BRAND_A_PREFIX + "1",
                                                                            world.brand_b.address))
        assert (info.value.name, info.value.args_by_name) == (
            "CompanyPrefixTaken", {"prefix": BRAND_A_PREFIX + "1", "owner": world.brand_a.address})
    finally:
        world.rollback(seed.snapshot)
        seed.snapshot = world.backend.snapshot()


def test_a_recycler_cannot_dispose_of_a_brands_never_sold_item(seeded: tuple[World, Seed]) -> None:
    """The reported attack, replayed: a recycler that holds RECYCLER_ROLE but that brand A never authorised disposed
    of brand A's never-sold item (terminal), and a retailer marked another one sold. Both are refused now, and the
    item is untouched; the same recycler acts once brand A authorises it, and no longer once brand A revokes it."""
    world, seed = seeded
    ledger = world.ledger
    rogue = world.stranger
    brand = world.brand_a.address
    try:
        ledger.grant_role(world.admin, "recycler", rogue.address)
        ledger.grant_role(world.admin, "retailer", rogue.address)
        for target in (S.DISPOSED, S.SOLD):
            with pytest.raises(ContractRevert) as info:
                ledger.transition(rogue, seed.manufactured, target)
            assert (info.value.name, info.value.args_by_name) == (
                "NotBrandPartner", {"itemId": seed.manufactured, "brand": brand, "account": rogue.address})
        with pytest.raises(ContractRevert) as info:
            ledger.recycle(rogue, [seed.collected], COTTON, "ROGUE", 50)
        assert info.value.name == "NotBrandPartner"
        assert ledger.item(seed.manufactured)["state"] is S.MANUFACTURED
        assert ledger.item(seed.collected)["state"] is S.COLLECTED

        ledger.set_partner(world.brand_a, rogue.address, "recycler")
        ledger.set_partner(world.brand_a, rogue.address, "recycler", authorized=False)
        with pytest.raises(ContractRevert) as info:
            ledger.transition(rogue, seed.manufactured, S.DISPOSED)
        assert info.value.name == "NotBrandPartner"
        ledger.set_partner(world.brand_a, rogue.address, "recycler")
        ledger.transition(rogue, seed.manufactured, S.DISPOSED)  # a partner has a reason: it may
        assert ledger.item(seed.manufactured)["state"] is S.DISPOSED
    finally:
        world.rollback(seed.snapshot)
        seed.snapshot = world.backend.snapshot()
