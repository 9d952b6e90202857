"""Chain backends: one Protocol, two implementations, and the one place where reverts are decoded.

- :class:`EthTesterBackend` is the in-process py-evm chain (the default, no setup). With a ``path`` its state is a
  SQLite key-value file, so it survives restarts; a file lock makes one process its owner at a time (the others go
  through the owner's JSON-RPC endpoint: see ``ledger/README.md``).
- :class:`JsonRpcBackend` is any JSON-RPC node: Anvil locally, Besu/QBFT, geth or an L2 in production.
"""

from __future__ import annotations

import ast
import enum
import fcntl
import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import requests
from eth_abi.abi import decode as abi_decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.abi import function_signature_to_4byte_selector
from web3 import HTTPProvider, Web3
from web3.exceptions import ContractCustomError, ContractLogicError, ContractPanicError, Web3RPCError
from web3.middleware import ExtraDataToPOAMiddleware
from web3.providers.eth_tester import EthereumTesterProvider
from web3.providers.rpc.utils import ExceptionRetryConfiguration, check_if_retry_on_failure
from web3.types import RPCEndpoint, RPCResponse

from .artifacts import error_abis
from .errors import ChainLocked, ConfigurationError, ContractRevert, TransactionFailed
from .files import create_private
from .lifecycle import ItemState

ANVIL_CHAIN_ID = 31337
# eth-tester's py-evm chain: the embedded chain, also when another process serves it as JSON-RPC.
EMBEDDED_CHAIN_ID = 131277322940537
# Anvil's and Hardhat's public development mnemonic: its accounts are funded on every dev node, never elsewhere.
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
Account.enable_unaudited_hdwallet_features()


@runtime_checkable
class ChainBackend(Protocol):
    """What the ledger needs of a chain. Every implementation passes the same conformance tests."""

    name: str

    @property
    def web3(self) -> Web3: ...

    def dev_accounts(self) -> list[LocalAccount]:
        """Pre-funded development accounts (empty on a production network)."""
        ...

    def fund(self, address: str, wei: int) -> None:
        """Give `address` `wei` on a development chain; raise ConfigurationError elsewhere."""
        ...

    def mine(self, blocks: int = 1) -> None: ...

    def snapshot(self) -> Any:
        """Remember the chain's state (development chains only)."""
        ...

    def revert(self, snapshot: Any) -> None:
        """Go back to a state remembered by :meth:`snapshot`."""
        ...

    def close(self) -> None: ...


