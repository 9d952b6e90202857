"""The demo loop on the embedded chain, end to end.

Virgin lots → a run of 1,000 items → sale, return and collection → recycling into a recovered lot → a
second-generation item made partly from it. Every step is a contract transaction *and* a signed EPCIS 2.0 event;
the events are anchored in Merkle roots and the second-generation item's evidence bundle is verified against the
chain. It prints what it does and writes ``summary.json`` and the evidence bundle.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from .client import ItemState
from .epcis import events as ev
from .evidence import export_bundle, verify_bundle
from .ids import digital_link, item_id, lot_uri
from .service import LedgerService
from .settings import Settings

RESOLVER = "https://id.circular.example"
GTIN_A = "09506000134352"  # brand A's T-shirt, under prefix 9506000
GTIN_A_LOTS = "09506000134369"  # brand A's GTIN for its material lots
GTIN_B = "04012345123456"  # brand B's second-generation product, under prefix 4012345
GTIN_B_LOTS = "04012345123463"
ITEMS_IN_RUN = 1000
RETURNED = 10
COTTON_G, POLYESTER_G = 150, 50


def _code(code: str) -> bytes:
    return code.encode().ljust(32, b"\x00")


def run_demo(out: Path, console: Console) -> dict[str, Any]:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    service = LedgerService(Settings(data_dir=out / "state", resolver_base_url=RESOLVER, batch_size=1000))
    try:
        return _loop(service, out, console, time.perf_counter())
    finally:
        service.close()


def _loop(service: LedgerService, out: Path, console: Console, started: float) -> dict[str, Any]:
    admin, brand_a, brand_b, recycler, retailer, anchorer = (
        service.backend.dev_accounts()[i] for i in (0, 1, 2, 3, 4, 9)
    )
    console.rule("circular-ledger demo (embedded chain)")
    ledger = service.deploy(admin)
    console.print(f"1. deployed the contracts on chain {ledger.deployment.chain_id}")
    for role, who in [
        ("brand", brand_a),
        ("brand", brand_b),
        ("recycler", recycler),
        ("retailer", retailer),
        ("anchorer", anchorer),
    ]:
        ledger.grant_role(admin, role, who.address)
    ledger.assign_prefix(admin, "9506000", brand_a.address)
    ledger.assign_prefix(admin, "4012345", brand_b.address)
    console.print("   admin onboarded brand A (prefix 9506000), brand B (prefix 4012345), a recycler and a retailer")

    cotton = ledger.register_lot(brand_a, GTIN_A_LOTS, "CO-2026-001", _code("CO"), 200_000)
    polyester = ledger.register_lot(brand_a, GTIN_A_LOTS, "PES-2026-001", _code("PES"), 100_000, 3_000)
    cotton_uri = digital_link(RESOLVER, GTIN_A_LOTS, lot="CO-2026-001")
    polyester_uri = digital_link(RESOLVER, GTIN_A_LOTS, lot="PES-2026-001")
    service.record(
        brand_a,
        [
            ev.lot_registered(cotton_uri, "CO", 200_000, 0, certificates=["https://certs.example/GOTS/CU-2026-17"]),
            ev.lot_registered(polyester_uri, "PES", 100_000, 3_000),
        ],
    )
    console.print("2. brand A registered virgin lots: cotton 200,000 g and polyester 100,000 g (30% pre-consumer)")

    serials = [f"A{n:05d}" for n in range(1, ITEMS_IN_RUN + 1)]
    run = ledger.register_run(brand_a, GTIN_A, serials, [(cotton, COTTON_G), (polyester, POLYESTER_G)])
    items_a = [digital_link(RESOLVER, GTIN_A, s) for s in serials]
    service.record(
        brand_a,
        [
            ev.items_manufactured(
                items_a, [(cotton_uri, COTTON_G * ITEMS_IN_RUN), (polyester_uri, POLYESTER_G * ITEMS_IN_RUN)]
            )
        ],
    )
    gas = run.receipt["gasUsed"]
    console.print(
        f"   brand A made a run of {ITEMS_IN_RUN:,} T-shirts ({COTTON_G} g cotton + {POLYESTER_G} g "
        f"polyester each) in one transaction: {gas:,} gas, {gas / ITEMS_IN_RUN:.0f} gas per item"
    )

    returned = serials[:RETURNED]
    ids = [item_id(GTIN_A, s) for s in returned]
    uris = [digital_link(RESOLVER, GTIN_A, s) for s in returned]
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("3. selling, wearing and collecting T-shirts", total=RETURNED)
        for serial, ident in zip(returned, ids, strict=True):
            ledger.transition_run_item(retailer, run, serial, ItemState.SOLD)
            ledger.transition(retailer, ident, ItemState.IN_USE)
            ledger.transition(recycler, ident, ItemState.COLLECTED)
            progress.advance(task)
    service.record(retailer, [ev.lifecycle(ev.Lifecycle.SOLD, uris), ev.lifecycle(ev.Lifecycle.IN_USE, uris)])
    service.record(recycler, [ev.lifecycle(ev.Lifecycle.COLLECTED, uris)])
    console.print(f"3. {RETURNED} T-shirts were sold, worn and collected by the recycler")

    recovered_g = 1_900
    recovered = ledger.recycle(recycler, ids, _code("rCO"), "RCO-2026-001", recovered_g)
    recovered_uri = lot_uri(RESOLVER, recovered)
    service.record(recycler, [ev.items_recycled(uris, recovered_uri, recovered_g, "rCO")])
    console.print(
        f"4. the recycler recycled them into a recovered lot of {recovered_g:,} g "
        f"(of {RETURNED * (COTTON_G + POLYESTER_G):,} g collected), 100% recycled, lineage on-chain"
    )

    ledger.approve_lot(recycler, recovered, brand_b.address, recovered_g)
    virgin_b = ledger.register_lot(brand_b, GTIN_B_LOTS, "CO-B-001", _code("CO"), 50_000)
    virgin_b_uri = digital_link(RESOLVER, GTIN_B_LOTS, lot="CO-B-001")
    gen2_uri = digital_link(RESOLVER, GTIN_B, "B00001")
    ledger.register_item(brand_b, GTIN_B, "B00001", [(recovered, 120), (virgin_b, 80)])
    service.record(
        brand_b,
        [
            ev.lot_registered(virgin_b_uri, "CO", 50_000),
            ev.items_manufactured([gen2_uri], [(recovered_uri, 120), (virgin_b_uri, 80)]),
        ],
    )
    share = 120 * ledger.lot(recovered)["recycledShareBps"] / 10_000 / 200
    console.print(f"5. brand B made a new item from 120 g recovered + 80 g virgin cotton: {share:.0%} recycled content")

    table = Table(title="second-generation item " + gen2_uri)
    for column in ("lot", "grams", "recycled share", "comes from"):
        table.add_column(column)
    table.add_row(recovered_uri, "120", "100%", f"{RETURNED} first-generation T-shirts ({', '.join(returned[:3])}, …)")
    table.add_row(virgin_b_uri, "80", "0%", "virgin cotton")
    console.print(table)

    results = service.worker(anchorer).drain()
    anchored = sum(r.events for r in results)
    console.print(
        f"6. anchored {anchored} signed EPCIS events under {len(results)} Merkle root(s): "
        + ", ".join(f"0x{r.tx_hash.hex()[:12]}…" for r in results)
    )

    bundle = export_bundle(
        service.outbox, service.chain_id, ledger.anchor.address, gen2_uri, [recovered_uri, virgin_b_uri, *uris]
    )
    bundle_path = out / "evidence-B00001.json"
    bundle_path.write_text(json.dumps(bundle, indent=2) + "\n")
    verdict = verify_bundle(bundle, service.backend.web3)
    status = "[green]verified[/green]" if verdict.ok else "[red]NOT verified[/red]"
    console.print(
        f"7. circular verify {bundle_path.name}: {status}: {len(verdict.events)} events, each hash "
        "recomputed, signature recovered, Merkle proof and root checked on-chain"
    )

    summary = {
        "chainId": ledger.deployment.chain_id,
        "contracts": ledger.deployment.addresses,
        "items": [*items_a, gen2_uri],
        "run": {"runId": "0x" + run.run_id.hex(), "itemsRoot": "0x" + run.items_root.hex(), "gasUsed": gas},
        "recoveredLot": recovered_uri,
        "secondGenerationItem": gen2_uri,
        "anchors": [
            {
                "root": "0x" + r.root.hex(),
                "txHash": "0x" + r.tx_hash.hex(),
                "blockNumber": r.block_number,
                "events": r.events,
            }
            for r in results
        ],
        "evidenceBundle": str(bundle_path),
        "verified": verdict.ok,
        "seconds": round(time.perf_counter() - started, 2),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if not verdict.ok:
        raise RuntimeError(
            "the second-generation item did not verify: " + "; ".join(p for e in verdict.events for p in e.problems)
        )
    return summary
