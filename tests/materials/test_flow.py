"""A brand's material flow: every gram accounted for from its sources to its fates, recovered material attributed
by mass, and the monthly recycled share by the passports' rule (rounded down per part)."""

from __future__ import annotations

import pytest

from materials import Composition, LotRecord
from materials.flow import (
    DISPOSED,
    IN_USE,
    LOSS,
    MADE,
    RECOVERED,
    RECYCLED,
    RECYCLED_CONTENT,
    RETURNED,
    REUSED,
    UNUSED,
    VIRGIN,
    FlowItems,
    material_flow,
)

LOTS = {
    "cotton": LotRecord("cotton", "CO", 100_000, 0),
    "pes30": LotRecord("pes30", "PES", 50_000, 3_333),  # 33.33% pre-consumer recycled polyester
    "rco": LotRecord("rco", "rCO", 9_000, 10_000, ("t1", "t2")),
}
TEE = Composition.of([("cotton", 150), ("pes30", 31)])  # 181 g, of which 31 * 3333 // 10000 = 10 g recycled


def test_every_gram_of_the_items_goes_somewhere() -> None:
    flow = material_flow(
        [
            FlowItems(TEE, IN_USE, "2026-11", count=20),
            FlowItems(TEE, RETURNED, "2026-11", count=5),
            FlowItems(TEE, DISPOSED, "2026-12", count=2),
            FlowItems(TEE, RECYCLED, "2026-12", count=50, recovered_into="rco"),
        ],
        LOTS,
        recovered_input_grams={"rco": 50 * 181 + 1_000},  # another brand's 1,000 g went into the same lot
        recovered_drawn_grams={"rco": 3_000},
    )
    made = 77 * 181
    assert flow.into(MADE) == made
    assert flow.grams(RECYCLED_CONTENT, MADE) == 77 * 10 and flow.grams(VIRGIN, MADE) == made - 770
    assert flow.grams(MADE, IN_USE) == 20 * 181 and flow.grams(MADE, RECYCLED) == 50 * 181
    # The brand brought 9,050 g of the lot's 10,050 g of input: 9,000 * 9,050 // 10,050 = 8,104 g recovered.
    assert flow.grams(RECYCLED, RECOVERED) == 9_000 * 9_050 // 10_050 == 8_104
    assert flow.grams(RECYCLED, LOSS) == 9_050 - 8_104
    assert flow.grams(RECOVERED, REUSED) == 3_000 * 9_050 // 10_050
    assert flow.grams(RECOVERED, REUSED) + flow.grams(RECOVERED, UNUSED) == 8_104
    assert [m.month for m in flow.months] == ["2026-11", "2026-12"]
    assert flow.months[0].grams == 25 * 181 and flow.months[0].share_bps == 10 * 10_000 // 181


def test_a_second_generation_counts_its_recovered_content() -> None:
    shirt = Composition.of([("rco", 120), ("cotton", 80)])
    flow = material_flow([FlowItems(shirt, IN_USE, "2027-01", count=3)], LOTS, recovered_input_grams={},
                         recovered_drawn_grams={})
    assert flow.grams(RECYCLED_CONTENT, MADE) == 360 and flow.months[0].share_bps == 6_000
    assert RECOVERED not in flow.nodes and flow.nodes[0] == VIRGIN


def test_unknown_fates_are_refused() -> None:
    with pytest.raises(ValueError, match="fate"):
        FlowItems(TEE, "lost at sea", "2026-01")
