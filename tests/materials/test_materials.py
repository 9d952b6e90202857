"""The material domain: catalogue, composition, mass balance and recycled content, with hypothesis properties."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from materials import (
    FULL_SHARE_BPS,
    Ancestor,
    Composition,
    InvalidComposition,
    LotRecord,
    UnknownMaterial,
    by_material,
    catalogue,
    material,
    material_code_bytes32,
    material_code_from_bytes32,
    provenance,
    recovered_material,
    recycled_grams,
    recycled_share_bps,
)

from .model import AlreadyRecycled, MassBalance, MassBalanceExceeded, RecoveredMassExceeded


def test_catalogue_covers_fibres_plastics_metals_glass_and_paper() -> None:
    families = {m.family for m in catalogue().values()}
    assert families == {"textile fibre", "plastic", "metal", "glass", "paper"}
    assert material("CO").standard.startswith("EU 1007/2011")
    assert material("PET").resin_code == 1 and material("PP").resin_code == 5
    assert recovered_material("PES").code == "rPES" and recovered_material("PES").is_recovered
    assert all(m.density is None or m.density > 0 for m in catalogue().values())


def test_unknown_and_unrecyclable_materials() -> None:
    with pytest.raises(UnknownMaterial):
        material("XX")
    with pytest.raises(UnknownMaterial, match="not recyclable"):
        recovered_material("EL")
    assert isinstance(UnknownMaterial("x"), KeyError)


def test_bytes32_round_trip() -> None:
    assert material_code_bytes32("rPES") == b"rPES" + b"\x00" * 28
    assert material_code_from_bytes32(material_code_bytes32("PE-HD")) == "PE-HD"
    with pytest.raises(UnknownMaterial):
        material_code_bytes32("")


def test_composition_validation_and_arithmetic() -> None:
    composition = Composition.of([("cotton", 150), ("pes", 50)])
    assert composition.mass_grams == 200
    assert composition.times(1000).parts[0].grams == 150_000
    for bad in ([], [("a", 0)], [("a", -1)], [("a", 1), ("a", 2)], [("a", 1.5)]):
        with pytest.raises(InvalidComposition):
            Composition.of(bad)  # type: ignore[arg-type]


def test_recycled_content_rounds_down_per_part() -> None:
    lots = {"r": LotRecord("r", "rCO", 1000, FULL_SHARE_BPS), "v": LotRecord("v", "CO", 1000, 3333)}
    composition = Composition.of([("r", 120), ("v", 80)])
    assert recycled_grams(composition, lots) == 120 + 26  # 80 * 0.3333 = 26.66 -> 26
    assert recycled_share_bps(composition, lots) == 7300
    assert by_material(composition, lots) == {"rCO": 120, "CO": 80}


def test_mass_balance_refuses_overdraw_atomically() -> None:
    ledger = MassBalance()
    ledger.register_lot("cotton", "CO", 1000)
    ledger.register_lot("pes", "PES", 100)
    with pytest.raises(MassBalanceExceeded) as info:
        ledger.make(["a", "b", "c"], Composition.of([("cotton", 100), ("pes", 40)]))
    assert (info.value.lot_id, info.value.requested, info.value.available) == ("pes", 120, 100)
    assert ledger.available("cotton") == 1000  # nothing was drawn
    ledger.make(["a", "b"], Composition.of([("cotton", 100), ("pes", 50)]))
    assert ledger.available("pes") == 0


def test_recycling_yields_a_recovered_lot_no_heavier_than_the_items() -> None:
    ledger = MassBalance()
    ledger.register_lot("cotton", "CO", 1000)
    ledger.make(["a", "b"], Composition.of([("cotton", 200)]))
    with pytest.raises(RecoveredMassExceeded):
        ledger.recycle(["a", "b"], "rec", 401)
    lot = ledger.recycle(["a", "b"], "rec", 380)
    assert (lot.material_code, lot.recycled_share_bps, lot.source_items) == ("rCO", FULL_SHARE_BPS, ("a", "b"))
    with pytest.raises(AlreadyRecycled):
        ledger.recycle(["a"], "rec2", 10)


class _Graph:
    """The model as a provenance source: a set of lots at a time, as the API's queries answer."""

    def __init__(self, ledger: MassBalance) -> None:
        self.ledger = ledger
        self.questions = 0

    def ancestors(self, recovered_lots: Sequence[str]) -> list[Ancestor]:
        self.questions += 1
        return [(item, tuple((p.lot_id, p.grams) for p in self.ledger.items[item].parts))
                for item, lot in self.ledger.recycled.items() if lot in recovered_lots]

    def lots(self, lot_ids: Sequence[str]) -> dict[str, LotRecord]:
        self.questions += 1
        return {lot_id: record for lot_id, record in self.ledger.records().items() if lot_id in lot_ids}


