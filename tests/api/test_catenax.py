"""The Catena-X Generic Digital Product Passport 7.0.0 (``api/catenax.py``): valid against the vendored schema with real
data (the GTIN, the materials' recycled share, the brand as economic operator), found through the linkset, restricted
like every format; the brand's operator data; and ``circular passport``, which prints every format byte for byte as
the resolver serves it, for the same version and tier."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from api import cli as api_cli
from api.catenax import SPEC_VERSION, passport_identifier, schema_errors
from circular import cli
from ledger import cli as ledger_cli

from .conftest import GTIN_A, GTIN_B, RESOLVER, World

OPERATOR = {
    "identifier": "9506000000015",
    "street": "Rua das Flores",
    "houseNumber": "12",
    "postCode": "4050-262",
    "city": "Porto",
    "country": "PT",
    "email": "passports@brand-a.example",
    "phone": "+351 22 000 0000",
}
PRODUCT = {
    "name": "Organic cotton T-shirt",
    "categoryCode": "282",
    "categoryName": "Wearing apparel, except fur apparel",
    "facilityGln": "9506000000008",
    "facilityName": "Brand A sewing plant",
    "productionCountry": "PT",
    "lifespanYears": 5,
    "volumeCm3": 1200,
    "grossWeightGrams": 215,
    "grossVolumeCm3": 1500,
}
CERTIFICATE = "https://certs.example/catenax-gots-4410"


class _Borrowed:
    """The world's service, lent to the CLI: the command's `close()` must not close the world."""

    def __init__(self, service: Any) -> None:
        self._service = service

    def __getattr__(self, name: str) -> Any:
        return getattr(self._service, name)

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def shirt(world: World) -> dict[str, Any]:
    assert world.client.put("/api/v1/operator", json=OPERATOR, headers=world.auth("brand")).status_code == 200
    put = world.client.put(f"/api/v1/products/{GTIN_A}", json=PRODUCT, headers=world.auth("brand"))
    assert put.status_code == 200, put.text
    cotton = world.lot(code="CO", origin="IN", certificates=[CERTIFICATE])
    polyester = world.lot(code="PES", share=3_000, origin="TR")
    item = world.item([(cotton["lotId"], 150), (polyester["lotId"], 50)])
    assert world.act(item, "sold", "retailer").status_code == 201
    return {"item": item, "path": f"/01/{GTIN_A}/21/{item['serial']}"}


def test_the_passport_is_valid_catenax_with_real_data(world: World, shirt: dict[str, Any]) -> None:
    response = world.client.get(shirt["path"] + "/catenax")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert schema_errors(body) == []
    metadata = body["metadata"]
    assert metadata["specVersion"] == SPEC_VERSION
    assert metadata["passportIdentifier"] == passport_identifier(RESOLVER + shirt["path"])
    assert metadata["version"] == response.headers["passport-version"]
    operator = metadata["economicOperator"]
    assert operator["economicOperatorIdentification"] == "9506000000015"
    assert operator["economicOperatorNames"] == ["Brand A"]
    assert operator["economicOperatorAddress"]["locality"]["value"] == "Porto"
    contact = {"email": "passports@brand-a.example", "phoneNumber": "+351 22 000 0000"}
    assert operator["economicOperatorContact"] == contact
    issued, expires = metadata["issueDate"], metadata["expirationDate"]
    assert int(expires[:4]) - int(issued[:4]) == 5 and expires[4:] == issued[4:]  # the product's lifetime
    codes = {c["key"]: c["value"] for c in body["identification"]["codes"]}
    assert codes["GTIN"] == GTIN_A and codes["GS1 Digital Link"] == RESOLVER + shirt["path"]
    assert body["identification"]["serialInformation"] == [{"key": "partInstanceId", "value": shirt["item"]["serial"]}]
    assert body["identification"]["partClassification"][0]["id"] == "282"
    listed = body["composition"]["materialInformation"]["materials"]
    materials = {m["materialIdentifications"][0]["materialName"]: m for m in listed}
    assert set(materials) == {"Cotton", "Polyester"}
    assert materials["Cotton"]["materialIdentifications"][0]["materialId"] == "9004-34-6"
    assert materials["Polyester"]["recycled"] == 30.0 and materials["Cotton"]["recycled"] == 0.0
    assert materials["Cotton"]["concentrationInformation"]["concentration"]["concentrationValue"] == 75.0
    assert materials["Cotton"]["materialOrigin"] == "IN"
    dimension = body["characteristics"]["physicalDimension"]
    assert dimension["weight"] == {"value": 200.0, "unit": "unit:gram"}
    assert dimension["grossWeight"] == {"value": 215.0, "unit": "unit:gram"}
    assert body["sustainability"]["productStatus"] == "original"


def test_the_linkset_lists_it(world: World, shirt: dict[str, Any]) -> None:
    entry = world.client.get(shirt["path"] + "?linkType=linkset").json()["linkset"][0]
    dpp = [link for link in entry["https://gs1.org/voc/dpp"] if link["href"].endswith("/catenax")]
    assert len(dpp) == 1 and dpp[0]["type"] == "application/json"


def test_restricted_data_follows_the_tier(world: World, shirt: dict[str, Any]) -> None:
    """A lot's certificate is an authority's: in the material's documents for an authority only."""
    public = world.client.get(shirt["path"] + "/catenax")
    authority = world.client.get(shirt["path"] + "/catenax", headers=world.auth("authority"))
    assert CERTIFICATE not in public.text and public.headers["passport-access"] == "public"
    assert CERTIFICATE in authority.text and authority.headers["cache-control"] == "private, no-store"
    assert schema_errors(authority.json()) == []


