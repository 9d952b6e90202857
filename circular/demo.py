"""The whole circular loop on the embedded chain, through the API as brands, recyclers and consumers use it.

Virgin lots → a run of 1,000 items → QR passports → a consumer's scan → sale, use and collection → recycling into a
recovered lot → a second-generation item made partly from it → anchoring → the second-generation item's evidence
bundle verified against the chain. Every write goes through the API's authenticated endpoints, which make the
contract call and record the signed EPCIS event; reads go through the public GS1 Digital Link resolver.
"""

from __future__ import annotations

import json
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ledger.evidence import verify_bundle
from ledger.service import LedgerService
from ledger.settings import Settings

RESOLVER = "https://id.circular.example"
GTIN_A = "09506000134352"  # brand A's T-shirt, under prefix 9506000
GTIN_A_LOTS = "09506000134369"  # brand A's GTIN for its material lots
GTIN_B = "04012345123456"  # brand B's second-generation product, under prefix 4012345
GTIN_B_LOTS = "04012345123463"
ITEMS_IN_RUN = 1000
RETURNED = 10
QR_ITEMS = 3
COTTON_G, POLYESTER_G = 150, 50
RECOVERED_G = 1_400  # recycled cotton: at most the 1,500 g of cotton in the ten T-shirts
GEN2_RECOVERED_G, GEN2_VIRGIN_G = 120, 80
# Demo keys are throwaway development keys on a throwaway chain; real deployments set their own password.
DEMO_KEYSTORE_PASSWORD = "circular-demo"


class DemoError(RuntimeError):
    """A step of the demo did not do what it should."""


def run_demo(out: Path, console: Console, *, rpc_url: str | None = None, db_url: str | None = None) -> dict[str, Any]:
    with warnings.catch_warnings():
        # The demo drives the API in process through Starlette's test client, whose httpx transport Starlette 1.x
        # announces it will replace; the notice says nothing about the demo, so it is not printed in its output.
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient

    from api import add_actor, create_app
    from api.db import upgrade

    if out.exists():
        shutil.rmtree(out)
    (out / "qr").mkdir(parents=True)
    settings = Settings(
        data_dir=out / "state",
        rpc_url=rpc_url,
        db_url=db_url,
        resolver_base_url=RESOLVER,
        keystore_password=DEMO_KEYSTORE_PASSWORD,
        batch_size=5000,
        batch_max_wait_s=0,
        run_worker_in_api=False,
    )
    settings.data_dir.mkdir(parents=True)
    upgrade(settings.database_url)
    service = LedgerService(settings)
    started = time.perf_counter()
    try:
        console.rule(f"circular-ledger demo ({'chain at ' + rpc_url if rpc_url else 'embedded chain'})")
        admin, anchorer = service.account("admin"), service.account("anchorer")
        ledger = service.deploy(admin)
        ledger.grant_role(admin, "anchorer", anchorer.address)
        app = create_app(settings, service, run_worker=False)
        with TestClient(app, base_url=RESOLVER) as client:
            keys: dict[str, str] = {}
            ids: dict[str, int] = {}
            with service.sessions() as session:
                for role, name, prefixes in _cast():
                    actor, key = add_actor(
                        service, session, role, name, prefixes=prefixes, keys=app.state.circular.keys
                    )
                    keys[name], ids[name] = key, actor.id
            console.print(
                f"1. deployed the contracts on chain {service.chain_id}; the admin onboarded Brand A "
                "(GS1 prefix 9506000), Brand B (4012345), a recycler and a retailer, each with an API key; "
                "Brand A authorised the retailer and the recycler as its partners"
            )
            return _story(console, client, service, keys, ids, out, started)
    finally:
        service.close()


def _cast() -> list[tuple[str, str, tuple[str, ...]]]:
    return [
        ("admin", "Admin", ()),
        ("brand", "Brand A", ("9506000",)),
        ("brand", "Brand B", ("4012345",)),
        ("recycler", "Recycler", ()),
        ("retailer", "Retailer", ()),
    ]


