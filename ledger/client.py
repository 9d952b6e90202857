"""The ledger client: deploys and attaches to the contracts, signs and sends transactions for local accounts.

Every call into the contracts goes through :class:`Ledger`; every transaction through :class:`Transactor`, which holds
one lock over nonce allocation and sending and maps reverts from either backend to :class:`ContractRevert`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

from eth_abi.abi import encode as abi_encode
from eth_abi.exceptions import EncodingError
from eth_account.signers.local import LocalAccount
from eth_utils.abi import get_abi_input_types
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.exceptions import TransactionNotFound
from web3.logs import DISCARD
from web3.providers.base import JSONBaseProvider
from web3.types import RPCEndpoint, TxReceipt

from .artifacts import load_artifact
from .chain import BroadcastRefusal, ChainBackend, broadcast_refusal, decode_revert, is_revert
from .errors import ConfigurationError, ContractRevert, DeploymentNotFound, PipelineFailed, TransactionFailed
from .ids import check_serial, item_id, normalize_gtin
from .lifecycle import ItemState
from .merkle import MerkleTree
from .signing import TransactionSigner


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


PIPELINE_BATCH = 100  # transactions per JSON-RPC batch: a few tens of KB per request, well under nodes' limits


# Fixed gas limits of pipelined lifecycle moves (a pipeline cannot estimate each transaction against the state its
# predecessors leave). Gas *used* does not depend on the limit, and Anvil fills a block by gas used (823 transitions
# per 30M block), but a node that reserves the limit would fit fewer: kept a margin above what the moves use. A later
# `transition` uses 36,406 gas when one role is looked up and about 3,000 more per further role the edge admits.
TRANSITION_GAS = 50_000
# A first move of a run item uses about 71,200 gas plus about 760 per Merkle proof step (calldata and one hash).
RUN_TRANSITION_GAS = 90_000
PROOF_STEP_GAS = 1_000


@dataclass(frozen=True)
class PreparedTx:
    """A signed transaction not yet sent: what a caller records before sending, to send the same bytes again."""

    sender: str
    nonce: int
    tx_hash: bytes
    raw: bytes
    tx: dict[str, Any] = field(repr=False)  # the unsigned fields, to replay a failure and name its revert


_INPUT_TYPES: dict[str, list[str]] = {}


def _calldata(call: ContractFunction) -> bytes | None:
    """The call's data (selector and ABI-encoded arguments) with eth-abi, or None where web3 must do it.

    web3 spent about 0.14 ms per call finding the ABI entry again and normalising the arguments; a pipeline's calls
    are all one function with plain arguments, so the types are looked up once per selector. Arguments eth-abi does
    not take as they are (keyword arguments, hex strings for bytes, ENS names) fall back to web3's path.
    ``tests/ledger/test_send_many.py`` checks the data equals web3's.
    """
    if call.kwargs or call.address is None:
        return None
    selector: str = call.selector
    types = _INPUT_TYPES.get(selector)
    if types is None:
        types = _INPUT_TYPES[selector] = get_abi_input_types(cast(Any, call.abi))
    try:
        return bytes.fromhex(selector[2:]) + abi_encode(types, call.args)
    except (TypeError, ValueError, EncodingError):
        return None


# What callers above the ledger name a prepared contract call and a mined transaction's receipt by.
ContractCall = ContractFunction
Receipt = TxReceipt


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

    def fund_dev_account(self, address: str, wei: int) -> bool:
        """Give `address` `wei` on a development chain; False on any other chain (its operator funds accounts).

        Under the nonce lock, and with the funder's cached nonce dropped after: the development chain's funder may be
        an account whose nonces this transactor tracks."""
        with self.lock:
            try:
                self.backend.fund(address, wei)
            except ConfigurationError:
                return False
            finally:
                for funder in self.backend.dev_accounts()[:1]:
                    self.forget_nonce(funder.address)
        return True

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

    # -- a transaction in steps, for callers that record it durably between signing and sending -----------------
    def prepare(
        self, account: LocalAccount, call: ContractFunction, *, gas: int | None = None, nonce: int | None = None
    ) -> PreparedTx:
        """Sign `call` from `account` without sending it, with `nonce` or else this process's next one."""
        return self.sign_with_nonce(account, self.build(account, call, gas=gas), nonce)

    def build(self, account: LocalAccount, call: ContractFunction, *, gas: int | None = None) -> dict[str, Any]:
        """The unsigned transaction of `call`, without its nonce. Gas is estimated here, against the current state:
        a call that would revert raises :class:`ContractRevert` before anything is recorded or sent. Needs no lock,
        so that callers can hold theirs only while choosing the nonce."""
        params: dict[str, Any] = {"from": account.address, "chainId": self.chain_id}
        if gas is not None:
            params["gas"] = gas
        try:
            return dict(call.build_transaction(params))  # type: ignore[arg-type]
        except Exception as exc:
            raise _mapped(exc) from exc

    def sign_with_nonce(self, account: LocalAccount, tx: dict[str, Any], nonce: int | None = None) -> PreparedTx:
        """Sign a :meth:`build` transaction with `nonce`, or else this process's next one. A caller that coordinates
        nonces across processes (a database lock) passes the one it chose; the process's own count then moves past
        it, so that :meth:`send` does not reuse it."""
        with self.lock:
            if nonce is None:
                nonce = self.next_nonce(account.address)
            else:
                cached = self._nonces.get(account.address)
                if cached is not None and nonce >= cached:
                    self._nonces[account.address] = nonce + 1
        tx = {**tx, "nonce": nonce}
        signed = account.sign_transaction(tx)
        return PreparedTx(account.address, nonce, bytes(signed.hash), bytes(signed.raw_transaction), tx)

    def broadcast(self, raw: bytes) -> None:
        """Hand signed bytes to the node. Sending the same bytes again is harmless: the node already knows them."""
        try:
            self.web3.eth.send_raw_transaction(raw)
        except Exception as exc:
            if broadcast_refusal(exc) is BroadcastRefusal.KNOWN:
                return
            raise _mapped(exc) from exc

    def receipt_of(self, tx_hash: bytes) -> TxReceipt | None:
        try:
            return self.web3.eth.get_transaction_receipt(HexBytes(tx_hash))
        except TransactionNotFound:
            return None

    def is_known(self, tx_hash: bytes) -> bool:
        """Whether the node has the transaction (mined or in its pool)."""
        try:
            self.web3.eth.get_transaction(HexBytes(tx_hash))
        except TransactionNotFound:
            return False
        return True

    def mined_count(self, address: str) -> int:
        """How many of `address`'s nonces are used by mined transactions."""
        return int(self.web3.eth.get_transaction_count(address, "latest"))  # type: ignore[arg-type]

    def pending_count(self, address: str) -> int:
        """`address`'s nonces used by mined transactions and those in the node's pool."""
        return int(self.web3.eth.get_transaction_count(address, "pending"))  # type: ignore[arg-type]

    def await_receipt(self, tx_hash: bytes) -> TxReceipt:
        return self.web3.eth.wait_for_transaction_receipt(HexBytes(tx_hash), timeout=self.receipt_timeout)

    def settle(self, prepared_tx: dict[str, Any], receipt: TxReceipt) -> TxReceipt:
        """Check a receipt of a prepared transaction as :meth:`send` does: a revert raises, a success is told to the
        listeners."""
        if receipt["status"] != 1:
            raise self._failure(prepared_tx, receipt)
        for listener in self.listeners:
            listener(receipt)
        return receipt

    def send_many(
        self, account: LocalAccount, calls: Sequence[ContractFunction], *, gas: int, batch_size: int = PIPELINE_BATCH
    ) -> list[TxReceipt]:
        """Send `calls` from `account` as one pipeline and return their receipts, in order.

        Every transaction is signed locally with consecutive nonces under :attr:`lock`, and sent in JSON-RPC batches
        of `batch_size` (one ``eth_sendRawTransaction`` after another where the provider cannot batch, as on the
        in-process chain); only then are the receipts awaited. Fees are asked once per pipeline, and `gas` is a fixed
        limit per transaction: a transaction cannot be estimated against the state its predecessors will leave, and
        gas *used* does not depend on the limit (the limit only bounds how many fit in a block).

        Failures are defined per transaction, because the nonces are taken before any is mined:

        - a call that reverts is mined with status 0 and its nonce is used; the later calls are mined too, on the
          state it left unchanged;
        - a transaction the node refuses (funds, nonce) stops the pipeline: nothing after its JSON-RPC batch is sent,
          and the nonce cache is dropped so the next send re-reads the node's count.

        Either way :class:`PipelineFailed` is raised once every sent transaction is settled, with every failing index
        (reverts decoded to :class:`ContractRevert`) and every receipt, so the caller knows exactly what took effect.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if not calls:
            return []
        failures: dict[int, TransactionFailed] = {}
        unsigned: list[dict[str, Any]] = []
        hashes: list[bytes] = []
        refused = threading.Event()

        def broadcast(start: int, raws: list[bytes]) -> tuple[int, TransactionFailed] | None:
            if refused.is_set():  # an earlier batch was refused: nothing after it may be sent
                return None
            refusal = self._broadcast_all(raws)
            if refusal is not None:
                refused.set()
                return start + refusal[0], refusal[1]
            return None

        with self.lock:  # one lock over nonce allocation and sending: no gaps, no duplicates
            # One sender thread, fed in nonce order: the node takes batch k while batch k + 1 is being signed.
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="send-many") as sender:
                sends: list[Future[tuple[int, TransactionFailed] | None]] = []
                try:
                    fees = self._pipeline_fees(account, calls[0], gas)
                    # EIP-1559 fees (every current node): each call is encoded and signed directly, about 0.1 ms
                    # instead of web3's build_transaction and eth-account's signing (0.85 ms together), which capped
                    # a pipeline below what a 1 s block holds. Legacy gas prices keep the libraries' path.
                    fast = TransactionSigner(account) if "maxFeePerGas" in fees else None
                    for start in range(0, len(calls), batch_size):
                        if refused.is_set():
                            break
                        raws = []
                        for call in calls[start : start + batch_size]:
                            params: Any = {"from": account.address, "chainId": self.chain_id, "gas": gas, **fees}
                            params["nonce"] = self.next_nonce(account.address)
                            tx, raw, tx_hash = self._sign_call(account, fast, call, params)
                            unsigned.append(tx)
                            hashes.append(tx_hash)
                            raws.append(raw)
                        sends.append(sender.submit(broadcast, start, raws))
                    refusals = [refusal for refusal in (send.result() for send in sends) if refusal is not None]
                except Exception as exc:
                    refused.set()
                    self.forget_nonce(account.address)
                    raise _mapped(exc) from exc
            if refusals:
                index, error = refusals[0]
                failures[index] = error
                # Only what went before the refusal counts as sent: a later transaction of the same JSON-RPC batch
                # may sit in the node's pool behind the gap, and the node's count decides from here.
                del unsigned[index:], hashes[index:]
                self.forget_nonce(account.address)
        receipts: list[Any] = self._await_all(hashes) + [None] * (len(calls) - len(hashes))
        for index, (tx, receipt) in enumerate(zip(unsigned, receipts, strict=False)):
            if receipt["status"] != 1:
                failures[index] = self._failure(tx, receipt)
            else:
                for listener in self.listeners:
                    listener(receipt)
        if failures:
            raise PipelineFailed(failures, receipts)
        return receipts

    # -- many transactions in steps, for callers that record them durably between signing and sending -------------
    def sign_many(
        self, account: LocalAccount, calls: Sequence[ContractFunction], gas: Sequence[int], nonces: Sequence[int]
    ) -> list[PreparedTx]:
        """Sign `calls` from `account` with the given gas limits and nonces, sending nothing: the pipeline's signing
        (fees asked once, each call encoded and signed directly), for a caller that records the transactions before
        :meth:`broadcast_many`. The process's nonce count moves past the highest nonce, as with
        :meth:`sign_with_nonce`."""
        if not (len(calls) == len(gas) == len(nonces)):
            raise ValueError("one gas limit and one nonce per call")
        if not calls:
            return []
        fees = self._pipeline_fees(account, calls[0], max(gas))
        fast = TransactionSigner(account) if "maxFeePerGas" in fees else None
        prepared = []
        for call, limit, nonce in zip(calls, gas, nonces, strict=True):
            params: Any = {"from": account.address, "chainId": self.chain_id, "gas": limit, "nonce": nonce, **fees}
            tx, raw, tx_hash = self._sign_call(account, fast, call, params)
            prepared.append(PreparedTx(account.address, nonce, tx_hash, raw, dict(tx)))
        with self.lock:
            cached = self._nonces.get(account.address)
            if cached is not None and max(nonces) >= cached:
                self._nonces[account.address] = max(nonces) + 1
        return prepared

    def broadcast_many(
        self, raws: Sequence[bytes], batch_size: int = PIPELINE_BATCH
    ) -> tuple[int, TransactionFailed] | None:
        """Send signed transactions in order, in JSON-RPC batches of `batch_size`; stop at the first the node
        refuses and return its index and the refusal (None when every one was taken). A refusal of bytes the node
        already knows is no refusal. What comes after a refusal is not sent (it may still sit in the node's pool
        when it shared the refused one's batch): the caller settles those by hash."""
        for start in range(0, len(raws), batch_size):
            refusal = self._broadcast_all(list(raws[start : start + batch_size]))
            if refusal is not None and broadcast_refusal(refusal[1]) is not BroadcastRefusal.KNOWN:
                return start + refusal[0], refusal[1]
        return None

    def receipts(self, hashes: Sequence[bytes]) -> list[TxReceipt]:
        """The receipts of transactions sent in order by one sender, in order, awaited in JSON-RPC batches
        (a timeout raises, as :meth:`await_receipt` does)."""
        return self._await_all(list(hashes))

    def failure(self, tx: dict[str, Any], receipt: TxReceipt) -> TransactionFailed:
        """Why a mined transaction failed (status 0): its revert decoded to :class:`ContractRevert` when it can be."""
        return self._failure(tx, receipt)

    @staticmethod
    def _sign_call(
        account: LocalAccount, fast: TransactionSigner | None, call: ContractFunction, params: dict[str, Any]
    ) -> tuple[dict[str, Any], bytes, bytes]:
        """The transaction of `call` with `params` (sender, chain, gas, fees, nonce), signed: its fields, raw bytes
        and hash. With `fast` (EIP-1559 fees) encoded and signed directly; otherwise by web3 and eth-account."""
        data = _calldata(call) if fast is not None else None
        if fast is None or data is None:
            tx: Any = call.build_transaction(cast(Any, params))
            signed = account.sign_transaction(tx)
            return tx, bytes(signed.raw_transaction), bytes(signed.hash)
        raw, tx_hash = fast.sign_dynamic_fee(
            chain_id=params["chainId"],
            nonce=params["nonce"],
            max_priority_fee_per_gas=params["maxPriorityFeePerGas"],
            max_fee_per_gas=params["maxFeePerGas"],
            gas=params["gas"],
            to=bytes.fromhex(call.address[2:]),
            value=0,
            data=data,
        )
        return {**params, "to": call.address, "value": 0, "data": "0x" + data.hex()}, raw, tx_hash

    def _pipeline_fees(self, account: LocalAccount, first: ContractFunction, gas: int) -> dict[str, Any]:
        """The fee fields web3 picks for the first call (the node's base fee and tip), reused for the whole
        pipeline so that building each transaction asks the node nothing. ``maxFeePerGas`` leaves room for the base
        fee to double while the pipeline is mined (web3's own default)."""
        params: Any = {"from": account.address, "chainId": self.chain_id, "gas": gas, "nonce": 0}
        probe: Any = first.build_transaction(params)
        return {key: probe[key] for key in ("maxFeePerGas", "maxPriorityFeePerGas", "gasPrice") if key in probe}

    def _broadcast_all(self, raws: list[bytes]) -> tuple[int, TransactionFailed] | None:
        """Send raw transactions in one JSON-RPC batch (one by one where the provider cannot batch); return the
        index and error of the first the node refused, if any."""
        requests = [(RPCEndpoint("eth_sendRawTransaction"), ["0x" + raw.hex()]) for raw in raws]
        try:
            responses = self._batch_request(requests)
        except NotImplementedError:  # e.g. the in-process chain: no transport, so nothing to batch
            for index, raw in enumerate(raws):
                try:
                    self.web3.eth.send_raw_transaction(raw)
                except Exception as exc:
                    mapped = _mapped(exc)
                    if isinstance(mapped, TransactionFailed):
                        return index, mapped
                    return index, TransactionFailed(f"node refused the transaction: {exc}")
            return None
        if not isinstance(responses, list):  # the node answered the whole batch with one error
            return 0, TransactionFailed(f"node refused the batch: {_rpc_message(responses)}")
        for index, response in enumerate(responses):
            if response.get("error") is not None:
                return index, TransactionFailed(f"node refused the transaction: {_rpc_message(response)}")
        return None

    def _batch_request(self, requests: list[tuple[RPCEndpoint, Any]]) -> Any:
        """Raw JSON-RPC responses of one batch (web3 refuses ``eth_sendRawTransaction`` in ``batch_requests()``)."""
        if not self._can_batch():
            raise NotImplementedError("the provider cannot batch requests")
        return cast(JSONBaseProvider, self.web3.provider).make_batch_request(requests)

    def _can_batch(self) -> bool:
        """Whether the provider speaks JSON-RPC batches (what web3's own ``batch_requests()`` checks)."""
        return isinstance(self.web3.provider, JSONBaseProvider)

    def _await_all(self, hashes: list[bytes]) -> list[TxReceipt]:
        """Every receipt, in order, fetched in JSON-RPC batches. One sender's transactions are mined in nonce order:
        when a batch finds a receipt missing, waiting for the batch's last transaction waits for all of it. The early
        batches are usually mined by the time the last one is sent, so they are read while the last block is due."""
        receipts: list[TxReceipt] = []
        for start in range(0, len(hashes), PIPELINE_BATCH):
            part = [HexBytes(h) for h in hashes[start : start + PIPELINE_BATCH]]
            if not self._can_batch():
                receipts += [
                    self.web3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.receipt_timeout)
                    for tx_hash in part
                ]
                continue
            try:
                receipts += self._receipts_batch(part)
            except TransactionNotFound:
                self.web3.eth.wait_for_transaction_receipt(part[-1], timeout=self.receipt_timeout)
                receipts += self._receipts_batch(part)
        return receipts

    def _receipts_batch(self, hashes: list[HexBytes]) -> list[TxReceipt]:
        with self.web3.batch_requests() as batch:
            for tx_hash in hashes:
                batch.add(self.web3.eth.get_transaction_receipt(tx_hash))
            return cast(list[TxReceipt], batch.execute())

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