class _PersistentStore(dict[bytes, bytes]):
    """py-evm's key-value store, loaded from and written back to SQLite.

    py-evm keeps state in a dict-like ``MemoryDB``; this dict records what changed so that :meth:`commit` writes
    only that, once per mined block, in one SQLite transaction (one fsync per block, not per trie node).
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        create_private(path)  # the chain's state, its development keys' balances included: its owner's only
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL)")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
        for key, value in self._db.execute("SELECT k, v FROM kv"):
            dict.__setitem__(self, bytes(key), bytes(value))
        self._dirty: set[bytes] = set()
        self._deleted: set[bytes] = set()

    def __setitem__(self, key: bytes, value: bytes) -> None:
        dict.__setitem__(self, key, value)
        self._dirty.add(key)
        self._deleted.discard(key)

    def __delitem__(self, key: bytes) -> None:
        dict.__delitem__(self, key)
        self._deleted.add(key)
        self._dirty.discard(key)

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT v FROM meta WHERE k = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", (key, value))

    def commit(self) -> None:
        if not self._dirty and not self._deleted:
            return
        self._db.execute("BEGIN")
        self._db.executemany("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)", ((k, self[k]) for k in self._dirty))
        self._db.executemany("DELETE FROM kv WHERE k = ?", ((k,) for k in self._deleted))
        self._db.execute("COMMIT")
        self._dirty.clear()
        self._deleted.clear()

    def close(self) -> None:
        self.commit()
        self._db.close()


DEV_ACCOUNTS = 10
# One more genesis account than the dev accounts: the faucet that `fund` spends from, so that funding never touches an
# actor's nonce (which a Transactor may have cached).
_GENESIS_ACCOUNTS = DEV_ACCOUNTS + 1


def _persistent_pyevm_backend(store: _PersistentStore | None) -> Any:
    """A PyEVMBackend whose chain lives in `store` (or in memory when None), resuming from its head."""
    from eth.db.atomic import AtomicDB
    from eth.db.backends.memory import MemoryDB
    from eth_tester import PyEVMBackend
    from eth_tester.backends.pyevm.main import get_default_genesis_params

    class _Backend(PyEVMBackend):  # type: ignore[misc]
        def mine_blocks(self, num_blocks: int = 1, coinbase: Any = None) -> Any:
            kwargs = {} if coinbase is None else {"coinbase": coinbase}
            hashes = super().mine_blocks(num_blocks, **kwargs)
            if store is not None:
                store.commit()
            return hashes

    genesis_state = PyEVMBackend.generate_genesis_state(num_accounts=_GENESIS_ACCOUNTS)
    if store is None:
        return _Backend(genesis_state=genesis_state)
    timestamp = store.meta("genesis_timestamp")
    genesis = get_default_genesis_params({"timestamp": int(timestamp)} if timestamp else None)
    # Builds an in-memory chain first: we take its class and keys, then point it at the store.
    backend = _Backend(genesis_parameters=genesis, genesis_state=genesis_state)
    chain_class = type(backend.chain)
    base_db = AtomicDB(MemoryDB(store))
    if timestamp is None:
        backend.chain = chain_class.from_genesis(base_db, genesis, genesis_state)
        store.set_meta("genesis_timestamp", str(genesis["timestamp"]))
        store.commit()
    else:
        backend.chain = chain_class(base_db)
    return backend


def _keep_revert_data(delegator: Any) -> Any:
    """Keep a custom error's revert data intact on the gas-estimation path.

    web3's tester provider decodes any revert data as `Error(string)`, which mangles a custom error whose first
    argument is a string. Re-raise with the raw bytes as a literal, so that `decode_revert` gets them."""
    from eth_tester.exceptions import TransactionFailed as TesterTransactionFailed

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return delegator(*args, **kwargs)
        except TesterTransactionFailed as exc:
            first = exc.args[0] if exc.args else None
            if isinstance(first, Exception) and first.args and isinstance(first.args[0], bytes):
                raise TesterTransactionFailed(repr(first.args[0])) from None
            raise

    return wrapper


class _LockedTesterProvider(EthereumTesterProvider):
    """py-evm is not thread-safe: the API's threads take turns on the in-process chain."""

    def __init__(self, tester: Any) -> None:
        from web3.providers.eth_tester.defaults import API_ENDPOINTS

        endpoints = {module: dict(methods) for module, methods in API_ENDPOINTS.items()}
        endpoints["eth"] = {name: _keep_revert_data(fn) for name, fn in endpoints["eth"].items()}
        super().__init__(tester, api_endpoints=endpoints)
        self.lock = threading.RLock()

    def make_request(self, method: Any, params: Any) -> Any:
        with self.lock:
            return super().make_request(method, params)


def _tester_keys() -> list[LocalAccount]:
    """The embedded chain's genesis accounts: DEV_ACCOUNTS dev accounts, then the faucet."""
    from eth_tester.backends.pyevm.main import get_default_account_keys

    return [Account.from_key(key.to_bytes()) for key in get_default_account_keys(quantity=_GENESIS_ACCOUNTS)]


def _send_value(web3: Web3, funder: LocalAccount, address: str, wei: int) -> None:
    tx: dict[str, Any] = {
        "to": Web3.to_checksum_address(address),
        "value": wei,
        "from": funder.address,
        "nonce": web3.eth.get_transaction_count(funder.address, "pending"),
        "gas": 21000,
        "chainId": web3.eth.chain_id,
        "maxFeePerGas": web3.eth.gas_price * 2 + 1,
        "maxPriorityFeePerGas": 1,
    }
    signed = funder.sign_transaction(tx)
    web3.eth.wait_for_transaction_receipt(web3.eth.send_raw_transaction(signed.raw_transaction))


class EthTesterBackend:
    """The in-process py-evm chain. With `path`, persisted in SQLite and owned by this process (file lock)."""

    name = "eth-tester"

    def __init__(self, path: Path | None = None) -> None:
        self._lock_file: Any = None
        self._store: _PersistentStore | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._lock_file = open(f"{path}.lock", "a+")  # noqa: SIM115 - held for the backend's lifetime
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._lock_file.close()
                raise ChainLocked(path) from None
            self._store = _PersistentStore(path)
        from eth_tester import EthereumTester

        self._backend = _persistent_pyevm_backend(self._store)
        self._tester = EthereumTester(self._backend)
        self.provider = _LockedTesterProvider(self._tester)
        self._web3 = Web3(self.provider)

    @property
    def web3(self) -> Web3:
        return self._web3

    def dev_accounts(self) -> list[LocalAccount]:
        return [Account.from_key(key.to_bytes()) for key in self._backend.account_keys[:DEV_ACCOUNTS]]

    def fund(self, address: str, wei: int) -> None:
        # eth-tester has no setBalance: the faucet account, which no actor uses, pays.
        _send_value(self._web3, Account.from_key(self._backend.account_keys[DEV_ACCOUNTS].to_bytes()), address, wei)

    def mine(self, blocks: int = 1) -> None:
        self._tester.mine_blocks(blocks)

    def snapshot(self) -> Any:
        return self._tester.take_snapshot()

    def revert(self, snapshot: Any) -> None:
        self._tester.revert_to_snapshot(snapshot)

    def time_travel(self, timestamp: int) -> None:
        self._tester.time_travel(timestamp)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None


