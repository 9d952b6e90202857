"""Access by role (``api/access.py``): which reader sees which passport field, in every format, and restricted data
reaching the public through no route (the rendering caches, the linkset, error messages, the evidence bundle)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from api import access
from api.access import Tier

from .conftest import GTIN_A, World

# Values no other test uses: finding one in an answer means the field it belongs to was shown.
ORIGIN = "Sentinel-Origin-Valley"
CERTIFICATE = "https://certs.example/sentinel-audit-7731"
LOT_GRAMS = 987_653
FORMATS = ("passport", "passport.jsonld")

# reader → tier: no key, a retailer's, another brand's (the public's view); a recycler's and a repairer's (legitimate
# interest); an authority's, the operator's and the item's own brand's (everything).
READERS = {
    None: Tier.PUBLIC,
    "retailer": Tier.PUBLIC,
    "brand_b": Tier.PUBLIC,
    "recycler": Tier.LEGITIMATE_INTEREST,
    "repairer": Tier.LEGITIMATE_INTEREST,
    "authority": Tier.AUTHORITY,
    "admin": Tier.AUTHORITY,
    "brand": Tier.AUTHORITY,
}


@pytest.fixture(scope="module")
def subject(world: World) -> dict[str, Any]:
    """An item of a lot with an origin, a certificate and a mass of its own, sold by the retailer."""
    lot = world.lot(grams=LOT_GRAMS, origin=ORIGIN, certificates=[CERTIFICATE])
    item = world.item([(lot["lotId"], 100)])
    assert world.act(item, "sold", "retailer").status_code == 201
    path = f"/01/{GTIN_A}/21/{item['serial']}"
    return {"lot": lot, "item": item, "path": path}


def _get(world: World, path: str, reader: str | None) -> Any:
    return world.client.get(path, headers=world.auth(reader) if reader else {})


def _fields(body: str, lot: dict[str, Any]) -> dict[str, bool]:
    """Which of the sentinel fields an answer shows."""
    return {
        "lot number": lot["lotNumber"] in body,
        "origin": ORIGIN in body,
        "certificate": CERTIFICATE in body,
        "lot mass": str(LOT_GRAMS) in body,
        "step's actor": re.search(r'"circ:actor":"Retailer"|by Retailer', body) is not None,
    }


AUDIENCES = {
    "lot number": Tier.LEGITIMATE_INTEREST,
    "origin": Tier.LEGITIMATE_INTEREST,
    "step's actor": Tier.LEGITIMATE_INTEREST,
    "certificate": Tier.AUTHORITY,
    "lot mass": Tier.AUTHORITY,
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("reader", list(READERS))
def test_each_reader_sees_the_fields_of_its_tier(
    world: World, subject: dict[str, Any], reader: str | None, fmt: str
) -> None:
    """The matrix: reader (role) x format x field."""
    response = _get(world, f"{subject['path']}/{fmt}", reader)
    assert response.status_code == 200, response.text
    tier = READERS[reader]
    assert response.headers["passport-access"] == tier.value
    shown = _fields(response.text, subject["lot"])
    assert shown == {field: tier.sees(audience) for field, audience in AUDIENCES.items()}
    # Public facts are in every tier's answer.
    assert "Cotton" in response.text and subject["item"]["serial"] in response.text
    if tier is not Tier.PUBLIC:  # never kept by a shared cache
        assert response.headers["cache-control"] == "private, no-store"
    assert "Authorization" in response.headers["vary"]


def test_the_public_answer_says_more_exists(world: World, subject: dict[str, Any]) -> None:
    body = _get(world, subject["path"] + "/passport.jsonld", None).json()
    assert body["circ:access"] == {"circ:tier": "public", "circ:withheld": True}
    assert 'id="access-withheld"' in _get(world, subject["path"] + "/passport", None).text
    full = _get(world, subject["path"] + "/passport.jsonld", "authority").json()
    assert full["circ:access"] == {"circ:tier": "authority", "circ:withheld": False}
    linkset = world.client.get(subject["path"] + "?linkType=linkset").json()["linkset"][0]
    assert any(key.endswith("/authorisedAccess") for key in linkset)
    assert CERTIFICATE not in json.dumps(linkset) and ORIGIN not in json.dumps(linkset)


def test_the_rendering_cache_keys_on_the_tier(world: World, subject: dict[str, Any]) -> None:
    """An authority's read first, then the public's of the same version: the public never gets the cached one."""
    for fmt in FORMATS:
        path = f"{subject['path']}/{fmt}"
        assert CERTIFICATE in _get(world, path, "authority").text
        for _ in range(2):  # the second one is a hit of the fast path's cache
            public = _get(world, path, None)
            assert public.status_code == 200 and not any(_fields(public.text, subject["lot"]).values())
        assert CERTIFICATE in _get(world, path, "authority").text


def test_the_lot_passport_and_the_response_cache(world: World, subject: dict[str, Any]) -> None:
    """A lot's page and JSON-LD (kept by the response cache): an authority's answer is never served to the public."""
    lot = subject["lot"]
    base = f"/01/{lot['gtin']}/10/{lot['lotNumber']}/passport"
    for path in (base, base + ".jsonld", f"/lots/{lot['lotId']}"):
        seen = _get(world, path, "authority")
        assert seen.status_code == 200, seen.text
        assert CERTIFICATE in seen.text and str(LOT_GRAMS) in seen.text
        assert seen.headers["cache-control"] == "private, no-store"
        for _ in range(2):
            public = _get(world, path, None)
            assert public.status_code == 200
            assert CERTIFICATE not in public.text and str(LOT_GRAMS) not in public.text and ORIGIN not in public.text
        recycler = _get(world, path, "recycler").text
        assert ORIGIN in recycler and CERTIFICATE not in recycler


def test_the_evidence_bundle_is_an_authoritys(world: World, subject: dict[str, Any]) -> None:
    path = subject["path"] + "/evidence"
    for reader, status in ((None, 401), ("retailer", 403), ("recycler", 403), ("repairer", 403)):
        refused = _get(world, path, reader)
        assert refused.status_code == status
        assert not any(_fields(refused.text, subject["lot"]).values())
    for reader in ("authority", "brand"):
        bundle = _get(world, path, reader)
        assert bundle.status_code == 200 and CERTIFICATE in bundle.text


def test_errors_say_nothing_restricted(world: World, subject: dict[str, Any]) -> None:
    path = subject["path"]
    answers = [
        world.client.get(path + "/passport", headers={"Authorization": "Bearer clk_not-a-key"}),
        world.client.get(path + "/passport.jsonld?version=999"),
        world.client.get(path + "/passport.jsonld?version=999", headers=world.auth("recycler")),
        world.client.get(path + "/verification"),
        world.client.get(path + "?linkType=gs1:certificationInfo"),
    ]
    assert [a.status_code for a in answers] == [401, 404, 404, 200, 404]
    for answer in answers:
        assert not any(_fields(answer.text, subject["lot"]).values()), answer.text
    assert answers[3].json()["problems"] == []


def test_an_unknown_field_is_an_authoritys() -> None:
    """Fail closed: a field the table does not name, and an account address anywhere, are shown to authorities."""
    content = {
        "uri": "u",
        "new_field": "x",
        "product": {"name": "n", "supplier_secret": "s"},
        "timeline": [{"label": "Sold", "actor": "0x" + "ab" * 20}],
    }
    public = {"uri": "u", "product": {"name": "n"}, "timeline": [{"label": "Sold"}]}
    assert access.restrict(content, Tier.PUBLIC) == public
    assert access.restrict(content, Tier.LEGITIMATE_INTEREST)["timeline"] == [{"label": "Sold"}]
    assert access.restrict(content, Tier.AUTHORITY) == content


def test_every_field_of_a_passport_has_an_audience(world: World, subject: dict[str, Any]) -> None:
    """Every field a stored version holds is in the table, and the table's restricted fields are in the docs."""
    from api.versions import KIND
    from ledger.versions import version

    with world.service.sessions() as session:
        stored = version(session, KIND, "https://id.circular.example" + subject["path"])
    assert stored is not None
    content = json.loads(stored.document)["content"]
    named = {(f.group, f.name) for f in access.FIELDS}

    def walk(value: Any, group: str) -> None:
        if isinstance(value, list):
            for member in value:
                walk(member, group)
        elif isinstance(value, dict):
            for key, member in value.items():
                assert (group, key) in named, f"{group}.{key} has no audience in api/access.py"
                inner = access.SHAPE.get((group, key))
                if inner is not None:
                    walk(member, inner)

    walk(content, "")
    docs = (Path(__file__).resolve().parents[2] / "docs" / "passport-data.md").read_text()
    for field in access.FIELDS:
        if field.audience is not Tier.PUBLIC:
            assert f"`{field.name}`" in docs and field.reason, field


