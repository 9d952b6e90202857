"""Does the database still say what the chain says? An item's composition and its lots, compared with the chain.

Event proofs show that an item's events are the signed, anchored ones; they say nothing of the rows the passport
reads its composition from. The chain holds that composition (``ItemRegistered`` and ``RunContents`` logs: lots and
grams; ``MaterialLots.lot``: material, mass, recycled share, lineage), so an edited row shows up as a difference.

What the chain says about an item or a lot never changes once mined, so it is read once per process and cached; the
database's claim is compared afresh on every call, so a tampered row is never hidden by the cache.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from materials import material_code_from_bytes32

from .client import Ledger
from .ids import item_id, normalize_gtin

ZERO32 = b"\x00" * 32


@dataclass(frozen=True)
class LotClaim:
    """What the database says about a lot."""

    lot_id: str
    material_code: str
    mass_grams: int
    recycled_share_bps: int
    recovered: bool


@dataclass(frozen=True)
class ItemClaim:
    """What the database says an item is made of."""

    gtin: str
    serial: str
    items_root: str | None  # the run's root, for an item of a run
    composition: tuple[tuple[str, int], ...]  # (lot id, grams)
    mass_grams: int
    lots: tuple[LotClaim, ...]

    def key(self) -> str:
        """A stable text of the whole claim, for cache keys that must change when any of it does."""
        return repr(self)


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


class ChainFacts:
    """The chain's word on items' compositions and lots, cached (it does not change once mined)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._compositions: dict[str, tuple[tuple[str, int], ...] | None] = {}
        self._runs: dict[str, tuple[tuple[tuple[str, int], ...], frozenset[str]] | None] = {}
        self._lots: dict[str, dict[str, Any] | None] = {}
        self._lock = threading.Lock()

    def _from_block(self) -> int:
        return self.ledger.deployment.block_number

    def _run(self, run_id: bytes) -> tuple[tuple[tuple[str, int], ...], frozenset[str]] | None:
        """(composition per item, serials) of a run, from its RunContents log."""
        key = _hex(run_id)
        with self._lock:
            if key in self._runs:
                return self._runs[key]
        logs = self.ledger.items.events.RunContents().get_logs(
            argument_filters={"runId": run_id}, from_block=self._from_block()
        )
        value = None
        if logs:
            args = logs[-1]["args"]
            parts = tuple((_hex(lot), int(g)) for lot, g in zip(args["lotIds"], args["gramsPerItem"], strict=True))
            serials = frozenset(bytes(args["serials"]).decode("utf-8", errors="replace").split("\n"))
            value = (parts, serials)
        with self._lock:
            self._runs[key] = value
        return value

    def _single(self, ident: bytes) -> tuple[tuple[str, int], ...] | None:
        """The composition of an item registered on its own, from its ItemRegistered log."""
        key = _hex(ident)
        with self._lock:
            if key in self._compositions:
                return self._compositions[key]
        logs = self.ledger.items.events.ItemRegistered().get_logs(
            argument_filters={"itemId": ident}, from_block=self._from_block()
        )
        value = None
        if logs:
            args = logs[-1]["args"]
            value = tuple((_hex(lot), int(g)) for lot, g in zip(args["lotIds"], args["grams"], strict=True))
        with self._lock:
            self._compositions[key] = value
        return value

    def lot(self, lot_id: str) -> dict[str, Any] | None:
        """The lot's immutable fields on-chain (None for an unknown lot)."""
        with self._lock:
            if lot_id in self._lots:
                return self._lots[lot_id]
        record = self.ledger.lots.functions.lot(bytes.fromhex(lot_id.removeprefix("0x"))).call()
        owner, mass, _allocated, share, code, _content, lineage = record
        value = None
        if int(owner, 16) != 0:
            value = {
                "material_code": material_code_from_bytes32(bytes(code)),
                "mass_grams": int(mass),
                "recycled_share_bps": int(share),
                "recovered": bytes(lineage) != ZERO32,
            }
        with self._lock:
            self._lots[lot_id] = value
        return value

    def composition(self, gtin: str, serial: str, items_root: str | None) -> tuple[tuple[str, int], ...] | None:
        """The item's (lot id, grams) on-chain: from its run when it names one, else from its own registration."""
        if items_root:
            # A run's id is keccak256(abi.encode(gtin, itemsRoot)): a root the database names for a run of another
            # GTIN finds no run, and a serial outside the run is not in its serials.
            root = bytes.fromhex(items_root.removeprefix("0x"))
            run = self._run(keccak(abi_encode(["string", "bytes32"], [normalize_gtin(gtin), root])))
            if run is not None and serial in run[1]:
                return run[0]
            return None
        return self._single(item_id(gtin, serial))

    def problems(self, claim: ItemClaim) -> list[str]:
        """How the database's claim differs from the chain; empty when it does not."""
        found: list[str] = []
        on_chain = self.composition(claim.gtin, claim.serial, claim.items_root)
        if on_chain is None:
            found.append(f"the chain holds no composition for serial {claim.serial} of GTIN {claim.gtin}")
        else:
            if sorted(claim.composition) != sorted(on_chain):
                found.append(
                    "composition differs from the chain: "
                    + ", ".join(f"{lot}: {g} g" for lot, g in claim.composition)
                    + " in the database, "
                    + ", ".join(f"{lot}: {g} g" for lot, g in on_chain)
                    + " on-chain"
                )
            if claim.mass_grams != sum(g for _, g in on_chain):
                found.append(f"mass {claim.mass_grams} g differs from the chain's {sum(g for _, g in on_chain)} g")
        for lot in claim.lots:
            found += lot_problems(self, lot)
        return found


def lot_problems(facts: ChainFacts, claim: LotClaim) -> list[str]:
    on_chain = facts.lot(claim.lot_id)
    if on_chain is None:
        return [f"lot {claim.lot_id} is not on the chain"]
    found = []
    for name in ("material_code", "mass_grams", "recycled_share_bps", "recovered"):
        ours = getattr(claim, name)
        if ours != on_chain[name]:
            found.append(f"lot {claim.lot_id}: {name} {ours!r} in the database, {on_chain[name]!r} on-chain")
    return found


__all__ = ["ChainFacts", "ItemClaim", "LotClaim", "lot_problems"]
