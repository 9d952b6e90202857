"""Both backends' revert shapes decode to the same ContractRevert (ledger.chain.decode_revert)."""

from __future__ import annotations

import pytest
from eth_abi import encode as abi_encode
from eth_tester.exceptions import TransactionFailed as EthTesterFailure
from eth_utils import function_signature_to_4byte_selector
from web3.exceptions import ContractCustomError

from ledger.chain import decode_revert
from ledger.lifecycle import ItemState

from .conftest import mapped_revert


def _data(run_id: bytes) -> bytes:
    return function_signature_to_4byte_selector("RunNotFound(bytes32)") + abi_encode(["bytes32"], [run_id])


def _shapes(data: bytes) -> list[Exception]:
    return [
        EthTesterFailure(f"execution reverted: {data!r}"),  # eth-tester: a bytes literal in the message
        ContractCustomError("0x" + data.hex(), data="0x" + data.hex()),  # JSON-RPC (Anvil)
    ]


@pytest.mark.parametrize("run_id", [b"\x01" * 32, b"'" + b"\x02" * 31, b'"' + b"'" * 31],
                         ids=["plain", "quote", "both-quotes"])
def test_both_shapes_decode(run_id: bytes) -> None:
    for exc in _shapes(_data(run_id)):
        decoded = decode_revert(exc)
        assert decoded is not None and decoded.name == "RunNotFound" and decoded.args_by_name == {"runId": run_id}


def test_eth_tester_literal_with_b_quote_inside() -> None:
    data = _data(b"\xbb'" + b"\x01" * 30)
    exc = EthTesterFailure(f"execution reverted: {data!r}")
    assert str(exc).startswith('execution reverted: b"')
    decoded = decode_revert(exc)
    assert decoded is not None and decoded.args_by_name == {"runId": b"\xbb'" + b"\x01" * 30}


def test_the_suites_workaround_decodes_it() -> None:
    data = _data(b"\xbb'" + b"\x01" * 30)
    mapped = mapped_revert(EthTesterFailure(f"execution reverted: {data!r}"))
    assert getattr(mapped, "args_by_name", None) == {"runId": b"\xbb'" + b"\x01" * 30}


def test_item_states_decode_as_item_states() -> None:
    """IllegalTransition's states (one, and a list) come back as ItemState on both backends, and read as names."""
    signature = "IllegalTransition(bytes32,uint8,uint8,uint8[])"
    data = function_signature_to_4byte_selector(signature) + abi_encode(
        ["bytes32", "uint8", "uint8", "uint8[]"], [b"\x07" * 32, 2, 7, [3, 4, 5]])
    for exc in _shapes(data):
        decoded = decode_revert(exc)
        assert decoded is not None and decoded.name == "IllegalTransition"
        args = decoded.args_by_name
        assert args["current"] is ItemState.SOLD and args["requested"] is ItemState.RESOLD
        assert args["allowed"] == [ItemState.IN_USE, ItemState.RETURNED, ItemState.COLLECTED]
        assert str(decoded).endswith("current=SOLD, requested=RESOLD, allowed=[IN_USE, RETURNED, COLLECTED])")
