"""A deployed ledger with its cast of actors, on each backend; every test starts from the same state.

On eth-tester, tests send through :class:`CallFirstTransactor`: eth-tester's ``estimate_gas`` is a binary search of
about 15 EVM executions (about 0.3 s per transaction here), so the transactor runs the call once (a revert raises the
same decoded :class:`ContractRevert`, unmined, as an estimate would) and then sends it with a fixed gas limit (gas
*used* does not depend on the limit). On Anvil, tests use the client's own :class:`Transactor` unchanged, so its real
estimate-and-send path is covered on one backend.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from ledger.chain import ChainBackend, EthTesterBackend, decode_revert, is_revert
from ledger.client import Ledger, Transactor
from ledger.errors import TransactionFailed

BRAND_A_PREFIX = "9506000"  # GTIN 09506000134352 lies under it
BRAND_B_PREFIX = "4012345"
GTIN_A = "09506000134352"
GTIN_B = "04012345123456"


def mapped_revert(exc: Exception) -> Exception:
    """`exc` as the ledger maps a revert (ContractRevert), else `exc` itself."""
    if not is_revert(exc):
        return exc
    return decode_revert(exc) or TransactionFailed(f"reverted without a known error: {exc}")


class CallFirstTransactor(Transactor):
    """A Transactor that replaces eth-tester's slow gas estimate by one call (see the module docstring)."""

    GAS = 12_000_000

    def send(self, account: LocalAccount, call: Any, gas: int | None = None) -> TxReceipt:
        if gas is None and isinstance(call, ContractFunction):
            try:
                call.call({"from": account.address})
            except Exception as exc:
                mapped = mapped_revert(exc)
                if mapped is exc:
                    raise
                raise mapped from exc
            gas = self.GAS
        return super().send(account, call, gas)


def make_transactor(backend: ChainBackend) -> Transactor:
    return CallFirstTransactor(backend) if isinstance(backend, EthTesterBackend) else Transactor(backend)


@dataclass
class World:
    ledger: Ledger
    backend: ChainBackend
    admin: LocalAccount
    brand_a: LocalAccount
    brand_b: LocalAccount
    recycler: LocalAccount
    retailer: LocalAccount
    repairer: LocalAccount
    anchorer: LocalAccount
    stranger: LocalAccount

    def rollback(self, snapshot: Any) -> None:
        """Revert to `snapshot` inside a test; the transactor's cached nonces are forgotten with it."""
        self.backend.revert(snapshot)
        for account in self.accounts():
            self.ledger.tx.forget_nonce(account.address)

    def accounts(self) -> list[LocalAccount]:
        return [self.admin, self.brand_a, self.brand_b, self.recycler, self.retailer, self.repairer, self.anchorer,
                self.stranger]


@pytest.fixture(scope="session")
def deployed(session_backend: ChainBackend) -> World:
    accounts = session_backend.dev_accounts()
    admin, brand_a, brand_b, recycler, retailer, repairer, anchorer, stranger = accounts[:8]
    deployment = Ledger.deploy(session_backend, admin).deployment
    ledger = Ledger(session_backend, deployment, make_transactor(session_backend))
    for role, account in [("brand", brand_a), ("brand", brand_b), ("recycler", recycler), ("retailer", retailer),
                          ("repairer", repairer), ("anchorer", anchorer)]:
        ledger.grant_role(admin, role, account.address)
    ledger.assign_prefix(admin, BRAND_A_PREFIX, brand_a.address)
    ledger.assign_prefix(admin, BRAND_B_PREFIX, brand_b.address)
    # Brand A works with the cast's retailer, recycler and repairer; brand B has authorised no one.
    for role, account in [("retailer", retailer), ("recycler", recycler), ("repairer", repairer)]:
        ledger.set_partner(brand_a, account.address, role)
    return World(ledger, session_backend, admin, brand_a, brand_b, recycler, retailer, repairer, anchorer, stranger)


def fresh_world(deployed: World) -> World:
    """`deployed` with a fresh transactor: a nonce cache must not outlive the snapshot it was filled under."""
    backend = deployed.backend
    ledger = Ledger(backend, deployed.ledger.deployment, make_transactor(backend))
    return World(ledger, *[getattr(deployed, f) for f in
                           ("backend", "admin", "brand_a", "brand_b", "recycler", "retailer", "repairer", "anchorer",
                            "stranger")])


@pytest.fixture
def world(deployed: World) -> Iterator[World]:
    backend = deployed.backend
    snapshot = backend.snapshot()
    yield fresh_world(deployed)
    backend.revert(snapshot)


# -- one fresh compile per test session (shared by the xdist workers of one run) ---------------------------------------
@dataclass(frozen=True)
class FreshCompile:
    input_json: dict[str, Any]
    output: dict[str, Any]
    version: str


@pytest.fixture(scope="session")
def fresh_compile(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> FreshCompile:
    """Compile the sources once per test run and write the build-info slither reads.

    xdist workers of one run share one compile: the first compiles under a file lock and leaves the result in the
    run's shared temp dir; the others read it.
    """
    import fcntl

    from scripts import compile as solc

    shared = tmp_path_factory.getbasetemp()
    if hasattr(request.config, "workerinput"):  # an xdist worker: basetemp is per worker; its parent is the run's
        shared = shared.parent
    cache = shared / "circular-fresh-compile.json"
    with open(shared / "circular-fresh-compile.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if cache.exists():
            data = json.loads(cache.read_text())
            result = FreshCompile(data["input"], data["output"], data["version"])
        else:
            input_json, output, version = solc.compile_all()
            result = FreshCompile(input_json, output, version)
            solc.write_build_info(input_json, output, version)
            tmp = cache.with_suffix(".tmp")
            tmp.write_text(json.dumps({"input": input_json, "output": output, "version": version}))
            os.replace(tmp, cache)
    return result


@pytest.fixture(scope="session")
def build_info(fresh_compile: FreshCompile) -> Path:
    """The Hardhat-format build-info of this run's fresh compile."""
    from scripts import compile as solc

    path = solc.BUILD_INFO_DIR / "circular.json"
    if not path.exists():  # another run removed it since: write it again from this run's compile
        solc.write_build_info(fresh_compile.input_json, fresh_compile.output, fresh_compile.version)
    return path