def _rpc_message(response: Any) -> str:
    error = response.get("error") if isinstance(response, dict) else None
    return str(error.get("message", error)) if isinstance(error, dict) else str(error or response)


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
class RecoveredLot:
    """One recovered lot that recycling makes: `mass_grams` of `material_code` (bytes32), numbered `lot_number` in the
    recycler's namespace. Recycling makes one per material from one set of items."""

    material_code: bytes
    lot_number: str
    mass_grams: int
    content_hash: bytes = b"\x00" * 32

    def as_abi(self) -> tuple[bytes, str, int, bytes]:
        return (self.material_code, check_serial(self.lot_number, "lot"), self.mass_grams, self.content_hash)


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

    # -- partners ---------------------------------------------------------------------------------------------
    def set_partner(self, brand: LocalAccount, partner: str, role: str, authorized: bool = True) -> TxReceipt:
        """`brand` authorises `partner` (or, `authorized` false, stops authorising it) to move its items as its
        retailer, recycler or repairer (`role`, by name)."""
        return self.tx.send(brand, self.set_partner_call(partner, role, authorized))

    def set_partner_call(self, partner: str, role: str, authorized: bool = True) -> ContractFunction:
        return self.items.functions.setPartner(Web3.to_checksum_address(partner), Role.by_name(role), authorized)

    def is_partner(self, brand: str, partner: str, role: str) -> bool:
        """Whether `brand` has authorised `partner` as its retailer, recycler or repairer (`role`, by name)."""
        return bool(
            self.items.functions.isPartner(
                Web3.to_checksum_address(brand), Web3.to_checksum_address(partner), Role.by_name(role)
            ).call()
        )

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

    # Unsent calls, for writers that sign, record and send in steps (Transactor.prepare).
    def register_item_call(
        self, gtin: str, serial: str, parts: Sequence[tuple[bytes, int]], content_hash: bytes = b"\x00" * 32
    ) -> ContractFunction:
        lot_ids, grams = _split(parts)
        return self.items.functions.registerItem(
            normalize_gtin(gtin), check_serial(serial), lot_ids, grams, content_hash
        )

    def register_lot_call(
        self, gtin: str, lot_number: str, material_code: bytes, mass_grams: int, recycled_share_bps: int = 0
    ) -> ContractFunction:
        return self.lots.functions.registerLot(
            normalize_gtin(gtin),
            check_serial(lot_number, "lot"),
            material_code,
            mass_grams,
            recycled_share_bps,
            b"\x00" * 32,
        )

    def register_material_lot_call(
        self, material_code: bytes, lot_number: str, mass_grams: int, recycled_share_bps: int = 0
    ) -> ContractFunction:
        return self.lots.functions.registerMaterialLot(
            material_code, check_serial(lot_number, "lot"), mass_grams, recycled_share_bps, b"\x00" * 32
        )

    def approve_lot_call(self, lot_id: bytes, operator: str, grams: int) -> ContractFunction:
        return self.lots.functions.approve(lot_id, operator, grams)

    def recycle_call(
        self, item_ids: Sequence[bytes], material_code: bytes, lot_number: str, mass_grams: int
    ) -> ContractFunction:
        """Recycling into one recovered lot (see :meth:`recycle_into_call` for several)."""
        return self.recycle_into_call(item_ids, [RecoveredLot(material_code, lot_number, mass_grams)])

    def recycle_into_call(self, item_ids: Sequence[bytes], outputs: Sequence[RecoveredLot]) -> ContractFunction:
        return self.items.functions.recycle(list(item_ids), [output.as_abi() for output in outputs])

    def register_run_call(
        self, gtin: str, serials: Sequence[str], parts: Sequence[tuple[bytes, int]]
    ) -> tuple[ContractFunction, RunCommitment]:
        """:meth:`register_run`'s call, and the commitment it makes (the run id as the contract derives it)."""
        gtin14 = normalize_gtin(gtin)
        run = run_commitment(gtin14, serials)
        lot_ids, grams = _split(parts)
        run_input = (gtin14, run.items_root, len(serials), lot_ids, grams, b"\x00" * 32, "\n".join(serials).encode())
        return self.items.functions.registerRun(run_input), run

    @staticmethod
    def transition_gas(proof_steps: int | None = None) -> int:
        """The fixed gas limit of a pipelined move: a plain transition, or (`proof_steps` given) an item of a run's
        first move with a proof of that many steps."""
        return TRANSITION_GAS if proof_steps is None else RUN_TRANSITION_GAS + PROOF_STEP_GAS * proof_steps

    def transition_call(self, ident: bytes, to: ItemState) -> ContractFunction:
        return self.items.functions.transition(ident, int(to))

    def transition_run_item_call(self, run: RunCommitment, serial: str, to: ItemState) -> ContractFunction:
        return self.items.functions.transitionRunItem(run.gtin, serial, run.items_root, run.proofs[serial], int(to))

    def transition(self, actor: LocalAccount, ident: bytes, to: ItemState) -> TxReceipt:
        return self.tx.send(actor, self.items.functions.transition(ident, int(to)))

    def transition_many(self, actor: LocalAccount, moves: Sequence[tuple[bytes, ItemState]]) -> list[TxReceipt]:
        """Move many items at once (a till closing its day, a recycler's intake): one transaction per item, sent as
        one pipeline (see :meth:`Transactor.send_many`, which defines what a failing move means for the others)."""
        calls = [self.items.functions.transition(ident, int(to)) for ident, to in moves]
        return self.tx.send_many(actor, calls, gas=TRANSITION_GAS)

    def transition_run_items(
        self, actor: LocalAccount, run: RunCommitment, moves: Sequence[tuple[str, ItemState]]
    ) -> list[TxReceipt]:
        """The first move of many items of `run` (each presents its Merkle proof), as one pipeline."""
        calls = [
            self.items.functions.transitionRunItem(run.gtin, serial, run.items_root, run.proofs[serial], int(to))
            for serial, to in moves
        ]
        return self.tx.send_many(actor, calls, gas=RUN_TRANSITION_GAS + PROOF_STEP_GAS * _longest_proof(run, moves))

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
        """Recycle `item_ids` into one recovered lot; returns its id."""
        return self.recycle_into(
            recycler, item_ids, [RecoveredLot(material_code, lot_number, mass_grams, content_hash)]
        )[0]

    def recycle_into(
        self, recycler: LocalAccount, item_ids: Sequence[bytes], outputs: Sequence[RecoveredLot]
    ) -> list[bytes]:
        """Recycle `item_ids` into recovered lots, one per material; returns their ids, in the order of `outputs`."""
        receipt = self.tx.send(recycler, self.recycle_into_call(item_ids, outputs))
        logs = self.items.events.ItemsRecycled().process_receipt(receipt, errors=DISCARD)
        return [bytes(log["args"]["lotId"]) for log in logs]

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


