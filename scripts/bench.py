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
    ledger.set_partner(brand, retailer.address, "retailer")
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


def verification_section() -> dict[str, Any]:
    """Merkle proofs checked offline per second, and `verify` of a 50-event evidence bundle (beyond RPC time)."""
    import tempfile
    from datetime import timedelta

    from api.db import upgrade
    from ledger.chain import EthTesterBackend
    from ledger.epcis import events as ev
    from ledger.evidence import export_bundle, verify_bundle
    from ledger.merkle import MerkleTree, verify_proof
    from ledger.service import LedgerService
    from ledger.settings import Settings

    values = [os.urandom(32) for _ in range(10_000)]
    started = time.perf_counter()
    tree = MerkleTree.of(values)
    proofs = tree.proofs()
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    assert all(verify_proof(tree.root, v, proofs[v]) for v in values)
    proofs_per_s = len(values) / (time.perf_counter() - started)

    # Baseline: the same check with the Keccak every web3 project has (eth-hash's default, pycryptodome's public API).
    started = time.perf_counter()
    assert all(_naive_verify_proof(tree.root, v, proofs[v]) for v in values[:2_000])
    naive_proofs_per_s = 2_000 / (time.perf_counter() - started)

    out: dict[str, Any] = {"merkle_build_10000_with_proofs_ms": round(build_s * 1000, 1),
                           "merkle_proofs_verified_per_s": round(proofs_per_s),
                           "merkle_naive_proofs_verified_per_s": round(naive_proofs_per_s),
                           "merkle_speedup_vs_naive": round(proofs_per_s / naive_proofs_per_s, 1)}
    with tempfile.TemporaryDirectory() as tmp:
        backend = EthTesterBackend()
        settings = Settings(data_dir=Path(tmp), batch_size=1000)
        upgrade(settings.database_url)
        service = LedgerService(settings, backend=backend)
        admin, brand, anchorer = (backend.dev_accounts()[i] for i in (0, 1, 9))
        ledger = service.deploy(admin)
        ledger.grant_role(admin, "brand", brand.address)
        ledger.grant_role(admin, "anchorer", anchorer.address)
        item = "https://id.example/01/09506000134352/21/BENCH"
        t0 = datetime(2026, 1, 1, tzinfo=UTC)
        kinds = list(ev.Lifecycle)
        service.record(brand, [ev.lifecycle(kinds[i % len(kinds)], [item], at=t0 + timedelta(minutes=i))
                               for i in range(50)])
        service.worker(anchorer).drain()
        bundle = export_bundle(service.outbox, service.chain_id, ledger.anchor.address, item)
        runs = []
        for _ in range(5):
            started = time.perf_counter()
            verdict = verify_bundle(bundle, backend.web3)
            runs.append(time.perf_counter() - started)
        assert verdict.ok and len(verdict.events) == 50
        # The in-process chain answers "RPC" calls in microseconds, so this is the verification work itself.
        out["verify_bundle_50_ms"] = round(min(runs) * 1000, 1)
        naive_runs = []
        for _ in range(3):
            started = time.perf_counter()
            assert _naive_verify_bundle(bundle, ledger)
            naive_runs.append(time.perf_counter() - started)
        out["verify_bundle_50_naive_ms"] = round(min(naive_runs) * 1000, 1)
        out["verify_speedup_vs_naive"] = round(out["verify_bundle_50_naive_ms"] / out["verify_bundle_50_ms"], 1)
        service.close()
    return out


def _naive_verify_proof(root: bytes, value: bytes, proof: list[bytes]) -> bool:
    """OpenZeppelin's MerkleProof.verify, hashed with ``eth_utils.keccak`` (eth-hash's default backend)."""
    from eth_utils.crypto import keccak

    node = keccak(keccak(value))
    for sibling in proof:
        node = keccak(node + sibling) if node <= sibling else keccak(sibling + node)
    return node == root


def _naive_verify_bundle(bundle: dict[str, Any], ledger: Any) -> bool:
    """What a verifier without our shortcuts does for each event: recompute its hash, recover its signer through
    eth-account's generic EIP-712 encoder, check the proof, and ask the contract (``verifyEvent``) about its root
    once per event rather than once per root."""
    from eth_account import Account

    from ledger.epcis.hashing import event_hash_id, hash_digest
    from ledger.signing import EventDomain, typed_data_digest

    domain = EventDomain(int(bundle["chainId"]), bundle["contract"])
    for entry in bundle["events"]:
        digest = hash_digest(event_hash_id(dict(entry["event"])))
        signature = entry["signature"]
        signed = typed_data_digest(domain, digest, int(signature["deadline"]))
        if Account._recover_hash(signed, signature=bytes.fromhex(signature["value"][2:])) != signature["signer"]:
            return False
        root, proof = bytes.fromhex(entry["anchor"]["root"][2:]), [bytes.fromhex(p[2:]) for p in entry["proof"]]
        if not _naive_verify_proof(root, digest, proof):
            return False
        if not ledger.anchor.functions.verifyEvent(root, digest, proof).call():
            return False
    return True


