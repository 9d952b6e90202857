"""The item lifecycle, written once: every action with its EPCIS vocabulary, its label, the state it moves an item to,
and who may take it from which state.

``LIFECYCLE`` is the table; everything else derives from it:

- the EPCIS event builders (``ledger.epcis.events``) take each action's bizStep and disposition from it;
- the API authorises a lifecycle write by its ``parties`` and, for a repair (no on-chain effect), its ``sources``;
- the audit and the EPCIS capture authorisation read an event's action back from its vocabulary (:func:`action_of`)
  and the roles allowed to record it;
- the passport labels timeline entries (:func:`label_of`) and item states (:func:`state_label`) with it;
- the contract suites model ``ItemRegistry``'s graph with :func:`graph`, and a test holds that graph against the
  contract's own ``canTransition`` on both chain backends, and :func:`next_states` against ``nextStates`` (the states
  an ``IllegalTransition`` names as allowed): the contract is the authority, this table its mirror;
- a refused step names what the item may do instead with :func:`next_actions`.

Vocabulary: CBV 2.0 bizStep and disposition values wherever CBV has one (stored as CBV's bare words). Where it has
none we use our own namespace, ``https://ns.circular-ledger.org/voc/`` (prefix ``circ``):

=============  ===================================  ==========================  =====================
action         bizStep                              disposition                 event
=============  ===================================  ==========================  =====================
lot            commissioning                        active                      ObjectEvent ADD
manufactured   commissioning                        active                      TransformationEvent
sold, resold   retail_selling                       retail_sold                 ObjectEvent OBSERVE
in use         circ:bizstep-in_use (extension)      active                      ObjectEvent OBSERVE
returned       receiving                            returned                    ObjectEvent OBSERVE
collected      collecting                           non_sellable_other          ObjectEvent OBSERVE
repaired       repairing                            conformant                  ObjectEvent OBSERVE
refurbished    repairing                            sellable_accessible         ObjectEvent OBSERVE
recycled       circ:bizstep-recycling (extension)   active (the recovered lot)  TransformationEvent
disposed       destroying                           disposed                    ObjectEvent OBSERVE
=============  ===================================  ==========================  =====================

CBV gives a sale and a resale (and a repair and a refurbishment, told apart only by disposition) the same bizStep:
lifecycle events also carry ``circ:lifecycle``, the action's name, so that the two are different events.

To extend the lifecycle (a new edge, a new action), change ``ItemRegistry._allowedRoles`` and this table in the same
change: a new edge is one more ``{from_state: parties}`` entry in the action's ``edges``; a new action is a member of
:class:`Action` (and of :class:`Lifecycle` if an API client may name it) and a row of ``LIFECYCLE``.
``tests/contracts/test_lifecycle.py`` fails until the two agree.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from types import MappingProxyType
from typing import Any

EXT_NS = "https://ns.circular-ledger.org/voc/"
BIZSTEP_IN_USE = f"{EXT_NS}bizstep-in_use"
BIZSTEP_RECYCLING = f"{EXT_NS}bizstep-recycling"

# How CBV values may be written (full URI, URN, compact); the table keeps CBV's bare word.
_BIZSTEP_PREFIXES = ("https://ref.gs1.org/cbv/BizStep-", "urn:epcglobal:cbv:bizstep:", "cbv:BizStep-")
_DISPOSITION_PREFIXES = ("https://ref.gs1.org/cbv/Disp-", "urn:epcglobal:cbv:disp:", "cbv:Disp-")


class ItemState(IntEnum):
    """The contracts' ``IItemRegistry.State``."""

    NONE = 0
    MANUFACTURED = 1
    SOLD = 2
    IN_USE = 3
    RETURNED = 4
    COLLECTED = 5
    REFURBISHED = 6
    RESOLD = 7
    RECYCLED = 8
    DISPOSED = 9


class Party(StrEnum):
    """Who may take an action; on an item, ``BRAND`` is the item's own brand only (another brand never is)."""

    BRAND = "brand"
    RETAILER = "retailer"
    RECYCLER = "recycler"
    REPAIRER = "repairer"


