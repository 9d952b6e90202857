"""Local accounts (a private key held in this process) as the rest of the project sees them.

Everything above ``ledger/`` names an account by this module's :data:`LocalAccount` and makes one with
:func:`new_account`, so that eth-account stays an implementation detail of the ledger.
"""

from __future__ import annotations

from eth_account import Account
from eth_account.signers.local import LocalAccount


def new_account() -> LocalAccount:
    """A fresh random key (the operating system's randomness)."""
    account: LocalAccount = Account.create()
    return account


__all__ = ["LocalAccount", "new_account"]
