"""An item's passport as a UNTP 0.7.0 Digital Product Passport credential: valid against the vendored schema, verified
by an independent verifier (npm ``jose`` in node, the key resolved through the brand's did:web document), refused
once altered, revocable (its status bit reads 1), found through the linkset and ``linkType=gs1:dpp``, and still
verifiable after the brand's key rotates. On SQLite and PostgreSQL (the ``world`` fixture)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from api import credentials
from api.models import Actor
from api.untp import material_provenance

from .conftest import GTIN_A, RESOLVER, World

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "api" / "standards" / "untp" / "DigitalProductPassport-0.7.0.schema.json"
VERIFIER = Path(__file__).with_name("untp_verifier.mjs")
VC_JWT = "application/vc+jwt"
MASTER_DATA = {
    "categoryCode": "282",
    "categoryName": "Wearing apparel, except fur apparel",
    "facilityGln": "9506000000008",
    "facilityName": "Brand A sewing plant",
    "productionCountry": "PT",
}


@cache
def validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(SCHEMA.read_text()), format_checker=FormatChecker())


def schema_errors(credential: dict[str, Any]) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator().iter_errors(credential)]


def payload(jwt: str) -> dict[str, Any]:
    part = jwt.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def header(jwt: str) -> dict[str, Any]:
    part = jwt.split(".")[0]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def node_verify(tmp_path: Path, jwt: str, documents: dict[str, Any], status_list: str | None = None) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "jose").exists():
        pytest.skip("node and node_modules/jose (make setup) verify the credential")
    source = tmp_path / "input.json"
    source.write_text(json.dumps({"jwt": jwt, "documents": documents, "statusList": status_list}))
    done = subprocess.run([node, str(VERIFIER), str(source)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert (done.returncode == 0) == answer["ok"], done.stderr
    return answer


def did_documents(world: World, brand: str = "brand") -> dict[str, Any]:
    brand_id = world.actor_ids[brand]
    url = credentials.did_document_url(RESOLVER, brand_id)
    answer = world.client.get(f"/brands/{brand_id}/did.json")
    assert answer.status_code == 200, answer.text
    return {url: answer.json()}


@pytest.fixture()
def item(world: World) -> dict[str, Any]:
    body = {"name": "Organic cotton T-shirt", **MASTER_DATA}
    answer = world.client.put(f"/api/v1/products/{GTIN_A}", json=body, headers=world.auth("brand"))
    assert answer.status_code == 200, answer.text
    cotton = world.lot(origin="IN")
    polyester = world.lot(code="PES", share=3_000, origin="TR")
    unknown = world.lot(origin="a farm somewhere")
    return world.item([(cotton["lotId"], 140), (polyester["lotId"], 50), (unknown["lotId"], 10)])


def _credential(world: World, item: dict[str, Any], query: str = "") -> str:
    answer = world.client.get(f"/01/{GTIN_A}/21/{item['serial']}/credential{query}")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == VC_JWT
    return answer.text


def test_the_credential_is_a_valid_untp_passport_of_the_item(world: World, item: dict[str, Any]) -> None:
    jwt = _credential(world, item)
    assert header(jwt)["typ"] == "vc+jwt" and header(jwt)["alg"] == "Ed25519"
    vc = payload(jwt)
    assert schema_errors(vc) == []
    did = f"did:web:id.circular.example:brands:{world.actor_ids['brand']}"
    assert vc["issuer"] == {"type": ["CredentialIssuer"], "id": did, "name": "Brand A"}
    assert header(jwt)["kid"].startswith(did + "#")
    product = vc["credentialSubject"]
    assert product["id"] == f"{RESOLVER}/01/{GTIN_A}/21/{item['serial']}"
    assert product["itemNumber"] == item["serial"] and product["idGranularity"] == "item"
    assert product["productCategory"][0]["code"] == "282"
    assert product["producedAtFacility"]["registeredId"] == "9506000000008"
    assert product["countryOfProduction"] == {"countryCode": "PT", "countryName": "Portugal"}
    materials = {(m["name"], m["originCountry"]["countryCode"]): m for m in product["materialProvenance"]}
    assert set(materials) == {("Cotton", "IN"), ("Polyester", "TR")}  # the lot of no known country is left out
    assert materials[("Cotton", "IN")]["massFraction"] == 0.7
    assert materials[("Polyester", "TR")]["recycledMassFraction"] == 0.3
    assert materials[("Cotton", "IN")]["materialType"]["code"] == "11"  # EU 1007/2011 Annex I no. 11
    claim = product["performanceClaim"][0]
    assert claim["claimedPerformance"][0]["measure"] == {"value": 7.5, "unit": "P1"}  # 15 g of 200 recycled
    status = vc["credentialStatus"]
    assert status["type"] == "BitstringStatusListEntry" and isinstance(status["statusListIndex"], int)
    text = json.dumps(vc)
    for private in ("lotId", "lotNumber", "0x", "certificates", "a farm somewhere"):
        assert private not in text  # lots, their numbers, signer accounts and free-text origins stay out
    # Same version, same bytes (Ed25519 is deterministic; every URL is the configured resolver's).
    assert _credential(world, item, "?version=" + str(vc["name"].split("version ")[1].rstrip(")"))) == jwt


def test_an_independent_verifier_checks_it_through_the_did_document(
    world: World, item: dict[str, Any], tmp_path: Path
) -> None:
    jwt = _credential(world, item)
    documents = did_documents(world)
    document = next(iter(documents.values()))
    chain = f"eip155:{world.service.chain_id}:"
    assert any(str(m.get("blockchainAccountId", "")).startswith(chain) for m in document["verificationMethod"])
    answer = node_verify(tmp_path, jwt, documents)
    assert answer["ok"] and answer["payload"] == payload(jwt)
    # An altered payload (one more recycled percent) keeps the signature of the original: refused.
    vc = payload(jwt)
    vc["credentialSubject"]["performanceClaim"][0]["claimedPerformance"][0]["measure"]["value"] = 99
    forged = base64.urlsafe_b64encode(json.dumps(vc).encode()).decode().rstrip("=")
    parts = jwt.split(".")
    refused = node_verify(tmp_path, f"{parts[0]}.{forged}.{parts[2]}", documents)
    assert not refused["ok"] and "signature" in refused["error"]
    # Another brand's DID document does not hold the key.
    other = did_documents(world, "brand_b")
    stolen = {next(iter(documents)): next(iter(other.values()))}
    assert not node_verify(tmp_path, jwt, stolen)["ok"]


def test_revocation_flips_the_items_bit(world: World, item: dict[str, Any], tmp_path: Path) -> None:
    jwt = _credential(world, item)
    index = payload(jwt)["credentialStatus"]["statusListIndex"]
    brand_id = world.actor_ids["brand"]

    def status_list() -> str:
        answer = world.client.get(f"/brands/{brand_id}/status/revocation")
        assert answer.status_code == 200 and answer.headers["content-type"] == VC_JWT
        return answer.text

    before = status_list()
    assert node_verify(tmp_path, jwt, did_documents(world), before)["revoked"] is False
    body = {"gtin": GTIN_A, "serial": item["serial"], "reason": "sold as a counterfeit's twin"}
    refused = world.post("/api/v1/credential-revocations", "brand_b", body)
    assert refused.status_code == 403
    done = world.post("/api/v1/credential-revocations", "brand", body)
    assert done.status_code == 201, done.text
    assert done.json()["statusListIndex"] == index and done.json()["alreadyRevoked"] is False
    after = status_list()
    bits = credentials.decode_list(payload(after)["credentialSubject"]["encodedList"])
    assert credentials.bit(bits, index) == 1
    assert node_verify(tmp_path, jwt, did_documents(world), after)["revoked"] is True
    again = world.post("/api/v1/credential-revocations", "brand", body)
    assert again.status_code == 201 and again.json()["alreadyRevoked"] is True
    unknown = world.post("/api/v1/credential-revocations", "brand", {**body, "serial": "NOPE1"})
    assert unknown.status_code == 404


def test_the_linkset_lists_it_and_link_type_dpp_redirects_to_it(world: World, item: dict[str, Any]) -> None:
    path = f"/01/{GTIN_A}/21/{item['serial']}"
    linkset = world.client.get(f"{path}?linkType=linkset").json()["linkset"][0]
    dpp = linkset["https://gs1.org/voc/dpp"]
    listed = next(link for link in dpp if link.get("type") == VC_JWT)
    assert listed["href"] == f"{RESOLVER}{path}/credential"
    answer = world.client.get(f"{path}?linkType=gs1:dpp", headers={"Accept": VC_JWT}, follow_redirects=False)
    assert answer.status_code == 307 and answer.headers["location"] == f"{RESOLVER}{path}/credential"
    page = world.client.get(f"{path}/passport")
    assert f"{path}/credential" in page.text and VC_JWT in page.text


def test_rotation_keeps_old_credentials_verifiable(world: World, item: dict[str, Any], tmp_path: Path) -> None:
    old = _credential(world, item)
    with world.service.sessions() as session:
        brand = session.get(Actor, world.actor_ids["brand"])
        assert brand is not None
        credentials.rotate_key(world.settings, session, brand)
        session.commit()
    new = _credential(world, item)
    assert header(new)["kid"] != header(old)["kid"] and payload(new) == payload(old)
    documents = did_documents(world)
    assert node_verify(tmp_path, old, documents)["ok"] and node_verify(tmp_path, new, documents)["ok"]


def test_a_product_without_untp_master_data_gets_a_clear_409(world: World) -> None:
    from .conftest import GTIN_B

    answer = world.client.put(f"/api/v1/products/{GTIN_B}", json={"name": "Bare"}, headers=world.auth("brand_b"))
    assert answer.status_code == 200
    lot = world.lot(role="brand_b", gtin=None)
    made = world.item([(lot["lotId"], 100)], role="brand_b", gtin=GTIN_B)
    answer = world.client.get(f"/01/{GTIN_B}/21/{made['serial']}/credential")
    assert answer.status_code == 409 and "UN CPC category" in answer.json()["detail"]


def test_materials_without_a_country_are_left_out() -> None:
    content = {
        "materials": [
            {"material": "Cotton", "material_code": "CO", "grams": 60, "share": 0.6, "recycled_share": 0.0,
             "origin_country": "EG"},
            {"material": "Recycled cotton", "material_code": "rCO", "grams": 40, "share": 0.4, "recycled_share": 1.0,
             "origin_country": None},
        ],
    }
    assert [(m["name"], m["massFraction"]) for m in material_provenance(content)] == [("Cotton", 0.6)]


def test_the_command_line_revokes_and_rotates(
    world: World, item: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from circular.cli import app

    jwt = _credential(world, item)
    index = payload(jwt)["credentialStatus"]["statusListIndex"]
    monkeypatch.setenv("CIRCULAR_KEYSTORE_PASSWORD", "api-tests")
    where = ["--data-dir", str(world.settings.data_dir)]
    if world.settings.db_url:
        where += ["--db", world.settings.db_url]
    runner = CliRunner()
    link = f"https://another.host.example/01/{GTIN_A}/21/{item['serial']}"  # any host of the resolver
    done = runner.invoke(app, ["credentials", "revoke", link, "--reason", "recalled", *where])
    assert done.exit_code == 0, done.output
    assert f"bit {index} of" in done.output
    answer = world.client.get(f"/brands/{world.actor_ids['brand']}/status/revocation")
    assert credentials.bit(credentials.decode_list(payload(answer.text)["credentialSubject"]["encodedList"]), index)
    unknown = runner.invoke(app, ["credentials", "revoke", f"{RESOLVER}/01/{GTIN_A}/21/NOPE9", *where])
    assert unknown.exit_code != 0 and "no registered item" in unknown.output
    rotated = runner.invoke(app, ["credentials", "rotate-key", "--brand", "Brand A", *where])
    assert rotated.exit_code == 0, rotated.output
    new = _credential(world, item)
    assert header(new)["kid"] != header(jwt)["kid"] and header(new)["kid"] in rotated.output.replace("\n", "")
    documents = did_documents(world)
    assert node_verify(tmp_path, jwt, documents)["ok"] and node_verify(tmp_path, new, documents)["ok"]


def test_a_brand_key_configured_in_the_environment_is_used(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from joserfc.jwk import OKPKey

    from api import add_actor

    key = OKPKey.generate_key("Ed25519")
    name = world.unique("Brand Env ")
    key_name = world.unique("env-brand-").lower()
    account = "0x" + "5a" * 32
    suffix = key_name.upper().replace("-", "_")
    monkeypatch.setenv(f"CIRCULAR_KEY_{suffix}", account)
    monkeypatch.setenv(f"CIRCULAR_CREDENTIAL_KEY_{suffix}", json.dumps(key.as_dict(private=True)))
    with world.service.sessions() as session:
        actor, _ = add_actor(world.service, session, "brand", name, key_name=key_name)
        row = credentials.signing_key_row(session, actor.id)
        assert row is not None and row.kid == key.thumbprint()
        assert not list(world.settings.keys_dir.glob(f"{key_name}.credential-*"))  # nothing written to disk