class JsonRpcBackend:
    """Any JSON-RPC node. Development accounts exist only on Anvil (chain id 31337)."""

    name = "json-rpc"

    def __init__(self, url: str, timeout: float = 30.0, headers: dict[str, str] | None = None) -> None:
        """`headers` go with every request (the embedded chain's endpoint wants its secret as ``Authorization``)."""
        self.url = url
        self.request_headers = dict(headers or {})
        # web3 retries idempotent calls (eth_sendRawTransaction included: same bytes) on connection errors, HTTP errors
        # and timeouts. Its default of 5 tries multiplies a slow node's timeout by five before the caller hears of it;
        # 3 quick tries absorb a blip, and anything longer is the caller's to back off from (see the worker).
        retries = ExceptionRetryConfiguration(
            errors=(requests.ConnectionError, requests.HTTPError, requests.Timeout), retries=3, backoff_factor=0.1
        )
        request_kwargs: dict[str, Any] = {"timeout": timeout}
        if headers:  # given headers replace web3's own, which are kept
            request_kwargs["headers"] = {**_RetryingHTTPProvider.get_request_headers(), **headers}
        provider = _RetryingHTTPProvider(url, request_kwargs=request_kwargs, exception_retry_configuration=retries)
        self._web3 = Web3(provider)
        # Besu/QBFT and other PoA chains put more than 32 bytes in extraData.
        self._web3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)

    @property
    def web3(self) -> Web3:
        return self._web3

    def dev_accounts(self) -> list[LocalAccount]:
        chain_id = self._web3.eth.chain_id
        if chain_id == EMBEDDED_CHAIN_ID:  # the embedded chain, served by `circular serve`
            return _tester_keys()[:DEV_ACCOUNTS]
        if chain_id != ANVIL_CHAIN_ID:
            return []
        return [Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}") for i in range(10)]

    def fund(self, address: str, wei: int) -> None:
        chain_id = self._web3.eth.chain_id
        if chain_id == EMBEDDED_CHAIN_ID:
            _send_value(self._web3, _tester_keys()[DEV_ACCOUNTS], address, wei)
            return
        if chain_id != ANVIL_CHAIN_ID:
            raise ConfigurationError("funding accounts is only possible on a development chain")
        balance = self._web3.eth.get_balance(Web3.to_checksum_address(address))
        self._web3.provider.make_request("anvil_setBalance", [address, hex(balance + wei)])  # type: ignore[arg-type]

    def mine(self, blocks: int = 1) -> None:
        self._web3.provider.make_request("anvil_mine", [hex(blocks)])  # type: ignore[arg-type]

    def snapshot(self) -> Any:
        return self._web3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]

    def revert(self, snapshot: Any) -> None:
        self._web3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]

    def close(self) -> None:
        pass


def _selector_table() -> dict[bytes, tuple[str, list[str], list[str]]]:
    """Each custom error's selector → (name, argument types, argument names). An argument of the contracts' item
    state enum is typed ``State`` (``State[]`` for a list), so that it decodes to :class:`ItemState`."""
    table: dict[bytes, tuple[str, list[str], list[str]]] = {}
    for entry in error_abis():
        types = [i["type"] for i in entry["inputs"]]
        signature = f"{entry['name']}({','.join(types)})"
        table[function_signature_to_4byte_selector(signature)] = (
            entry["name"],
            [_STATE + kind.removeprefix("uint8") if _is_state(i) else kind for i, kind in zip(entry["inputs"], types,
                                                                                              strict=True)],
            [i["name"] for i in entry["inputs"]],
        )
    table[function_signature_to_4byte_selector("Error(string)")] = ("Error", ["string"], ["message"])
    table[function_signature_to_4byte_selector("Panic(uint256)")] = ("Panic", ["uint256"], ["code"])
    return table


_STATE = "State"  # the ABI type of an argument of the item state enum, as the selector table writes it


