"""circular-ledger's client: the only door to the chain.

It deploys and talks to the contracts (:class:`Ledger`), turns supply-chain actions into EPCIS 2.0 events identified
by their CBV 2.0 Event Hash ID, signs them (EIP-712), batches them into OpenZeppelin-compatible Merkle trees and
anchors the roots.
"""

from .chain import ChainBackend, EthTesterBackend, JsonRpcBackend, decode_revert, open_backend
from .client import Deployment, Ledger, RecoveredLot, Role, RunCommitment, Transactor
from .errors import (
    ChainIdMismatch,
    ChainLocked,
    ConfigurationError,
    ContractRevert,
    DeploymentNotFound,
    InvalidIdentifier,
    InvalidSignature,
    KeyNotFound,
    LedgerError,
    MerkleProofError,
    TransactionFailed,
)
from .lifecycle import LIFECYCLE, Action, ItemState, Lifecycle, Party, Step, Write

__all__ = [
    "LIFECYCLE",
    "Action",
    "ChainBackend",
    "ChainIdMismatch",
    "ChainLocked",
    "ConfigurationError",
    "ContractRevert",
    "Deployment",
    "DeploymentNotFound",
    "EthTesterBackend",
    "InvalidIdentifier",
    "InvalidSignature",
    "ItemState",
    "JsonRpcBackend",
    "KeyNotFound",
    "Ledger",
    "LedgerError",
    "Lifecycle",
    "MerkleProofError",
    "Party",
    "RecoveredLot",
    "Role",
    "RunCommitment",
    "Step",
    "TransactionFailed",
    "Transactor",
    "Write",
    "decode_revert",
    "open_backend",
]