class Action(StrEnum):
    """Every supply-chain action the ledger records, each one row of ``LIFECYCLE``."""

    LOT = "lot"
    MANUFACTURED = "manufactured"
    SOLD = "sold"
    IN_USE = "in_use"
    RETURNED = "returned"
    COLLECTED = "collected"
    REPAIRED = "repaired"
    REFURBISHED = "refurbished"
    RESOLD = "resold"
    RECYCLED = "recycled"
    DISPOSED = "disposed"


class Lifecycle(StrEnum):
    """The actions on items that are plain ObjectEvents: what an API client names in a lifecycle write."""

    SOLD = Action.SOLD.value
    IN_USE = Action.IN_USE.value
    RETURNED = Action.RETURNED.value
    COLLECTED = Action.COLLECTED.value
    REPAIRED = Action.REPAIRED.value
    REFURBISHED = Action.REFURBISHED.value
    RESOLD = Action.RESOLD.value
    DISPOSED = Action.DISPOSED.value


class Write(StrEnum):
    """How an action reaches the chain: the ``ItemRegistry``/``MaterialLots`` function that makes it, or none."""

    LOT = "registerLot"
    REGISTER = "registerItem"  # or registerRun, for a run of items
    TRANSITION = "transition"  # or transitionRunItem, for an item of a run on its first move
    RECYCLE = "recycle"
    NONE = "none"  # the signed, anchored event is the whole write


@dataclass(frozen=True, slots=True)
class Step:
    """One row of the lifecycle table.

    ``edges`` maps each state an item may be in when the action is taken to the parties allowed to take it from
    there; the action moves the item to ``target`` (``None``: the item's state does not change). A lot is no item:
    its action has no edges and names its parties directly.
    """

    action: Action
    biz_step: str
    disposition: str
    label: str
    event_type: str
    target: ItemState | None
    edges: Mapping[ItemState, frozenset[Party]]
    write: Write
    lot_parties: frozenset[Party] = frozenset()
    # Whether the bizStep alone says this action, whatever the disposition: not "receiving" (a receipt is a return
    # only when its disposition says so), nor the second of two actions sharing a bizStep (resold, refurbished).
    by_step: bool = True

    @property
    def parties(self) -> frozenset[Party]:
        """Everyone who may take the action from some state."""
        if not self.edges:
            return self.lot_parties
        return frozenset().union(*self.edges.values())

    @property
    def sources(self) -> frozenset[ItemState]:
        """The states an item may be in when the action is taken."""
        return frozenset(self.edges)

    def allows(self, party: Party | str, source: ItemState) -> bool:
        """Whether `party` may take the action on an item in state `source`."""
        return party in self.edges.get(source, frozenset())


def _edges(*pairs: tuple[ItemState | tuple[ItemState, ...], frozenset[Party]]) -> Mapping[ItemState, frozenset[Party]]:
    edges: dict[ItemState, frozenset[Party]] = {}
    for sources, parties in pairs:
        for source in sources if isinstance(sources, tuple) else (sources,):
            edges[source] = edges.get(source, frozenset()) | parties
    return MappingProxyType(edges)


S, P = ItemState, Party
_BRAND, _RETAILER, _RECYCLER, _REPAIRER = (frozenset({p}) for p in (P.BRAND, P.RETAILER, P.RECYCLER, P.REPAIRER))
_SELLERS = _BRAND | _RETAILER
_MENDERS = _BRAND | _REPAIRER
# Where a repair may be recorded: an item someone holds and uses (no on-chain effect, so no contract edge).
_HELD = (S.SOLD, S.IN_USE, S.RETURNED, S.COLLECTED, S.REFURBISHED, S.RESOLD)
# Where a recycler may collect an item from: any state but the terminal ones and Collected itself.
_IN_CIRCULATION = (S.MANUFACTURED, S.SOLD, S.IN_USE, S.RETURNED, S.REFURBISHED, S.RESOLD)