def test_provenance_walks_generations_back() -> None:
    ledger = MassBalance()
    ledger.register_lot("cotton", "CO", 10_000)
    ledger.make(["g1a", "g1b"], Composition.of([("cotton", 200)]))
    ledger.recycle(["g1a", "g1b"], "rec1", 380)
    ledger.register_lot("virgin", "CO", 10_000)
    ledger.make(["g2"], Composition.of([("rec1", 300), ("virgin", 100)]))
    ledger.recycle(["g2"], "rec2", 350)
    ledger.make(["g3"], Composition.of([("rec2", 300)]))
    graph = _Graph(ledger)
    walk = provenance(graph, [(ledger.records()[p.lot_id], p.grams) for p in ledger.items["g3"].parts])
    # Generation n's lots, and the items whose recycling yielded its recovered lots (generation n + 1's items).
    sources = [tuple(item for item, _ in g.source_items) for g in walk[1:]] + [()]
    assert [(g.index, tuple(u.lot_id for u in g.lots), s) for g, s in zip(walk, sources, strict=True)] == [
        (1, ("rec2",), ("g2",)), (2, ("rec1", "virgin"), ("g1a", "g1b")), (3, ("cotton",), ())]
    assert recycled_share_bps(ledger.items["g3"], ledger.records()) == FULL_SHARE_BPS
    assert graph.questions == 4  # two set-based questions per generation walked, none per item or lot


def test_provenance_counts_uses_and_grams_and_stops() -> None:
    ledger = MassBalance()
    ledger.register_lot("cotton", "CO", 10_000)
    ledger.make([f"a{n}" for n in range(5)], Composition.of([("cotton", 100)]))
    ledger.recycle([f"a{n}" for n in range(5)], "rec", 450)
    ledger.make(["b"], Composition.of([("rec", 200)]))
    start = [(ledger.records()["rec"], 200)]
    walk = provenance(_Graph(ledger), start)
    assert [(u.lot_id, u.grams, u.items) for u in walk[0].lots] == [("rec", 200, None)]
    assert [(u.lot_id, u.grams, u.items) for u in walk[1].lots] == [("cotton", 500, 5)]
    assert len(walk[1].source_items) == 5
    assert len(provenance(_Graph(ledger), start, max_generations=1)) == 1
    # A lot recorded as its own ancestor is shown where it is used, and walked once: the walk ends.
    ledger.recycled["b"] = "rec"
    looped = provenance(_Graph(ledger), start, max_generations=50)
    assert [u.lot_id for u in looped[1].lots] == ["cotton", "rec"] and len(looped) == 2


class LoopMachine(RuleBasedStateMachine):
    """Random sequences of register, make and recycle: grams are never created or destroyed."""

    def __init__(self) -> None:
        super().__init__()
        self.ledger = MassBalance()
        self.virgin_total = 0
        self.serial = 0

    @rule(mass=st.integers(1, 5000), share=st.integers(0, FULL_SHARE_BPS), code=st.sampled_from(["CO", "PES", "WO"]))
    def register(self, mass: int, share: int, code: str) -> None:
        self.ledger.register_lot(f"v{len(self.ledger.lots)}", code, mass, share)
        self.virgin_total += mass

    @precondition(lambda self: bool(self.ledger.lots))
    @rule(data=st.data(), copies=st.integers(1, 5))
    def make(self, data: st.DataObject, copies: int) -> None:
        lots = data.draw(st.lists(st.sampled_from(sorted(self.ledger.lots)), min_size=1, max_size=3, unique=True))
        composition = Composition.of([(lot, data.draw(st.integers(1, 300))) for lot in lots])
        items = [f"i{self.serial + n}" for n in range(copies)]
        self.serial += copies
        before = {k: v.allocated for k, v in self.ledger.lots.items()}
        try:
            self.ledger.make(items, composition)
        except MassBalanceExceeded:
            assert {k: v.allocated for k, v in self.ledger.lots.items()} == before

    @precondition(lambda self: len(self.ledger.items) > len(self.ledger.recycled))
    @rule(data=st.data())
    def recycle(self, data: st.DataObject) -> None:
        candidates = sorted(set(self.ledger.items) - set(self.ledger.recycled))
        items = data.draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=4, unique=True))
        total = sum(self.ledger.items[i].mass_grams for i in items)
        mass = data.draw(st.integers(1, total + 50))
        try:
            self.ledger.recycle(items, f"r{len(self.ledger.lots)}", mass)
        except RecoveredMassExceeded:
            assert mass > total

    @invariant()
    def grams_are_conserved(self) -> None:
        for state in self.ledger.lots.values():
            assert 0 <= state.allocated <= state.record.mass_grams
        drawn = sum(p.grams for c in self.ledger.items.values() for p in c.parts)
        assert drawn == sum(s.allocated for s in self.ledger.lots.values())
        for lot_id, state in self.ledger.lots.items():
            if state.record.source_items:  # recovered: never heavier than its items
                assert state.record.mass_grams <= sum(self.ledger.items[i].mass_grams
                                                      for i in state.record.source_items)
                assert all(self.ledger.recycled[i] == lot_id for i in state.record.source_items)

    @invariant()
    def recycled_content_is_a_share(self) -> None:
        records = self.ledger.records()
        for composition in self.ledger.items.values():
            assert 0 <= recycled_grams(composition, records) <= composition.mass_grams
            assert 0 <= recycled_share_bps(composition, records) <= FULL_SHARE_BPS


TestLoop = LoopMachine.TestCase
TestLoop.settings = settings(max_examples=150, stateful_step_count=30, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow])