def _anvil(*extra: str) -> Any:
    from tests.conftest import AnvilNode

    return AnvilNode(*extra)


def anchoring_section() -> dict[str, Any]:
    """Outbox → anchored with stored proofs, into Anvil with interval mining; against one transact-and-wait per
    event (the naive loop, on an automining Anvil so that it is not held back by the block time)."""
    import tempfile
    from datetime import timedelta

    from api.db import upgrade
    from ledger.artifacts import load_artifact
    from ledger.epcis import events as ev
    from ledger.service import LedgerService
    from ledger.settings import Settings

    events_n = 50_000  # a backlog: the 1 s block time is paid once per pipelined group of batches
    out: dict[str, Any] = {}
    node = _anvil("--block-time", "1")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(data_dir=Path(tmp), rpc_url=node.url, batch_size=10_000, batch_max_wait_s=0)
            upgrade(settings.database_url)
            service = LedgerService(settings)
            admin, brand, anchorer = (service.backend.dev_accounts()[i] for i in (0, 1, 9))
            ledger = service.deploy(admin)
            ledger.grant_role(admin, "brand", brand.address)
            ledger.grant_role(admin, "anchorer", anchorer.address)
            t0 = datetime(2026, 1, 1, tzinfo=UTC)
            # Two backlogs, one after the other (the second onto a database that already holds 50,000 anchored
            # events): the figure is CPU-bound in one thread, and one drain of two seconds moves with whatever else
            # the machine does. The better drain is the figure, as timeit takes the best run; the worse is kept too.
            rates = []
            for round_ in range(2):
                service.record(brand, [
                    ev.lifecycle(ev.Lifecycle.SOLD, [f"https://id.example/01/09506000134352/21/{round_}-{i}"],
                                 at=t0 + timedelta(seconds=i))
                    for i in range(events_n)
                ])
                started = time.perf_counter()
                results = service.worker(anchorer).drain()
                elapsed = time.perf_counter() - started
                assert sum(r.events for r in results) == events_n
                rates.append(round(events_n / elapsed))
            out["anchor_events_per_s"], out["anchor_events_per_s_worse_drain"] = max(rates), min(rates)
            service.close()
    finally:
        node.stop()
    node = _anvil()
    try:
        from ledger.chain import JsonRpcBackend
        from ledger.client import Transactor

        backend = JsonRpcBackend(node.url)
        tx = Transactor(backend)
        account = backend.dev_accounts()[0]
        address = tx.deploy(account, "NaiveEventLog")
        naive = backend.web3.eth.contract(address=address, abi=load_artifact("NaiveEventLog").abi)
        n = 200
        started = time.perf_counter()
        for _ in range(n):
            tx.send(account, naive.functions.log(os.urandom(32)))
        out["naive_anchor_events_per_s"] = round(n / (time.perf_counter() - started), 1)
    finally:
        node.stop()
    out["anchor_speedup_vs_naive"] = round(out["anchor_events_per_s"] / out["naive_anchor_events_per_s"], 1)
    return out


def _lazy(module: str, function: str) -> Section:
    """A section that lives in its own module (``scripts/bench_<room>.py``); imported only when it runs."""

    def run() -> dict[str, Any]:
        import importlib

        return dict(getattr(importlib.import_module(module), function)())

    run.__doc__ = f"{module}.{function}"
    return run


SECTIONS: dict[str, Section] = {
    "gas": gas_section,
    "verification": verification_section,
    "anchoring": anchoring_section,
    "lifecycle": _lazy("scripts.bench_chain", "lifecycle_section"),
    "capture": _lazy("scripts.bench_api", "capture_section"),
    "reads": _lazy("scripts.bench_api", "reads_section"),
    "scan_flow": _lazy("scripts.bench_api", "scan_flow_section"),
    "scan_flow_pg": _lazy("scripts.bench_api", "scan_flow_pg_section"),
    "build": _lazy("scripts.bench_api", "build_section"),
    "trace": _lazy("scripts.bench_api", "trace_section"),
    "scale": _lazy("scripts.bench_api", "scale_section"),  # grows the shared world: after every section that reads it
    "demo": _lazy("scripts.bench_api", "demo_section"),
    "bulk": _lazy("scripts.bench_loop", "bulk_section"),
}