_ROWS = (
    Step(Action.LOT, "commissioning", "active", "Material lot registered", "ObjectEvent", None, _edges(), Write.LOT,
         lot_parties=_BRAND | _RECYCLER),
    Step(Action.MANUFACTURED, "commissioning", "active", "Made", "TransformationEvent", S.MANUFACTURED,
         _edges((S.NONE, _BRAND)), Write.REGISTER),
    Step(Action.SOLD, "retail_selling", "retail_sold", "Sold", "ObjectEvent", S.SOLD,
         _edges((S.MANUFACTURED, _SELLERS)), Write.TRANSITION),
    Step(Action.IN_USE, BIZSTEP_IN_USE, "active", "In use", "ObjectEvent", S.IN_USE,
         _edges(((S.SOLD, S.RESOLD), _SELLERS), (S.REFURBISHED, _SELLERS | _REPAIRER)), Write.TRANSITION),
    # An unsold item may come back too: a retailer's return to the brand, an item of another channel brought in.
    Step(Action.RETURNED, "receiving", "returned", "Returned", "ObjectEvent", S.RETURNED,
         _edges(((S.SOLD, S.RESOLD), _SELLERS), ((S.MANUFACTURED, S.IN_USE), _SELLERS | _RECYCLER)), Write.TRANSITION,
         by_step=False),
    # Intake: a recycler collects an item wherever it is in circulation, recorded sold or not (deadstock, gifts,
    # items sold through other channels, items sold but never marked in use).
    Step(Action.COLLECTED, "collecting", "non_sellable_other", "Collected for recycling", "ObjectEvent", S.COLLECTED,
         _edges((_IN_CIRCULATION, _RECYCLER)), Write.TRANSITION),
    Step(Action.REPAIRED, "repairing", "conformant", "Repaired", "ObjectEvent", None,
         _edges((_HELD, _MENDERS)), Write.NONE),
    Step(Action.REFURBISHED, "repairing", "sellable_accessible", "Refurbished", "ObjectEvent", S.REFURBISHED,
         _edges(((S.IN_USE, S.RETURNED, S.COLLECTED), _MENDERS)), Write.TRANSITION, by_step=False),
    Step(Action.RESOLD, "retail_selling", "retail_sold", "Resold", "ObjectEvent", S.RESOLD,
         _edges(((S.RETURNED, S.REFURBISHED), _SELLERS)), Write.TRANSITION, by_step=False),
    Step(Action.RECYCLED, BIZSTEP_RECYCLING, "active", "Recycled", "TransformationEvent", S.RECYCLED,
         _edges((S.COLLECTED, _RECYCLER)), Write.RECYCLE),
    Step(Action.DISPOSED, "destroying", "disposed", "Disposed of", "ObjectEvent", S.DISPOSED,
         _edges((S.MANUFACTURED, _BRAND | _RECYCLER), ((S.RETURNED, S.COLLECTED), _RECYCLER)), Write.TRANSITION),
)

LIFECYCLE: Mapping[Action, Step] = MappingProxyType({row.action: row for row in _ROWS})
"""The lifecycle table, in the order actions first happen to an item (the order :func:`action_of` prefers)."""

_STATE_LABELS = {S.NONE: "Not registered"} | {
    row.target: row.label for row in reversed(_ROWS) if row.target is not None
}


def step(action: Action | Lifecycle | str) -> Step:
    """The table's row for `action` (a :class:`ValueError` for an unknown one)."""
    return LIFECYCLE[Action(action)]


def steps() -> Iterator[Step]:
    """Every row of the table, in order."""
    return iter(_ROWS)


def graph() -> dict[tuple[ItemState, ItemState], frozenset[Party]]:
    """``ItemRegistry``'s lifecycle graph as the table has it: (from, to) → the parties allowed on the edge.

    Only item-to-item moves: registration (from ``NONE``) and actions that change no state are not edges of the
    contract's graph. ``Collected → Recycled`` is, though the contract takes it only through ``recycle``.
    """
    edges: dict[tuple[ItemState, ItemState], frozenset[Party]] = {}
    for row in _ROWS:
        if row.target is None:
            continue
        for source, parties in row.edges.items():
            if source is not S.NONE:
                edges[(source, row.target)] = edges.get((source, row.target), frozenset()) | parties
    return edges


