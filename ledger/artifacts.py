"""Compiled contract artifacts (ABI and bytecode), as committed under ``contracts/artifacts/`` by scripts/compile."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from .errors import ConfigurationError

CONTRACT_NAMES = ("CircularAccess", "CompanyPrefixRegistry", "MaterialLots", "ItemRegistry", "EventAnchor")


def artifacts_dir() -> Path:
    override = os.environ.get("CIRCULAR_ARTIFACTS_DIR")
    return Path(override) if override else Path(__file__).resolve().parents[1] / "contracts" / "artifacts"


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str


@cache
def load_artifact(name: str) -> Artifact:
    path = artifacts_dir() / f"{name}.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigurationError(f"contract artifact not found: {path} (run: make compile)") from None
    return Artifact(name, data["abi"], data["bytecode"], data["deployedBytecode"])


@cache
def error_abis() -> tuple[dict[str, Any], ...]:
    """Every custom error of every contract, deduplicated by signature, for revert decoding."""
    seen: dict[str, dict[str, Any]] = {}
    for name in CONTRACT_NAMES:
        for entry in load_artifact(name).abi:
            if entry["type"] == "error":
                signature = f"{entry['name']}({','.join(i['type'] for i in entry['inputs'])})"
                seen.setdefault(signature, entry)
    return tuple(seen.values())


@cache
def event_abis() -> tuple[dict[str, Any], ...]:
    return tuple(entry for name in CONTRACT_NAMES for entry in load_artifact(name).abi if entry["type"] == "event")


__all__ = ["CONTRACT_NAMES", "Artifact", "artifacts_dir", "error_abis", "event_abis", "load_artifact"]
