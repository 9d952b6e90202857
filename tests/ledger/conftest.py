from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ledger.chain import ChainBackend
from ledger.settings import Settings
from tests.conftest import migrated
from tests.contracts.conftest import deployed, world  # noqa: F401 - the deployed world, shared with tests/ledger

if TYPE_CHECKING:
    from ledger.service import LedgerService


@pytest.fixture
def service(backend: ChainBackend, tmp_path: Path) -> Iterator[LedgerService]:
    """A LedgerService on the test backend with a fresh deployment, a SQLite outbox and an anchorer."""
    from ledger.service import LedgerService

    settings = Settings(data_dir=tmp_path / "data", batch_size=50, batch_max_wait_s=0)
    svc = LedgerService(migrated(settings), backend=backend)
    admin = backend.dev_accounts()[0]
    ledger = svc.deploy(admin)
    for role, index in [("brand", 1), ("recycler", 3), ("retailer", 4), ("anchorer", 6)]:
        ledger.grant_role(admin, role, backend.dev_accounts()[index].address)
    yield svc
    svc.engine.dispose()