def next_actions(state: ItemState | int, party: Party | str | None = None) -> list[Action]:
    """The actions that may be taken on an item in `state` (by `party`, when given), in table order: what a refused
    step names as possible instead."""
    source = ItemState(state)
    return [
        row.action
        for row in _ROWS
        if source is not S.NONE and source in row.edges and (party is None or row.allows(party, source))
    ]


def next_states(state: ItemState | int) -> list[ItemState]:
    """The states the graph lets an item in `state` go to next, whoever asks, in the enum's order: what
    ``ItemRegistry.nextStates`` answers and ``IllegalTransition`` names as allowed."""
    source = ItemState(state)
    edges = graph()
    return [target for target in ItemState if (source, target) in edges]


def state_label(state: ItemState | int) -> str:
    """How a passport names an item's state ("Collected for recycling")."""
    return _STATE_LABELS[ItemState(state)]


def biz_step_of(value: str | None) -> str | None:
    """A bizStep as the table writes it: CBV's bare word, or our extension's full URI (``circ:`` expanded)."""
    if value is None:
        return None
    if value.startswith("circ:"):
        return EXT_NS + value.removeprefix("circ:")
    return _strip(value, _BIZSTEP_PREFIXES)


def disposition_of(value: str | None) -> str | None:
    """A disposition as the table writes it (CBV's bare word)."""
    return None if value is None else _strip(value, _DISPOSITION_PREFIXES)


def _strip(value: str, prefixes: tuple[str, ...]) -> str:
    for prefix in prefixes:
        if value.startswith(prefix):
            return value[len(prefix) :]
    return value


def action_of(biz_step: str | None, disposition: str | None = None, event_type: str | None = None) -> Step | None:
    """The action an event's vocabulary records, or None when it records none of ours.

    The bizStep and disposition decide (the first in table order: a resale's vocabulary is a sale's), the event
    type between rows that share both; else the bizStep alone decides where it can (``repairing`` with another
    disposition is a repair, ``commissioning`` of a TransformationEvent a manufacture); a ``receiving`` that is no
    return is nothing of ours.
    """
    step_ = biz_step_of(biz_step)
    if not step_:
        return None
    disposition_ = disposition_of(disposition)
    candidates = [row for row in _ROWS if row.biz_step == step_]
    exact = [row for row in candidates if row.disposition == disposition_]
    by_step = [row for row in candidates if row.by_step]
    for rows in (exact, by_step):
        for row in rows:
            if row.event_type == event_type:
                return row
        if rows:
            return rows[0]
    return None


def action_of_event(event: Mapping[str, Any]) -> Step | None:
    """:func:`action_of` an EPCIS event (a dict): its bizStep, disposition and type."""
    biz_step, disposition, kind = event.get("bizStep"), event.get("disposition"), event.get("type")
    return action_of(
        biz_step if isinstance(biz_step, str) else None,
        disposition if isinstance(disposition, str) else None,
        kind if isinstance(kind, str) else None,
    )


def label_of(event: Mapping[str, Any]) -> str:
    """How a timeline names an event: its action's label, else its bizStep's own words ("Shipping")."""
    row = action_of_event(event)
    if row is not None:
        return row.label
    step_ = biz_step_of(str(event.get("bizStep", ""))) or ""
    return step_.rsplit("/", 1)[-1].replace("bizstep-", "").replace("_", " ").capitalize() or str(event.get("type", ""))


__all__ = [
    "BIZSTEP_IN_USE",
    "BIZSTEP_RECYCLING",
    "EXT_NS",
    "LIFECYCLE",
    "Action",
    "ItemState",
    "Lifecycle",
    "Party",
    "Step",
    "Write",
    "action_of",
    "action_of_event",
    "biz_step_of",
    "disposition_of",
    "graph",
    "label_of",
    "next_actions",
    "next_states",
    "state_label",
    "step",
    "steps",
]