def test_missing_master_data_is_named_not_invented(world: World) -> None:
    lot = world.lot(role="brand_b", gtin=None, code="CO")
    tote = world.item([(lot["lotId"], 100)], role="brand_b", gtin=GTIN_B)
    response = world.client.get(f"/01/{GTIN_B}/21/{tote['serial']}/catenax")
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert "operator data" in detail and "expected lifetime" in detail and "gross weight" in detail


def test_operator_data_is_the_brands_and_checked(world: World) -> None:
    assert world.client.put("/api/v1/operator", json=OPERATOR, headers=world.auth("retailer")).status_code == 403
    for field, bad in (("identifier", "9506000000016"), ("country", "XX"), ("email", "not-an-email"),
                       ("postCode", "a" * 12), ("identifier", "BPNL123")):
        answer = world.client.put("/api/v1/operator", json={**OPERATOR, field: bad}, headers=world.auth("brand"))
        assert answer.status_code == 422, (field, answer.text)
    got = world.client.get("/api/v1/operator", headers=world.auth("brand"))
    assert got.status_code == 200 and got.json()["identifier"] == OPERATOR["identifier"]


@pytest.mark.parametrize(
    ("fmt", "resource"), [("html", "passport"), ("jsonld", "passport.jsonld"), ("untp", "credential"),
                          ("catenax", "catenax")]
)
@pytest.mark.parametrize(("tier", "reader"), [("public", None), ("legitimate-interest", "recycler"),
                                              ("authority", "authority")])
def test_the_cli_prints_what_the_resolver_serves(
    world: World, shirt: dict[str, Any], monkeypatch: pytest.MonkeyPatch, fmt: str, resource: str, tier: str,
    reader: str | None,
) -> None:
    """Same version, same tier: the same bytes from `circular passport` and from HTTP."""
    monkeypatch.setattr(ledger_cli, "open_service", lambda *_: _Borrowed(world.service))
    monkeypatch.setattr(api_cli, "open_service", lambda *_: _Borrowed(world.service))
    monkeypatch.setattr(api_cli, "load_api_settings", lambda: world.client.app.state.circular.api_settings)  # type: ignore[attr-defined]
    headers = world.auth(reader) if reader else {}
    link = f"http://localhost:8000/01/{GTIN_A[1:]}/21/{shirt['item']['serial']}"  # another host, a GTIN-13
    current = world.client.get(f"{shirt['path']}/{resource}", headers=headers)
    assert current.status_code == 200, current.text
    number = current.headers["passport-version"]
    numbered = world.client.get(f"{shirt['path']}/{resource}?version={number}", headers=headers)
    for served, args in ((current, []), (numbered, ["--version", number])):
        printed = CliRunner().invoke(cli.app, ["passport", link, "--format", fmt, "--as", tier, *args])
        assert printed.exit_code == 0, printed.output
        assert printed.stdout_bytes == served.content
    if fmt == "catenax":
        assert schema_errors(json.loads(current.content)) == []


def test_the_cli_refuses_what_it_cannot_print(
    world: World, shirt: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_cli, "open_service", lambda *_: _Borrowed(world.service))
    link = f"{RESOLVER}{shirt['path']}"
    for args, words in (
        (["--format", "pdf"], "--format is one of"),
        (["--as", "everyone"], "a tier is one of"),
        (["--version", "999"], "there is no version 999"),
    ):
        answer = CliRunner().invoke(cli.app, ["passport", link, *args])
        assert answer.exit_code == 1 and words in answer.output, answer.output
    product_only = CliRunner().invoke(cli.app, ["passport", f"{RESOLVER}/01/{GTIN_A}"])
    assert product_only.exit_code == 1 and "no serial" in product_only.output
