"""`/rpc` no longer hands over the chain.

The attack: `/rpc` checked only that the TCP peer was loopback, then forwarded every method to the embedded chain.
From loopback (any local user, an SSRF, or anyone behind a pass-through relay such as ``ssh -L``) and with no key,
``eth_sendTransaction`` from the unlocked development account 0 (the admin) revoked Brand A's GS1 company prefix and
assigned it to another address, and ``evm_snapshot``/``evm_revert`` erased an anchored, confirmed sale; the audit saw
nothing, and the anchoring worker looped for good on ``nonce: Expected 4, but got 5``.

Now (``api/routes/chain_rpc.py``) a caller needs the secret `circular serve` writes to ``<data-dir>/server.json``
(0600), and only reads and ``eth_sendRawTransaction`` are forwarded; an app given no secret has no `/rpc` at all.
`circular audit` reports a confirmed batch whose root the chain lost (``anchor-missing``), and the worker re-anchors
a batch whose nonce the chain went back under instead of re-broadcasting it forever. Tested in process (the app,
the audit and the worker on SQLite and PostgreSQL) and against a real `circular serve` over TCP.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api import create_app
from api.audit import run_audit
from ledger.audit import RoleHistory, anchored_roots, role_changes
from ledger.outbox import Batch, BatchStatus
from tests.api.conftest import GTIN_A, World, _make_world
from tests.conftest import _free_port

SECRET = "test-rpc-secret"
REFUSED = [
    ("eth_sendTransaction", "the admin's unlocked development account signs whatever is asked"),
    ("evm_snapshot", "with evm_revert, erases anchored history"),
    ("evm_revert", "erases anchored history"),
    ("evm_mine", "mines at will"),
    ("anvil_setBalance", "Anvil's cheat codes"),
    ("hardhat_impersonateAccount", "Hardhat's cheat codes"),
    ("debug_traceTransaction", "internals"),
    ("personal_unlockAccount", "key management"),
    ("eth_sign", "signs with an unlocked account"),
    ("eth_accounts", "lists the unlocked accounts"),
]


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def rpc_world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A world of its own: the attacks below would rewrite a shared world's chain if they succeeded."""
    yield from _make_world(request.param, tmp_path_factory.mktemp(f"rpc-{request.param}"))


def _served(w: World, secret: str | None = SECRET) -> TestClient:
    """The app as `circular serve` builds it on the embedded chain (TestClient's peer is loopback)."""
    return TestClient(create_app(w.settings, w.service, rpc_secret=secret))


def _call(client: TestClient, method: str, params: list[Any], secret: str | None = SECRET) -> Any:
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    return client.post("/rpc", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, headers=headers)


def _revoke_prefix_tx(w: World) -> dict[str, str]:
    admin = w.service.backend.dev_accounts()[0]
    prefixes = w.service.ledger.prefixes
    data = prefixes.encode_abi("revokePrefix", args=["9506000"])
    return {"from": admin.address, "to": prefixes.address, "data": data, "gas": hex(200_000)}


def test_no_secret_no_chain(rpc_world: World) -> None:
    """The attack as it was: from loopback, no key, the admin's account revokes Brand A's prefix."""
    w = rpc_world
    owner = w.service.ledger.gtin_owner(GTIN_A)
    client = _served(w)
    for secret in (None, "wrong-secret"):
        response = _call(client, "eth_sendTransaction", [_revoke_prefix_tx(w)], secret=secret)
        assert response.status_code == 401, response.text[:300]
        assert response.headers["content-type"].startswith("application/problem+json")
    assert _call(client, "eth_chainId", [], secret=None).status_code == 401  # reads too: nothing without it
    assert w.service.ledger.gtin_owner(GTIN_A) == owner
    # An app nobody gave a secret (every app but `circular serve`'s on the embedded chain) has no /rpc at all.
    assert _call(_served(w, secret=None), "eth_chainId", []).status_code == 404


@pytest.mark.parametrize(("method", "why"), REFUSED)
def test_the_secret_still_forwards_no_cheat_code(rpc_world: World, method: str, why: str) -> None:
    w = rpc_world
    owner = w.service.ledger.gtin_owner(GTIN_A)
    head = w.service.backend.web3.eth.block_number
    params: list[Any] = {"eth_sendTransaction": [_revoke_prefix_tx(w)], "evm_revert": ["0x1"]}.get(method, [])
    response = _call(_served(w), method, params)
    assert response.status_code == 200
    assert response.json()["error"]["code"] == -32601, f"{method} ({why}) was forwarded"
    assert w.service.ledger.gtin_owner(GTIN_A) == owner
    assert w.service.backend.web3.eth.block_number == head


