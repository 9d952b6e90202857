"""Scanning pages' calls: a scanned code is looked up at once; one action records a step for a basket of items,
with a result per item in plain words; a chunk sent twice records nothing twice. A recycler recycles what it
collected; the contract's mass rule comes back in plain words next to the mass."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select

from api.models import WriteIntent
from api.routes.console.web import refusal
from ledger.errors import ContractRevert

from ..conftest import GTIN_A
from .helpers import csrf_of, form_fields, sign_in


def _script(client: Any, path: str, body: dict[str, Any], page: str) -> Any:
    return client.post(path, json=body, headers={"X-CSRF-Token": csrf_of(client, page)})


def _returned_tees(world: Any, count: int) -> list[dict[str, Any]]:
    cotton = world.lot(grams=100_000, gtin=None)
    tees = [world.item([(cotton["lotId"], 200)]) for _ in range(count)]
    for tee in tees:
        assert world.act(tee, "sold", "retailer").status_code == 201
        assert world.act(tee, "returned", "retailer").status_code == 201
    return tees


def test_a_scanned_code_is_looked_up_at_once(world: Any) -> None:
    client = sign_in(world, "recycler")
    tee = world.item([(world.lot(gtin=None)["lotId"], 150)])
    for code in (
        f"https://any-host.example/01/{GTIN_A}/21/{tee['serial']}",
        tee["digitalLink"],
        f"{GTIN_A} {tee['serial']}",
        f"(01){GTIN_A}(21){tee['serial']}",
        tee["serial"],
    ):
        answer = _script(client, "/console/api/lookup", {"code": code}, "/console/intake")
        assert answer.status_code == 200, (code, answer.text)
        item = answer.json()["item"]
        assert (item["serial"], item["state"], item["brand"], item["massGrams"]) == (tee["serial"], "manufactured",
                                                                                      "Brand A", 150)
    unknown = _script(client, "/console/api/lookup", {"code": "NO-SUCH-SERIAL"}, "/console/intake")
    assert unknown.status_code == 404 and unknown.json()["message"] == "No item with serial NO-SUCH-SERIAL."
    assert client.post("/console/api/lookup", json={"code": tee["serial"]}).status_code == 403  # no CSRF token


def test_a_basket_is_collected_with_a_result_per_item_and_a_resent_chunk_writes_nothing(world: Any) -> None:
    client = sign_in(world, "recycler")
    tees = _returned_tees(world, 3)
    gone = world.item([(world.lot(gtin=None)["lotId"], 150)])  # disposed of: a recycler may not collect it
    assert world.act(gone, "disposed", "brand").status_code == 201
    basket = [{"gtin": t["gtin"], "serial": t["serial"]} for t in [*tees, gone]]
    body = {"key": "k" * 20 + world.unique(), "action": "collected", "items": basket}
    answer = _script(client, "/console/api/steps", body, "/console/intake")
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["ok"] for r in results] == [True, True, True, False]
    assert results[0]["stateWords"] == "collected"
    assert results[3]["message"] == (
        "This item is disposed of: it cannot become collected from there. Nothing more can be recorded for it.")
    with world.service.sessions() as session:
        writes = session.scalar(select(func.count()).select_from(WriteIntent))
    again = _script(client, "/console/api/steps", body, "/console/intake")
    assert again.json() == answer.json()
    with world.service.sessions() as session:
        assert session.scalar(select(func.count()).select_from(WriteIntent)) == writes
    intake = client.get("/console/intake")
    assert intake.status_code == 200 and 'id="camera-start"' in intake.text


def test_a_retailer_records_sales(world: Any) -> None:
    client = sign_in(world, "retailer")
    tee = world.item([(world.lot(gtin=None)["lotId"], 150)])
    item = {"gtin": tee["gtin"], "serial": tee["serial"]}
    body = {"key": "s" * 20 + world.unique(), "action": "sold", "items": [item]}
    answer = _script(client, "/console/api/steps", body, "/console/sales")
    assert answer.json()["results"][0]["ok"] is True
    admin = world.auth("admin")
    assert world.client.get(f"/api/v1/items/{tee['gtin']}/{tee['serial']}", headers=admin).json()["state"] == "sold"
    assert sign_in(world, "recycler").get("/console/sales").status_code == 404


def test_a_retailer_resells_what_came_back_and_a_resale_of_a_new_item_is_refused_in_words(world: Any) -> None:
    client = sign_in(world, "retailer")
    cotton = world.lot(gtin=None)["lotId"]
    back, new = world.item([(cotton, 150)]), world.item([(cotton, 150)])

    def record(action: str, *tees: dict[str, Any]) -> list[dict[str, Any]]:
        body = {"key": world.unique("k") + "-" * 16, "action": action,
                "items": [{"gtin": t["gtin"], "serial": t["serial"]} for t in tees]}
        answer = _script(client, "/console/api/steps", body, "/console/sales")
        assert answer.status_code == 200, answer.text
        results: list[dict[str, Any]] = answer.json()["results"]
        return results

    assert [r["ok"] for r in record("sold", back)] == [True]
    assert [r["ok"] for r in record("returned", back)] == [True]
    resold, refused = record("resold", back, new)
    assert resold["ok"] is True and resold["stateWords"] == "resold"
    assert refused["ok"] is False and refused["serial"] == new["serial"]
    assert refused["message"].startswith("This item is made: it cannot become resold from there.")
    assert "sold" in refused["message"].split("from there.", 1)[1]  # the steps it can take instead
    admin = world.auth("admin")
    assert world.client.get(f"/api/v1/items/{back['gtin']}/{back['serial']}", headers=admin).json()["state"] == "resold"
    made = world.client.get(f"/api/v1/items/{new['gtin']}/{new['serial']}", headers=admin).json()
    assert made["state"] == "manufactured"


def test_a_recycler_recycles_what_it_collected_and_the_mass_rule_is_explained(world: Any) -> None:
    client = sign_in(world, "recycler")
    tees = _returned_tees(world, 2)
    body = {"key": "r" * 20 + world.unique(), "action": "collected",
            "items": [{"gtin": t["gtin"], "serial": t["serial"]} for t in tees]}
    assert all(r["ok"] for r in _script(client, "/console/api/steps", body, "/console/intake").json()["results"])
    page = client.get("/console/recycle")
    boxes = dict(re.findall(r'name="item" value="(\d+)" data-grams="\d+"[^>]*>\s*[^<]*<span class="mono">([^<]+)',
                            page.text))
    chosen = [pk for pk, serial in boxes.items() if serial in {t["serial"] for t in tees}]
    assert len(chosen) == 2
    number = world.unique("RL")
    form = {**form_fields(page.text), "material_code": "rCO", "lot_number": number, "mass_grams": "500",
            "item": chosen}
    refused = client.post("/console/recycle", data=form)
    assert refused.status_code == 422
    assert re.search(r'id="e-mass_grams">A recovered lot cannot weigh more than the items recycled into it: these '
                     r"items weigh 400 g in all, and 500 g were entered", refused.text)
    assert f'value="{number}"' in refused.text  # nothing typed is lost
    done = client.post("/console/recycle", data={**form, **form_fields(refused.text), "mass_grams": "380"})
    assert done.status_code == 303 and done.headers["location"].startswith("/console/lots/0x")
    lot = client.get(done.headers["location"]).text
    assert f"Lot {number}" in lot and "Recovered from 2 recycled items." in lot


def test_a_drop_off_code_at_intake_names_the_item_and_closes_the_return_request(world: Any) -> None:
    tee = world.item([(world.lot(gtin=None)["lotId"], 150)])
    for action in ("sold", "in_use"):
        assert world.act(tee, action, "retailer").status_code == 201
    requested = world.client.post(f"/01/{tee['gtin']}/21/{tee['serial']}/return-requests", json={})
    assert requested.status_code in (200, 201), requested.text
    code = requested.json()["dropOffCode"]
    client = sign_in(world, "recycler")
    found = _script(client, "/console/api/lookup", {"code": code.lower()}, "/console/intake")
    assert found.status_code == 200, found.text
    item = found.json()["item"]
    assert (item["serial"], item["dropOffCode"]) == (tee["serial"], code)
    body = {"key": "d" * 20 + world.unique(), "action": "collected",
            "items": [{"gtin": item["gtin"], "serial": item["serial"], "dropOffCode": code}]}
    assert _script(client, "/console/api/steps", body, "/console/intake").json()["results"][0]["ok"] is True
    status = world.client.get(f"/api/v1/return-requests/{code}", headers=world.auth("recycler"))
    assert status.json()["status"] == "received"
    used = _script(client, "/console/api/lookup", {"code": code}, "/console/intake")
    assert used.status_code == 409 and "was received by Recycler" in used.json()["message"]


def test_a_recovered_lot_holds_no_more_of_a_material_than_the_items_held(world: Any) -> None:
    client = sign_in(world, "recycler")
    cotton, polyester = world.lot(grams=100_000, gtin=None), world.lot(grams=100_000, gtin=None, code="PES")
    tee = world.item([(cotton["lotId"], 150), (polyester["lotId"], 30)])
    for action, role in (("sold", "retailer"), ("returned", "retailer"), ("collected", "recycler")):
        assert world.act(tee, action, role).status_code == 201
    page = client.get("/console/recycle")
    pk = re.search(rf'name="item" value="(\d+)"[^>]*>\s*<span class="mono">{tee["serial"]}<', page.text)
    assert pk is not None
    form = {**form_fields(page.text), "material_code": "rCO", "lot_number": world.unique("RL"), "mass_grams": "170",
            "item": [pk.group(1)]}
    refused = client.post("/console/recycle", data=form)
    assert refused.status_code == 422
    assert re.search(r'id="e-mass_grams">These items held 150 g of what recycles into recycled cotton: a recovered '
                     r"lot of it cannot weigh more, and 170 g were entered.", refused.text)


def test_home_pages_count_what_each_actor_holds(world: Any) -> None:
    tee = world.item([(world.lot(gtin=None)["lotId"], 150)])
    assert world.act(tee, "sold", "retailer").status_code == 201
    retailer = sign_in(world, "retailer").get("/console").text
    assert re.search(r"<strong>[\d,]+</strong> items sold by you", retailer)
    recycler = sign_in(world, "recycler").get("/console").text
    assert "collected, waiting to be recycled" in recycler


def test_a_refused_step_says_what_the_item_can_do_next() -> None:
    """The contract's IllegalTransition names the states allowed next; the console says them in words."""
    sold = ContractRevert("IllegalTransition", {"itemId": b"\x01" * 32, "current": 2, "requested": 7,
                                                "allowed": [3, 4, 5]})
    words = refusal(sold)
    assert words.status == 409
    assert words.message == ("This item is sold: it cannot become resold from there. It can next be in use, returned, "
                             "collected for recycling or repaired.")
    final = ContractRevert("IllegalTransition", {"itemId": b"\x01" * 32, "current": 8, "requested": 5, "allowed": []})
    assert refusal(final).message.endswith("Nothing more can be recorded for it.")
