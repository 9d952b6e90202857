"""Shared fixtures: the two chain backends (in-process eth-tester and an Anvil node) and a deployed ledger."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.chain import ChainBackend, EthTesterBackend, JsonRpcBackend
from ledger.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
# Starlette's TestClient names the host "testserver": the apps the tests build serve it besides their resolver's host
# and loopback (api/edge.py); any other Host is refused as in production.
os.environ.setdefault("CIRCULAR_API_TRUSTED_HOSTS", '["testserver"]')
# Their one client, the TestClient, stands for all the clients of a test session: no per-client request limit
# (tests/security/test_rate_limit.py sets one).
os.environ.setdefault("CIRCULAR_API_REQUESTS_PER_CLIENT_PER_MINUTE", "0")
ANVIL = ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"


def standards_dir() -> Path:
    """The GS1 standards the tests check against (schemas, examples, Event Hash ID vectors): the one vendored copy,
    ``api/standards``, which the API reads too; ``CIRCULAR_STANDARDS_DIR`` points at another copy."""
    override = os.environ.get("CIRCULAR_STANDARDS_DIR")
    return Path(override) if override else ROOT / "api" / "standards"


def migrated(settings: Settings) -> Settings:
    """`settings`, with their database migrated: what every `circular` command does before the ledger opens it."""
    from api.db import upgrade

    upgrade(settings.database_url)
    return settings


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AnvilNode:
    """An Anvil process on a free port; `url` is its JSON-RPC endpoint."""

    def __init__(self, *extra: str) -> None:
        if not ANVIL.exists():
            pytest.fail(f"Anvil binary missing at {ANVIL}: run `npm ci` (make setup)")
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # The real binary, not the node wrapper, so that the pid we stop is Anvil itself.
        self.process = subprocess.Popen(
            [str(ANVIL), "--host", "127.0.0.1", "--port", str(self.port), "--silent", *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        pytest.fail("Anvil did not start within 15 s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture(scope="session")
def anvil_node() -> Iterator[AnvilNode]:
    node = AnvilNode()
    yield node
    node.stop()


@pytest.fixture(scope="session", params=["eth-tester", "anvil"])
def session_backend(request: pytest.FixtureRequest) -> Iterator[ChainBackend]:
    """Each backend once per session; tests get a clean state through snapshot/revert (see `backend`)."""
    if request.param == "eth-tester":
        backend: ChainBackend = EthTesterBackend()
    else:
        backend = JsonRpcBackend(request.getfixturevalue("anvil_node").url)
    yield backend
    backend.close()


@pytest.fixture
def backend(session_backend: ChainBackend) -> Iterator[ChainBackend]:
    snapshot = session_backend.snapshot()
    yield session_backend
    session_backend.revert(snapshot)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The reliability, security and fuzzing tests print the figure they measured (docs/reliability.md lists them).
    pytest captures a passing test's output, so without this the figures would be visible only with ``-s``, and
    never in CI's log; gathered from the reports, this also works under xdist."""
    figures = []
    for report in terminalreporter.stats.get("passed", []):
        lines = [line.strip() for line in report.capstdout.splitlines() if line.strip()]
        if report.when == "call" and lines:
            figures.append((report.nodeid, lines))
    if not figures:
        return
    terminalreporter.section("figures")
    for nodeid, lines in sorted(figures):
        terminalreporter.write_line(nodeid)
        for line in lines:
            terminalreporter.write_line(f"    {line.removeprefix('FIGURE ')}")