def _credential(client: Any, item_path: str, out: Path) -> tuple[Path, str]:
    """The item's UNTP passport credential, found the GS1 way (``linkType=gs1:dpp``, ``Accept: application/vc+jwt``),
    written to `out` and verified with the key the issuer's DID document (served by the resolver) publishes."""
    from urllib.parse import urlsplit

    from joserfc import jws
    from joserfc.jwk import OKPKey

    accept = {"Accept": "application/vc+jwt"}
    found = client.get(f"{item_path}?linkType=gs1:dpp", headers=accept, follow_redirects=False)
    if found.status_code != 307:
        raise DemoError(f"linkType=gs1:dpp: {found.status_code} {found.text[:200]}")
    jwt = _call(client, "GET", urlsplit(found.headers["location"]).path, None).text
    header = jws.extract_compact(jwt.encode()).headers()
    did, _, _ = str(header["kid"]).partition("#")
    document = _call(client, "GET", "/" + "/".join(did.split(":")[3:]) + "/did.json", None).json()
    method = next(m for m in document["verificationMethod"] if m["id"] == header["kid"])
    verified = jws.deserialize_compact(jwt, OKPKey.import_key(method["publicKeyJwk"]), algorithms=[header["alg"]])
    issuer = json.loads(verified.payload)["issuer"]["name"]
    path = out / "passport-B00001.vc.jwt"
    path.write_text(jwt + "\n")
    return path, f"{issuer} ({did})"


def _call(client: Any, method: str, path: str, key: str | None, body: Any = None, expect: int = 200) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = client.request(method, path, json=body, headers=headers)
    if response.status_code != expect:
        raise DemoError(f"{method} {path}: {response.status_code} {response.text[:300]}")
    return response