GOALS = {  # key: (goal, "max" or "min")
    "scan_flow_rps": (1_500, "min"),
    "scan_flow_p99_ms": (25, "max"),
    "scan_flow_vs_page": (0.5, "min"),
    "scan_flow_pg_rps": (1_500, "min"),
    "scan_flow_pg_p99_ms": (25, "max"),
    "scan_flow_pg_vs_page": (0.5, "min"),
    "version_build_p99_ms": (20, "max"),
    "scale_flow_slowdown": (1.5, "max"),
    "scale_flow_p99_ratio": (1.5, "max"),
    "scale_page_p99_ratio": (1.5, "max"),
    "gas_per_event_batch_1000": (50, "max"),
    "gas_per_event_ratio_vs_storage": (1000, "min"),
    "gas_per_item_run_1000": (500, "max"),
    "anchor_events_per_s": (20_000, "min"),
    "verify_bundle_50_ms": (200, "max"),
    "merkle_proofs_verified_per_s": (10_000, "min"),
    "lifecycle_tx_per_s": (500, "min"),
    "capture_events_per_s": (5_000, "min"),
    "passport_json_rps": (2_500, "min"),
    "passport_json_p99_ms": (20, "max"),
    "passport_html_rps": (1_500, "min"),
    "qr_rps": (3_000, "min"),
    "trace_p99_ms": (25, "max"),
    "bulk_collect_500_s": (10, "max"),
}


