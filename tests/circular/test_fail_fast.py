"""A process that cannot do its job says why at start-up, in one line naming the setting to fix; an answer that
cannot be given says the same to the client."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from circular.cli import app
from tests.conftest import AnvilNode
from tests.reliability.recovery_world import open_world, settings_for

runner = CliRunner()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CIRCULAR_KEYSTORE_PASSWORD", "CIRCULAR_CHAIN_ID", "CIRCULAR_RPC_URL", "CIRCULAR_RESOLVER_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("uvicorn.run", lambda *args, **kwargs: None)  # a serve that gets this far would start


def _one_line(result: object, *needles: str) -> str:
    output = result.output  # type: ignore[attr-defined]
    assert result.exit_code == 1, output  # type: ignore[attr-defined]
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), output
    for needle in needles:
        assert needle in lines[0], output
    return lines[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.anvil
def test_serve_refuses_to_start_without_what_it_needs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node = AnvilNode()
    try:
        settings = settings_for(tmp_path / "data", node.url)
        with open_world(settings, deploy=True) as world:  # actors whose keys are encrypted keystores
            assert list(settings.keys_dir.glob("*.json"))
            brand_key = world.keys["brand"]
        args = ["serve", "--rpc", node.url, "--data-dir", str(settings.data_dir)]

        _one_line(runner.invoke(app, args), "CIRCULAR_KEYSTORE_PASSWORD is not set")
        monkeypatch.setenv("CIRCULAR_KEYSTORE_PASSWORD", "not the password")
        _one_line(runner.invoke(app, args), "CIRCULAR_KEYSTORE_PASSWORD does not open")
        monkeypatch.setenv("CIRCULAR_KEYSTORE_PASSWORD", "recovery-tests")
        monkeypatch.setenv("CIRCULAR_CHAIN_ID", "1")
        _one_line(runner.invoke(app, args), "reports chain id 31337", "CIRCULAR_CHAIN_ID")
        monkeypatch.delenv("CIRCULAR_CHAIN_ID")
        elsewhere = ["serve", "--rpc", node.url, "--data-dir", str(tmp_path / "other")]
        _one_line(runner.invoke(app, elsewhere), "no deployment for chain 31337", "circular deploy")
        away = ["serve", "--rpc", f"http://127.0.0.1:{_free_port()}", "--data-dir", str(settings.data_dir)]
        _one_line(runner.invoke(app, away), "does not answer", "CIRCULAR_RPC_URL")

        # With all of it, serve starts; on a public interface with the example resolver address it says so.
        result = runner.invoke(app, [*args, "--host", "0.0.0.0"])
        assert result.exit_code == 0, result.output
        assert "CIRCULAR_RESOLVER_BASE_URL" in " ".join(result.output.split())
        result = runner.invoke(app, args)
        assert result.exit_code == 0 and "warning" not in result.output, result.output

        # An app started without the password anyway answers a write with the same reason, not only in its log.
        blind = settings.model_copy(update={"keystore_password": None})
        with open_world(blind, deploy=False) as world:
            world.keys["brand"] = brand_key
            response = world.client.post(
                "/api/v1/lots",
                json={"lotNumber": "X-1", "materialCode": "CO", "massGrams": 1_000, "recycledShareBps": 0},
                headers={"Authorization": f"Bearer {brand_key}"},
            )
            assert response.status_code == 503, response.text
            assert "CIRCULAR_KEYSTORE_PASSWORD" in response.json()["detail"]
            assert str(tmp_path) not in response.text
    finally:
        node.stop()
