"""The ledger client: deploys and attaches to the contracts, signs and sends transactions for local accounts.

Every call into the contracts goes through :class:`Ledger`; every transaction through :class:`Transactor`, which holds
one lock over nonce allocation and sending and maps reverts from either backend to :class:`ContractRevert`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.logs import DISCARD
from web3.types import TxReceipt

from .artifacts import load_artifact
from .chain import ChainBackend, decode_revert, is_revert
from .errors import ContractRevert, DeploymentNotFound, TransactionFailed
from .ids import check_serial, item_id, normalize_gtin
from .merkle import MerkleTree


class Role:
    """Role ids, as the contracts define them (``keccak256("BRAND_ROLE")`` ...)."""

    ADMIN = b"\x00" * 32
    BRAND = keccak(text="BRAND_ROLE")
    RECYCLER = keccak(text="RECYCLER_ROLE")
    RETAILER = keccak(text="RETAILER_ROLE")
    REPAIRER = keccak(text="REPAIRER_ROLE")
    ANCHORER = keccak(text="ANCHORER_ROLE")
    LOT_MANAGER = keccak(text="LOT_MANAGER_ROLE")

    @classmethod
    def by_name(cls, name: str) -> bytes:
        try:
            value: bytes = getattr(cls, name.upper())
        except AttributeError:
            raise ValueError(f"unknown role {name!r}") from None
        return value


class ItemState(IntEnum):
    """The contracts' ``IItemRegistry.State``."""

    NONE = 0
    MANUFACTURED = 1
    SOLD = 2
    IN_USE = 3
    RETURNED = 4
    COLLECTED = 5
    REFURBISHED = 6
    RESOLD = 7
    RECYCLED = 8
    DISPOSED = 9


class Transactor:
    """Builds, signs and sends transactions for local accounts; waits for receipts and checks their status."""

    def __init__(self, backend: ChainBackend, receipt_timeout: float = 120.0) -> None:
        self.backend = backend
        self.web3: Web3 = backend.web3
        self.chain_id: int = self.web3.eth.chain_id
        self.receipt_timeout = receipt_timeout
        self.lock = threading.RLock()
        self._nonces: dict[str, int] = {}
        # Called with every successful receipt: how the off-chain projection follows what we write.
        self.listeners: list[Callable[[TxReceipt], None]] = []

    def forget_nonce(self, address: str) -> None:
        """Re-read `address`'s nonce from the node next time (after a failed send or a reorg)."""
        self._nonces.pop(address, None)

    def next_nonce(self, address: str) -> int:
        """Allocate `address`'s next nonce. Call with :attr:`lock` held, up to and including the send."""
        nonce = self._nonces.get(address)
        if nonce is None:
            nonce = self.web3.eth.get_transaction_count(address, "pending")  # type: ignore[arg-type]
        self._nonces[address] = nonce + 1
        return nonce

    def send(
        self, account: LocalAccount, call: ContractFunction | ContractConstructor, gas: int | None = None
    ) -> TxReceipt:
        """Send `call` from `account` and wait for its receipt; raise ContractRevert on a revert."""
        params: dict[str, Any] = {"from": account.address, "chainId": self.chain_id}
        if gas is not None:
            params["gas"] = gas
        with self.lock:  # one lock over nonce allocation and sending: no gaps, no duplicates
            try:
                params["nonce"] = self.next_nonce(account.address)
                tx: Any = call.build_transaction(params)  # type: ignore[arg-type]
                signed = account.sign_transaction(tx)
                tx_hash = self.web3.eth.send_raw_transaction(signed.raw_transaction)
            except Exception as exc:
                self.forget_nonce(account.address)
                raise _mapped(exc) from exc
        receipt = self.web3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.receipt_timeout)
        if receipt["status"] != 1:
            raise self._failure(tx, receipt)
        for listener in self.listeners:
            listener(receipt)
        return receipt

    def deploy(self, account: LocalAccount, name: str, *args: Any) -> str:
        artifact = load_artifact(name)
        factory = self.web3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        receipt = self.send(account, factory.constructor(*args))
        address = receipt["contractAddress"]
        assert address is not None
        return str(address)

    def _failure(self, tx: dict[str, Any], receipt: TxReceipt) -> TransactionFailed:
        """Replay a mined failure as a call at its block to recover the revert reason."""
        replay = {k: tx[k] for k in ("from", "to", "data", "value") if k in tx}
        try:
            self.web3.eth.call(replay, receipt["blockNumber"] - 1)  # type: ignore[arg-type]
        except Exception as exc:
            mapped = _mapped(exc)
            if isinstance(mapped, ContractRevert):
                return mapped
        return TransactionFailed(f"transaction {receipt['transactionHash'].hex()} failed (status 0)")