def _is_state(argument: dict[str, Any]) -> bool:
    return str(argument.get("internalType", "")).split("[")[0] == "enum IItemRegistry.State"


_SELECTORS: dict[bytes, tuple[str, list[str], list[str]]] | None = None
_HEX_DATA = re.compile(r"0x[0-9a-fA-F]{8,}")


def revert_data(exc: BaseException) -> bytes | None:
    """The raw revert data inside either backend's exception, or None."""
    if isinstance(exc, ContractCustomError | ContractLogicError | ContractPanicError):
        data = exc.data if isinstance(exc.data, str) else None
        if data is None and exc.args and isinstance(exc.args[0], str):
            data = exc.args[0]
        if data:
            match = _HEX_DATA.search(data)
            return bytes.fromhex(match.group(0)[2:]) if match else None
        return None
    message = str(exc.args[0]) if exc.args else ""
    # eth-tester: "execution reverted: b'\\xa3...'", possibly wrapped twice: the revert data is the Python bytes literal
    # after the prefix. Parse exactly that literal: a quote inside the data makes Python print b"..." and may put a
    # "b'" sequence inside it, so searching for the first "b'" is not enough.
    literal = message
    while literal.startswith("execution reverted: "):
        literal = literal[len("execution reverted: ") :]
    if literal.startswith(("b'", 'b"')):
        try:
            value = ast.literal_eval(literal)
        except (ValueError, SyntaxError):
            return None
        return value if isinstance(value, bytes) else None
    match = _HEX_DATA.search(message)
    return bytes.fromhex(match.group(0)[2:]) if match else None


def decode_revert(exc: BaseException) -> ContractRevert | None:
    """Map a revert from either backend to :class:`ContractRevert` with the custom error's name and arguments."""
    global _SELECTORS
    data = revert_data(exc)
    if data is None or len(data) < 4:
        return None
    if _SELECTORS is None:
        _SELECTORS = _selector_table()
    known = _SELECTORS.get(data[:4])
    if known is None:
        return ContractRevert("UnknownError", {"data": data}, "0x" + data[:4].hex())
    name, types, names = known
    try:
        values = abi_decode([kind.replace(_STATE, "uint8") for kind in types], data[4:])
    except Exception:  # malformed data: still name the error
        values = tuple(None for _ in types)
    args = {key: _decoded_arg(kind, value) for key, kind, value in zip(names, types, values, strict=True)}
    return ContractRevert(name, args, "0x" + data[:4].hex())


def _decoded_arg(kind: str, value: Any) -> Any:
    """An error argument as callers use it: addresses checksummed, item states as :class:`ItemState`, arrays as lists
    (``IllegalTransition``'s allowed states)."""
    if kind == "address" and value:
        return Web3.to_checksum_address(value)
    if kind.endswith("]") and isinstance(value, tuple):
        return [_decoded_arg(kind[: kind.rindex("[")], element) for element in value]
    if kind == _STATE and isinstance(value, int) and 0 <= value < len(ItemState):
        return ItemState(value)
    return value


def is_revert(exc: BaseException) -> bool:
    from eth_tester.exceptions import TransactionFailed as TesterTransactionFailed

    return isinstance(exc, TesterTransactionFailed | ContractLogicError | ContractCustomError | ContractPanicError)


class RpcFault(enum.Enum):
    """Why a call to the node failed, when it is worth retrying: the worker logs one line per class and backs off."""

    UNAVAILABLE = "rpc unavailable"  # refused, reset, dropped, timed out, HTTP 5xx: the node or its proxy is down
    RATE_LIMITED = "rpc rate-limited"  # HTTP 429 or a JSON-RPC "limit exceeded"
    NODE_ERROR = "rpc node error"  # JSON-RPC -32000/-32603 "internal error", "header not found": a node mid-sync


# JSON-RPC messages nodes send for load or lag rather than for a bad request (geth, Besu, Anvil, public gateways).
_TRANSIENT_MESSAGES = ("internal error", "header not found", "unknown block", "timeout", "temporarily unavailable")
_RATE_LIMIT_MESSAGES = ("rate limit", "limit exceeded", "too many requests")
_RATE_LIMIT_CODES = (-32005, 429)


def _rpc_error(exc: BaseException) -> tuple[int | None, str]:
    """(code, lower-case message) of a JSON-RPC error response, else (None, lower-case str(exc))."""
    if isinstance(exc, Web3RPCError) and isinstance(exc.rpc_response, dict):
        error = exc.rpc_response.get("error")
        if isinstance(error, dict):
            code = error.get("code")
            return (code if isinstance(code, int) else None), str(error.get("message", "")).lower()
    return None, str(exc).lower()


