"""The lifecycle table (``ledger.lifecycle``) is the one description of the lifecycle: the event builders write its
vocabulary, and an event's vocabulary reads back as its action. The table against the contract is checked in
``tests/contracts/test_lifecycle_table.py``."""

from __future__ import annotations

import pytest

from ledger import lifecycle as lc
from ledger.epcis import events as ev
from ledger.lifecycle import Action, ItemState, Party, Write

from .test_epcis_events import every_event


@pytest.mark.parametrize(("name", "event"), every_event(), ids=[n for n, _ in every_event()])
def test_every_built_event_has_its_rows_vocabulary(name: str, event: dict[str, object]) -> None:
    row = lc.step(name)
    assert (event["bizStep"], event["disposition"], event["type"]) == (row.biz_step, row.disposition, row.event_type)
    read_back = lc.action_of_event(event)
    assert read_back is not None
    # A resale has a sale's vocabulary: the first row with it is what the vocabulary alone says.
    first = next(r for r in lc.steps() if (r.biz_step, r.disposition, r.event_type) ==
                 (row.biz_step, row.disposition, row.event_type))
    assert read_back is first
    assert lc.label_of(event) == first.label


def test_client_actions_are_the_object_events_on_items() -> None:
    on_items = {row.action.value for row in lc.steps()
                if row.event_type == "ObjectEvent" and row.write in (Write.TRANSITION, Write.NONE)}
    assert {action.value for action in lc.Lifecycle} == on_items
    assert ev.Lifecycle is lc.Lifecycle
    with pytest.raises(ValueError):
        ev.lifecycle(Action.RECYCLED, ["https://id.example/01/09506000134352/21/S1"])  # type: ignore[arg-type]


def test_every_state_but_none_is_the_target_of_one_action() -> None:
    targets = [row.target for row in lc.steps() if row.target is not None]
    assert sorted(targets) == [s for s in ItemState if s is not ItemState.NONE]
    assert lc.state_label(ItemState.COLLECTED) == "Collected for recycling"
    assert lc.state_label(ItemState.RESOLD) == "Resold"
    assert lc.state_label(0) == "Not registered"


def test_rows_are_consistent() -> None:
    for row in lc.steps():
        assert row.parties, row.action
        if row.write is Write.LOT:
            assert not row.edges and row.target is None
        elif row.write is Write.REGISTER:
            assert row.sources == {ItemState.NONE} and row.target is ItemState.MANUFACTURED
        else:
            assert ItemState.NONE not in row.sources and row.sources, row.action
            assert (row.target is None) is (row.write is Write.NONE), row.action
            terminal = {ItemState.RECYCLED, ItemState.DISPOSED}
            assert not row.sources & terminal, row.action
    assert lc.step("repaired").allows(Party.REPAIRER, ItemState.IN_USE)
    assert not lc.step("repaired").allows(Party.RETAILER, ItemState.IN_USE)
    assert not lc.step("repaired").allows("repairer", ItemState.MANUFACTURED)
    assert lc.step("collected").allows("recycler", ItemState.RETURNED)


def test_graph_holds_only_item_to_item_moves() -> None:
    graph = lc.graph()
    assert (ItemState.NONE, ItemState.MANUFACTURED) not in graph
    assert graph[(ItemState.COLLECTED, ItemState.RECYCLED)] == {Party.RECYCLER}
    assert graph[(ItemState.REFURBISHED, ItemState.IN_USE)] == {Party.BRAND, Party.RETAILER, Party.REPAIRER}
    assert len(graph) == 23
    # Intake: a recycler collects from every state in circulation; unsold stock may come back.
    assert {source for (source, target) in graph if target is ItemState.COLLECTED} == {
        ItemState.MANUFACTURED, ItemState.SOLD, ItemState.RESOLD, ItemState.IN_USE, ItemState.RETURNED,
        ItemState.REFURBISHED}
    assert graph[(ItemState.MANUFACTURED, ItemState.RETURNED)] == {Party.BRAND, Party.RETAILER, Party.RECYCLER}
    assert lc.next_states(ItemState.SOLD) == [ItemState.IN_USE, ItemState.RETURNED, ItemState.COLLECTED]
    assert lc.next_states(ItemState.RECYCLED) == []


@pytest.mark.parametrize(
    ("biz_step", "disposition", "kind", "expected"),
    [
        ("https://ref.gs1.org/cbv/BizStep-retail_selling", "https://ref.gs1.org/cbv/Disp-retail_sold", "ObjectEvent",
         "sold"),
        ("urn:epcglobal:cbv:bizstep:repairing", "urn:epcglobal:cbv:disp:sellable_accessible", "ObjectEvent",
         "refurbished"),
        ("repairing", "in_progress", "ObjectEvent", "repaired"),
        ("circ:bizstep-in_use", "active", "ObjectEvent", "in_use"),
        ("commissioning", "active", "AggregationEvent", "lot"),
        ("commissioning", None, "TransformationEvent", "manufactured"),
        (lc.BIZSTEP_RECYCLING, None, "ObjectEvent", "recycled"),
        ("receiving", "returned", "AggregationEvent", "returned"),
        ("receiving", "in_progress", "ObjectEvent", None),  # a receipt, not a return
        ("shipping", "in_transit", "ObjectEvent", None),
        (None, None, "ObjectEvent", None),
    ],
)
def test_action_of_vocabulary(biz_step: str | None, disposition: str | None, kind: str, expected: str | None) -> None:
    row = lc.action_of(biz_step, disposition, kind)
    assert (row.action.value if row else None) == expected


def test_labels_of_events_not_ours() -> None:
    assert lc.label_of({"type": "ObjectEvent", "bizStep": "receiving", "disposition": "in_progress"}) == "Receiving"
    assert lc.label_of({"type": "ObjectEvent", "bizStep": "https://ref.gs1.org/cbv/BizStep-shipping"}) == "Shipping"
    assert lc.label_of({"type": "ObjectEvent"}) == "ObjectEvent"