# The README's table: (label, ours, baseline key and what it is, ratio key, goal key). Keys are bench-results.json's.
README_ROWS: list[tuple[str, str, str | None, str, str | None, str | None]] = [
    ("**passport scan flow** (Digital Link, recorded, 307, page), one worker, flows/s", "scan_flow_rps",
     "scan_flow_page_rps", "the same run's page reads alone, requests/s", "scan_flow_vs_page", "scan_flow_rps"),
    ("… its flows against the page alone (goal: half)", "scan_flow_vs_page", None, "", None, "scan_flow_vs_page"),
    ("… its p99, ms", "scan_flow_p99_ms", "scan_flow_page_p99_ms", "the page alone", None, "scan_flow_p99_ms"),
    ("… on PostgreSQL, flows/s", "scan_flow_pg_rps", "scan_flow_pg_page_rps", "the page alone, requests/s",
     "scan_flow_pg_vs_page", "scan_flow_pg_rps"),
    ("… on PostgreSQL, its flows against the page alone (goal: half)", "scan_flow_pg_vs_page", None, "", None,
     "scan_flow_pg_vs_page"),
    ("… on PostgreSQL, p99 ms", "scan_flow_pg_p99_ms", "scan_flow_pg_page_p99_ms", "the page alone", None,
     "scan_flow_pg_p99_ms"),
    ("… at 100,000 items: flows/s", "scale_big_rps", "scale_small_rps", "the 3,000-item world, same run",
     None, None),
    ("… at 100,000 items: slowdown (goal ≤ 1.5)", "scale_flow_slowdown", None, "", None, "scale_flow_slowdown"),
    ("… at 100,000 items: flow p99 against 3,000 items", "scale_flow_p99_ratio", None, "", None,
     "scale_flow_p99_ratio"),
    ("… at 100,000 items: page p99 against 3,000 items", "scale_page_p99_ratio", None, "", None,
     "scale_page_p99_ratio"),
    ("database at 100,000 items, bytes per item", "scale_db_bytes_per_item", "scale_db_bytes_per_event",
     "bytes per event", None, None),
    ("a version rendered for the first time, page p99 ms", "passport_page_uncached_p99_ms",
     "passport_json_uncached_version_p99_ms", "its JSON-LD", None, None),
    ("a read's check of its stored bytes against their anchored hash, p99 µs", "read_check_p99_us",
     "read_lookup_p99_us", "its indexed lookup, p99 µs", None, None),
    ("JSON-LD of the scanned items, requests/s", "flow_items_json_rps", "scan_flow_page_rps", "their pages", None,
     None),
    ("QR code PNG of the scanned items, requests/s", "flow_items_qr_rps", None, "", None, None),
    ("a third-generation passport version built, p99 ms", "version_build_p99_ms", "version_build_median_ms",
     "median", None, "version_build_p99_ms"),
    ("… its CPU time alone, p99 ms", "version_build_cpu_p99_ms", None, "", None, None),
    ("a lot correction fanning out, versions built per s", "lot_correction_versions_per_s",
     "lot_correction_versions", "versions it made", None, None),
    ("… per second of its CPU time", "lot_correction_versions_per_cpu_s", None, "", None, None),
    ("gas per anchored event, batch 1,000", "gas_per_event_batch_1000",
     "baseline_storage_gas_per_event", "a storage record per event", "gas_per_event_ratio_vs_storage",
     "gas_per_event_batch_1000"),
    ("… against one event log per transaction", "gas_per_event_batch_1000",
     "baseline_log_gas_per_event", "a log per transaction", "gas_per_event_ratio_vs_log_per_tx", None),
    ("gas per anchored event, batch 10,000", "gas_per_event_batch_10000", None, "", None, None),
    ("gas per item, run of 1,000", "gas_per_item_run_1000",
     "baseline_storage_gas_per_item", "a storage record per item", "gas_per_item_ratio_vs_storage",
     "gas_per_item_run_1000"),
    ("gas of an item's first transition (with its proof)", "gas_first_transition_with_proof",
     "gas_later_transition", "a later transition", None, None),
    ("anchoring into Anvil (1 s blocks), events/s", "anchor_events_per_s",
     "naive_anchor_events_per_s", "transact + wait per event", "anchor_speedup_vs_naive", "anchor_events_per_s"),
    ("… the worse of the two drains", "anchor_events_per_s_worse_drain", None, "", None, None),
    ("lifecycle transactions into Anvil (1 s blocks), tx/s", "lifecycle_tx_per_s",
     "lifecycle_naive_tx_per_s", "transact + wait per item", "lifecycle_speedup_vs_naive", "lifecycle_tx_per_s"),
    ("EPCIS capture, 1,000-event documents, events/s", "capture_events_per_s",
     "capture_single_events_per_s", "one event per request", "capture_speedup_vs_single", "capture_events_per_s"),
    ("passport JSON-LD, one worker, requests/s", "passport_json_rps",
     "hello_rps", "the same server's trivial route", "passport_json_vs_hello", "passport_json_rps"),
    ("passport JSON-LD p99, ms", "passport_json_p99_ms", "hello_p99_ms", "trivial route", None,
     "passport_json_p99_ms"),
    ("passport HTML, requests/s", "passport_html_rps",
     "hello_rps", "the same server's trivial route", "passport_html_vs_hello", "passport_html_rps"),
    ("QR code PNG, requests/s", "qr_rps", "hello_rps", "the same server's trivial route", "qr_vs_hello", "qr_rps"),
    ("provenance trace, third generation, p99 ms", "trace_p99_ms",
     "trace_naive_median_ms", "a query per item and lot, median", "trace_speedup_vs_naive", "trace_p99_ms"),
    ("`verify` of a 50-event bundle, ms", "verify_bundle_50_ms", "verify_bundle_50_naive_ms",
     "generic EIP-712, a contract call per event", "verify_speedup_vs_naive", "verify_bundle_50_ms"),
    ("Merkle proofs verified offline, per s", "merkle_proofs_verified_per_s", "merkle_naive_proofs_verified_per_s",
     "eth-hash's default Keccak", "merkle_speedup_vs_naive", "merkle_proofs_verified_per_s"),
    ("bulk collect of 500 items, one request (1 s blocks), s", "bulk_collect_500_s", "single_collect_500_s",
     "500 single requests (automine)", "bulk_collect_speedup_vs_single", "bulk_collect_500_s"),
    ("API peak RSS under the read load, MB", "api_peak_rss_mb", "api_start_rss_mb", "the same server at start-up",
     None, None),
    ("`make demo` peak RSS, MB", "demo_peak_rss_mb", None, "", None, None),
    ("`make demo`, seconds", "demo_seconds", None, "", None, None),
]


TIMES = "\N{MULTIPLICATION SIGN}"


def _number(value: Any) -> str:
    if isinstance(value, float) and value >= 100:
        value = round(value)
    return f"{value:,}"