def rpc_fault(exc: BaseException) -> RpcFault | None:
    """The transient class of `exc`, or None when retrying cannot help (a revert, a rejected transaction, a bug)."""
    if isinstance(exc, requests.HTTPError):
        status = exc.response.status_code if exc.response is not None else None
        if status == 429:
            return RpcFault.RATE_LIMITED
        return RpcFault.UNAVAILABLE if status is None or status >= 500 else None
    if isinstance(exc, requests.ConnectionError | requests.Timeout | ConnectionError | TimeoutError):
        return RpcFault.UNAVAILABLE
    if isinstance(exc, Web3RPCError) and not is_revert(exc):
        return _error_fault(*_rpc_error(exc))
    return None


def _error_fault(code: int | None, message: str) -> RpcFault | None:
    """The transient class of a JSON-RPC error object's code and (lower-case) message."""
    if "revert" in message:  # some nodes answer a revert with -32603: retrying cannot change it
        return None
    if code in _RATE_LIMIT_CODES or any(m in message for m in _RATE_LIMIT_MESSAGES):
        return RpcFault.RATE_LIMITED
    if any(m in message for m in _TRANSIENT_MESSAGES) or code == -32603:
        return RpcFault.NODE_ERROR
    return None


class _RetryingHTTPProvider(HTTPProvider):
    """web3 retries HTTP-level failures only. A node's transient JSON-RPC errors (``header not found`` from a node a
    block behind its peers, -32000 ``internal error``, a rate limit) arrive as answers and would fail the call at the
    first one; retried here a few times, quickly, for the methods web3 deems safe to repeat (reads, and sending the
    same raw bytes). What still fails after that is the caller's to back off from."""

    json_rpc_retries = 3

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        attempt = 0
        while True:
            response: RPCResponse = super().make_request(method, params)
            error = response.get("error")
            if (
                not isinstance(error, dict)
                or attempt + 1 >= self.json_rpc_retries
                or not check_if_retry_on_failure(method)
                or _error_fault(error.get("code"), str(error.get("message", "")).lower()) is None
            ):
                return response
            time.sleep(0.1 * 2**attempt)
            attempt += 1


class BroadcastRefusal(enum.Enum):
    """What a node's refusal of ``eth_sendRawTransaction`` says about the transaction (by message: codes differ)."""

    KNOWN = "already known"  # the same bytes are in the pool (or mined): the send happened
    NONCE_USED = "nonce too low"  # a transaction with this nonce is mined: ours (check by hash) or another
    NONCE_CONTESTED = "replacement transaction underpriced"  # another transaction holds the nonce in the pool


_REFUSALS = (
    (("already known", "already imported", "known transaction", "already in the pool"), BroadcastRefusal.KNOWN),
    (("nonce too low", "nonce has already been used", "invalid nonce"), BroadcastRefusal.NONCE_USED),
    (("replacement transaction underpriced", "replacement fee too low"), BroadcastRefusal.NONCE_CONTESTED),
)


# The in-process chain (py-evm through eth-tester) says "Invalid transaction nonce: Expected 5, but got 4".
_EXPECTED_NONCE = re.compile(r"nonce: expected (\d+), but got (\d+)")


def broadcast_refusal(exc: BaseException) -> BroadcastRefusal | None:
    """How to read a failed ``eth_sendRawTransaction``; None when it says nothing about the transaction."""
    _, message = _rpc_error(exc)
    for needles, refusal in _REFUSALS:
        if any(n in message for n in needles):
            return refusal
    expected = _EXPECTED_NONCE.search(message)
    if expected is not None and int(expected.group(2)) < int(expected.group(1)):
        return BroadcastRefusal.NONCE_USED
    return None


def describe_fault(exc: BaseException, limit: int = 160) -> str:
    """A one-line ``Type: message`` for logs: requests' messages nest the whole urllib3 chain."""
    text = " ".join(str(exc).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def open_backend(rpc_url: str | None, chain_path: Path | None) -> ChainBackend:
    """The backend the settings name: JSON-RPC when `rpc_url` is set, else the embedded chain at `chain_path`."""
    if rpc_url:
        return JsonRpcBackend(rpc_url)
    return EthTesterBackend(chain_path)


__all__ = [
    "ANVIL_CHAIN_ID",
    "BroadcastRefusal",
    "ChainBackend",
    "EthTesterBackend",
    "JsonRpcBackend",
    "RpcFault",
    "TransactionFailed",
    "broadcast_refusal",
    "decode_revert",
    "describe_fault",
    "is_revert",
    "open_backend",
    "rpc_fault",
]
