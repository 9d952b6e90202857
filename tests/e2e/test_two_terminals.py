"""`circular serve` in one terminal and `circular actors add` in another act on the same chain and database, and the
state survives the server's restart."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ledger.client import Ledger
from ledger.service import LedgerService
from ledger.settings import Settings


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _circular(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "circular", *args], env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.slow
def test_serve_and_actors_add_share_one_chain(tmp_path: Path) -> None:
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
        added = _circular("actors", "add", "--role", "brand", "--name", "Brand A", "--prefix", "9506000",
                          "--data-dir", str(data), env=env)
        assert added.returncode == 0, added.stderr
        api_key = added.stdout.strip().splitlines()[-1]
        assert api_key.startswith("clk_")
        again = _circular("actors", "add", "--role", "brand", "--name", "Brand A", "--data-dir", str(data), env=env)
        assert again.returncode == 1 and again.stderr.count("\n") == 1 and "exists already" in again.stderr
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert not (data / "server.json").exists()

    # With the server gone, a command opens the persisted chain itself and sees what the server's chain holds.
    service = LedgerService(Settings(data_dir=data))
    try:
        ledger: Ledger = service.ledger
        [keystore] = (data / "keys").glob("actor-brand-a-*.json")  # named by the actor, and an id of its own
        brand = json.loads(keystore.read_text())["address"]
        assert ledger.has_role("brand", "0x" + brand)
        assert ledger.gtin_owner("09506000134352").lower() == "0x" + brand.lower()
    finally:
        service.close()


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
