"""solhint gates the contracts: no error and no warning under ``.solhint.json`` (``solhint:recommended`` minus the
style and gas rules it turns off, each justified in ``docs/security.md``).

slither is not run here: ``tests/contracts/test_slither.py`` already gates every run on it (no High or Medium
finding, every function analysed) on the session's fresh compile; running it twice would cost ~30 s for nothing.
This module only checks that that gate still exists, so that it cannot disappear silently.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

SOLHINT = ROOT / "node_modules" / ".bin" / "solhint"
SOURCES = "contracts/src/**/*.sol"
CONFIG = ROOT / ".solhint.json"
# Rules the config may turn off, and only these (each one's reason is in docs/security.md).
ALLOWED_OFF = {"use-natspec", "immutable-vars-naming", "gas-strict-inequalities", "gas-indexed-events",
               "gas-small-strings"}


def solhint(*args: str, cwd: Path = ROOT) -> tuple[int, list[dict[str, Any]]]:
    if not SOLHINT.exists():
        pytest.fail(f"solhint missing at {SOLHINT}: run `npm ci` (make setup)")
    done = subprocess.run([str(SOLHINT), "--disc", "--noPoster", "-c", str(CONFIG), "-f", "json", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=120)
    start = done.stdout.find("[")
    assert start >= 0, f"no JSON from solhint (exit {done.returncode}): {done.stdout[-500:]} {done.stderr[-500:]}"
    report = json.loads(done.stdout[start:])
    findings = [entry for entry in report if entry.get("ruleId")]
    return done.returncode, findings


def test_config_extends_recommended_and_turns_off_only_justified_rules() -> None:
    config = json.loads(CONFIG.read_text())
    assert config["extends"] == "solhint:recommended"
    off = {rule for rule, setting in config["rules"].items() if setting == "off"}
    assert off <= ALLOWED_OFF, off - ALLOWED_OFF
    reasons = (ROOT / "docs" / "security.md").read_text()
    for rule in off:
        assert f"`{rule}`" in reasons, f"{rule} is off without a reason in docs/security.md"


def test_solhint_finds_nothing() -> None:
    code, findings = solhint(SOURCES)
    lines = [f"{f['filePath']}:{f['line']} {f['severity']} {f['ruleId']}: {f['message']}" for f in findings]
    print(f"\nFIGURE solhint: {len(findings)} findings "
          f"({sum(f['severity'] == 'Error' for f in findings)} errors) over {len(list(ROOT.glob(SOURCES)))} files")
    assert findings == [], "\n".join(lines)
    assert code == 0


def test_solhint_would_catch_a_real_problem(tmp_path: Path) -> None:
    """The gate can fail: tx.origin authorisation, a wrong pragma and low-level calls are reported."""
    source = """// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.7.0;
contract Bad {
    address owner;
    function pay(address payable to) external {
        require(tx.origin == owner);
        to.call{value: 1}("");
    }
}
"""
    bad = tmp_path / "Bad.sol"
    bad.write_text(source)
    code, findings = solhint("Bad.sol", cwd=tmp_path)  # solhint wants paths relative to its directory
    rules = {f["ruleId"] for f in findings}
    assert {"avoid-tx-origin", "compiler-version"} <= rules, rules
    assert any(f["severity"] == "Error" for f in findings)
    assert code != 0


def test_slither_gate_runs_elsewhere() -> None:
    gate = Path(ROOT / "tests" / "contracts" / "test_slither.py").read_text()
    assert "def test_no_high_or_medium_findings" in gate and "slither_check.run_slither" in gate
