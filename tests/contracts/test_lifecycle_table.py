"""The ledger's lifecycle table against the contract's own rules (``ItemRegistry.canTransition``), on both backends:
for every pair of states and every party, the table allows exactly what the contract allows."""

from __future__ import annotations

from ledger import lifecycle as lc
from ledger.lifecycle import ItemState, Party

from .conftest import World
from .helpers import actor_for, view


def test_table_allows_what_the_contract_allows(world: World) -> None:
    items = world.ledger.items.functions
    brand = world.brand_a.address
    moves = {(source, row.target): row for row in lc.steps() if row.target is not None
             for source in row.sources if source is not ItemState.NONE}
    checked = 0
    for source in ItemState:
        for target in ItemState:
            row = moves.get((source, target))
            for party in Party:
                actor = actor_for(world, party.value).address
                expected = row is not None and row.allows(party, source)
                assert view(items.canTransition(source, target, actor, brand)) is expected, (source, target, party)
                checked += 1
            # Another brand is never the owning brand, whatever the table says of brands.
            assert view(items.canTransition(source, target, world.brand_b.address, brand)) is False
    assert checked == len(ItemState) ** 2 * len(Party)


def test_actions_without_a_contract_edge(world: World) -> None:
    """A repair moves no state and registration is no edge: the contract's graph has neither."""
    items = world.ledger.items.functions
    omni = world.stranger
    for role in ("brand", "retailer", "recycler", "repairer"):
        world.ledger.grant_role(world.admin, role, omni.address)
    assert view(items.canTransition(ItemState.NONE, ItemState.MANUFACTURED, omni.address, omni.address)) is False
    for source in lc.step("repaired").sources:
        assert view(items.canTransition(source, source, omni.address, omni.address)) is False


def test_next_states_are_the_tables(world: World) -> None:
    """What IllegalTransition names as allowed (ItemRegistry.nextStates) is the table's next_states, state by state."""
    items = world.ledger.items.functions
    for state in ItemState:
        assert list(view(items.nextStates(state))) == lc.next_states(state), state