def _mapped(exc: Exception) -> Exception:
    if is_revert(exc):
        decoded = decode_revert(exc)
        if decoded is not None:
            return decoded
        return TransactionFailed(f"reverted without a known error: {exc}")
    return exc


@dataclass
class Deployment:
    """Where the contracts live on one chain. Saved as ``<dir>/<chainId>.json``."""

    chain_id: int
    addresses: dict[str, str]
    block_number: int
    admin: str

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.chain_id}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.replace(path)  # atomic: a crash never leaves half a deployment file
        return path

    @classmethod
    def load(cls, directory: Path, chain_id: int) -> Deployment:
        path = directory / f"{chain_id}.json"
        try:
            return cls(**json.loads(path.read_text()))
        except FileNotFoundError:
            raise DeploymentNotFound(
                f"no deployment for chain {chain_id} in {directory} (run: circular deploy)"
            ) from None


@dataclass(frozen=True)
class RunCommitment:
    """A run of items committed as one Merkle root, with every item's membership proof."""

    run_id: bytes
    gtin: str
    items_root: bytes
    serials: tuple[str, ...]
    proofs: dict[str, list[bytes]] = field(repr=False)
    receipt: Any = field(repr=False, default=None)


class Ledger:
    """Typed access to a deployment of the circular-ledger contracts."""

    def __init__(self, backend: ChainBackend, deployment: Deployment, transactor: Transactor | None = None) -> None:
        self.backend = backend
        self.web3 = backend.web3
        self.deployment = deployment
        self.tx = transactor or Transactor(backend)
        self.contracts: dict[str, Contract] = {
            name: self.web3.eth.contract(address=Web3.to_checksum_address(address), abi=load_artifact(name).abi)
            for name, address in deployment.addresses.items()
        }
        self.access = self.contracts["CircularAccess"]
        self.prefixes = self.contracts["CompanyPrefixRegistry"]
        self.lots = self.contracts["MaterialLots"]
        self.items = self.contracts["ItemRegistry"]
        self.anchor = self.contracts["EventAnchor"]

    # -- deployment -------------------------------------------------------------------------------------------
    @classmethod
    def deploy(cls, backend: ChainBackend, admin: LocalAccount) -> Ledger:
        """Deploy every contract with `admin` as administrator, and wire them together."""
        tx = Transactor(backend)
        access = tx.deploy(admin, "CircularAccess", admin.address)
        prefixes = tx.deploy(admin, "CompanyPrefixRegistry", access)
        lots = tx.deploy(admin, "MaterialLots", access, prefixes)
        items = tx.deploy(admin, "ItemRegistry", access, prefixes, lots)
        anchor = tx.deploy(admin, "EventAnchor", admin.address)
        deployment = Deployment(
            chain_id=tx.chain_id,
            addresses={
                "CircularAccess": access,
                "CompanyPrefixRegistry": prefixes,
                "MaterialLots": lots,
                "ItemRegistry": items,
                "EventAnchor": anchor,
            },
            block_number=backend.web3.eth.block_number,
            admin=admin.address,
        )
        ledger = cls(backend, deployment, tx)
        ledger.grant_role(admin, "lot_manager", items)
        return ledger

    # -- roles and prefixes -----------------------------------------------------------------------------------
    def _role_holder(self, role: str) -> Contract:
        """Where `role` lives: the anchorer role in EventAnchor itself, every other role in CircularAccess."""
        return self.anchor if role.lower() == "anchorer" else self.access

    def grant_role(self, admin: LocalAccount, role: str, account: str) -> TxReceipt:
        return self.tx.send(admin, self._role_holder(role).functions.grantRole(Role.by_name(role), account))

    def revoke_role(self, admin: LocalAccount, role: str, account: str) -> TxReceipt:
        return self.tx.send(admin, self._role_holder(role).functions.revokeRole(Role.by_name(role), account))

    def has_role(self, role: str, account: str) -> bool:
        return bool(self._role_holder(role).functions.hasRole(Role.by_name(role), account).call())

    def assign_prefix(self, admin: LocalAccount, prefix: str, brand: str) -> TxReceipt:
        return self.tx.send(admin, self.prefixes.functions.assignPrefix(prefix, brand))

    def gtin_owner(self, gtin: str) -> str:
        return str(self.prefixes.functions.gtinOwner(normalize_gtin(gtin)).call())

    # -- lots -------------------------------------------------------------------------------------------------
    def register_lot(
        self,
        brand: LocalAccount,
        gtin: str,
        lot_number: str,
        material_code: bytes,
        mass_grams: int,
        recycled_share_bps: int = 0,
        content_hash: bytes = b"\x00" * 32,
    ) -> bytes:
        receipt = self.tx.send(
            brand,
            self.lots.functions.registerLot(
                normalize_gtin(gtin),
                check_serial(lot_number, "lot"),
                material_code,
                mass_grams,
                recycled_share_bps,
                content_hash,
            ),
        )
        return self._event_arg(receipt, self.lots, "LotRegistered", "lotId")

    def register_material_lot(
        self,
        owner: LocalAccount,
        material_code: bytes,
        lot_number: str,
        mass_grams: int,
        recycled_share_bps: int = 0,
        content_hash: bytes = b"\x00" * 32,
    ) -> bytes:
        receipt = self.tx.send(
            owner,
            self.lots.functions.registerMaterialLot(
                material_code, check_serial(lot_number, "lot"), mass_grams, recycled_share_bps, content_hash
            ),
        )
        return self._event_arg(receipt, self.lots, "LotRegistered", "lotId")

    def approve_lot(self, owner: LocalAccount, lot_id: bytes, operator: str, grams: int) -> TxReceipt:
        return self.tx.send(owner, self.lots.functions.approve(lot_id, operator, grams))

    def lot(self, lot_id: bytes) -> dict[str, Any]:
        owner, mass, allocated, share, code, content, lineage = self.lots.functions.lot(lot_id).call()
        return {
            "owner": owner,
            "massGrams": mass,
            "allocatedGrams": allocated,
            "recycledShareBps": share,
            "materialCode": code,
            "contentHash": content,
            "lineageHash": lineage,
        }

    def available_grams(self, lot_id: bytes) -> int:
        return int(self.lots.functions.availableGrams(lot_id).call())

    # -- items ------------------------------------------------------------------------------------------------
    def register_item(
        self,
        brand: LocalAccount,
        gtin: str,
        serial: str,
        parts: Sequence[tuple[bytes, int]],
        content_hash: bytes = b"\x00" * 32,
    ) -> bytes:
        lot_ids, grams = _split(parts)
        self.tx.send(
            brand,
            self.items.functions.registerItem(normalize_gtin(gtin), check_serial(serial), lot_ids, grams, content_hash),
        )
        return item_id(gtin, serial)

    def register_run(
        self,
        brand: LocalAccount,
        gtin: str,
        serials: Sequence[str],
        parts: Sequence[tuple[bytes, int]],
        content_hash: bytes = b"\x00" * 32,
    ) -> RunCommitment:
        """Commit a run of items as one Merkle root (no per-item storage); returns every item's proof."""
        gtin14 = normalize_gtin(gtin)
        ids = {serial: item_id(gtin14, serial) for serial in serials}
        if len(ids) != len(serials):
            raise ValueError("a run's serials must be distinct")
        tree = MerkleTree.of(list(ids.values()))
        lot_ids, grams = _split(parts)
        run_input = (gtin14, tree.root, len(serials), lot_ids, grams, content_hash, "\n".join(serials).encode())
        receipt = self.tx.send(brand, self.items.functions.registerRun(run_input))
        run_id = self._event_arg(receipt, self.items, "RunRegistered", "runId")
        by_id = tree.proofs()
        proofs = {serial: by_id[ident] for serial, ident in ids.items()}
        return RunCommitment(run_id, gtin14, tree.root, tuple(serials), proofs, receipt)

    def transition(self, actor: LocalAccount, ident: bytes, to: ItemState) -> TxReceipt:
        return self.tx.send(actor, self.items.functions.transition(ident, int(to)))

    def materialize(self, actor: LocalAccount, run: RunCommitment, serial: str) -> TxReceipt:
        return self.tx.send(
            actor, self.items.functions.materialize(run.gtin, serial, run.items_root, run.proofs[serial])
        )

    def transition_run_item(self, actor: LocalAccount, run: RunCommitment, serial: str, to: ItemState) -> TxReceipt:
        return self.tx.send(
            actor, self.items.functions.transitionRunItem(run.gtin, serial, run.items_root, run.proofs[serial], int(to))
        )

    def recycle(
        self,
        recycler: LocalAccount,
        item_ids: Sequence[bytes],
        material_code: bytes,
        lot_number: str,
        mass_grams: int,
        content_hash: bytes = b"\x00" * 32,
    ) -> bytes:
        receipt = self.tx.send(
            recycler,
            self.items.functions.recycle(
                list(item_ids), material_code, check_serial(lot_number, "lot"), mass_grams, content_hash
            ),
        )
        return self._event_arg(receipt, self.items, "ItemsRecycled", "lotId")

    def item(self, ident: bytes) -> dict[str, Any]:
        brand, mass, state = self.items.functions.item(ident).call()
        return {"brand": brand, "massGrams": mass, "state": ItemState(state)}

    # -- anchoring --------------------------------------------------------------------------------------------
    def anchor_root(self, anchorer: LocalAccount, root: bytes, event_count: int, uri: str = "") -> TxReceipt:
        if uri:
            return self.tx.send(anchorer, self.anchor.functions.anchorWithUri(root, event_count, uri))
        return self.tx.send(anchorer, self.anchor.functions.anchor(root, event_count))

    def anchor_of(self, root: bytes) -> dict[str, Any]:
        anchorer, anchored_at, count = self.anchor.functions.anchorOf(root).call()
        return {"anchorer": anchorer, "anchoredAt": anchored_at, "eventCount": count}

    def verify_event_on_chain(self, root: bytes, event_hash: bytes, proof: Sequence[bytes]) -> bool:
        return bool(self.anchor.functions.verifyEvent(root, event_hash, list(proof)).call())

    # -- helpers ----------------------------------------------------------------------------------------------
    @staticmethod
    def _event_arg(receipt: TxReceipt, contract: Contract, event: str, arg: str) -> bytes:
        logs = contract.events[event]().process_receipt(receipt, errors=DISCARD)
        if not logs:
            raise TransactionFailed(f"{event} not emitted by {receipt['transactionHash'].hex()}")
        value: bytes = logs[0]["args"][arg]
        return value


def _split(parts: Sequence[tuple[bytes, int]]) -> tuple[list[bytes], list[int]]:
    return [lot for lot, _ in parts], [grams for _, grams in parts]


__all__ = ["Deployment", "ItemState", "Ledger", "Role", "RunCommitment", "Transactor"]
