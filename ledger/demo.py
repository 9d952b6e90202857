"""The demo loop on the embedded chain: virgin lots → a run of items → sale, return, collection → recycling into a
recovered lot → a second-generation item made partly from it. It prints what it does and writes a summary."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .chain import EthTesterBackend
from .client import ItemState, Ledger
from .ids import digital_link, item_id

RESOLVER = "https://id.circular.example"
GTIN_A = "09506000134352"  # brand A's T-shirt, under prefix 9506000
GTIN_A_LOTS = "09506000134369"  # brand A's GTIN for its material lots
GTIN_B = "04012345123456"  # brand B's second-generation product, under prefix 4012345
ITEMS_IN_RUN = 1000
RETURNED = 10


def _code(code: str) -> bytes:
    return code.encode().ljust(32, b"\x00")


def run_demo(out: Path, console: Console) -> dict[str, Any]:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    started = time.perf_counter()
    backend = EthTesterBackend(out / "chain.sqlite")
    try:
        return _loop(backend, out, console, started)
    finally:
        backend.close()


def _loop(backend: EthTesterBackend, out: Path, console: Console, started: float) -> dict[str, Any]:
    admin, brand_a, brand_b, recycler, retailer, anchorer = backend.dev_accounts()[:6]
    console.rule("circular-ledger demo (embedded chain)")
    ledger = Ledger.deploy(backend, admin)
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
    polyester = ledger.register_lot(brand_a, GTIN_A_LOTS, "PES-2026-001", _code("PES"), 100_000)
    console.print("2. brand A registered virgin lots: cotton 200,000 g and polyester 100,000 g")

    serials = [f"A{n:05d}" for n in range(1, ITEMS_IN_RUN + 1)]
    run = ledger.register_run(brand_a, GTIN_A, serials, [(cotton, 150), (polyester, 50)])
    gas = run.receipt["gasUsed"]
    console.print(
        f"   brand A made a run of {ITEMS_IN_RUN} T-shirts (150 g cotton + 50 g polyester each) "
        f"in one transaction: {gas:,} gas, {gas / ITEMS_IN_RUN:.0f} gas per item"
    )

    returned = serials[:RETURNED]
    item_ids = []
    for serial in returned:
        ledger.transition_run_item(retailer, run, serial, ItemState.SOLD)
        ident = item_id(run.gtin, serial)
        ledger.transition(retailer, ident, ItemState.IN_USE)
        ledger.transition(recycler, ident, ItemState.COLLECTED)
        item_ids.append(ident)
    console.print(f"3. {RETURNED} T-shirts were sold, worn and collected by the recycler")

    recovered = ledger.recycle(recycler, item_ids, _code("rCO"), "RCO-2026-001", 1_900)
    console.print(
        f"4. the recycler recycled them into a recovered lot of 1,900 g (of {RETURNED * 200:,} g collected), "
        "100% recycled, its lineage on-chain"
    )

    ledger.approve_lot(recycler, recovered, brand_b.address, 1_900)
    virgin_b = ledger.register_lot(brand_b, GTIN_B, "CO-B-001", _code("CO"), 50_000)
    gen2 = ledger.register_item(brand_b, GTIN_B, "B00001", [(recovered, 120), (virgin_b, 80)])
    lot = ledger.lot(recovered)
    console.print(
        f"5. brand B made a new item from 120 g recovered + 80 g virgin cotton: "
        f"{120 * lot['recycledShareBps'] / 10_000 / 200:.0%} recycled content"
    )

    table = Table(title="second-generation item")
    table.add_column("lot")
    table.add_column("grams", justify="right")
    table.add_column("recycled share", justify="right")
    for lot_id, grams in [(recovered, 120), (virgin_b, 80)]:
        info = ledger.lot(lot_id)
        table.add_row("0x" + lot_id.hex()[:12] + "…", str(grams), f"{info['recycledShareBps'] / 100:.0f}%")
    console.print(table)
    console.print(
        f"   its provenance: recovered lot ← {RETURNED} first-generation T-shirts ← cotton and polyester lots"
    )

    summary = {
        "chainId": ledger.deployment.chain_id,
        "contracts": ledger.deployment.addresses,
        "items": [digital_link(RESOLVER, GTIN_A, s) for s in serials] + [digital_link(RESOLVER, GTIN_B, "B00001")],
        "run": {"runId": "0x" + run.run_id.hex(), "itemsRoot": "0x" + run.items_root.hex(), "gasUsed": gas},
        "recoveredLot": "0x" + recovered.hex(),
        "secondGenerationItem": "0x" + gen2.hex(),
        "seconds": round(time.perf_counter() - started, 2),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
