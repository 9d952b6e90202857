"""RPC faults: the anchoring worker, as its own process, behind a proxy that drops, delays and fails JSON-RPC
requests, with the node stopped and restarted (same state, empty mempool) while batches are sent and unconfirmed.

Once the node is back and the faults stop, every one of 1,000 events is anchored exactly once, the worker never
exited, and its log names each fault in one line (no tracebacks)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from eth_typing import ChecksumAddress
from sqlalchemy import func, select
from web3 import Web3
from web3.exceptions import TransactionNotFound, Web3RPCError
from web3.types import RPCError

from ledger.anchoring import Backoff
from ledger.chain import BroadcastRefusal, RpcFault, broadcast_refusal, rpc_fault
from ledger.epcis import events as ev
from ledger.merkle import verify_proof
from ledger.outbox import Batch, BatchStatus, EventStatus, OutboxEvent, split_proof
from ledger.service import LedgerService
from ledger.settings import Settings
from tests.conftest import ANVIL, _free_port, migrated
from tests.reliability.faultproxy import FaultProxy, FaultRates

EVENTS = 1000
BATCH_SIZE = 50
SEED = 20261107
T0 = datetime(2026, 11, 1, tzinfo=UTC)
CLIENT_TIMEOUT_S = 1.5
# Every line the worker may log at WARNING or above while the node misbehaves: a fault class and its retry delay.
EXPECTED_WARNING = re.compile(
    r" WARNING circular\.(anchoring|worker): "
    r"(rpc unavailable|rpc rate-limited|rpc node error), retrying in \d+\.\d s \(\w+: .*\)$"
    r"| WARNING circular\.anchoring: broadcast refused, checking the anchor by hash \(.*\)$"
)


class RestartableAnvil:
    """Anvil on a fixed port whose chain survives a stop and start (``--state``: dumped on SIGTERM, loaded at start).
    What it does not keep is its mempool: transactions pending at the stop are gone after the start."""

    def __init__(self, state: Path, *extra: str) -> None:
        self.state = state
        self.extra = extra
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(ANVIL), "--host", "127.0.0.1", "--port", str(self.port), "--silent", "--state", str(self.state),
             *self.extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        _wait_for(lambda: _accepts(self.port), 15, "Anvil did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: Anvil writes its state file on the way out
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.mark.slow
@pytest.mark.anvil
def test_rpc_faults_and_a_node_restart_anchor_every_event_exactly_once(tmp_path: Path) -> None:
    node = RestartableAnvil(tmp_path / "anvil-state.json", "--block-time", "1")
    worker: subprocess.Popen[bytes] | None = None
    try:
        with FaultProxy(node.url, seed=SEED) as proxy:
            worker = _scenario(node, proxy, tmp_path)
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
            worker.wait()
        node.stop()


def _scenario(node: RestartableAnvil, proxy: FaultProxy, tmp_path: Path) -> subprocess.Popen[bytes]:
    started = time.monotonic()
    data, db = tmp_path / "data", f"sqlite:///{tmp_path / 'outbox.sqlite'}"
    # The test itself talks to the node directly; only the worker goes through the proxy.
    service = LedgerService(migrated(Settings(data_dir=data, rpc_url=node.url, db_url=db)))
    admin, brand, anchorer = (service.backend.dev_accounts()[i] for i in (0, 1, 9))
    ledger = service.deploy(admin)
    ledger.grant_role(admin, "brand", brand.address)
    ledger.grant_role(admin, "anchorer", anchorer.address)
    web3 = service.backend.web3
    nonce_before = web3.eth.get_transaction_count(anchorer.address)
    events = [ev.lifecycle(ev.Lifecycle.SOLD, [f"https://id.example/01/09506000134352/21/F{i}"],
                           at=T0 + timedelta(seconds=i)) for i in range(EVENTS)]
    assert sum(s.created for s in service.record(brand, events)) == EVENTS

    log_path = tmp_path / "worker.log"
    env = {**os.environ, "CIRCULAR_BATCH_SIZE": str(BATCH_SIZE), "CIRCULAR_BATCH_MAX_WAIT_S": "0",
           "CIRCULAR_RPC_TIMEOUT_S": str(CLIENT_TIMEOUT_S), "CIRCULAR_WORKER_MAX_BACKOFF_S": "2"}
    command = [sys.executable, "-m", "circular", "worker", "--rpc", proxy.url, "--db", db, "--data-dir", str(data)]
    proxy.faults_on(FaultRates(long_delay_s=CLIENT_TIMEOUT_S + 1.5))
    with log_path.open("wb") as log_file:
        worker = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT)

    # Stop the node while batches are sent and unconfirmed (1 s blocks leave a window after each send).
    def pending() -> list[bytes]:
        with service.sessions() as session:
            in_flight = list(session.scalars(select(Batch.tx_hash).where(Batch.status == BatchStatus.SENT)))
        return [h for h in in_flight if h is not None and not _mined(web3, h)]

    _wait_for(lambda: _count(service, BatchStatus.CONFIRMED) >= 1 and bool(pending()), 30,
              "the worker never had a batch sent and unmined")
    pending_at_stop = pending()
    unavailable_before = log_path.read_text().count("rpc unavailable")
    node.stop()
    # The outage lasts until the worker has run into it (it retries with backoff, and must not exit), and 1 s more.
    _wait_for(lambda: log_path.read_text().count("rpc unavailable") > unavailable_before, 20,
              "the worker never noticed the node was down")
    time.sleep(1.0)
    assert worker.poll() is None, "the worker exited while the node was down"
    node.start()
    # Pending transactions do not survive a restart: only the worker's recorded bytes can bring them back.
    lost_from_pool = [h for h in pending_at_stop if not _known(web3, h)]
    # Bursts no client-side retry absorbs (a provider rate-limiting everything, a node stuck behind the head), each
    # until the worker has logged it; then the random mix again for a while, then no faults.
    for kind, logged in (("http_429", "rpc rate-limited"), ("rpc_header_not_found", "rpc node error")):
        before = log_path.read_text().count(logged)
        proxy.faults_on(FaultRates.only(kind))
        _wait_for(lambda: log_path.read_text().count(logged) > before, 20, f"the worker never logged {logged!r}")  # noqa: B023
    proxy.faults_on(FaultRates(long_delay_s=CLIENT_TIMEOUT_S + 1.5))
    time.sleep(2.0)
    proxy.faults_off()

    _wait_for(lambda: _all_anchored(service), 45, "events still unanchored after the faults stopped")
    assert worker.poll() is None, "the worker exited"
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=15) == 0  # stops cleanly, once

    _assert_exactly_once(service, anchorer.address, nonce_before)
    log = log_path.read_text()
    warnings = _assert_clear_log(log)
    if lost_from_pool:  # verify the design: lost transactions come back as the same bytes, not as new ones
        assert "re-broadcasting it" in log
    with service.sessions() as session:
        batches = session.scalar(select(func.count()).select_from(Batch))
    faults = proxy.by_class()
    print(f"\nFIGURE rpc-faults: {EVENTS} events, {batches} batches, dropped={faults['dropped']}, "
          f"delayed={faults['delayed']}, errors={faults['errors']}, node restarts=1, lost=0, duplicated=0, "
          f"roots twice=0, in flight at stop={len(pending_at_stop)}, lost from mempool={len(lost_from_pool)}, "
          f"worker warnings={sum(warnings.values())} ({', '.join(f'{k}: {v}' for k, v in sorted(warnings.items()))}), "
          f"{time.monotonic() - started:.1f} s")
    service.close()
    return worker


def _assert_exactly_once(service: LedgerService, anchorer: ChecksumAddress, nonce_before: int) -> None:
    ledger = service.ledger
    with service.sessions() as session:
        statuses = dict(session.execute(select(OutboxEvent.status, func.count()).group_by(OutboxEvent.status)).all())
        batches = list(session.scalars(select(Batch)))
        rows = session.execute(select(OutboxEvent.digest, OutboxEvent.batch_id, OutboxEvent.proof)).all()
    assert statuses == {EventStatus.ANCHORED: EVENTS}  # lost=0
    assert all(b.status is BatchStatus.CONFIRMED for b in batches)
    per_batch = Counter(r.batch_id for r in rows)
    assert all(per_batch[b.id] == b.event_count for b in batches)
    assert sum(b.event_count for b in batches) == EVENTS  # every event in exactly one batch: duplicated=0

    logs = ledger.anchor.events.RootAnchored().get_logs(from_block=ledger.deployment.block_number)
    tx_of_root = {bytes(log["args"]["root"]): bytes(log["transactionHash"]) for log in logs}
    assert len(logs) == len(tx_of_root) == len(batches)  # roots twice=0, none missing
    assert {b.root: b.tx_hash for b in batches} == tx_of_root  # confirmed under the transaction we recorded
    # One signed transaction per batch, and nothing else from the anchorer: every retry sent the same bytes.
    assert [b.attempts for b in batches] == [1] * len(batches)
    assert service.backend.web3.eth.get_transaction_count(anchorer) - nonce_before == len(batches)

    root_of = {b.id: b.root for b in batches}
    for index, row in enumerate(rows):
        proof = split_proof(row.proof)
        assert verify_proof(root_of[row.batch_id], row.digest, proof)
        if index % 20 == 0:  # and the contract agrees, against its stored root
            assert ledger.verify_event_on_chain(root_of[row.batch_id], row.digest, proof)


def _assert_clear_log(log: str) -> Counter[str]:
    """One line per retry, each naming its fault class; no traceback; one start, one clean stop: no crash loop."""
    assert "Traceback" not in log, log[-3000:]
    assert log.count("anchoring worker started") == 1, log[-3000:]
    warnings: Counter[str] = Counter()
    for line in log.splitlines():
        if " WARNING " in line or " ERROR " in line or " CRITICAL " in line:
            assert EXPECTED_WARNING.search(line), f"unexpected log line: {line}"
            warnings[line.split(": ", 1)[1].split(",")[0].split(" (")[0]] += 1
    assert warnings["rpc unavailable"] >= 1  # the node was down, and said so
    assert warnings["rpc rate-limited"] >= 1 and warnings["rpc node error"] >= 1
    return warnings


def _count(service: LedgerService, status: BatchStatus) -> int:
    with service.sessions() as session:
        return int(session.scalar(select(func.count()).where(Batch.status == status)) or 0)


def _all_anchored(service: LedgerService) -> bool:
    with service.sessions() as session:
        left = session.scalar(select(func.count()).where(OutboxEvent.status != EventStatus.ANCHORED))
    return left == 0


def _mined(web3: Web3, tx_hash: bytes) -> bool:
    try:
        web3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
    except TransactionNotFound:
        return False
    return True


def _known(web3: Web3, tx_hash: bytes) -> bool:
    try:
        web3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
    except TransactionNotFound:
        return False
    return True


def _accepts(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _wait_for(condition: Callable[[], bool], timeout_s: float, message: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(message)
        time.sleep(0.05)


def _http_error(status: int) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    return requests.HTTPError(f"{status} error", response=response)


def _rpc(code: int, message: str) -> Web3RPCError:
    error: RPCError = {"code": code, "message": message}
    return Web3RPCError(str(error), rpc_response={"jsonrpc": "2.0", "id": 1, "error": error})


@pytest.mark.parametrize(
    ("exc", "fault"),
    [
        (requests.ConnectionError("Connection aborted."), RpcFault.UNAVAILABLE),
        (requests.ReadTimeout("read timed out"), RpcFault.UNAVAILABLE),
        (_http_error(502), RpcFault.UNAVAILABLE),
        (_http_error(503), RpcFault.UNAVAILABLE),
        (_http_error(429), RpcFault.RATE_LIMITED),
        (_http_error(401), None),  # a wrong API key does not heal by waiting
        (_rpc(-32000, "header not found"), RpcFault.NODE_ERROR),
        (_rpc(-32000, "internal error"), RpcFault.NODE_ERROR),
        (_rpc(-32005, "limit exceeded"), RpcFault.RATE_LIMITED),
        (_rpc(-32003, "nonce too low"), None),
        (_rpc(-32603, "execution reverted"), None),
        (ValueError("a bug"), None),
    ],
)
def test_transient_rpc_errors_are_classified(exc: Exception, fault: RpcFault | None) -> None:
    assert rpc_fault(exc) is fault


@pytest.mark.parametrize(
    ("message", "refusal"),
    [
        ("already known", BroadcastRefusal.KNOWN),
        ("transaction already imported", BroadcastRefusal.KNOWN),
        ("nonce too low", BroadcastRefusal.NONCE_USED),
        ("replacement transaction underpriced", BroadcastRefusal.NONCE_CONTESTED),
        ("insufficient funds for gas * price + value", None),
    ],
)
def test_broadcast_refusals_say_what_happened_to_the_transaction(message: str, refusal: BroadcastRefusal) -> None:
    assert broadcast_refusal(_rpc(-32000, message)) is refusal


def test_backoff_doubles_up_to_its_cap_and_resets() -> None:
    backoff = Backoff(0.5, 4.0)
    assert [backoff.next() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    backoff.reset()
    assert backoff.next() == 0.5
