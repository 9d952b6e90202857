"""Property tests: random sequences of lots, items, runs, allowances, transitions (legal and not) and recycling,
checked after every step against a Python model of the contracts.

Invariants: grams are conserved (a lot never gives more than its mass; what lots gave is exactly what items drew);
item states change only along the lifecycle graph, and a refused call changes nothing; an item is recycled at most
once; recovered lots never weigh more than the items recycled into them. Every revert is predicted by the model,
by error name and arguments.
"""

from __future__ import annotations

from collections import deque
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any, ClassVar

from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from web3.types import TxReceipt

from ledger.client import ItemState, RunCommitment
from ledger.ids import item_id, material_lot_id

from .conftest import GTIN_A, GTIN_B, World, fresh_world
from .helpers import COTTON, EDGES, RECYCLE_ONLY, ZERO32, S, events, reverts, send

ACTORS = ["brand_a", "brand_b", "retailer", "recycler", "repairer", "stranger"]
GTINS = {"brand_a": GTIN_A, "brand_b": GTIN_B}
TRANSITIONS = [edge for edge in EDGES if edge not in RECYCLE_ONLY]
Expected = tuple[str, dict[str, Any]] | None


@dataclass
class LotModel:
    owner: str
    mass: int
    allocated: int = 0


@dataclass
class ItemModel:
    brand: str
    mass: int
    state: ItemState


@dataclass
class RunModel:
    commitment: RunCommitment
    brand: str
    item_mass: int
    materialized: set[str] = field(default_factory=set)


@dataclass
class Model:
    lots: dict[bytes, LotModel] = field(default_factory=dict)
    allowances: dict[tuple[bytes, str], int] = field(default_factory=dict)
    items: dict[bytes, ItemModel] = field(default_factory=dict)
    drawn: int = 0  # grams drawn from lots by every registration that went through
    recycled: list[bytes] = field(default_factory=list)  # every item id any successful recycle() took
    recycled_mass: int = 0
    recovered_mass: int = 0


def _partner_role(actor: str, current: ItemState, target: ItemState) -> bool:
    """Whether `actor` holds a partner role (retailer, recycler, repairer) allowed on the edge."""
    role = {"retailer": "retailer", "recycler": "recycler", "repairer": "repairer"}.get(actor)
    return role in EDGES[(current, target)]


def _allowed(model_item: ItemModel, actor: str, current: ItemState, target: ItemState,
             addresses: dict[str, str]) -> bool:
    """As canTransition: a partner role on the edge, authorised by the item's brand (brand A authorised the cast's
    retailer, recycler and repairer; brand B no one), or the item's own brand on an edge open to brands."""
    if _partner_role(actor, current, target) and model_item.brand == addresses["brand_a"]:
        return True
    return "brand" in EDGES[(current, target)] and actor in GTINS and addresses[actor] == model_item.brand


@dataclass
class Seed:
    """The state every example starts from: a few lots and items, made once per test, and a snapshot of it."""

    world: World
    model: Model
    lots: list[bytes]
    items: list[bytes]
    snapshot: Any = None


