"""The committed artifacts are exactly what a fresh compile of contracts/src gives."""

from __future__ import annotations

from scripts import compile as solc

from .conftest import FreshCompile


def test_committed_artifacts_match_a_fresh_compile(fresh_compile: FreshCompile) -> None:
    artifacts = solc.artifacts_from(fresh_compile.output, fresh_compile.version)
    stale = [name for name, artifact in artifacts.items()
             if not (solc.ARTIFACTS_DIR / f"{name}.json").exists()
             or (solc.ARTIFACTS_DIR / f"{name}.json").read_text() != solc.render(artifact)]
    assert not stale, f"artifacts out of date: {stale} (run: python -m scripts.compile)"
    committed = {path.stem for path in solc.ARTIFACTS_DIR.glob("*.json")}
    assert committed == set(artifacts), f"artifacts without a contract: {sorted(committed - set(artifacts))}"


def test_compile_is_clean(fresh_compile: FreshCompile) -> None:
    """No error and no warning from solc for the project's own sources."""
    messages = [e for e in fresh_compile.output.get("errors", [])
                if e.get("sourceLocation", {}).get("file", "contracts/").startswith("contracts/")]
    assert not messages, "\n".join(e["formattedMessage"] for e in messages)
    assert fresh_compile.input_json["settings"]["optimizer"] == {"enabled": True, "runs": 200}
