"""Bench room "chain": individual item lifecycle transactions, pipelined, against one transact-and-wait at a time.

The scene is a retailer closing a day of sales: a brand has registered a run of items (one transaction, one Merkle
root); the retailer records each sale as the item's first, proof-carrying move (``transitionRunItem`` → SOLD), then
hands each item over (``transition`` → IN_USE), one transaction per item because each is a separate legal fact on
the item's record. The timed figure is the ``transition`` pipeline (what every later move of an item costs); the
first moves are timed too, as a second figure.

Mining: **interval mining, ``--block-time 1``** for our figure, because a real chain (Besu/QBFT, an L2) produces
blocks on a clock and a pipeline has to ride it; automine would mine a block per arriving transaction, which no
production chain does. With 1 s blocks of 30,000,000 gas, Anvil packs about 820 ``transition`` calls (36,406 gas used
each) into a block: that is the chain's ceiling, not the client's. The naive baseline runs on an
**automining** node, as in the anchoring section: on 1 s blocks it would measure the block time (about 1 tx/s), not
the client.
"""

from __future__ import annotations

import time
from typing import Any

from scripts.bench import _anvil

PIPELINE_ITEMS = 3_000  # about five blocks' worth: the one block wait at the end is paid once, not per block
NAIVE_ITEMS = 200


def _setup(url: str, items: int) -> tuple[Any, Any, Any]:
    """A deployed ledger on the node at `url`, a run of `items` items of one brand, and the retailer's account."""
    from ledger.chain import JsonRpcBackend
    from ledger.client import Ledger

    backend = JsonRpcBackend(url)
    admin, brand, retailer = (backend.dev_accounts()[i] for i in (0, 1, 4))
    ledger = Ledger.deploy(backend, admin)
    ledger.grant_role(admin, "brand", brand.address)
    ledger.grant_role(admin, "retailer", retailer.address)
    ledger.set_partner(brand, retailer.address, "retailer")
    ledger.assign_prefix(admin, "9506000", brand.address)
    lot = ledger.register_lot(brand, "09506000134369", "BENCH-LOT", b"CO".ljust(32, b"\x00"), 10**12)
    serials = [f"L{n:07d}" for n in range(items)]
    run = ledger.register_run(brand, "09506000134352", serials, [(lot, 150)])
    return ledger, run, retailer


def lifecycle_section() -> dict[str, Any]:
    from ledger.client import ItemState
    from ledger.ids import item_id

    out: dict[str, Any] = {}
    node = _anvil("--block-time", "1")
    try:
        ledger, run, retailer = _setup(node.url, PIPELINE_ITEMS)
        started = time.perf_counter()
        sold = ledger.transition_run_items(retailer, run, [(serial, ItemState.SOLD) for serial in run.serials])
        out["lifecycle_first_tx_per_s"] = round(len(sold) / (time.perf_counter() - started), 1)
        moves = [(item_id(run.gtin, serial), ItemState.IN_USE) for serial in run.serials]
        started = time.perf_counter()
        receipts = ledger.transition_many(retailer, moves)
        elapsed = time.perf_counter() - started
        # send_many raises on any failure; checked again here because a figure must never count a failed move.
        assert len(receipts) == len(moves) and all(r["status"] == 1 for r in receipts)
        assert ledger.item(moves[-1][0])["state"] is ItemState.IN_USE
        out["lifecycle_tx_per_s"] = round(len(moves) / elapsed, 1)
        out["lifecycle_blocks"] = len({r["blockNumber"] for r in receipts})
        print(f"FIGURE lifecycle_tx_per_s: {out['lifecycle_tx_per_s']} ({len(moves)} transitions, "
              f"{out['lifecycle_blocks']} blocks of 1 s)")
    finally:
        node.stop()

    node = _anvil()  # automine: the naive loop is then held back by itself alone
    try:
        ledger, run, retailer = _setup(node.url, NAIVE_ITEMS)
        ledger.transition_run_items(retailer, run, [(serial, ItemState.SOLD) for serial in run.serials])
        started = time.perf_counter()
        for serial in run.serials:  # estimate, sign, send, wait for the receipt; then the next
            ledger.transition(retailer, item_id(run.gtin, serial), ItemState.IN_USE)
        out["lifecycle_naive_tx_per_s"] = round(NAIVE_ITEMS / (time.perf_counter() - started), 1)
    finally:
        node.stop()
    out["lifecycle_speedup_vs_naive"] = round(out["lifecycle_tx_per_s"] / out["lifecycle_naive_tx_per_s"], 1)
    return out


__all__ = ["lifecycle_section"]
