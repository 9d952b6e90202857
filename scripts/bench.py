"""`make bench`: every figure of ours next to a naive baseline measured in the same run, as a ratio.

Writes ``bench-results.json`` (machine-readable, flat keys) and prints a table. Ratios are baseline ÷ ours for costs
and ours ÷ baseline for throughput, so bigger is always better. Sections that need a part of the system that is not
built yet are reported as skipped with the reason, never as a made-up number.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
console = Console()

Section = Callable[[], dict[str, Any]]


def _deploy_baseline(ledger: Any, account: Any, name: str) -> Any:
    from ledger.artifacts import load_artifact

    address = ledger.tx.deploy(account, name)
    return ledger.web3.eth.contract(address=address, abi=load_artifact(name).abi)


def gas_section() -> dict[str, Any]:
    """Gas per anchored event and per registered item, against per-event storage, per-event logs and per-item
    storage. Measured on the in-process chain (gas is deterministic)."""
    from ledger.chain import EthTesterBackend
    from ledger.client import ItemState, Ledger
    from ledger.ids import item_id

    backend = EthTesterBackend()
    admin, brand, anchorer, retailer = (backend.dev_accounts()[i] for i in (0, 1, 6, 4))
    ledger = Ledger.deploy(backend, admin)
    ledger.grant_role(admin, "anchorer", anchorer.address)
    ledger.grant_role(admin, "brand", brand.address)
    ledger.grant_role(admin, "retailer", retailer.address)
    ledger.assign_prefix(admin, "9506000", brand.address)
    out: dict[str, Any] = {}

    for batch in (1, 100, 1000, 10_000):
        gas = ledger.anchor_root(anchorer, os.urandom(32), batch)["gasUsed"]
        out[f"gas_per_event_batch_{batch}"] = round(gas / batch, 2)
    store = _deploy_baseline(ledger, anchorer, "NaiveEventStore")
    log = _deploy_baseline(ledger, anchorer, "NaiveEventLog")
    stored = [ledger.tx.send(anchorer, store.functions.store(os.urandom(32)))["gasUsed"] for _ in range(20)]
    logged = [ledger.tx.send(anchorer, log.functions.log(os.urandom(32)))["gasUsed"] for _ in range(20)]
    out["baseline_storage_gas_per_event"] = sum(stored) / len(stored)
    out["baseline_log_gas_per_event"] = sum(logged) / len(logged)
    out["gas_per_event_ratio_vs_storage"] = round(
        out["baseline_storage_gas_per_event"] / out["gas_per_event_batch_1000"], 1
    )
    out["gas_per_event_ratio_vs_log_per_tx"] = round(
        out["baseline_log_gas_per_event"] / out["gas_per_event_batch_1000"], 1
    )

    code = b"CO".ljust(32, b"\x00")
    lot = ledger.register_lot(brand, "09506000134369", "BENCH", code, 10**12)
    gtin = "09506000134352"
    serials = [f"B{n:07d}" for n in range(1000)]
    run = ledger.register_run(brand, gtin, serials, [(lot, 150)])
    out["gas_per_item_run_1000"] = round(run.receipt["gasUsed"] / 1000, 1)
    naive = _deploy_baseline(ledger, brand, "NaiveItemRegistry")
    ids = [item_id(gtin, f"N{n:07d}") for n in range(1000)]
    naive_gas = sum(
        ledger.tx.send(brand, naive.functions.registerAll(ids[i : i + 250], 150))["gasUsed"]
        for i in range(0, 1000, 250)
    )
    out["baseline_storage_gas_per_item"] = round(naive_gas / 1000, 1)
    out["gas_per_item_ratio_vs_storage"] = round(out["baseline_storage_gas_per_item"] / out["gas_per_item_run_1000"], 1)
    single = ledger.tx.send(brand, ledger.items.functions.registerItem(gtin, "SINGLE", [lot], [150], b"\x00" * 32))
    out["gas_register_single_item"] = single["gasUsed"]
    first = ledger.transition_run_item(retailer, run, serials[0], ItemState.SOLD)
    out["gas_first_transition_with_proof"] = first["gasUsed"]
    ledger.tx.send(retailer, ledger.items.functions.transition(item_id(gtin, "SINGLE"), int(ItemState.SOLD)))
    later = ledger.transition(retailer, item_id(gtin, serials[0]), ItemState.IN_USE)
    out["gas_later_transition"] = later["gasUsed"]
    backend.close()
    return out


SECTIONS: dict[str, Section] = {"gas": gas_section}

GOALS = {  # key: (goal, "max" or "min")
    "gas_per_event_batch_1000": (50, "max"),
    "gas_per_event_ratio_vs_storage": (1000, "min"),
    "gas_per_item_run_1000": (500, "max"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--only", action="append", choices=sorted(SECTIONS), help="run only these sections")
    parser.add_argument("--output", type=Path, default=ROOT / "bench-results.json")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    started = time.perf_counter()
    for name, section in SECTIONS.items():
        if args.only and name not in args.only:
            continue
        console.print(f"[bold]{name}[/bold] …")
        try:
            results.update(section())
        except ImportError as exc:
            skipped[name] = f"not built yet: {exc}"
    results["bench_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    meta = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "seconds": round(time.perf_counter() - started, 1),
        "skipped": skipped,
    }
    args.output.write_text(json.dumps({**results, "_meta": meta}, indent=2) + "\n")
    table = Table(title=f"circular-ledger bench ({meta['date']}, {meta['cpus']} cores)")
    for column in ("figure", "value", "goal"):
        table.add_column(column, justify="right" if column != "figure" else "left")
    for key, value in results.items():
        goal = GOALS.get(key)
        mark = ""
        if goal is not None:
            met = value <= goal[0] if goal[1] == "max" else value >= goal[0]
            verdict = "[green]met[/green]" if met else "[red]not met[/red]"
            mark = f"{'≤' if goal[1] == 'max' else '≥'} {goal[0]:,} {verdict}"
        table.add_row(key, f"{value:,}" if isinstance(value, int | float) else str(value), mark)
    console.print(table)
    for name, reason in skipped.items():
        console.print(f"[yellow]skipped {name}[/yellow]: {reason}")
    console.print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
