"""The lifecycle graph: every allowed edge with each allowed role and the roles refused on it, every disallowed edge,
and a brand acting only on its own items. The graph is modelled in helpers.EDGES."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account.signers.local import LocalAccount

from ledger.client import ItemState
from ledger.errors import ContractRevert, TransactionFailed

from .conftest import GTIN_A, GTIN_B, World, fresh_world
from .helpers import COTTON, EDGES, PATHS, RECYCLE_ONLY, S, actor_for, events, gtin, reverts, send, state, view, walk

ALL_STATES = list(ItemState)
TRANSITION_EDGES = [edge for edge in EDGES if edge not in RECYCLE_ONLY]


@pytest.fixture(scope="module")
def zoo(deployed: World) -> Iterator[dict[ItemState, bytes]]:
    """One item of brand A in each state, built once per module and backend (tests revert to it)."""
    backend = deployed.backend
    snapshot = backend.snapshot()
    world = fresh_world(deployed)
    ledger = world.ledger
    lot = ledger.register_lot(world.brand_a, gtin("9506000", "99"), "ZOO", COTTON, 10**9)
    items: dict[ItemState, bytes] = {}
    for target, path in PATHS.items():
        items[target] = ledger.register_item(world.brand_a, GTIN_A, f"Z-{target.name}", [(lot, 100)])
        walk(world, items[target], path)
    ledger.recycle(world.recycler, [items[S.RECYCLED]], COTTON, "ZOO-R", 100)
    assert {s: state(ledger, i) for s, i in items.items()} == {s: s for s in items}
    yield items
    backend.revert(snapshot)


def _id(edge: tuple[ItemState, ItemState]) -> str:
    return f"{edge[0].name}->{edge[1].name}"


@pytest.mark.parametrize("edge", TRANSITION_EDGES, ids=_id)
def test_allowed_edge_with_each_allowed_role(world: World, zoo: dict[ItemState, bytes],
                                            edge: tuple[ItemState, ItemState]) -> None:
    current, target = edge
    item = zoo[current]
    for role in sorted(EDGES[edge]):
        actor = actor_for(world, role)
        snapshot = world.backend.snapshot()
        receipt = world.ledger.transition(actor, item, target)
        assert events(world.ledger, receipt, "ItemStateChanged") == [
            {"itemId": item, "from": current, "to": target, "account": actor.address}]
        assert state(world.ledger, item) is target
        world.rollback(snapshot)
        assert state(world.ledger, item) is current


def _refused(world: World, roles: frozenset[str]) -> list[LocalAccount]:
    """Every actor not allowed on an edge open to `roles`: the other roles, another brand, the admin, a stranger."""
    refused = [actor_for(world, role) for role in ("brand", "retailer", "recycler", "repairer") if role not in roles]
    return [*refused, world.brand_b, world.admin, world.stranger]


@pytest.mark.parametrize("edge", list(EDGES), ids=_id)
def test_allowed_edge_refuses_other_roles(world: World, zoo: dict[ItemState, bytes],
                                          edge: tuple[ItemState, ItemState]) -> None:
    current, target = edge
    item = zoo[current]
    for actor in _refused(world, EDGES[edge]):
        if edge in RECYCLE_ONLY:  # never through transition(), whoever asks
            with reverts("IllegalTransition", itemId=item, current=current, requested=target):
                world.ledger.transition(actor, item, target)
            continue
        with reverts("UnauthorizedTransition", itemId=item, account=actor.address, current=current,
                     requested=target):
            world.ledger.transition(actor, item, target)
    assert state(world.ledger, item) is current


@pytest.mark.parametrize("current", list(PATHS), ids=lambda s: s.name)
def test_every_disallowed_edge(world: World, zoo: dict[ItemState, bytes], current: ItemState) -> None:
    item = zoo[current]
    disallowed = [t for t in ALL_STATES if (current, t) not in TRANSITION_EDGES]
    for target in disallowed:
        for actor in (world.recycler, world.brand_a):  # illegal whoever asks (checked before any role)
            with reverts("IllegalTransition", itemId=item, current=current, requested=target):
                world.ledger.transition(actor, item, target)
    assert state(world.ledger, item) is current


def test_terminal_states_have_no_way_out() -> None:
    assert not [edge for edge in EDGES if edge[0] in (S.RECYCLED, S.DISPOSED, S.NONE)]


def test_unknown_item(world: World) -> None:
    for target in (S.MANUFACTURED, S.SOLD, S.RECYCLED):
        with reverts("ItemNotFound", itemId=b"\x42" * 32):
            world.ledger.transition(world.retailer, b"\x42" * 32, target)


def test_state_outside_the_enum_is_refused(world: World, zoo: dict[ItemState, bytes]) -> None:
    """ABI decoding of an out-of-range enum reverts without error data: no custom error to decode."""
    with pytest.raises(TransactionFailed) as info:
        send(world, world.retailer, world.ledger.items.functions.transition(zoo[S.MANUFACTURED], 10))
    assert not isinstance(info.value, ContractRevert)
    assert state(world.ledger, zoo[S.MANUFACTURED]) is S.MANUFACTURED


def test_can_transition(world: World) -> None:
    """canTransition agrees with the model, for every pair of states and every actor on the edges."""
    items = world.ledger.items.functions
    omni = world.stranger  # holds every role, and is its own partner: the view then answers "is there an edge"
    for role in ("brand", "retailer", "recycler", "repairer"):
        world.ledger.grant_role(world.admin, role, omni.address)
    for role in ("retailer", "recycler", "repairer"):
        world.ledger.set_partner(omni, omni.address, role)
    for current in ALL_STATES:
        for target in ALL_STATES:
            expected = (current, target) in EDGES  # Collected -> Recycled too: an edge, only through recycle()
            assert view(items.canTransition(current, target, omni.address, omni.address)) is expected
    brand = world.brand_a.address
    for (current, target), roles in EDGES.items():
        for role in ("brand", "retailer", "recycler", "repairer"):
            actor = actor_for(world, role).address
            assert view(items.canTransition(current, target, actor, brand)) is (role in roles), (current, target, role)
        # Another brand (holding BRAND_ROLE) never acts as the owner; nor does an owner without the role.
        assert view(items.canTransition(current, target, world.brand_b.address, brand)) is False
        assert view(items.canTransition(current, target, world.admin.address, world.admin.address)) is False


def test_brand_acts_only_on_its_own_items(world: World) -> None:
    ledger = world.ledger
    lot_b = ledger.register_lot(world.brand_b, GTIN_B, "LB", COTTON, 1_000)
    item_b = ledger.register_item(world.brand_b, GTIN_B, "B1", [(lot_b, 10)])
    with reverts("UnauthorizedTransition", itemId=item_b, account=world.brand_a.address,
                 current=S.MANUFACTURED, requested=S.SOLD):
        ledger.transition(world.brand_a, item_b, S.SOLD)
    ledger.transition(world.brand_b, item_b, S.SOLD)
    ledger.transition(world.brand_b, item_b, S.IN_USE)
    with reverts("UnauthorizedTransition", itemId=item_b, account=world.brand_a.address,
                 current=S.IN_USE, requested=S.REFURBISHED):
        ledger.transition(world.brand_a, item_b, S.REFURBISHED)
    ledger.transition(world.brand_b, item_b, S.REFURBISHED)
    # A brand that loses BRAND_ROLE can no longer act as the owner of its items.
    ledger.set_partner(world.brand_b, world.retailer.address, "retailer")
    ledger.revoke_role(world.admin, "brand", world.brand_b.address)
    with reverts("UnauthorizedTransition", itemId=item_b, account=world.brand_b.address,
                 current=S.REFURBISHED, requested=S.RESOLD):
        ledger.transition(world.brand_b, item_b, S.RESOLD)
    ledger.transition(world.retailer, item_b, S.RESOLD)  # its partner still may


def test_a_long_life(world: World) -> None:
    """Two refurbishment loops and a resale, then collection and recycling: every step logged in order."""
    ledger = world.ledger
    lot = ledger.register_lot(world.brand_a, gtin("9506000", "99"), "L", COTTON, 1_000)
    item = ledger.register_item(world.brand_a, GTIN_A, "LIFE", [(lot, 400)])
    steps: list[tuple[LocalAccount, ItemState]] = [
        (world.retailer, S.SOLD), (world.brand_a, S.IN_USE), (world.repairer, S.REFURBISHED),
        (world.retailer, S.RESOLD), (world.retailer, S.RETURNED), (world.brand_a, S.REFURBISHED),
        (world.repairer, S.IN_USE), (world.recycler, S.RETURNED), (world.brand_a, S.RESOLD),
        (world.brand_a, S.IN_USE), (world.recycler, S.COLLECTED), (world.repairer, S.REFURBISHED),
        (world.retailer, S.IN_USE), (world.recycler, S.COLLECTED),
    ]
    current = S.MANUFACTURED
    for actor, target in steps:
        receipt = ledger.transition(actor, item, target)
        assert events(ledger, receipt, "ItemStateChanged") == [
            {"itemId": item, "from": current, "to": target, "account": actor.address}]
        current = target
    ledger.recycle(world.recycler, [item], COTTON, "R", 400)
    assert state(ledger, item) is S.RECYCLED
    assert ledger.item(item)["massGrams"] == 400


def test_next_states_are_the_graphs(world: World) -> None:
    """nextStates answers, for every state, the targets of the model's edges from it (none from a terminal one)."""
    items = world.ledger.items.functions
    for current in ALL_STATES:
        expected = sorted(target for (source, target) in EDGES if source is current)
        assert list(view(items.nextStates(current))) == expected, current
    assert view(items.nextStates(S.RECYCLED)) == [] and view(items.nextStates(S.DISPOSED)) == []


