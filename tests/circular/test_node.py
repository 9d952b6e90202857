"""`circular node`: Anvil stops with the command (its own process group, SIGTERM), and its chain is kept across
restarts in the data directory (Anvil's --state), receipts included, so that a restarted node is still our chain."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from web3 import Web3

from tests.conftest import ANVIL

pytestmark = [pytest.mark.anvil]
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _anvils() -> set[int]:
    """Pids of running Anvil processes (of this test's binary)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "exe") == str(ANVIL.resolve()):
                    found.add(int(entry.name))
            except OSError:
                continue
    return found


def _start(port: int, data_dir: Path) -> subprocess.Popen[bytes]:
    before = _anvils()
    process = subprocess.Popen(
        [sys.executable, "-m", "circular", "node", "--port", str(port), "--data-dir", str(data_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 20
    while not _answers(port):
        assert process.poll() is None, process.stdout.read() if process.stdout else b""
        assert time.monotonic() < deadline, "circular node did not start"
        time.sleep(0.05)
    assert _anvils() - before, "no Anvil process of its own"
    return process


def _stop(process: subprocess.Popen[bytes], port: int, anvils: set[int]) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0
    deadline = time.monotonic() + 5
    while (_anvils() & anvils or _answers(port)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _anvils() & anvils, "Anvil outlived circular node"
    assert not _answers(port), "the port is still held"


def test_node_stops_its_anvil_and_keeps_its_chain(tmp_path: Path) -> None:
    port = _free_port()
    data = tmp_path / "data"
    before = _anvils()
    first = _start(port, data)
    mine = _anvils() - before
    web3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}"))
    sender, receiver = web3.eth.accounts[0], web3.eth.accounts[5]
    tx_hash = web3.eth.send_transaction({"from": sender, "to": receiver, "value": 12345})
    mined = web3.eth.wait_for_transaction_receipt(tx_hash)["blockNumber"]
    web3.provider.make_request("anvil_mine", ["0x5"])  # type: ignore[arg-type]
    height = web3.eth.block_number
    _stop(first, port, mine)
    assert (data / "anvil-state.json").exists()

    before = _anvils()
    second = _start(port, data)
    try:
        web3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}"))
        assert web3.eth.block_number >= height
        assert web3.eth.get_transaction_receipt(tx_hash)["blockNumber"] == mined
        output = b""
    finally:
        _stop(second, port, _anvils() - before)
        output = second.stdout.read() if second.stdout else b""
    said = output.replace(b"\n", b"")
    assert b"continues from" in said and b"anvil-state.json" in said, output[:500]
    print(f"\nFIGURE circular node: Anvil stopped with it on SIGTERM; block {height} and receipts kept on restart")
