"""circular-ledger's HTTP API: a GS1-conformant resolver and digital product passports (public), the actors' write
API (``/api/v1``, Bearer keys) and the EPCIS 2.0 REST bindings (``/epcis``).

Nothing here imports web3 or eth-account: every chain call goes through :class:`ledger.service.LedgerService` and
:class:`ledger.client.Ledger`. Importing ``api`` builds nothing and loads nothing: the names below are imported from
their modules on first use (so that the `circular` command line starts without loading FastAPI), and the app comes
from the factory :func:`create_app`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .actors import add_actor, authenticate, chain_admin, hash_key, revoke_actor
    from .config import ApiSettings, CollectionPoint
    from .db import upgrade
    from .main import create_app

_EXPORTS = {
    "ApiSettings": ".config",
    "CollectionPoint": ".config",
    "add_actor": ".actors",
    "authenticate": ".actors",
    "chain_admin": ".actors",
    "create_app": ".main",
    "hash_key": ".actors",
    "revoke_actor": ".actors",
    "upgrade": ".db",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'api' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "ApiSettings",
    "CollectionPoint",
    "add_actor",
    "authenticate",
    "chain_admin",
    "create_app",
    "hash_key",
    "revoke_actor",
    "upgrade",
]