def test_a_refused_step_names_the_states_allowed_next(world: World, zoo: dict[ItemState, bytes]) -> None:
    with pytest.raises(ContractRevert) as info:
        world.ledger.transition(world.retailer, zoo[S.SOLD], S.RESOLD)
    assert info.value.name == "IllegalTransition"
    assert info.value.args_by_name["allowed"] == [S.IN_USE, S.RETURNED, S.COLLECTED]
    assert all(isinstance(s, ItemState) for s in info.value.args_by_name["allowed"])
    assert "current=SOLD, requested=RESOLD, allowed=[IN_USE, RETURNED, COLLECTED]" in str(info.value)
    with pytest.raises(ContractRevert) as final:
        world.ledger.transition(world.recycler, zoo[S.DISPOSED], S.COLLECTED)
    assert final.value.args_by_name["allowed"] == []


@pytest.mark.parametrize("current", [S.MANUFACTURED, S.SOLD, S.RESOLD, S.IN_USE, S.RETURNED, S.REFURBISHED],
                         ids=lambda s: s.name)
def test_a_recycler_collects_an_item_wherever_it_is(world: World, zoo: dict[ItemState, bytes],
                                                   current: ItemState) -> None:
    """Intake: deadstock never sold, a gift or an item of another channel (Manufactured), one sold but never marked in
    use: a recycler the brand authorised collects it, and may recycle it; no one else may collect it."""
    item = zoo[current]
    snapshot = world.backend.snapshot()
    for actor in (world.retailer, world.brand_a, world.repairer):
        with reverts("UnauthorizedTransition", itemId=item, account=actor.address, current=current,
                     requested=S.COLLECTED):
            world.ledger.transition(actor, item, S.COLLECTED)
    world.ledger.transition(world.recycler, item, S.COLLECTED)
    world.ledger.recycle(world.recycler, [item], COTTON, f"INTAKE-{current.name}", 100)
    assert state(world.ledger, item) is S.RECYCLED
    world.rollback(snapshot)


def test_an_unsold_item_comes_back(world: World, zoo: dict[ItemState, bytes]) -> None:
    """A retailer returns unsold stock (Manufactured → Returned); the brand may resell or refurbish it from there."""
    item = zoo[S.MANUFACTURED]
    snapshot = world.backend.snapshot()
    world.ledger.transition(world.retailer, item, S.RETURNED)
    world.ledger.transition(world.brand_a, item, S.RESOLD)
    assert state(world.ledger, item) is S.RESOLD
    world.rollback(snapshot)