def readme_table(results: dict[str, Any]) -> str:
    """The README's performance table from `results` (bench-results.json), every figure with its baseline, ratio
    and goal; a figure the run did not produce is left out."""
    meta = results.get("_meta", {})
    lines = [
        f"Latest run: {meta.get('date', '?')[:10]}, {meta.get('cpus', '?')} cores, Python {meta.get('python', '?')}, "
        f"{meta.get('machine', '?')}; `make bench` took {meta.get('seconds', '?')} s"
        + (f" at a mean 1-minute load of {meta['load_1min']['mean']} (max {meta['load_1min']['max']})."
           if "load_1min" in meta else "."),
        "",
        "| figure | ours | baseline | ratio | goal |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for label, ours, baseline, what, ratio, goal_key in README_ROWS:
        if ours not in results:
            continue
        base = f"{_number(results[baseline])} ({what})" if baseline and baseline in results else ""
        times = f"{_number(results[ratio])}{TIMES}" if ratio and ratio in results else ""
        goal = ""
        if goal_key in GOALS:
            target, kind = GOALS[goal_key]
            met = results[goal_key] <= target if kind == "max" else results[goal_key] >= target
            goal = f"{'≤' if kind == 'max' else '≥'} {target:,}: {'met' if met else '**not met**'}"
            if ratio == "gas_per_event_ratio_vs_storage":
                r_target, _ = GOALS[ratio]
                r_met = results[ratio] >= r_target
                goal += f"; ≥ {r_target:,}{TIMES}: {'met' if r_met else '**not met**'}"
        lines.append(f"| {label} | {_number(results[ours])} | {base} | {times} | {goal} |")
    return "\n".join(lines)


README = ROOT / "README.md"
README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"


def write_readme(results: dict[str, Any]) -> None:
    """Replace the table between the README's bench markers with `results`' table."""
    readme = README
    text = readme.read_text()
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_START}\n{readme_table(results)}\n{README_END}{tail}")


def _cpu_seconds() -> float:
    """CPU time of this process and of the children it has waited for (servers, nodes, wrk), user and system."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class LoadSampler:
    """The 1-minute load average every `interval_s` seconds, in a thread, summarised overall and per section."""

    def __init__(self, interval_s: float = 5.0) -> None:
        import threading

        self.interval_s = interval_s
        self.samples: list[float] = []
        self.sections: dict[str, list[float]] = {}
        self._since = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            if self._stop.wait(self.interval_s):
                return

    def mark(self, section: str) -> None:
        """The samples since the previous mark belong to `section`."""
        taken = self.samples[self._since :] or [os.getloadavg()[0]]
        self.sections[section] = taken
        self._since = len(self.samples)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval_s + 1)

    def summary(self) -> dict[str, Any]:
        def stats(values: list[float]) -> dict[str, float]:
            return {"mean": round(sum(values) / len(values), 2), "max": round(max(values), 2)}

        return {
            **stats(self.samples or [os.getloadavg()[0]]),
            "sections": {name: stats(values) for name, values in self.sections.items()},
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--only", action="append", choices=sorted(SECTIONS), help="run only these sections")
    parser.add_argument("--output", type=Path, default=ROOT / "bench-results.json")
    parser.add_argument("--readme", type=Path, metavar="RESULTS",
                        help="rewrite README.md's table from a bench-results.json, and run nothing")
    args = parser.parse_args(argv)
    if args.readme is not None:
        write_readme(json.loads(args.readme.read_text()))
        console.print(f"README.md's table rewritten from {args.readme}")
        return 0
    results: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    failed: dict[str, str] = {}
    seconds: dict[str, float] = {}
    cpu: dict[str, float] = {}  # this process's and its finished children's: what a section costs whatever the load
    load = LoadSampler()
    load.start()
    started = time.perf_counter()
    for name, section in SECTIONS.items():
        if args.only and name not in args.only:
            continue
        console.print(f"[bold]{name}[/bold] …")
        began, began_cpu = time.perf_counter(), _cpu_seconds()
        try:
            results.update(section())
        except ImportError as exc:
            skipped[name] = f"not built yet: {exc}"
        except Exception as exc:  # one broken section must not cost the others' figures: reported, and exit 1
            console.print_exception()
            failed[name] = f"{type(exc).__name__}: {exc}"[:500]
        seconds[name] = round(time.perf_counter() - began, 1)
        cpu[name] = round(_cpu_seconds() - began_cpu, 1)
        load.mark(name)
    load.stop()
    results["bench_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    meta = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "seconds": round(time.perf_counter() - started, 1),
        "section_seconds": seconds,
        "section_cpu_seconds": cpu,
        # What else the machine was doing: the 1-minute load average, sampled every few seconds (2 = both cores
        # busy); a figure measured at a load well above the bench's own is a loaded machine's, not the code's.
        "load_1min": load.summary(),
        "skipped": skipped,
        "failed": failed,
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
    for name, reason in failed.items():
        console.print(f"[red]failed {name}[/red]: {reason}")
    console.print(f"wrote {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
