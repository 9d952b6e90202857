"""The write API's reads of one item or lot keep what the passports keep from the public.

Found looking for the next attack: ``GET /api/v1/lots/{lot_id}`` and ``GET /api/v1/items/{gtin}/{serial}`` answered
anyone, without a key. A lot's mass and the grams drawn from it and left (a supplier's volumes: the passports show
them to authorities only, ``api/access.py``), its origin and certificates; an item's composition by lot id (the
public passport leaves lots out). Lot ids are in every item's answer, so one item's serial led to its supplier's
figures; and the same held for any other brand's key.

Now both need a key: a lot answers its owner, the operators it approved and the admin; an item its brand, the actor
holding it, recyclers and repairers (a legitimate interest) and the admin. To anyone else either is unknown (404, as
an unregistered one). SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import GTIN_A, World


@pytest.fixture(scope="module")
def made(any_db_world: World) -> dict[str, Any]:
    w = any_db_world
    lot = w.lot(grams=7_654_321)
    item = w.item([(lot["lotId"], 150)])
    return {"lot": lot, "item": item}


def test_without_a_key_nothing_is_told(any_db_world: World, made: dict[str, Any]) -> None:
    w = any_db_world
    lot = w.client.get(f"/api/v1/lots/{made['lot']['lotId']}")
    item = w.client.get(f"/api/v1/items/{GTIN_A}/{made['item']['serial']}")
    assert lot.status_code == item.status_code == 401
    assert "7654321" not in lot.text and made["lot"]["lotId"] not in item.text


@pytest.mark.parametrize("role", ["brand_b", "retailer"])
def test_another_brand_and_a_retailer_do_not_read_them(any_db_world: World, made: dict[str, Any], role: str) -> None:
    w = any_db_world
    lot = w.client.get(f"/api/v1/lots/{made['lot']['lotId']}", headers=w.auth(role))
    assert lot.status_code == 404 and "7654321" not in lot.text
    item = w.client.get(f"/api/v1/items/{GTIN_A}/{made['item']['serial']}", headers=w.auth(role))
    assert item.status_code == 404 and made["lot"]["lotId"] not in item.text
    unknown = w.client.get(f"/api/v1/items/{GTIN_A}/NEVER-MADE", headers=w.auth(role))
    assert unknown.json()["detail"].replace("NEVER-MADE", "") == item.json()["detail"].replace(
        made["item"]["serial"], ""
    )  # an item it may not read looks like one never made


def test_those_it_concerns_read_them(any_db_world: World, made: dict[str, Any]) -> None:
    w = any_db_world
    for role in ("brand", "admin"):
        lot = w.client.get(f"/api/v1/lots/{made['lot']['lotId']}", headers=w.auth(role))
        assert lot.status_code == 200 and lot.json()["massGrams"] == 7_654_321, role
    for role in ("brand", "admin", "recycler", "repairer"):
        item = w.client.get(f"/api/v1/items/{GTIN_A}/{made['item']['serial']}", headers=w.auth(role))
        assert item.status_code == 200 and item.json()["composition"][0]["lotId"] == made["lot"]["lotId"], role
    # The retailer that sells it holds it, and reads it from then on.
    assert w.act(made["item"], "sold", "retailer").status_code == 201
    held = w.client.get(f"/api/v1/items/{GTIN_A}/{made['item']['serial']}", headers=w.auth("retailer"))
    assert held.status_code == 200 and held.json()["state"] == "sold"
