"""Helpers of the contract suites: revert assertions, decoded logs, GTINs and the lifecycle graph as a Python model."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3.types import TxReceipt

from ledger import lifecycle
from ledger.client import ItemState, Ledger
from ledger.errors import ContractRevert

from .conftest import World, mapped_revert

ZERO32 = b"\x00" * 32
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
COTTON = b"CO".ljust(32, b"\x00")
POLYESTER = b"PES".ljust(32, b"\x00")
CONTENT = keccak(text="content")

S = ItemState


def check_digit(body: str) -> str:
    """The GS1 check digit of the first 13 digits of a GTIN-14 (written independently of the contract and biip)."""
    assert len(body) == 13 and body.isdigit()
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(body))
    return str((10 - total % 10) % 10)


def gtin(prefix: str, item_ref: str) -> str:
    """A valid GTIN-14 with indicator 0 under company prefix `prefix`."""
    body = ("0" + prefix + item_ref).ljust(13, "0")[:13]
    return body + check_digit(body)


@contextmanager
def reverts(name: str, **args: Any) -> Iterator[pytest.ExceptionInfo[ContractRevert]]:
    """Expect a revert with custom error `name` and exactly the arguments `args` (all of them). An
    ``IllegalTransition`` must name the states the model allows next from `current` (``allowed``, unless given)."""
    if name == "IllegalTransition" and "allowed" not in args and "current" in args:
        args = {**args, "allowed": lifecycle.next_states(args["current"])}
    with pytest.raises(ContractRevert) as info:
        yield info
    assert info.value.name == name, f"expected {name}, got {info.value}"
    assert info.value.args_by_name == args, f"{name}: expected {args}, got {info.value.args_by_name}"


def view(call: Any, sender: str | None = None) -> Any:
    """`call.call()`, with a revert mapped to ContractRevert as the transactor maps a transaction's."""
    try:
        return call.call({"from": sender} if sender else {})
    except Exception as exc:
        mapped = mapped_revert(exc)
        if mapped is exc:
            raise
        raise mapped from exc


def send(world: World, account: LocalAccount, call: Any) -> TxReceipt:
    return world.ledger.tx.send(account, call)


def logs(ledger: Ledger, receipt: TxReceipt) -> list[tuple[str, str, dict[str, Any]]]:
    """Every log of `receipt`, in order, as (contract name, event name, args)."""
    by_address = {c.address: (name, c) for name, c in ledger.contracts.items()}
    out = []
    for log in receipt["logs"]:
        name, contract = by_address[log["address"]]
        for event in contract.events:
            try:
                decoded = event().process_log(log)
            except Exception:  # not this event
                continue
            out.append((name, decoded["event"], dict(decoded["args"])))
            break
        else:
            raise AssertionError(f"undecodable log from {name}: {log}")
    return out


def events(ledger: Ledger, receipt: TxReceipt, name: str) -> list[dict[str, Any]]:
    return [args for _, event, args in logs(ledger, receipt) if event == name]


def state(ledger: Ledger, item: bytes) -> ItemState:
    return ItemState(ledger.items.functions.item(item).call()[2])


def lineage_hash(item_ids: list[bytes]) -> bytes:
    return keccak(abi_encode(["bytes32[]"], [item_ids]))


# -- the lifecycle graph -----------------------------------------------------------------------------------------------
# Who may take each edge, from the ledger's lifecycle table. "brand" is the item's own brand; recycling
# (Collected -> Recycled) only through recycle(). The suites hold the contract to this model, and so the table too.
EDGES: dict[tuple[ItemState, ItemState], frozenset[str]] = {
    edge: frozenset(party.value for party in parties) for edge, parties in lifecycle.graph().items()
}
RECYCLE_ONLY = {
    (source, row.target) for row in lifecycle.steps() if row.write is lifecycle.Write.RECYCLE and row.target
    for source in row.sources
}
# A path from Manufactured to each state, through transition() only (Recycled also needs recycle()).
PATHS: dict[ItemState, list[ItemState]] = {
    S.MANUFACTURED: [],
    S.SOLD: [S.SOLD],
    S.IN_USE: [S.SOLD, S.IN_USE],
    S.RETURNED: [S.SOLD, S.RETURNED],
    S.COLLECTED: [S.SOLD, S.IN_USE, S.COLLECTED],
    S.REFURBISHED: [S.SOLD, S.IN_USE, S.REFURBISHED],
    S.RESOLD: [S.SOLD, S.RETURNED, S.RESOLD],
    S.RECYCLED: [S.SOLD, S.IN_USE, S.COLLECTED],
    S.DISPOSED: [S.DISPOSED],
}


def actor_for(world: World, role: str) -> LocalAccount:
    """The world's holder of `role`; "brand" is brand A, the owner of every item the suites make."""
    return {"brand": world.brand_a, "retailer": world.retailer, "recycler": world.recycler,
            "repairer": world.repairer}[role]


def walk(world: World, item: bytes, path: list[ItemState]) -> None:
    """Move `item` (of any brand) along `path`, each step by a retailer, recycler or repairer allowed on it."""
    current = state(world.ledger, item)
    for target in path:
        role = next(r for r in ("retailer", "recycler", "repairer") if r in EDGES[(current, target)])
        world.ledger.transition(actor_for(world, role), item, target)
        current = target