def _story(
    console: Console,
    client: Any,
    service: LedgerService,
    keys: dict[str, str],
    ids: dict[str, int],
    out: Path,
    started: float,
) -> dict[str, Any]:
    brand_a, brand_b, recycler, retailer = (keys[n] for n in ("Brand A", "Brand B", "Recycler", "Retailer"))
    # Brand A works with the retailer and the recycler: the contract lets no one else move its items.
    for partner in ("Retailer", "Recycler"):
        _call(client, "POST", "/api/v1/partners", brand_a, {"actorId": ids[partner]}, 201)
    _call(
        client,
        "PUT",
        f"/api/v1/products/{GTIN_A}",
        brand_a,
        {
            "name": "Organic cotton T-shirt",
            "description": "Crew-neck T-shirt, 75% cotton, 25% polyester.",
            "care": "Wash at 30 °C, line dry.",
            "repair": "Free seam repairs at any Brand A store.",
            "endOfLife": "Return it: the fibres are recycled into new yarn.",
            "returnInfo": "Drop it at a collection point; ask for a drop-off code below.",
            # What a UNTP passport credential requires: UN CPC 2.1 group 282, the sewing plant's GLN, its country.
            "categoryCode": "282",
            "categoryName": "Wearing apparel, except fur apparel",
            "facilityGln": "9506000000008",
            "facilityName": "Brand A sewing plant",
            "productionCountry": "PT",
            # What a Catena-X passport requires beyond that: expected lifetime, its volume, and as sold (folded, with
            # its tag and paper band).
            "lifespanYears": 5,
            "volumeCm3": 1_200,
            "grossWeightGrams": 215,
            "grossVolumeCm3": 1_500,
        },
    )
    _call(
        client,
        "PUT",
        f"/api/v1/products/{GTIN_B}",
        brand_b,
        {
            "name": "Recycled-cotton tote bag",
            "description": "Made with fibres recovered from worn T-shirts.",
            "endOfLife": "Return it for recycling.",
            "categoryCode": "271",
            "categoryName": "Made-up textile articles",
            "facilityGln": "4012345000009",
            "facilityName": "Brand B workshop",
            "productionCountry": "DE",
            "lifespanYears": 8,
            "volumeCm3": 900,
            "grossWeightGrams": 210,
            "grossVolumeCm3": 1_000,
        },
    )
    # Each brand as the economic operator its passports name (Catena-X): legal entity, address, contact.
    operators = {
        brand_a: {
            "identifier": "9506000000015", "street": "Rua das Flores", "houseNumber": "12", "postCode": "4050-262",
            "city": "Porto", "country": "PT", "email": "passports@brand-a.example", "website": "https://brand-a.example",
        },
        brand_b: {
            "identifier": "4012345000016", "street": "Hafenstrasse", "houseNumber": "3", "postCode": "20457",
            "city": "Hamburg", "country": "DE", "email": "service@brand-b.example", "phone": "+49 40 1234567",
        },
    }
    for key, operator in operators.items():
        _call(client, "PUT", "/api/v1/operator", key, operator)
    cotton = _call(
        client,
        "POST",
        "/api/v1/lots",
        brand_a,
        {
            "gtin": GTIN_A_LOTS,
            "lotNumber": "CO-2026-001",
            "materialCode": "CO",
            "massGrams": 200_000,
            "recycledShareBps": 0,
            "origin": "IN",
            "certificates": ["https://certs.example/GOTS/CU-2026-17"],
        },
        201,
    ).json()["lot"]
    polyester = _call(
        client,
        "POST",
        "/api/v1/lots",
        brand_a,
        {
            "gtin": GTIN_A_LOTS,
            "lotNumber": "PES-2026-001",
            "materialCode": "PES",
            "massGrams": 100_000,
            "recycledShareBps": 3_000,
            "origin": "TR",
        },
        201,
    ).json()["lot"]
    console.print(
        "2. Brand A registered virgin lots: cotton 200,000 g (GOTS) and polyester 100,000 g (30% pre-consumer recycled)"
    )
    serials = [f"A{n:05d}" for n in range(1, ITEMS_IN_RUN + 1)]
    run = _call(
        client,
        "POST",
        "/api/v1/runs",
        brand_a,
        {
            "gtin": GTIN_A,
            "serials": serials,
            "composition": [
                {"lotId": cotton["lotId"], "grams": COTTON_G},
                {"lotId": polyester["lotId"], "grams": POLYESTER_G},
            ],
        },
        201,
    ).json()
    console.print(
        f"   and made a run of {ITEMS_IN_RUN:,} T-shirts ({COTTON_G} g cotton + {POLYESTER_G} g polyester "
        "each) in one transaction"
    )

    qr_files = []
    for serial in serials[:QR_ITEMS]:
        for kind in ("svg", "png"):
            path = out / "qr" / f"{GTIN_A}-{serial}.{kind}"
            path.write_bytes(_call(client, "GET", f"/01/{GTIN_A}/21/{serial}/qr.{kind}", None).content)
            qr_files.append(str(path))
    console.print(f"3. wrote QR passports (SVG and PNG) of {QR_ITEMS} T-shirts to {out / 'qr'}")

    service.worker(service.account("anchorer")).drain()
    scanned = client.get(
        f"/01/{GTIN_A}/21/{serials[0]}", headers={"Accept": "application/ld+json"}, follow_redirects=True
    )
    if scanned.status_code != 200:
        raise DemoError(f"scan: {scanned.status_code} {scanned.text[:200]}")
    passport = scanned.json()
    parts = ", ".join(
        f"{p['circ:material']} {p['circ:grams']} g ({p['circ:share']:.0%})" for p in passport["circ:composition"]
    )
    console.print(
        f"4. a consumer scanned {RESOLVER}/01/{GTIN_A}/21/{serials[0]}: {passport['name']}: {parts}; "
        f"recycled content {passport['circ:recycledContent']:.1%}; "
        f"verification: {passport['circ:verification']['circ:status']}"
    )

    returned = serials[:RETURNED]
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("selling, wearing and collecting", total=RETURNED)
        for serial in returned:
            for action, key in (("sold", retailer), ("in_use", retailer), ("collected", recycler)):
                _call(
                    client,
                    "POST",
                    "/api/v1/lifecycle-events",
                    key,
                    {"gtin": GTIN_A, "serial": serial, "action": action},
                    201,
                )
            progress.advance(task)
    console.print(f"5. {RETURNED} T-shirts were sold, worn and collected by the recycler")

    recycled = _call(
        client,
        "POST",
        "/api/v1/recycling",
        recycler,
        {
            "items": [{"gtin": GTIN_A, "serial": s} for s in returned],
            "materialCode": "rCO",
            "lotNumber": "RCO-2026-001",
            "massGrams": RECOVERED_G,
        },
        201,
    ).json()
    recovered = recycled["lot"]
    console.print(
        f"6. the recycler recycled them into recovered lot {recovered['uri']}: {RECOVERED_G:,} g of recycled cotton "
        f"from the {RETURNED * COTTON_G:,} g of cotton in the {RETURNED * (COTTON_G + POLYESTER_G):,} g collected "
        "(never more of a material than the items held), 100% recycled, its lineage on-chain"
    )

    _call(
        client,
        "POST",
        f"/api/v1/lots/{recovered['lotId']}/approvals",
        recycler,
        {"operatorId": ids["Brand B"], "grams": RECOVERED_G},
        201,
    )
    virgin_b = _call(
        client,
        "POST",
        "/api/v1/lots",
        brand_b,
        {"gtin": GTIN_B_LOTS, "lotNumber": "CO-B-001", "materialCode": "CO", "massGrams": 50_000, "origin": "EG"},
        201,
    ).json()["lot"]
    _call(
        client,
        "POST",
        "/api/v1/items",
        brand_b,
        {
            "gtin": GTIN_B,
            "serial": "B00001",
            "composition": [
                {"lotId": recovered["lotId"], "grams": GEN2_RECOVERED_G},
                {"lotId": virgin_b["lotId"], "grams": GEN2_VIRGIN_G},
            ],
        },
        201,
    )
    service.worker(service.account("anchorer")).drain()
    gen2_path = f"/01/{GTIN_B}/21/B00001"
    gen2 = client.get(gen2_path, headers={"Accept": "application/ld+json"}, follow_redirects=True).json()
    console.print(
        f"7. Brand B made a tote bag from {GEN2_RECOVERED_G} g recovered + {GEN2_VIRGIN_G} g virgin cotton: "
        f"recycled content {gen2['circ:recycledContent']:.0%}"
    )
    table = Table(title=f"provenance of {RESOLVER}{gen2_path}")
    table.add_column("generation", justify="right")
    table.add_column("lots")
    table.add_column("items of this generation, recycled into the next")
    for generation in gen2["circ:provenance"]:
        lots = ", ".join(
            str(lot.get("materialCode", lot)) if isinstance(lot, dict) else str(lot) for lot in generation["circ:lots"]
        )
        sources = "; ".join(
            f"{group.get('count', len(group.get('serials', [])))} x {group.get('product')} by {group.get('brand')}"
            + (f" ({', '.join(group['serials'][:3])}, …)" if group.get("serials") else "")
            if isinstance(group, dict)
            else str(group)
            for group in generation["circ:sourceItems"]
        )
        table.add_row(str(generation["circ:generation"]), lots, sources or "(the tote bag itself)")
    console.print(table)

    bundle = _call(client, "GET", f"{gen2_path}/evidence", brand_b).json()  # the brand's: it holds every field
    bundle_path = out / "evidence-B00001.json"
    bundle_path.write_text(json.dumps(bundle, indent=2) + "\n")
    verdict = verify_bundle(bundle, service.backend.web3)
    status = "[green]verified[/green]" if verdict.ok else "[red]NOT verified[/red]"
    console.print(
        f"8. anchored every event; circular verify {bundle_path.name}: {status} ({len(verdict.events)} "
        "events: each hash recomputed, signature recovered, Merkle proof and root checked on-chain)"
    )

    credential_path, issuer = _credential(client, gen2_path, out)
    console.print(
        f"9. its passport as a UNTP 0.7.0 credential ({credential_path.name}, application/vc+jwt): signed by "
        f"{issuer}, checked against the key its did:web document publishes"
    )

    with service.sessions() as session:
        from ledger.outbox import Batch

        anchors = [
            {
                "root": "0x" + b.root.hex(),
                "txHash": "0x" + (b.tx_hash or b"").hex(),
                "blockNumber": b.block_number,
                "events": b.event_count,
            }
            for b in session.query(Batch)
        ]
    summary = {
        "chainId": service.chain_id,
        "contracts": service.ledger.deployment.addresses,
        "items": [f"{RESOLVER}/01/{GTIN_A}/21/{s}" for s in serials] + [f"{RESOLVER}{gen2_path}"],
        "qrFiles": qr_files,
        "recoveredLot": recovered["uri"],
        "secondGenerationItem": f"{RESOLVER}{gen2_path}",
        "secondGenerationRecycledContent": gen2["circ:recycledContent"],
        "anchors": anchors,
        "evidenceBundle": str(bundle_path),
        "credential": str(credential_path),
        "verified": verdict.ok,
        "runTxHash": run.get("txHash"),
        "seconds": round(time.perf_counter() - started, 2),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if not verdict.ok:
        raise DemoError(
            "the second-generation item did not verify: " + "; ".join(p for e in verdict.events for p in e.problems)
        )
    return summary
