"""A brand's material-flow page: items made, their fates, recycling into recovered material and its use in new
items, in grams from materials/' accounting; the recycled share month by month."""

from __future__ import annotations

import re
from typing import Any

from ..conftest import GTIN_B
from .helpers import sign_in


def _stat(page: str, ident: str) -> int:
    match = re.search(rf'id="{ident}">([\d,]+)&nbsp;g<', page)
    assert match is not None, page
    return int(match.group(1).replace(",", ""))


def _link(page: str, source: str, target: str) -> int:
    match = re.search(rf"<tr><td>{source}</td><td>{target}</td><td class=\"num\">([\d,]+)</td></tr>", page)
    return int(match.group(1).replace(",", "")) if match else 0


def test_the_flow_shows_the_grams_recovered_from_the_brands_items(world: Any) -> None:
    client = sign_in(world, "brand_b")
    before = client.get("/console/flow").text
    cotton = world.lot(role="brand_b", gtin=None, grams=100_000, share=2_000)
    tees = [world.item([(cotton["lotId"], 200)], role="brand_b", gtin=GTIN_B) for _ in range(3)]
    for tee in tees:
        for action, role in (("sold", "retailer"), ("returned", "retailer"), ("collected", "recycler")):
            assert world.act(tee, action, role).status_code == 201
    recycled = world.post("/api/v1/recycling", "recycler", {
        "items": [{"gtin": t["gtin"], "serial": t["serial"]} for t in tees],
        "materialCode": "rCO", "lotNumber": world.unique("RL"), "massGrams": 540})
    assert recycled.status_code == 201, recycled.text
    after = client.get("/console/flow")
    assert after.status_code == 200
    page = after.text
    assert _stat(page, "recovered-grams") - _stat(before, "recovered-grams") == 540
    assert _stat(page, "made-grams") - _stat(before, "made-grams") == 600
    assert _link(page, "recycled", "recovered material") - _link(before, "recycled", "recovered material") == 540
    assert _link(page, "recycled", "recycling loss") - _link(before, "recycled", "recycling loss") == 60
    assert _link(page, "recycled content", "items made") - _link(before, "recycled content", "items made") == 120
    assert 'id="flow-data"' in page and '<div id="sankey"' in page
    assert re.search(r"<td>\d{4}-\d{2}</td>", page)


def test_the_flow_is_a_brands_page(world: Any) -> None:
    assert sign_in(world, "recycler").get("/console/flow").status_code == 404