class LedgerMachine(RuleBasedStateMachine):
    seed: ClassVar[Seed]
    in_hypothesis: ClassVar[bool] = True  # False while the seed is built, outside any example

    lots = Bundle("lots")
    items = Bundle("items")
    runs = Bundle("runs")

    def __init__(self) -> None:
        super().__init__()
        self.world = fresh_world(self.seed.world)
        self.ledger = self.world.ledger
        self.model = deepcopy(self.seed.model)
        self.counter = 1_000  # labels above the seed's
        self.dirty_lots: set[bytes] = set()
        self.dirty_items: set[bytes] = set()
        self.addresses = {name: getattr(self.world, name).address for name in ACTORS}

    # -- helpers ------------------------------------------------------------------------------------------------------
    def actor(self, name: str) -> LocalAccount:
        account: LocalAccount = getattr(self.world, name)
        return account

    def next_label(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def attempt(self, account: LocalAccount, call: Any, expected: Expected) -> TxReceipt | None:
        """Send `call`; it must revert exactly as `expected` says, or go through when `expected` is None."""
        if self.in_hypothesis:  # outcome counts, for --hypothesis-show-statistics
            event(f"{call.fn_name}: {'ok' if expected is None else expected[0]}")
        if expected is None:
            receipt = send(self.world, account, call)
            self.check_transitions(receipt)
            return receipt
        name, args = expected
        with reverts(name, **args):
            send(self.world, account, call)
        return None

    def check_transitions(self, receipt: TxReceipt) -> None:
        """Every state change a transaction logs is an edge of the graph (or a registration)."""
        for change in events(self.ledger, receipt, "ItemStateChanged"):
            edge = (ItemState(change["from"]), ItemState(change["to"]))
            assert edge in EDGES or edge == (S.NONE, S.MANUFACTURED), edge

    def simulate_draw(self, account: str, parts: list[tuple[bytes, int]], copies: int) -> tuple[Expected, Any]:
        """What MaterialLots.allocate does for each part in turn: the first error, or the lots and allowances after."""
        lots = deepcopy(self.model.lots)
        allowances = dict(self.model.allowances)
        address = self.addresses[account]
        for lot_id, grams in parts:
            amount = grams * copies
            lot = lots[lot_id]
            if amount == 0:
                return ("ZeroMass", {}), None
            if address != lot.owner:
                allowed = allowances.get((lot_id, address), 0)
                if allowed < amount:
                    return ("LotAllocationUnauthorized", {"lotId": lot_id, "account": address,
                                                          "requestedGrams": amount, "allowedGrams": allowed}), None
                allowances[(lot_id, address)] = allowed - amount
            available = lot.mass - lot.allocated
            if amount > available:
                return ("LotMassExceeded", {"lotId": lot_id, "requestedGrams": amount,
                                            "availableGrams": available}), None
            lot.allocated += amount
        return None, (lots, allowances)

    def commit_draw(self, staged: Any, parts: list[tuple[bytes, int]], copies: int) -> None:
        self.model.lots, self.model.allowances = staged
        self.model.drawn += sum(grams for _, grams in parts) * copies
        self.dirty_lots.update(lot for lot, _ in parts)

    def transition_expectation(self, ident: bytes, current: ItemState, target: ItemState, actor: str,
                               item: ItemModel) -> Expected:
        if target == S.RECYCLED or (current, target) not in EDGES:
            return "IllegalTransition", {"itemId": ident, "current": current, "requested": target}
        if not _allowed(item, actor, current, target, self.addresses):
            if _partner_role(actor, current, target):
                return "NotBrandPartner", {"itemId": ident, "brand": item.brand, "account": self.addresses[actor]}
            return "UnauthorizedTransition", {"itemId": ident, "account": self.addresses[actor], "current": current,
                                              "requested": target}
        return None

    def draw_move(self, data: st.DataObject, item: ItemModel) -> tuple[ItemState, str]:
        """A target and an actor: mostly a legal move, sometimes anything at all."""
        legal = [t for (f, t) in TRANSITIONS if f == item.state]
        targets = st.sampled_from(list(ItemState))
        target = data.draw(st.one_of(st.sampled_from(legal), targets) if legal else targets, label="target")
        allowed = [a for a in ACTORS if (item.state, target) in EDGES
                   and _allowed(item, a, item.state, target, self.addresses)]
        actors = st.sampled_from(ACTORS)
        actor = data.draw(st.one_of(st.sampled_from(allowed), actors) if allowed else actors, label="actor")
        return target, actor

    # -- rules --------------------------------------------------------------------------------------------------------
    @initialize(target=lots)
    def seed_lots(self) -> Any:
        return multiple(*self.seed.lots)

    @initialize(target=items)
    def seed_items(self) -> Any:
        return multiple(*self.seed.items)

    def make_seed(self) -> tuple[list[bytes], list[bytes]]:
        """Two lots for the bundle, and three items of brand A from a lot of their own, so lifecycles start at once."""
        lots = [self.register_lot("brand_a", 2_000), self.register_lot("brand_b", 1_500)]
        own = self.register_lot("brand_a", 900)
        return lots, [self.register_item("brand_a", [(own, 300)], False) for _ in range(3)]

    @rule(target=lots, owner=st.sampled_from(["brand_a", "brand_b"]), mass=st.integers(1, 3_000))
    def register_lot(self, owner: str, mass: int) -> bytes:
        number = self.next_label("L")
        lot = self.ledger.register_material_lot(self.actor(owner), COTTON, number, mass)
        assert lot == material_lot_id(self.addresses[owner], COTTON, number)
        self.model.lots[lot] = LotModel(self.addresses[owner], mass)
        self.dirty_lots.add(lot)
        return lot

    @rule(lot=lots, operator=st.sampled_from(["brand_a", "brand_b"]), grams=st.integers(0, 1_500),
          as_owner=st.sampled_from([True] * 3 + [False]))
    def approve(self, lot: bytes, operator: str, grams: int, as_owner: bool) -> None:
        owner = self.model.lots[lot].owner
        caller = next(n for n in ACTORS if self.addresses[n] == owner) if as_owner else "stranger"
        expected = None if as_owner else ("NotLotOwner", {"lotId": lot, "account": self.addresses["stranger"]})
        self.attempt(self.actor(caller), self.ledger.lots.functions.approve(lot, self.addresses[operator], grams),
                     expected)
        if expected is None:
            self.model.allowances[(lot, self.addresses[operator])] = grams

    @rule(target=items, brand=st.sampled_from(["brand_a", "brand_b"]),
          parts=st.lists(st.tuples(lots, st.integers(0, 900)), min_size=1, max_size=2),
          foreign_gtin=st.sampled_from([False] * 5 + [True]))
    def register_item(self, brand: str, parts: list[tuple[bytes, int]], foreign_gtin: bool) -> Any:
        gtin14 = GTINS["brand_b" if brand == "brand_a" else "brand_a"] if foreign_gtin else GTINS[brand]
        serial = self.next_label("S")
        ident = item_id(gtin14, serial)
        expected, staged = self.simulate_draw(brand, parts, 1)
        if foreign_gtin:
            expected = ("GtinNotOwned", {"gtin": gtin14, "account": self.addresses[brand]})
        call = self.ledger.items.functions.registerItem(gtin14, serial, [p[0] for p in parts], [p[1] for p in parts],
                                                        ZERO32)
        self.attempt(self.actor(brand), call, expected)
        self.dirty_lots.update(lot for lot, _ in parts)
        if expected is not None:
            return multiple()
        self.commit_draw(staged, parts, 1)
        self.model.items[ident] = ItemModel(self.addresses[brand], sum(g for _, g in parts), S.MANUFACTURED)
        self.dirty_items.add(ident)
        return ident

    @rule(target=runs, brand=st.sampled_from(["brand_a", "brand_b"]), lot=lots, grams=st.integers(0, 400),
          count=st.integers(1, 4))
    def register_run(self, brand: str, lot: bytes, grams: int, count: int) -> Any:
        serials = [self.next_label("R") for _ in range(count)]
        expected, staged = self.simulate_draw(brand, [(lot, grams)], count)
        self.dirty_lots.add(lot)
        if expected is not None:
            with reverts(expected[0], **expected[1]):
                self.ledger.register_run(self.actor(brand), GTINS[brand], serials, [(lot, grams)])
            return multiple()
        run = self.ledger.register_run(self.actor(brand), GTINS[brand], serials, [(lot, grams)])
        self.commit_draw(staged, [(lot, grams)], count)
        assert self.ledger.items.functions.run(run.run_id).call() == (self.addresses[brand], grams, count)
        return RunModel(run, self.addresses[brand], grams)

    @rule(target=items, run=runs, data=st.data())
    def first_transition(self, run: RunModel, data: st.DataObject) -> Any:
        """Materialize an item of a run, alone or with its first transition (atomically)."""
        serial = data.draw(st.sampled_from(run.commitment.serials), label="serial")
        ident = item_id(run.commitment.gtin, serial)
        fresh = ItemModel(run.brand, run.item_mass, S.MANUFACTURED)
        plain = data.draw(st.booleans(), label="plain materialize")
        if serial in run.materialized:
            expected: Expected = ("ItemAlreadyRegistered", {"itemId": ident})
            target, actor = S.SOLD, "retailer"
        elif plain:
            expected, target, actor = None, S.MANUFACTURED, "stranger"
        else:
            target, actor = self.draw_move(data, fresh)
            expected = self.transition_expectation(ident, S.MANUFACTURED, target, actor, fresh)
        c = run.commitment
        call = (self.ledger.items.functions.materialize(c.gtin, serial, c.items_root, c.proofs[serial]) if plain else
                self.ledger.items.functions.transitionRunItem(c.gtin, serial, c.items_root, c.proofs[serial],
                                                              int(target)))
        self.attempt(self.actor(actor), call, expected)
        self.dirty_items.add(ident)
        if expected is not None:
            return multiple()
        run.materialized.add(serial)
        self.model.items[ident] = ItemModel(run.brand, run.item_mass, target)
        return ident

    @rule(item=items, data=st.data())
    def transition(self, item: bytes, data: st.DataObject) -> None:
        model_item = self.model.items[item]
        target, actor = self.draw_move(data, model_item)
        expected = self.transition_expectation(item, model_item.state, target, actor, model_item)
        self.attempt(self.actor(actor), self.ledger.items.functions.transition(item, int(target)), expected)
        self.dirty_items.add(item)
        if expected is None:
            model_item.state = target

    def collect(self, item: bytes) -> None:
        """Walk an item to Collected along the graph's shortest path, if it has one."""
        model_item = self.model.items[item]
        paths = {model_item.state: [model_item.state]}
        queue = deque([model_item.state])
        while queue:
            here = queue.popleft()
            for (f, t) in TRANSITIONS:
                if f == here and t not in paths:
                    paths[t] = [*paths[here], t]
                    queue.append(t)
        for target in paths.get(S.COLLECTED, [model_item.state])[1:]:
            actor = next((a for a in ("retailer", "recycler", "repairer", *GTINS)
                          if _allowed(model_item, a, model_item.state, target, self.addresses)), None)
            if actor is None:  # no one may take the step (brand B's items: it authorised no recycler)
                break
            self.attempt(self.actor(actor), self.ledger.items.functions.transition(item, int(target)), None)
            model_item.state = target
        self.dirty_items.add(item)

    @precondition(lambda self: bool(self.model.items))
    @rule(target=lots, data=st.data())
    def recycle(self, data: st.DataObject) -> Any:
        everything = sorted(self.model.items)
        collected = [i for i in everything if self.model.items[i].state == S.COLLECTED]
        # Rarely nothing at all (0), sometimes any items (1-2), mostly Collected ones (3-5) or any items walked to
        # Collected first, each transition checked (6-9): only Collected items recycle.
        mode = data.draw(st.integers(0, 9), label="mode")
        pool = collected if collected and 3 <= mode <= 5 else everything
        picks = data.draw(st.lists(st.sampled_from(pool), min_size=0 if mode == 0 else 1, max_size=3), label="items")
        if mode >= 6:
            for ident in dict.fromkeys(picks):
                self.collect(ident)
        states = {i: self.model.items[i].state for i in picks}
        expected: Expected = None
        total = 0
        if not picks:
            expected = ("NothingToRecycle", {})
        for ident in picks:
            if expected is not None:
                break
            if states[ident] != S.COLLECTED:
                expected = ("IllegalTransition", {"itemId": ident, "current": states[ident],
                                                  "requested": S.RECYCLED})
            states[ident] = S.RECYCLED
            total += self.model.items[ident].mass
        mass = data.draw(st.one_of(st.integers(1, max(total, 1)), st.sampled_from([total, total + 1, 0])),
                         label="recovered grams")
        if expected is None and mass > total:
            expected = ("RecoveredMassExceeded", {"requestedGrams": mass, "recycledGrams": total})
        if expected is None and mass == 0:
            expected = ("ZeroMass", {})
        number = self.next_label("REC")
        call = self.ledger.items.functions.recycle(picks, [(COTTON, number, mass, ZERO32)])
        self.attempt(self.world.recycler, call, expected)
        self.dirty_items.update(picks)
        if expected is not None:
            return multiple()
        for ident in picks:
            self.model.items[ident].state = S.RECYCLED
        self.model.recycled.extend(picks)
        self.model.recycled_mass += total
        self.model.recovered_mass += mass
        lot = material_lot_id(self.world.recycler.address, COTTON, number)
        self.model.lots[lot] = LotModel(self.world.recycler.address, mass)
        self.dirty_lots.add(lot)
        return lot

    # -- invariants ---------------------------------------------------------------------------------------------------
    @invariant()
    def model_is_consistent(self) -> None:
        model = self.model
        assert all(lot.allocated <= lot.mass for lot in model.lots.values())
        assert sum(lot.allocated for lot in model.lots.values()) == model.drawn
        assert len(model.recycled) == len(set(model.recycled))  # each item recycled at most once
        assert {i for i, m in model.items.items() if m.state == S.RECYCLED} == set(model.recycled)
        assert model.recovered_mass <= model.recycled_mass

    @invariant()
    def chain_matches_model(self) -> None:
        """What the last step touched (or tried to touch) is on chain exactly as the model says."""
        self.check(self.dirty_lots, self.dirty_items)
        self.dirty_lots.clear()
        self.dirty_items.clear()

    def check(self, lots: set[bytes], items: set[bytes]) -> None:
        for lot in lots:
            expected = self.model.lots.get(lot)
            on_chain = self.ledger.lot(lot)
            if expected is None:
                assert on_chain["massGrams"] == 0
                continue
            assert (on_chain["owner"], on_chain["massGrams"], on_chain["allocatedGrams"]) == (
                expected.owner, expected.mass, expected.allocated)
            assert on_chain["allocatedGrams"] <= on_chain["massGrams"]
        for ident in items:
            on_chain = self.ledger.item(ident)
            expected_item = self.model.items.get(ident)
            if expected_item is None:
                assert on_chain["state"] is S.NONE
            else:
                assert (on_chain["brand"], on_chain["massGrams"], on_chain["state"]) == (
                    expected_item.brand, expected_item.mass, expected_item.state)

    def teardown(self) -> None:
        try:
            self.check(set(self.model.lots), set(self.model.items))
            # Conservation on chain: every gram lots gave out went into an item (of a run, or alone).
            assert sum(self.ledger.lot(lot)["allocatedGrams"] for lot in self.model.lots) == self.model.drawn
        finally:
            # Back to the seed. A snapshot is good for one revert on Anvil: take the next one at once.
            self.world.rollback(self.seed.snapshot)
            self.seed.snapshot = self.world.backend.snapshot()


def test_state_machine(world: World) -> None:
    is_tester = world.backend.name == "eth-tester"
    # Build the seed with the machine's own rules (so the model knows it), once.
    builder = type("SeedBuilder", (LedgerMachine,), {"seed": Seed(world, Model(), [], []), "in_hypothesis": False})()
    builder.counter = 0
    lots, items = builder.make_seed()
    builder.check(set(builder.model.lots), set(builder.model.items))
    machine = type("Machine", (LedgerMachine,), {"seed": Seed(world, builder.model, lots, items,
                                                              world.backend.snapshot())})
    run_settings = settings(
        max_examples=20 if is_tester else 12,
        stateful_step_count=15,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
        print_blob=True,
    )
    run_state_machine_as_test(machine, settings=run_settings)
