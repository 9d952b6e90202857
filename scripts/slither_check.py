"""Static analysis gate: slither, offline, on the build-info that ``python -m scripts.compile`` writes.

Usage: ``python -m scripts.slither_check [--compile]``. Exits 1 when slither reports any High or Medium finding in the
project's own contracts (OpenZeppelin under ``node_modules`` is filtered out), or when the analysis itself is
incomplete (no contracts analysed, or slither could not build its IR for a function: its detectors would then skip
that function without a word). Low and informational findings are listed, not gated.

How it runs slither without a network (see /work/shared/TOOLCHAIN.md):
- crytic-compile reads Hardhat-format build-info (``build/build-info/circular.json``, with ASTs and source maps) when
  the target directory holds a ``hardhat.config.js``; ``build/slither/`` is such a target, with links to the sources
  so that findings point at ``contracts/src/...``. ``--hardhat-ignore-compile --npx-disable`` stop it from running
  (and downloading) Hardhat.
- ``HOME`` points into ``build/`` so that solc-select, installed with slither, writes nothing to the real home.
- The JSON goes to a file rather than stdout (``--json -``) so that slither's log, where IR failures are reported,
  stays readable on stderr.

A finding that is wrong for this code is silenced in the source, next to the line, with
``// slither-disable-next-line <detector>`` and the reason in a comment above it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BUILD_DIR = ROOT / "build"
BUILD_INFO_DIR = BUILD_DIR / "build-info"
TARGET_DIR = BUILD_DIR / "slither"
HOME_DIR = BUILD_DIR / "slither-home"
GATED_IMPACTS = ("High", "Medium")
IMPACT_ORDER = (*GATED_IMPACTS, "Low", "Informational", "Optimization")
_ANALYZED = re.compile(r"analyzed \((\d+) contracts with (\d+) detectors\), (\d+) result")
_IR_FAILURE = re.compile(r"Impossible to generate IR for [^\n]*")


@dataclass
class Finding:
    check: str
    impact: str
    confidence: str
    description: str

    @property
    def summary(self) -> str:
        return f"[{self.impact}/{self.confidence}] {self.check}: {self.description.strip().splitlines()[0]}"


@dataclass
class Report:
    findings: list[Finding]
    contracts: int
    detectors: int
    problems: list[str] = field(default_factory=list)  # the analysis itself went wrong
    log: str = ""

    @property
    def gated(self) -> list[Finding]:
        return [f for f in self.findings if f.impact in GATED_IMPACTS]

    @property
    def failures(self) -> list[str]:
        return self.problems + [f.summary for f in self.gated]


def ensure_build_info(force: bool = False) -> Path:
    """The build-info file, compiling the sources first when it is missing (or when `force`)."""
    path = BUILD_INFO_DIR / "circular.json"
    if force or not path.exists():
        from scripts import compile as solc

        input_json, output, version = solc.compile_all()
        path = solc.write_build_info(input_json, output, version)
    return path


def _prepare_target(build_info: Path) -> str:
    """`build/slither/`: a Hardhat marker and links to the sources; returns the artifacts directory, relative."""
    TARGET_DIR.mkdir(parents=True, exist_ok=True)
    (TARGET_DIR / "hardhat.config.js").write_text(
        "// Marker for crytic-compile's Hardhat platform; the build-info comes from scripts/compile.py.\n"
    )
    for name in ("contracts", "node_modules"):
        link = TARGET_DIR / name
        if link.is_symlink() or link.exists():
            if link.is_symlink() and link.resolve() == (ROOT / name).resolve():
                continue
            link.unlink()
        link.symlink_to(ROOT / name, target_is_directory=True)
    if build_info.parent.name != "build-info":
        raise SystemExit(f"build-info must live in a directory named build-info: {build_info}")
    return os.path.relpath(build_info.parent.parent, TARGET_DIR)


def parse(result: dict[str, Any], log: str) -> Report:
    """A Report from slither's JSON output and its log."""
    problems: list[str] = []
    if not result.get("success", False) or result.get("error"):
        problems.append(f"slither failed: {result.get('error')}")
    findings = [
        Finding(d["check"], d["impact"], d["confidence"], d.get("description", ""))
        for d in (result.get("results") or {}).get("detectors", [])
    ]
    match = _ANALYZED.search(log)
    contracts, detectors = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    if contracts == 0:
        problems.append("slither analysed no contract")
    problems += [f"slither could not analyse a function: {m}" for m in _IR_FAILURE.findall(log)]
    return Report(findings, contracts, detectors, problems, log)


def run_slither(build_info: Path) -> Report:
    artifacts = _prepare_target(build_info)
    out = TARGET_DIR / "slither.json"
    out.unlink(missing_ok=True)
    HOME_DIR.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HOME": str(HOME_DIR), "XDG_CONFIG_HOME": str(HOME_DIR / ".config"),
           "XDG_CACHE_HOME": str(HOME_DIR / ".cache")}
    command = [
        sys.executable, "-m", "slither", str(TARGET_DIR),
        "--hardhat-ignore-compile", "--npx-disable", "--hardhat-artifacts-directory", artifacts,
        "--filter-paths", "node_modules",
        "--json", str(out),
    ]
    # Exit code 255 means "findings"; the JSON decides.
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    if not out.exists():
        return Report([], 0, 0, [f"slither wrote no JSON (exit {proc.returncode}):\n{log[-4000:]}"], log)
    return parse(json.loads(out.read_text()), log)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compile", action="store_true", help="recompile (and rewrite the build-info) first")
    args = parser.parse_args(argv)
    report = run_slither(ensure_build_info(force=args.compile))
    print(f"slither: {report.contracts} contracts, {report.detectors} detectors, {len(report.findings)} findings")
    for finding in sorted(report.findings, key=lambda f: IMPACT_ORDER.index(f.impact)):
        print("  " + finding.summary)
    if report.failures:
        print("FAILED:", file=sys.stderr)
        for failure in report.failures:
            print("  " + failure, file=sys.stderr)
        return 1
    print("OK: no High or Medium finding")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
