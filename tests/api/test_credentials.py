"""Brands as credential issuers (``api/credentials.py``): a signing key made with the brand and kept encrypted, the
product master data a UNTP passport needs, and the bitstring a status list encodes."""

from __future__ import annotations

import base64
import json
import stat

import pytest
from sqlalchemy import select

from api import credentials
from api.models import Actor, CredentialStatus
from api.uris import item_uri

from .conftest import GTIN_A, GTIN_B, World


def test_a_brand_gets_an_ed25519_key_kept_encrypted_in_its_keystore(world: World) -> None:
    with world.service.sessions() as session:
        actor = session.get(Actor, world.actor_ids["brand"])
        assert actor is not None
        row = credentials.signing_key_row(session, actor.id)
        assert row is not None and row.alg == "Ed25519"
        assert row.public_jwk["kty"] == "OKP" and row.public_jwk["crv"] == "Ed25519" and "d" not in row.public_jwk
        path = world.settings.keys_dir / f"{actor.key_name}.credential-{row.kid}.jwe"
        assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
        text = path.read_text()
        assert text.count(".") == 4  # a compact JWE: five parts
        header = json.loads(base64.urlsafe_b64decode(text.split(".")[0] + "=="))
        assert header["alg"] == "PBES2-HS512+A256KW" and header["enc"] == "A256GCM"
        assert '"d"' not in text and row.public_jwk["x"] not in text  # nothing readable without the password
        assert credentials.private_key(world.settings, actor, row).thumbprint() == row.kid
    with world.service.sessions() as session:
        retailer = session.get(Actor, world.actor_ids["retailer"])
        assert retailer is not None and credentials.keys_of(session, retailer.id) == []


def test_product_master_data_for_untp_is_validated(world: World) -> None:
    headers = world.auth("brand_b")
    base = {"name": "Tote", "categoryCode": "29220", "categoryName": "Handbags"}
    good = {**base, "facilityGln": "4012345000009", "facilityName": "Mill", "productionCountry": "DE"}
    answer = world.client.put(f"/api/v1/products/{GTIN_B}", json=good, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["facilityGln"] == "4012345000009" and answer.json()["productionCountry"] == "DE"
    for wrong, word in (
        ({"facilityGln": "4012345000008", "facilityName": "Mill"}, "check digit"),
        ({"productionCountry": "XX"}, "country"),
        ({"categoryCode": "12A"}, "categoryCode"),
        ({"categoryCode": "2922", "categoryName": None}, "go together"),
    ):
        answer = world.client.put(f"/api/v1/products/{GTIN_B}", json={**base, **wrong}, headers=headers)
        assert answer.status_code == 422 and word in answer.text, (wrong, answer.text)


@pytest.mark.parametrize("revoked", [[], [0], [5, 7, 131_071], list(range(0, 200, 3))])
def test_a_status_list_sets_exactly_its_revoked_bits(revoked: list[int]) -> None:
    encoded = credentials.encode_list(revoked, credentials.MIN_LIST_BITS)
    assert encoded.startswith("u") and "=" not in encoded
    assert encoded == credentials.encode_list(revoked, credentials.MIN_LIST_BITS)  # the same bits, the same bytes
    bits = credentials.decode_list(encoded)
    assert len(bits) * 8 == credentials.MIN_LIST_BITS
    assert [i for i in range(credentials.MIN_LIST_BITS) if credentials.bit(bits, i)] == sorted(revoked)
    if revoked:
        first = bits[revoked[0] // 8]
        assert first & (0x80 >> (revoked[0] % 8))  # the leftmost bit is index 0


def test_did_web_names_the_resolver_host_and_port() -> None:
    assert credentials.brand_did("https://id.circular.example", 2) == "did:web:id.circular.example:brands:2"
    assert credentials.brand_did("http://127.0.0.1:8000/", 7) == "did:web:127.0.0.1%3A8000:brands:7"
    assert credentials.did_document_url("http://127.0.0.1:8000/", 7) == "http://127.0.0.1:8000/brands/7/did.json"


def test_archived_status_records_are_taken_only_from_the_items_brand(world: World) -> None:
    """`restore_status` (what rebuild and sync replay): a record signed by the item's brand gives the item its index
    and revocation back; one signed by another brand, filed under another index, or naming no registered item is
    ignored with a reason; of two records naming one item, the higher index is the one kept."""
    item = world.item([(world.lot()["lotId"], 100)])
    subject = item_uri(world.settings.resolver_base_url, GTIN_A, item["serial"])
    with world.service.sessions() as session:
        brand = session.get(Actor, world.actor_ids["brand"])
        other = session.get(Actor, world.actor_ids["brand_b"])
        assert brand is not None and other is not None
        record = {"subject": subject, "brandId": brand.id, "revokedAt": "2026-01-02T03:04:05.678Z", "reason": "recall"}
        documents = [
            ("900", other.address, {**record, "index": 900}),  # another brand's signature
            ("901", brand.address, {**record, "index": 902}),  # filed under another index
            ("903", brand.address, {**record, "index": 903, "subject": subject + "X"}),  # no such item
            ("700", brand.address, {**record, "index": 700, "revokedAt": None}),  # an earlier allocation
            ("800", brand.address, {**record, "index": 800}),
        ]
        done = credentials.restore_status(session, world.settings.resolver_base_url, documents)
        assert (done.indexes, done.revocations, done.highest) == (1, 1, 800)
        assert len(done.problems) == 3
        assert any("not signed by the brand" in p for p in done.problems)
        row = session.scalar(select(CredentialStatus).where(CredentialStatus.subject == subject))
        assert row is not None and row.id == 800 and row.reason == "recall"
        assert row.revoked_at is not None and row.revoked_at.year == 2026
        session.rollback()
