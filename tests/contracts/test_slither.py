"""slither gates the contracts: no High or Medium finding, and an analysis that covered every function."""

from __future__ import annotations

import json
from pathlib import Path

from scripts import slither_check

DEPLOYABLE = ("CircularAccess", "CompanyPrefixRegistry", "MaterialLots", "ItemRegistry", "EventAnchor")


def test_no_high_or_medium_findings(build_info: Path) -> None:
    """Runs on this session's fresh compile (the `build_info` fixture regenerates the build-info)."""
    report = slither_check.run_slither(build_info)
    assert not report.failures, "slither gate failed:\n" + "\n".join(report.failures)
    # The analysis really ran: every contract of the compile (ours and OpenZeppelin's) went through ~100 detectors.
    output = json.loads(build_info.read_text())["output"]
    assert report.contracts == sum(len(contracts) for contracts in output["contracts"].values()), report.log[-2000:]
    assert set(DEPLOYABLE) <= {name for contracts in output["contracts"].values() for name in contracts}
    assert report.detectors >= 90
    # OpenZeppelin's own findings are filtered out.
    assert all("node_modules" not in f.description for f in report.findings)


def test_gate_fails_on_high_and_medium() -> None:
    result = {"success": True, "error": None, "results": {"detectors": [
        {"check": "reentrancy-no-eth", "impact": "Medium", "confidence": "Medium", "description": "Reentrancy in X\n"},
        {"check": "arbitrary-send-eth", "impact": "High", "confidence": "High", "description": "Y sends eth\n"},
        {"check": "timestamp", "impact": "Low", "confidence": "Medium", "description": "Z uses timestamp\n"},
        {"check": "naming-convention", "impact": "Informational", "confidence": "High", "description": "n\n"},
    ]}}
    report = slither_check.parse(result, "build/slither analyzed (33 contracts with 102 detectors), 4 result(s) found")
    assert [f.check for f in report.gated] == ["reentrancy-no-eth", "arbitrary-send-eth"]
    assert report.failures == ["[Medium/Medium] reentrancy-no-eth: Reentrancy in X",
                               "[High/High] arbitrary-send-eth: Y sends eth"]


def test_gate_fails_on_an_incomplete_analysis() -> None:
    """An IR failure makes slither's detectors skip a function silently: the gate does not."""
    log = ("ERROR:ContractSolcParsing:Impossible to generate IR for ItemRegistry._allocate "
           "(contracts/src/ItemRegistry.sol#281-295):\n 'NoneType' object has no attribute 'parameters'\n"
           "build/slither analyzed (33 contracts with 102 detectors), 0 result(s) found")
    report = slither_check.parse({"success": True, "error": None, "results": {}}, log)
    assert report.failures == ["slither could not analyse a function: Impossible to generate IR for "
                               "ItemRegistry._allocate (contracts/src/ItemRegistry.sol#281-295):"]
    empty = slither_check.parse({"success": True, "error": None, "results": {}}, "No contract was analyzed")
    assert empty.failures == ["slither analysed no contract"]
    failed = slither_check.parse({"success": False, "error": "boom", "results": {}},
                                 "x analyzed (3 contracts with 9 detectors), 0 result(s) found")
    assert failed.failures == ["slither failed: boom"]