def test_an_authority_is_created_by_the_admin_and_writes_nothing(world: World) -> None:
    body = {"name": world.unique("Authority "), "role": "authority"}
    assert world.post("/api/v1/actors", "brand", body).status_code == 403
    created = world.post("/api/v1/actors", "admin", body)
    assert created.status_code == 201, created.text
    key = created.json()["apiKey"]
    lot = {"lotNumber": world.unique("L"), "materialCode": "CO", "massGrams": 10, "recycledShareBps": 0}
    refused = world.client.post("/api/v1/lots", json=lot, headers={"Authorization": f"Bearer {key}"})
    assert refused.status_code == 403


def test_the_write_apis_reads_are_no_back_door(world: World, subject: dict[str, Any]) -> None:
    """The write API's records of a lot (mass, certificates) and an item (its lots) are never anonymous; a lot is
    read by its owner, its approved operators and authorities, an item by those with a reason."""
    lot, item = subject["lot"], subject["item"]
    lot_path, item_path = f"/api/v1/lots/{lot['lotId']}", f"/api/v1/items/{GTIN_A}/{item['serial']}"
    for path in (lot_path, item_path):
        anonymous = world.client.get(path)
        assert anonymous.status_code == 401 and CERTIFICATE not in anonymous.text and ORIGIN not in anonymous.text
    for reader, status in (("recycler", 404), ("retailer", 404), ("brand", 200), ("authority", 200), ("admin", 200)):
        answer = _get(world, lot_path, reader)
        assert answer.status_code == status and (status == 200 or CERTIFICATE not in answer.text), reader
    for reader, status in (("brand_b", 404), ("recycler", 200), ("authority", 200)):
        assert _get(world, item_path, reader).status_code == status, reader
