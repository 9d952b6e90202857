"""The exception tree of the ledger client. Every error it raises derives from :class:`LedgerError`."""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class LedgerError(Exception):
    """Root of every error raised by :mod:`ledger`."""


class ConfigurationError(LedgerError, ValueError):
    """Settings are missing or inconsistent (an RPC URL, a chain id, a key source, a deployment file)."""


class ChainIdMismatch(ConfigurationError):
    """The node's chain id is not the one the settings expect."""


class ChainUnavailable(LedgerError):
    """The node does not answer right now: a write waits until it does."""


class WrongChain(ConfigurationError):
    """The node answers, but is not the chain this database and data directory were built on (another chain id,
    another genesis, a reset node below our anchors, no contracts where the deployment says)."""


class ChainLocked(LedgerError, RuntimeError):
    """The embedded chain is owned by another process (for example `circular serve`)."""

    def __init__(self, path: object) -> None:
        self.path = path
        super().__init__(f"the embedded chain at {path} is in use by another process")


class KeyNotFound(LedgerError, LookupError):
    """No key is configured for an actor."""


class DeploymentNotFound(LedgerError, LookupError):
    """No deployment of the contracts is recorded for this chain."""


class InvalidIdentifier(LedgerError, ValueError):
    """A GS1 key, Digital Link or event hash id is malformed."""


class InvalidSignature(LedgerError, ValueError):
    """A signature does not verify, is malleable (high s) or its signer lacks the needed role."""


class MerkleProofError(LedgerError, ValueError):
    """A value is not in a Merkle tree, or a proof is malformed."""


class TransactionFailed(LedgerError):
    """A transaction was mined with status 0, or could not be sent."""


class ContractRevert(TransactionFailed):
    """A contract call reverted with a custom error, decoded from the ABI: ``name`` and ``args``.

    Both backends (eth-tester's ``TransactionFailed`` string and JSON-RPC's revert data) are mapped here, in
    :func:`ledger.chain.decode_revert`, so callers match on the Solidity error's name.
    """

    def __init__(self, name: str, args: dict[str, Any], selector: str = "") -> None:
        self.name = name
        self.args_by_name = args
        self.selector = selector
        rendered = ", ".join(f"{key}={_render(value)}" for key, value in args.items())
        super().__init__(f"{name}({rendered})")


class PipelineFailed(TransactionFailed):
    """Some transactions of a pipeline (:meth:`ledger.client.Transactor.send_many`) failed.

    ``failures`` maps each failing index to its error (a :class:`ContractRevert` when the revert could be decoded);
    ``index`` is the first of them. ``receipts`` holds, per index, the receipt of every transaction that was mined
    (failed ones included, with status 0) and None for those never sent or not mined.
    """

    def __init__(self, failures: dict[int, TransactionFailed], receipts: list[Any]) -> None:
        self.failures = failures
        self.receipts = receipts
        self.index = min(failures)
        self.error = failures[self.index]
        super().__init__(
            f"{len(failures)} of {len(receipts)} pipelined transactions failed; the first, at index {self.index}: "
            f"{self.error}"
        )


def _render(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, IntEnum):  # an item state: its name (Sold), not its number
        return value.name
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_render(element) for element in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)


__all__ = [
    "ChainIdMismatch",
    "ChainLocked",
    "ChainUnavailable",
    "ConfigurationError",
    "ContractRevert",
    "DeploymentNotFound",
    "InvalidIdentifier",
    "InvalidSignature",
    "KeyNotFound",
    "LedgerError",
    "MerkleProofError",
    "PipelineFailed",
    "TransactionFailed",
    "WrongChain",
]
