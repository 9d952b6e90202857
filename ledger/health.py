"""Whether the chain node answers, and whether it is the chain this database and data directory were built on.

:func:`check_chain` asks the node a few cheap questions with a short timeout and no retries (a health check must
answer in about a second, not after the client's retries), then holds the answers against what survives here:

- the node's chain id against ``CIRCULAR_CHAIN_ID`` (when set) and against the deployments recorded in the data
  directory (``deployments/<chainId>.json``);
- its height against the deployment's block (a node reset to an empty chain is below it);
- the contracts' code at the deployment's addresses (a fresh node has none);
- the transaction of the database's oldest anchor, which must be on this chain in the block recorded (another
  genesis, or a node reset and redeployed at the same addresses, has none; our chain rewound below its newest anchors,
  by a deep reorganisation or a reverted development chain, still has it and stays ours: ``circular audit`` names
  what it lost).

The answer is one of ``ok``, ``unreachable`` (the node does not answer: reads degrade, writes wait) or ``wrong-chain``
and ``not-deployed`` (the node answers but is not ours: nothing may be written to it), with one line that says what
to set. ``circular serve`` and ``circular worker`` check at start-up and on every reconnect.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from eth_account import Account
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from web3 import Web3
from web3.exceptions import TransactionNotFound
from web3.providers.rpc import HTTPProvider

from .chain import JsonRpcBackend, rpc_fault
from .client import Deployment
from .errors import ChainUnavailable, DeploymentNotFound, WrongChain
from .outbox import Batch, BatchStatus

log = logging.getLogger("circular.chain")

OK = "ok"
UNREACHABLE = "unreachable"
WRONG_CHAIN = "wrong-chain"
NOT_DEPLOYED = "not-deployed"


@dataclass(frozen=True)
class ChainStatus:
    state: str  # ok | unreachable | wrong-chain | not-deployed
    detail: str  # one line: what is wrong and what to set; "" when ok
    chain_id: int | None = None
    height: int | None = None

    @property
    def ok(self) -> bool:
        return self.state == OK

    @property
    def writable(self) -> bool:
        """Whether writing to this node may be tried: ours and answering."""
        return self.state == OK

    @property
    def foreign(self) -> bool:
        """Whether the node answers but is not our chain (never written to)."""
        return self.state in (WRONG_CHAIN, NOT_DEPLOYED)

    def as_json(self) -> dict[str, Any]:
        return {"state": self.state, "detail": self.detail, "chainId": self.chain_id, "height": self.height}


def _probe(service: Any, timeout_s: float) -> Web3:
    """A client of the service's node that fails within `timeout_s` and never retries (the in-process chain as it
    is)."""
    backend = service.backend
    if not isinstance(backend, JsonRpcBackend):
        web3: Web3 = backend.web3
        return web3
    headers = {k: v for k, v in backend.web3.provider.get_request_headers().items()}  # type: ignore[attr-defined]
    extra = getattr(backend, "request_headers", None) or {}
    provider = HTTPProvider(
        backend.url,
        request_kwargs={"timeout": timeout_s, "headers": {**headers, **extra}},
        exception_retry_configuration=None,
    )
    return Web3(provider)


def node_name(service: Any) -> str:
    """The node, named by its scheme, host and port: a hosted node's URL holds its API key (in the path, the query
    or the user info), and this name reaches answers (``/readyz``, a refused write's 503)."""
    backend = service.backend
    if not isinstance(backend, JsonRpcBackend):
        return "the embedded chain"
    parts = urlsplit(backend.url)
    host = parts.hostname or "?"
    if ":" in host:  # IPv6
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"the node at {parts.scheme}://{host}{port}"


def check_chain(service: Any, timeout_s: float = 2.0) -> ChainStatus:
    """Ask `service`'s node whether it answers and is our chain (see the module's docstring)."""
    settings = service.settings
    where = node_name(service)
    web3 = _probe(service, timeout_s)
    try:
        chain_id = int(web3.eth.chain_id)
        height = int(web3.eth.block_number)
    except Exception as exc:
        if rpc_fault(exc) is None and not isinstance(exc, OSError):
            raise
        return ChainStatus(UNREACHABLE, f"{where} does not answer ({type(exc).__name__}); check CIRCULAR_RPC_URL")
    if settings.chain_id is not None and chain_id != settings.chain_id:
        return ChainStatus(
            WRONG_CHAIN,
            f"{where} reports chain id {chain_id}, CIRCULAR_CHAIN_ID says {settings.chain_id}: point CIRCULAR_RPC_URL "
            "at the chain this database was built on",
            chain_id,
            height,
        )
    known = service.__dict__.get("chain_id")  # the chain id this process started on, when it has asked
    if known is not None and known != chain_id:
        return ChainStatus(
            WRONG_CHAIN, f"{where} now reports chain id {chain_id}, not {known} as at start-up", chain_id, height
        )
    try:
        opened = service.__dict__.get("ledger")  # the deployment this process works with, when it has opened it
        if opened is not None and opened.deployment.chain_id == chain_id:
            deployment = opened.deployment
        else:
            deployment = Deployment.load(settings.deployments_dir, chain_id)
    except DeploymentNotFound:
        return ChainStatus(
            NOT_DEPLOYED,
            f"no deployment for chain id {chain_id} ({where}) in {settings.deployments_dir}: run `circular deploy`, "
            "or set CIRCULAR_RPC_URL (and CIRCULAR_DATA_DIR) to the chain the contracts were deployed on",
            chain_id,
            height,
        )
    try:
        problem = _foreign(service, web3, deployment, height)
    except Exception as exc:
        if rpc_fault(exc) is None and not isinstance(exc, OSError):
            raise
        return ChainStatus(UNREACHABLE, f"{where} does not answer ({type(exc).__name__}); check CIRCULAR_RPC_URL")
    if problem:
        return ChainStatus(
            WRONG_CHAIN,
            f"{where} is not the chain this database was built on: {problem}; nothing will be written to it (point "
            "CIRCULAR_RPC_URL at the right node, or rebuild into an empty database)",
            chain_id,
            height,
        )
    return ChainStatus(OK, "", chain_id, height)


def _foreign(service: Any, web3: Web3, deployment: Deployment, height: int) -> str | None:
    """Why the node's chain is not the one `deployment` and the database describe; None when it is."""
    if height < deployment.block_number:
        return f"it is at block {height}, below the deployment's block {deployment.block_number} (a reset node?)"
    anchor = deployment.addresses.get("EventAnchor")
    if anchor and not web3.eth.get_code(Web3.to_checksum_address(anchor)):
        return f"it holds no contract at the EventAnchor address {anchor} (a reset node?)"
    with service.sessions() as session:
        _, oldest = _anchors(session)
    # A node below our newest anchor that still holds our oldest one is our chain, rewound (a reorganisation deeper
    # than the confirmations, a development chain reverted): still ours to write to; `circular audit` names what it
    # lost and the worker anchors again. A node below it without it is another chain, found just below.
    if oldest is not None:
        tx_hash, block_number = oldest
        try:
            mined_in: int | None = int(web3.eth.get_transaction_receipt(tx_hash)["blockNumber"])  # type: ignore[arg-type]
        except TransactionNotFound:
            mined_in = None
        if mined_in != block_number:
            return f"the anchor transaction 0x{tx_hash.hex()} of block {block_number} is not on it"
    return None


def _anchors(session: Session) -> tuple[int | None, tuple[bytes, int] | None]:
    """The block of the database's newest confirmed anchor, and the (transaction, block) of its oldest."""
    confirmed = Batch.status == BatchStatus.CONFIRMED
    newest = session.scalar(select(func.max(Batch.block_number)).where(confirmed))
    row = session.execute(
        select(Batch.tx_hash, Batch.block_number)
        .where(confirmed, Batch.tx_hash.is_not(None), Batch.block_number.is_not(None))
        .order_by(Batch.block_number, Batch.id)
        .limit(1)
    ).first()
    oldest = (bytes(row[0]), int(row[1])) if row is not None and row[0] is not None and row[1] is not None else None
    return (int(newest) if newest is not None else None), oldest


def keystore_problem(settings: Any) -> str | None:
    """Why the keys of this data directory cannot be opened, in one line naming the setting; None when they can
    (keystores without ``CIRCULAR_KEYSTORE_PASSWORD``: every write would fail, and say so only in the log)."""
    if not settings.keys_dir.is_dir():
        return None
    keystores = sorted(settings.keys_dir.glob("*.json"))
    if not keystores:
        return None
    if settings.keystore_password is not None:
        try:  # one keystore opened now (a few hundred ms) rather than every write failing later
            Account.decrypt(json.loads(keystores[0].read_text()), settings.keystore_password.get_secret_value())
        except (ValueError, KeyError, TypeError, OSError):
            return f"CIRCULAR_KEYSTORE_PASSWORD does not open {keystores[0]}: set the password its keys were made with"
        return None
    return (
        f"CIRCULAR_KEYSTORE_PASSWORD is not set, and {settings.keys_dir} holds {len(keystores)} encrypted keystores "
        "(the actors' keys): set it, or no actor can write"
    )


def require_our_chain(service: Any, timeout_s: float = 2.0) -> ChainStatus:
    """:func:`check_chain`, raising :class:`WrongChain` (one line) when the node answers but is not ours."""
    status = check_chain(service, timeout_s)
    if status.foreign:
        raise WrongChain(status.detail)
    return status


class ChainMonitor:
    """The last :func:`check_chain` answer of one process, refreshed every `interval_s` by a thread of its own (once
    started) and on demand; a transition is logged in one line (a warning when the node goes or is not ours, an info
    line when it is back). Reads ask :meth:`degraded`, which never waits for the node; writes ask
    :meth:`require_writable`, which asks again when the last answer was bad and is older than a second."""

    def __init__(self, service: Any, interval_s: float = 5.0, timeout_s: float = 2.0) -> None:
        self.service = service
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.status: ChainStatus | None = None
        self.checked_at = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> ChainStatus:
        with self._lock:
            try:
                status = check_chain(self.service, self.timeout_s)
            except Exception as exc:  # the database is away: that is the readiness check's to say
                status = ChainStatus(UNREACHABLE, f"the chain cannot be checked: {type(exc).__name__}: {exc}")
            previous = self.status
            if status.state == UNREACHABLE and previous is not None and previous.foreign:
                # A check that could not decide (a slow node timing out, the database busy) clears no verdict of
                # "not ours": only a check that finds our chain does, or a writer would send to the foreign node.
                status = previous
            self.status, self.checked_at = status, time.monotonic()
        if previous is None or previous.state != status.state:
            if status.foreign:
                log.error("%s", status.detail)
            else:  # an outage is the worker's and the requests' to report, once per retry
                log.info("chain %s%s", status.state, f": {status.detail}" if status.detail else "")
        return status

    def current(self, max_age_s: float | None = None) -> ChainStatus:
        """The last answer, asked again when older than `max_age_s` (default: the interval)."""
        age = self.interval_s if max_age_s is None else max_age_s
        status = self.status
        if status is None or time.monotonic() - self.checked_at > age:
            return self.refresh()
        return status

    def degraded(self) -> bool:
        """Whether the last answer was bad (the node away, or not ours): reads then verify nothing."""
        status = self.status
        return status is not None and not status.ok

    def fault(self, exc: BaseException) -> None:
        """A call to the node failed as an outage does: reads degrade at once, until the next check says otherwise."""
        if rpc_fault(exc) is None and not isinstance(exc, OSError):
            return
        with self._lock:
            if self.status is None or self.status.ok:
                self.status = ChainStatus(UNREACHABLE, f"{node_name(self.service)} does not answer")
                self.checked_at = time.monotonic()

    def require_writable(self) -> ChainStatus:
        """The node's status when it may be written to; else :class:`WrongChain` or :class:`ChainUnavailable`."""
        status = self.current(1.0 if self.degraded() else None)
        if status.foreign:
            raise WrongChain(status.detail)
        if not status.ok:
            raise ChainUnavailable(status.detail)
        return status

    def require_ours(self) -> ChainStatus:
        """For a writer that handles outages itself (the anchoring worker): :class:`WrongChain` when the node is not
        ours. After an outage (or a fault reported by :meth:`fault`) the node is asked again before anything is
        sent: a node that comes back is checked on reconnect, not at the next interval."""
        status = self.current(0.0 if self.degraded() else None)
        if status.foreign:
            raise WrongChain(status.detail)
        return status

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="chain-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s + 1)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.refresh()


__all__ = [
    "NOT_DEPLOYED",
    "OK",
    "UNREACHABLE",
    "WRONG_CHAIN",
    "ChainMonitor",
    "ChainStatus",
    "check_chain",
    "keystore_problem",
    "node_name",
    "require_our_chain",
]
