"""A deployed ledger with its cast of actors, on each backend; every test starts from the same state."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from eth_account.signers.local import LocalAccount

from ledger.chain import ChainBackend
from ledger.client import Ledger, Transactor

BRAND_A_PREFIX = "9506000"  # GTIN 09506000134352 lies under it
BRAND_B_PREFIX = "4012345"
GTIN_A = "09506000134352"
GTIN_B = "04012345123456"


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


@pytest.fixture(scope="session")
def deployed(session_backend: ChainBackend) -> World:
    accounts = session_backend.dev_accounts()
    admin, brand_a, brand_b, recycler, retailer, repairer, anchorer, stranger = accounts[:8]
    ledger = Ledger.deploy(session_backend, admin)
    for role, account in [("brand", brand_a), ("brand", brand_b), ("recycler", recycler), ("retailer", retailer),
                          ("repairer", repairer), ("anchorer", anchorer)]:
        ledger.grant_role(admin, role, account.address)
    ledger.assign_prefix(admin, BRAND_A_PREFIX, brand_a.address)
    ledger.assign_prefix(admin, BRAND_B_PREFIX, brand_b.address)
    return World(ledger, session_backend, admin, brand_a, brand_b, recycler, retailer, repairer, anchorer, stranger)


@pytest.fixture
def world(deployed: World) -> Iterator[World]:
    backend = deployed.backend
    snapshot = backend.snapshot()
    # A fresh transactor: its nonce cache must not outlive the snapshot.
    ledger = Ledger(backend, deployed.ledger.deployment, Transactor(backend))
    yield World(ledger, *[getattr(deployed, f) for f in
                          ("backend", "admin", "brand_a", "brand_b", "recycler", "retailer", "repairer", "anchorer",
                           "stranger")])
    backend.revert(snapshot)
