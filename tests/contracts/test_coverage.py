"""The suites cover the whole ABI: every external function is called, every custom error is asserted (by name, with
`reverts`, which also checks every argument), and every event is checked, somewhere in tests/contracts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ledger.artifacts import CONTRACT_NAMES, load_artifact

HERE = Path(__file__).parent
# Errors in an ABI that no call can raise, with the reason.
UNREACHABLE_ERRORS = {
    "InvalidShortString": "EIP712's ShortStrings, only in EventAnchor's constructor, with constant short name/version",
    "StringTooLong": "EIP712's ShortStrings, only in EventAnchor's constructor, with constant short name/version",
}
# Client methods (ledger.Ledger) through which the suites call a contract function.
CLIENT_CALLS = {
    "grant_role": "grantRole", "revoke_role": "revokeRole", "assign_prefix": "assignPrefix",
    "register_lot": "registerLot", "register_material_lot": "registerMaterialLot", "approve_lot": "approve",
    "register_item": "registerItem", "register_run": "registerRun", "materialize": "materialize",
    "transition": "transition", "transition_run_item": "transitionRunItem", "recycle": "recycle",
    "anchor_root": "anchor", "anchor_of": "anchorOf", "verify_event_on_chain": "verifyEvent", "lot": "lot",
    "available_grams": "availableGrams", "item": "item", "set_partner": "setPartner", "is_partner": "isPartner",
}


def _source() -> str:
    return "\n".join(p.read_text() for p in sorted(HERE.glob("*.py")) if p.name != Path(__file__).name)


def _abi(kind: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for contract in CONTRACT_NAMES:
        for entry in load_artifact(contract).abi:
            if entry["type"] == kind:
                out.setdefault(entry["name"], set()).add(contract)
    return out


def test_every_function_is_called() -> None:
    source = _source()
    via_client = {fn for method, fn in CLIENT_CALLS.items() if re.search(rf"ledger\.{method}\(", source)}
    missing = {name: sorted(contracts) for name, contracts in _abi("function").items()
               if name not in via_client and not re.search(rf"\.{name}\(|\"{name}\"", source)}
    assert not missing, f"functions no suite calls: {missing}"


def test_every_error_is_asserted() -> None:
    source = _source()
    errors = _abi("error")
    assert set(UNREACHABLE_ERRORS) <= set(errors)
    missing = {name: sorted(c) for name, c in errors.items()
               if name not in UNREACHABLE_ERRORS and f'reverts("{name}"' not in source}
    assert not missing, f"errors no suite asserts: {missing}"


def test_every_event_is_checked() -> None:
    source = _source()
    missing = {name: sorted(c) for name, c in _abi("event").items()
               if not re.search(rf"\"{name}\"", source)}
    # Never emitted: EIP712DomainChanged (the EIP-712 domain is immutable), RoleAdminChanged (no role admin changes).
    assert set(missing) <= {"EIP712DomainChanged", "RoleAdminChanged"}, f"events no suite checks: {missing}"


@pytest.mark.parametrize("name", sorted(UNREACHABLE_ERRORS))
def test_unreachable_errors_are_only_in_event_anchor(name: str) -> None:
    assert _abi("error")[name] == {"EventAnchor"}
