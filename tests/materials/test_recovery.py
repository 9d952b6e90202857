"""Per-material mass balance of recycling: recovered lots never hold more of a material than the items held of what
recycles into it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from materials import MaterialMassExceeded, NotRecoverable, check_recovery, recovered_code
from materials.recovery import balance, item_parts, recoverable

# Ten T-shirts of 150 g cotton and 50 g polyester.
TEN_SHIRTS = [("CO", 150), ("PES", 50)] * 10


def test_cotton_from_mixed_shirts_is_refused_beyond_their_cotton() -> None:
    with pytest.raises(MaterialMassExceeded) as refused:
        check_recovery(TEN_SHIRTS, [("CO", 1_800)])
    error = refused.value
    assert (error.material, error.requested, error.available) == ("rCO", 1_800, 1_500)
    assert "1,800 g of Recycled cotton" in str(error) and "CO 1,500 g" in str(error)
    # The same, named as the recovered material.
    with pytest.raises(MaterialMassExceeded):
        check_recovery(TEN_SHIRTS, [("rCO", 1_501)])


def test_a_split_per_material_is_accepted() -> None:
    result = check_recovery(TEN_SHIRTS, [("rCO", 1_400), ("rPES", 450)])
    assert [(b.material, b.available, b.requested, b.excess) for b in result] == [
        ("rCO", 1_500, 1_400, 0),
        ("rPES", 500, 450, 0),
    ]
    # Polyester can never be passed off as cotton, even when the total fits.
    with pytest.raises(MaterialMassExceeded) as refused:
        check_recovery(TEN_SHIRTS, [("rCO", 1_000), ("rPES", 600)])
    assert refused.value.material == "rPES"


def test_recycled_material_of_an_earlier_generation_counts_again() -> None:
    # A tote bag of 120 g recycled cotton and 80 g virgin cotton holds 200 g of what recycles into recycled cotton.
    assert recoverable([("rCO", 120), ("CO", 80), ("LI", 10)]) == {"rCO": {"CO": 80, "LI": 10, "rCO": 120}}
    check_recovery([("rCO", 120), ("CO", 80)], [("rCO", 200)])


def test_what_recycling_does_not_yield() -> None:
    for code, reason in (("UNOBTAINIUM", "not in the catalogue"), ("EL", "not recyclable")):
        with pytest.raises(NotRecoverable, match=reason):
            check_recovery(TEN_SHIRTS, [(code, 1)])
    # Elastane in the items yields nothing, and takes nothing from the cotton.
    assert balance([("CO", 95), ("EL", 5)], [("rCO", 95)])[0].available == 95
    assert recovered_code("LI") == "rCO" and recovered_code("rPET") == "rPET"


def test_item_parts_from_compositions() -> None:
    compositions = [[("lot-a", 150), ("lot-b", 50)], [("lot-a", 150), ("lot-x", 7)]]
    assert item_parts(compositions, {"lot-a": "CO", "lot-b": "PES"}) == [("CO", 150), ("PES", 50), ("CO", 150)]


@given(
    parts=st.lists(st.tuples(st.sampled_from(["CO", "PES", "rCO", "WO", "EL"]), st.integers(1, 10_000)), max_size=20),
    outputs=st.dictionaries(st.sampled_from(["rCO", "rPES", "rWO"]), st.integers(1, 20_000), min_size=1),
)
def test_accepted_recovery_never_creates_material(parts: list[tuple[str, int]], outputs: dict[str, int]) -> None:
    try:
        result = check_recovery(parts, list(outputs.items()))
    except MaterialMassExceeded:
        return
    held = recoverable(parts)
    for entry in result:
        assert entry.requested <= sum(held.get(entry.material, {}).values())
    assert sum(outputs.values()) <= sum(g for c, g in parts if c != "EL")
