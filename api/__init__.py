"""circular-ledger's HTTP API: a GS1-conformant resolver and digital product passports (public), the actors' write
API (``/api/v1``, Bearer keys) and the EPCIS 2.0 REST bindings (``/epcis``).

Nothing here imports web3 or eth-account: every chain call goes through :class:`ledger.service.LedgerService` and
:class:`ledger.client.Ledger`.
"""

from .actors import add_actor, authenticate, chain_admin, hash_key, revoke_actor
from .config import ApiSettings, CollectionPoint
from .db import upgrade
from .main import create_app

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
