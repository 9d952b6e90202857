"""The same conformance tests for every ChainBackend: eth-tester (in-process) and JSON-RPC (Anvil)."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account

from ledger.chain import ChainBackend, EthTesterBackend, decode_revert
from ledger.client import Ledger
from ledger.errors import ChainLocked, ContractRevert


def test_is_a_chain_backend(backend: ChainBackend) -> None:
    assert isinstance(backend, ChainBackend)
    assert backend.web3.eth.chain_id > 0
    accounts = backend.dev_accounts()
    assert len(accounts) >= 8
    assert backend.web3.eth.get_balance(accounts[0].address) > 10**18


def test_fund_and_mine(backend: ChainBackend) -> None:
    newcomer = Account.create()
    backend.fund(newcomer.address, 10**17)
    assert backend.web3.eth.get_balance(newcomer.address) == 10**17
    height = backend.web3.eth.block_number
    backend.mine(3)
    assert backend.web3.eth.block_number == height + 3


def test_snapshot_and_revert(backend: ChainBackend) -> None:
    snapshot = backend.snapshot()
    height = backend.web3.eth.block_number
    backend.mine(2)
    backend.revert(snapshot)
    assert backend.web3.eth.block_number == height


def test_reverts_decode_to_the_custom_error_on_both_backends(backend: ChainBackend) -> None:
    admin, stranger = backend.dev_accounts()[0], backend.dev_accounts()[7]
    ledger = Ledger.deploy(backend, admin)
    with pytest.raises(ContractRevert) as info:
        ledger.assign_prefix(stranger, "4012345", stranger.address)
    assert info.value.name == "AccessControlUnauthorizedAccount"
    assert info.value.args_by_name == {"account": stranger.address, "neededRole": b"\x00" * 32}


def test_decode_revert_reads_both_exception_shapes() -> None:
    from eth_tester.exceptions import TransactionFailed as TesterFailed
    from web3.exceptions import ContractCustomError

    data = bytes.fromhex("d93c0665")  # no known selector: still reported, never swallowed
    tester = decode_revert(TesterFailed(f"execution reverted: {data!r}"))
    rpc = decode_revert(ContractCustomError("0xd93c0665", data="0xd93c0665"))
    assert tester is not None and rpc is not None
    assert tester.selector == rpc.selector == "0xd93c0665"


def test_embedded_chain_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "chain.sqlite"
    first = EthTesterBackend(path)
    admin = first.dev_accounts()[0]
    ledger = Ledger.deploy(first, admin)
    ledger.grant_role(admin, "brand", first.dev_accounts()[1].address)
    height, chain_id = first.web3.eth.block_number, first.web3.eth.chain_id
    first.close()

    second = EthTesterBackend(path)
    try:
        assert second.web3.eth.block_number == height
        assert second.web3.eth.chain_id == chain_id
        reopened = Ledger(second, ledger.deployment)
        assert reopened.has_role("brand", second.dev_accounts()[1].address)
        reopened.grant_role(admin, "recycler", second.dev_accounts()[2].address)  # and it keeps working
        assert second.web3.eth.block_number == height + 1
    finally:
        second.close()


def test_embedded_chain_has_one_owner(tmp_path: Path) -> None:
    path = tmp_path / "chain.sqlite"
    owner = EthTesterBackend(path)
    try:
        with pytest.raises(ChainLocked):
            EthTesterBackend(path)
    finally:
        owner.close()
    EthTesterBackend(path).close()  # free again once the owner closed it