def run_commitment(gtin: str, serials: Sequence[str]) -> RunCommitment:
    """The Merkle commitment of a run, with every item's proof and the run id ItemRegistry derives
    (``keccak256(abi.encode(gtin, itemsRoot))``)."""
    gtin14 = normalize_gtin(gtin)
    ids = {serial: item_id(gtin14, serial) for serial in serials}
    if len(ids) != len(serials):
        raise ValueError("a run's serials must be distinct")
    tree = MerkleTree.of(list(ids.values()))
    by_id = tree.proofs()
    run_id = keccak(abi_encode(["string", "bytes32"], [gtin14, tree.root]))
    return RunCommitment(run_id, gtin14, tree.root, tuple(serials), {s: by_id[i] for s, i in ids.items()})


def _longest_proof(run: RunCommitment, moves: Sequence[tuple[str, ItemState]]) -> int:
    return max((len(run.proofs[serial]) for serial, _ in moves), default=0)


def _split(parts: Sequence[tuple[bytes, int]]) -> tuple[list[bytes], list[int]]:
    return [lot for lot, _ in parts], [grams for _, grams in parts]


__all__ = [
    "PIPELINE_BATCH",
    "TRANSITION_GAS",
    "ContractCall",
    "Deployment",
    "ItemState",
    "Ledger",
    "PreparedTx",
    "Receipt",
    "RecoveredLot",
    "Role",
    "RunCommitment",
    "Transactor",
    "run_commitment",
]
