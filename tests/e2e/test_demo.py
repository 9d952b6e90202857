"""The demo's story, end to end, asserting every step: the decoded QR URI, the composition sums, the recycled share and
the generation-two provenance. On the embedded default, and on Anvil with PostgreSQL as `--rpc`/`--db` would run it."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from rich.console import Console

from circular.demo import (
    COTTON_G,
    DEMO_KEYSTORE_PASSWORD,
    GEN2_RECOVERED_G,
    GEN2_VIRGIN_G,
    GTIN_A,
    ITEMS_IN_RUN,
    POLYESTER_G,
    QR_ITEMS,
    RECOVERED_G,
    RESOLVER,
    RETURNED,
    run_demo,
)
from ledger.client import ItemState
from ledger.evidence import verify_bundle
from ledger.ids import item_id
from ledger.projection import ChainItem, ChainLot, Projector
from ledger.service import LedgerService
from ledger.settings import Settings
from tests.conftest import AnvilNode

ROOT = Path(__file__).resolve().parents[2]


def _check_story(out: Path, summary: dict, rpc_url: str | None, db_url: str | None) -> None:
    assert summary["verified"] is True
    assert len(summary["items"]) == ITEMS_IN_RUN + 1
    pngs = [Path(f) for f in summary["qrFiles"] if f.endswith(".png")]
    assert len(pngs) == QR_ITEMS
    for n, png in enumerate(sorted(pngs), start=1):
        decoded = zxingcpp.read_barcodes(Image.open(png))
        assert [d.text for d in decoded] == [f"{RESOLVER}/01/{GTIN_A}/21/A{n:05d}"]
    assert summary["secondGenerationRecycledContent"] == pytest.approx(
        GEN2_RECOVERED_G / (GEN2_RECOVERED_G + GEN2_VIRGIN_G))
    bundle = json.loads(Path(summary["evidenceBundle"]).read_text())
    assert bundle["item"] == summary["secondGenerationItem"]

    service = LedgerService(Settings(data_dir=out / "state", rpc_url=rpc_url, db_url=db_url))
    try:
        ledger = service.ledger
        assert ledger.item(item_id(GTIN_A, "A00001"))["state"] is ItemState.RECYCLED
        assert ledger.item(item_id(GTIN_A, f"A{RETURNED + 1:05d}"))["state"] is ItemState.NONE  # lazy, untouched
        assert verify_bundle(bundle, service.backend.web3).ok
        with service.sessions() as session:  # the story, rebuilt from the chain's logs alone
            for table in (ChainItem, ChainLot):
                session.query(table).delete()
            Projector(ledger).rebuild(session)
            gen2 = session.query(ChainItem).filter_by(serial="B00001").one()
            assert sum(grams for _, grams in gen2.composition) == GEN2_RECOVERED_G + GEN2_VIRGIN_G
            recovered = session.get_one(ChainLot, gen2.composition[0][0])
            assert recovered.recycled_share_bps == 10_000 and recovered.mass_grams == RECOVERED_G
            sources = session.query(ChainItem).filter(ChainItem.item_id.in_(recovered.source_items or [])).all()
            assert sorted(i.serial for i in sources) == [f"A{n:05d}" for n in range(1, RETURNED + 1)]
            assert all(sum(g for _, g in i.composition) == COTTON_G + POLYESTER_G for i in sources)
            assert session.query(ChainItem).filter_by(gtin=GTIN_A).count() == ITEMS_IN_RUN
            session.rollback()
    finally:
        service.close()


def _check_credentials(out: Path, rpc_url: str | None, db_url: str | None) -> None:
    """Every item the demo makes has a UNTP passport credential, valid against the vendored UNTP 0.7.0 schema."""
    from jsonschema import Draft202012Validator, FormatChecker
    from sqlalchemy import select

    from api.models import Item
    from api.untp import render
    from ledger.versions import version

    schema = json.loads((ROOT / "api" / "standards" / "untp" / "DigitalProductPassport-0.7.0.schema.json").read_text())
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    settings = Settings(
        data_dir=out / "state", rpc_url=rpc_url, db_url=db_url, keystore_password=DEMO_KEYSTORE_PASSWORD
    )
    service = LedgerService(settings)
    checked = 0
    try:
        with service.sessions() as session:
            for gtin, serial in session.execute(select(Item.gtin, Item.serial).order_by(Item.id)).all():
                stored = version(session, "passport", f"{RESOLVER}/01/{gtin}/21/{serial}")
                assert stored is not None, serial
                made = render(session, settings, stored.document)
                errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(made.credential)]
                assert errors == [], (serial, errors[:5])
                assert made.credential["credentialSubject"]["materialProvenance"], serial
                checked += 1
    finally:
        service.close()
    assert checked == ITEMS_IN_RUN + 1
    jwt = Path(json.loads((out / "summary.json").read_text())["credential"]).read_text().strip()
    assert jwt.count(".") == 2  # the tote bag's credential as the demo found it, a compact JWS


def _check_catenax(out: Path, rpc_url: str | None, db_url: str | None) -> None:
    """Every item the demo makes has a Catena-X passport valid against the vendored 7.0.0 schema, for the public and
    for an authority, with the GTIN, its materials' recycled share and the brand as economic operator."""
    from jsonschema import Draft4Validator
    from sqlalchemy import select

    from api.access import Tier
    from api.catenax import SPEC_VERSION, render, schema
    from api.models import Item
    from ledger.versions import version

    validator = Draft4Validator(schema())
    settings = Settings(
        data_dir=out / "state", rpc_url=rpc_url, db_url=db_url, keystore_password=DEMO_KEYSTORE_PASSWORD
    )
    service = LedgerService(settings)
    checked = 0
    try:
        with service.sessions() as session:
            for gtin, serial in session.execute(select(Item.gtin, Item.serial).order_by(Item.id)).all():
                stored = version(session, "passport", f"{RESOLVER}/01/{gtin}/21/{serial}")
                assert stored is not None, serial
                envelope = json.loads(stored.document)
                for tier in (Tier.PUBLIC, Tier.AUTHORITY):
                    passport = render(envelope, RESOLVER, tier)
                    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(passport)]
                    assert errors == [], (serial, tier, errors[:5])
                assert passport["metadata"]["specVersion"] == SPEC_VERSION
                assert {"key": "GTIN", "value": gtin, "description": "GS1 Global Trade Item Number"} in passport[
                    "identification"
                ]["codes"]
                materials = passport["composition"]["materialInformation"]["materials"]
                assert materials and all(m["materialIdentifications"] for m in materials), serial
                assert passport["metadata"]["economicOperator"]["economicOperatorNames"], serial
                checked += 1
    finally:
        service.close()
    assert checked == ITEMS_IN_RUN + 1


def test_demo_on_the_embedded_chain(tmp_path: Path) -> None:
    out = tmp_path / "demo-out"
    with open(tmp_path / "demo.log", "w") as log:
        summary = run_demo(out, Console(file=log))
    _check_story(out, summary, None, None)
    _check_credentials(out, None, None)
    _check_catenax(out, None, None)


@pytest.mark.slow
@pytest.mark.postgres
def test_demo_on_anvil_and_postgresql(tmp_path: Path) -> None:
    from sqlalchemy import create_engine, text

    schema = f"demo_{uuid.uuid4().hex[:10]}"
    admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test")
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    db_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    node = AnvilNode()
    try:
        out = tmp_path / "demo-out"
        with open(tmp_path / "demo.log", "w") as log:
            summary = run_demo(out, Console(file=log), rpc_url=node.url, db_url=db_url)
        assert summary["chainId"] == 31337
        _check_story(out, summary, node.url, db_url)
        _check_credentials(out, node.url, db_url)
        _check_catenax(out, node.url, db_url)
    finally:
        node.stop()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