def test_the_secret_forwards_what_local_commands_need(rpc_world: World) -> None:
    """Reads, and a transaction the caller signed itself (what `circular actors add` sends)."""
    w = rpc_world
    client = _served(w)
    chain_id = _call(client, "eth_chainId", []).json()["result"]
    assert int(chain_id, 16) == w.service.chain_id
    owner = _call(client, "eth_call", [{"to": w.service.ledger.prefixes.address,
                                        "data": w.service.ledger.prefixes.encode_abi("gtinOwner", args=[GTIN_A])},
                                       "latest"]).json()["result"]
    assert owner[-40:].lower() == w.service.ledger.gtin_owner(GTIN_A)[2:].lower()
    web3 = w.service.backend.web3
    sender, receiver = w.service.backend.dev_accounts()[7], w.service.backend.dev_accounts()[8]
    tx = {"to": receiver.address, "value": 1, "gas": 21_000, "chainId": w.service.chain_id,
          "nonce": web3.eth.get_transaction_count(sender.address, "pending"),
          "maxFeePerGas": web3.eth.gas_price * 2 + 1, "maxPriorityFeePerGas": 1}
    raw = "0x" + bytes(sender.sign_transaction(tx).raw_transaction).hex()
    sent = _call(client, "eth_sendRawTransaction", [raw]).json()
    assert "result" in sent, sent
    receipt = _call(client, "eth_getTransactionReceipt", [sent["result"]]).json()["result"]
    assert int(receipt["status"], 16) == 1
    batch = client.post("/rpc", json=[{"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []},
                                      {"jsonrpc": "2.0", "id": 2, "method": "evm_snapshot", "params": []}],
                        headers={"Authorization": f"Bearer {SECRET}"}).json()
    assert "result" in batch[0] and batch[1]["error"]["code"] == -32601  # batches are checked call by call


def test_a_rewritten_chain_is_audited_and_the_worker_recovers(rpc_world: World) -> None:
    """What the attack left behind, checked directly on the chain (a revert of a development chain, or a
    reorganisation deeper than the confirmations, does the same): the audit names the lost anchor and its item,
    and the worker, whose nonce the chain went back under, anchors what comes next."""
    w = rpc_world
    lot = w.lot(grams=10_000)
    item = w.item([(lot["lotId"], 200)])
    w.drain()
    snapshot = w.service.backend.snapshot()
    assert w.act(item, "sold", "retailer").status_code == 201
    w.drain()  # the sale is anchored and confirmed
    w.service.backend.revert(snapshot)  # ... and erased from the chain

    roles = RoleHistory(role_changes(w.service.ledger))
    anchored = anchored_roots(w.service.ledger)
    with w.service.sessions() as session:
        report = run_audit(session, roles, anchored=anchored, archive=w.service.archive)
    lost = [a for a in report.anomalies if a.rule == "anchor-missing"]
    # The sale's batch, and the batch that anchored the passport version the sale made: both lost, both naming
    # the item (versions are anchored when their events are, so they may share the batch or follow it).
    assert 1 <= len(lost) <= 2, report.anomalies
    assert all(f"{item['gtin']}/{item['serial']}" in a.detail for a in lost), report.anomalies
    assert any(a.detail.startswith("1 event(s)") for a in lost), report.anomalies
    assert all(a.rule_number == 5 for a in lost)

    assert w.act(item, "repaired", "repairer").status_code == 201  # an event with no transaction of its own
    worker = w.service.worker(w.service.backend.dev_accounts()[6])
    worker.receipt_timeout_s = 1.0
    results = []
    for _ in range(3):
        results += worker.run_once(force=True)
    assert sum(r.events for r in results) == 1, "the worker is stuck behind a nonce the chain went back under"
    with w.service.sessions() as session:
        open_batches = session.query(Batch).filter(Batch.status != BatchStatus.CONFIRMED).count()
    assert open_batches == 0


# -- a real `circular serve` -----------------------------------------------------------------------------------------
def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
def test_a_real_server_over_tcp(tmp_path: Path) -> None:
    """`circular serve` on the embedded chain: server.json is 0600 and holds the secret; a loopback client without
    it (what a relay or another local user is) gets 401; `circular actors add` in another process still works."""
    data, port = tmp_path / "data", _free_port()
    env = {**os.environ, "CIRCULAR_KEYSTORE_PASSWORD": "correct horse battery staple"}
    server = subprocess.Popen([sys.executable, "-m", "circular", "serve", "--port", str(port), "--data-dir",
                               str(data), "--no-worker"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not (data / "server.json").exists() or not _listening(port):
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        info = data / "server.json"
        assert stat.S_IMODE(info.stat().st_mode) == 0o600
        secret = json.loads(info.read_text())["secret"]
        url = f"http://127.0.0.1:{port}/rpc"
        call = {"jsonrpc": "2.0", "id": 1, "method": "evm_snapshot", "params": []}
        assert httpx.post(url, json=call).status_code == 401
        refused = httpx.post(url, json=call, headers={"Authorization": f"Bearer {secret}"}).json()
        assert refused["error"]["code"] == -32601
        added = subprocess.run([sys.executable, "-m", "circular", "actors", "add", "--role", "brand", "--name",
                                "Brand A", "--prefix", "9506000", "--data-dir", str(data)],
                               env=env, capture_output=True, text=True, timeout=120)
        assert added.returncode == 0, added.stderr
    finally:
        server.terminate()
        server.wait(timeout=30)
