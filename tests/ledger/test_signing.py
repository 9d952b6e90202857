"""ledger.signing against eth-account and against the deployed ``EventAnchor``.

The digest must be the contract's ``eventDigest``; a signature must recover, in Python and on chain, to its signer;
replays on another chain or contract must recover someone else; and recovery must refuse exactly what OpenZeppelin's
ECDSA refuses (wrong length, high s, unrecoverable), which a differential test checks against the contract itself.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from eth_abi.abi import decode as abi_decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_keys.datatypes import Signature
from eth_tester.exceptions import TransactionFailed as EthTesterRevert
from eth_typing import Hash32
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st
from web3 import EthereumTesterProvider, Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError

from ledger.errors import ConfigurationError, InvalidIdentifier, InvalidSignature
from ledger.signing import (
    SECP256K1_HALF_N,
    SECP256K1_N,
    EventDomain,
    EventSigner,
    TransactionSigner,
    event_digest,
    recover_event_signer,
    sign_event,
    typed_data_digest,
    verify_event_signature,
)

ARTIFACTS = Path(__file__).resolve().parents[2] / "contracts" / "artifacts"
FAR_FUTURE = 2**40  # seconds: year 36812
ALICE: LocalAccount = Account.from_key(keccak(b"circular-ledger test signer alice"))
BOB: LocalAccount = Account.from_key(keccak(b"circular-ledger test signer bob"))
EVENT = keccak(b"an EPCIS event hash digest")


@dataclass
class Chain:
    w3: Web3
    anchor: Contract
    other_anchor: Contract
    domain: EventDomain
    errors: dict[bytes, tuple[str, list[str]]]


def _deploy(w3: Web3, name: str, *args: object) -> Contract:
    artifact = json.loads((ARTIFACTS / f"{name}.json").read_text())
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    receipt = w3.eth.wait_for_transaction_receipt(factory.constructor(*args).transact({"from": w3.eth.accounts[0]}))
    assert receipt["status"] == 1
    return cast(Contract, w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"]))


@pytest.fixture(scope="module")
def chain() -> Chain:
    """Two EventAnchor deployments on a fresh eth-tester chain; the first one's EIP-712 domain."""
    w3 = Web3(EthereumTesterProvider())
    anchor = _deploy(w3, "EventAnchor", w3.eth.accounts[0])
    other = _deploy(w3, "EventAnchor", w3.eth.accounts[0])
    errors = {}
    for entry in anchor.abi:
        if entry["type"] == "error":
            types = [i["type"] for i in entry["inputs"]]
            errors[keccak(text=f"{entry['name']}({','.join(types)})")[:4]] = (entry["name"], types)
    return Chain(w3, anchor, other, EventDomain(w3.eth.chain_id, anchor.address), errors)


def _decode_revert(chain: Chain, exc: BaseException) -> tuple[str, tuple[Any, ...]]:
    """The custom error of a revert, decoded from the ABI, from either backend's exception shape."""
    if isinstance(exc, ContractCustomError):  # JSON-RPC backends (Anvil)
        data = bytes.fromhex(str(exc.data).removeprefix("0x"))
    else:  # eth-tester: "execution reverted: b'...'", the revert data as a Python bytes literal
        data = ast.literal_eval(str(exc.args[0]).split(": ", 1)[1])
    name, types = chain.errors[data[:4]]
    return name, tuple(abi_decode(types, data[4:]))


def _revert(chain: Chain, call: Callable[[], object]) -> tuple[str, tuple[Any, ...]]:
    """The custom error `call` reverts with (failing the test if it does not revert)."""
    with pytest.raises((EthTesterRevert, ContractCustomError)) as info:
        call()
    return _decode_revert(chain, info.value)


def _split(signature: bytes) -> tuple[int, int, int]:
    return int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big"), signature[64]


def _join(r: int, s: int, v: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v])


def _malleate(signature: bytes) -> bytes:
    """The other valid signature of the same digest by the same key: s' = n - s and v flipped."""
    r, s, v = _split(signature)
    return _join(r, SECP256K1_N - s, 55 - v)


def test_sign_and_recover_round_trip_with_every_key_form(chain: Chain) -> None:
    domain = chain.domain
    signatures = {
        sign_event(form, domain, EVENT, FAR_FUTURE)
        for form in (ALICE, bytes(ALICE.key), ALICE.key.hex(), "0x" + ALICE.key.hex(), EventSigner(ALICE))
    }
    assert len(signatures) == 1  # deterministic (RFC 6979), whatever the key form
    signature = signatures.pop()
    assert len(signature) == 65 and signature[64] in (27, 28)
    assert _split(signature)[1] <= SECP256K1_HALF_N
    assert signature == EventSigner(bytes(ALICE.key)).sign(domain, EVENT, FAR_FUTURE)
    assert recover_event_signer(domain, EVENT, FAR_FUTURE, signature) == ALICE.address
    assert recover_event_signer(domain, bytearray(EVENT), FAR_FUTURE, bytearray(signature)) == ALICE.address  # type: ignore[arg-type]
    verify_event_signature(domain, EVENT, FAR_FUTURE, signature, ALICE.address)
    verify_event_signature(domain, EVENT, FAR_FUTURE, signature, ALICE.address.lower())
    assert EventSigner(ALICE).address == ALICE.address and ALICE.address in repr(EventSigner(ALICE))


def test_signatures_equal_eth_accounts_and_recover_there_too(chain: Chain) -> None:
    for i in range(10):
        event_hash, deadline = keccak(i.to_bytes(4, "big")), 1_700_000_000 + i
        digest = event_digest(chain.domain, event_hash, deadline)
        signature = sign_event(BOB, chain.domain, event_hash, deadline)
        assert signature == bytes(BOB.unsafe_sign_hash(Hash32(digest)).signature)
        assert Account._recover_hash(digest, signature=signature) == BOB.address
        assert recover_event_signer(chain.domain, event_hash, deadline, signature) == BOB.address


def test_digest_equals_the_contracts_and_eth_accounts_typed_data_encoding(chain: Chain) -> None:
    for event_hash, deadline in [(EVENT, FAR_FUTURE), (bytes(32), 0), (b"\xff" * 32, 2**256 - 1), (EVENT, 1)]:
        digest = event_digest(chain.domain, event_hash, deadline)
        assert digest == chain.anchor.functions.eventDigest(event_hash, deadline).call()
        assert digest == typed_data_digest(chain.domain, event_hash, deadline)
    # ERC-5267: the domain the contract reports is the one we sign in.
    _fields, name, version, chain_id, contract, _salt, _extensions = chain.anchor.functions.eip712Domain().call()
    assert (name, version, chain_id, contract) == ("CircularLedger", "1", chain.w3.eth.chain_id, chain.anchor.address)
    assert chain.domain.verifying_contract == chain.anchor.address
    lower = EventDomain(chain.domain.chain_id, chain.anchor.address.lower())
    assert lower == chain.domain and lower.separator == chain.domain.separator


def test_the_contract_recovers_the_signer(chain: Chain) -> None:
    for account in (ALICE, BOB):
        for event_hash in (EVENT, keccak(b"another event")):
            signature = sign_event(account, chain.domain, event_hash, FAR_FUTURE)
            recovered = chain.anchor.functions.recoverEventSigner(event_hash, FAR_FUTURE, signature).call()
            assert recovered == account.address == recover_event_signer(chain.domain, event_hash, FAR_FUTURE, signature)


def test_a_signature_for_another_chain_or_contract_does_not_verify(chain: Chain) -> None:
    foreign_chain = EventDomain(chain.domain.chain_id + 1, chain.anchor.address)
    foreign_contract = EventDomain(chain.domain.chain_id, chain.other_anchor.address)
    for foreign in (foreign_chain, foreign_contract):
        signature = sign_event(ALICE, foreign, EVENT, FAR_FUTURE)
        verify_event_signature(foreign, EVENT, FAR_FUTURE, signature, ALICE.address)  # valid where it was made
        replayed = recover_event_signer(chain.domain, EVENT, FAR_FUTURE, signature)
        assert replayed != ALICE.address
        with pytest.raises(InvalidSignature, match=f"signed by {replayed}, not by {ALICE.address}"):
            verify_event_signature(chain.domain, EVENT, FAR_FUTURE, signature, ALICE.address)
        assert chain.anchor.functions.recoverEventSigner(EVENT, FAR_FUTURE, signature).call() == replayed
    on_other = chain.other_anchor.functions.recoverEventSigner
    assert on_other(EVENT, FAR_FUTURE, sign_event(ALICE, foreign_contract, EVENT, FAR_FUTURE)).call() == ALICE.address


def test_another_event_deadline_or_signer_does_not_verify(chain: Chain) -> None:
    signature = sign_event(ALICE, chain.domain, EVENT, FAR_FUTURE)
    with pytest.raises(InvalidSignature):
        verify_event_signature(chain.domain, keccak(b"other"), FAR_FUTURE, signature, ALICE.address)
    with pytest.raises(InvalidSignature):
        verify_event_signature(chain.domain, EVENT, FAR_FUTURE + 1, signature, ALICE.address)
    with pytest.raises(InvalidSignature, match=BOB.address):
        verify_event_signature(chain.domain, EVENT, FAR_FUTURE, signature, BOB.address)


def test_a_malleated_high_s_signature_is_refused_in_python_and_on_chain(chain: Chain) -> None:
    signature = sign_event(ALICE, chain.domain, EVENT, FAR_FUTURE)
    twin = _malleate(signature)
    r, s, v = _split(twin)
    assert s > SECP256K1_HALF_N
    # It is a mathematically valid signature by Alice (plain ecrecover would accept it)...
    digest = event_digest(chain.domain, EVENT, FAR_FUTURE)
    recovered = Signature(vrs=(v - 27, r, s)).recover_public_key_from_msg_hash(digest)
    assert recovered.to_checksum_address() == ALICE.address
    # ...which OpenZeppelin refuses, and so do we.
    with pytest.raises(InvalidSignature, match="malleable"):
        recover_event_signer(chain.domain, EVENT, FAR_FUTURE, twin)
    with pytest.raises(InvalidSignature):
        verify_event_signature(chain.domain, EVENT, FAR_FUTURE, twin, ALICE.address)
    call = chain.anchor.functions.recoverEventSigner(EVENT, FAR_FUTURE, twin).call
    assert _revert(chain, call) == ("ECDSAInvalidSignatureS", (s.to_bytes(32, "big"),))


def test_an_expired_deadline_reverts_on_chain(chain: Chain) -> None:
    now = chain.w3.eth.get_block("latest")["timestamp"]
    deadline = now - 1
    signature = sign_event(ALICE, chain.domain, EVENT, deadline)
    call = chain.anchor.functions.recoverEventSigner(EVENT, deadline, signature).call
    assert _revert(chain, call) == ("ExpiredEventSignature", (deadline,))
    # The Python side leaves the clock to its caller (service.submit checks it): the signature itself is sound.
    assert recover_event_signer(chain.domain, EVENT, deadline, signature) == ALICE.address


@pytest.mark.parametrize("length", [0, 1, 64, 66, 130])
def test_a_signature_of_the_wrong_length_is_refused_in_python_and_on_chain(chain: Chain, length: int) -> None:
    signature = (sign_event(ALICE, chain.domain, EVENT, FAR_FUTURE) * 2)[:length]
    with pytest.raises(InvalidSignature, match="65 bytes"):
        recover_event_signer(chain.domain, EVENT, FAR_FUTURE, signature)
    call = chain.anchor.functions.recoverEventSigner(EVENT, FAR_FUTURE, signature).call
    assert _revert(chain, call) == ("ECDSAInvalidSignatureLength", (length,))


def test_unrecoverable_signatures_are_refused_in_python_and_on_chain(chain: Chain) -> None:
    r, s, v = _split(sign_event(ALICE, chain.domain, EVENT, FAR_FUTURE))
    for bad in (
        _join(r, s, v - 27),  # v as a recovery id (0/1): OpenZeppelin's recover(bytes) takes v as-is
        _join(r, s, 29),
        _join(0, s, v),
        _join(r, 0, v),
        _join(SECP256K1_N, s, v),
        _join(2**256 - 1, s, v),
        bytes(65),
    ):
        with pytest.raises(InvalidSignature, match="invalid signature"):
            recover_event_signer(chain.domain, EVENT, FAR_FUTURE, bad)
        call = chain.anchor.functions.recoverEventSigner(EVENT, FAR_FUTURE, bad).call
        assert _revert(chain, call) == ("ECDSAInvalidSignature", ())


_N = SECP256K1_N
_HALF = SECP256K1_HALF_N
_scalars = st.one_of(
    st.sampled_from([0, 1, 2, _HALF - 1, _HALF, _HALF + 1, _N - 1, _N, _N + 1, 2**256 - 1]),
    st.integers(min_value=0, max_value=2**256 - 1),
)


@settings(max_examples=100, deadline=None)
@given(
    r=st.one_of(st.none(), _scalars),
    s=st.one_of(st.none(), _scalars),
    v=st.one_of(st.sampled_from([0, 1, 27, 28, 29]), st.integers(0, 255)),
    length=st.sampled_from([65, 65, 65, 65, 64, 66]),
)
def test_python_accepts_and_refuses_exactly_what_the_contract_does(
    chain: Chain, r: int | None, s: int | None, v: int, length: int
) -> None:
    """Differential: any (r, s, v), including Alice's real r and s (None), gives the same outcome as on chain."""
    real_r, real_s, _ = _split(sign_event(ALICE, chain.domain, EVENT, FAR_FUTURE))
    signature = _join(real_r if r is None else r, real_s if s is None else s, v)
    signature = (signature + b"\x00")[:length]
    call = chain.anchor.functions.recoverEventSigner(EVENT, FAR_FUTURE, signature).call
    try:
        on_chain: object = call()
    except (EthTesterRevert, ContractCustomError) as exc:
        on_chain = _decode_revert(chain, exc)[0]
    try:
        in_python: object = recover_event_signer(chain.domain, EVENT, FAR_FUTURE, signature)
    except InvalidSignature as exc:
        message = str(exc)
        in_python = (
            "ECDSAInvalidSignatureLength"
            if "65 bytes" in message
            else "ECDSAInvalidSignatureS"
            if "malleable" in message
            else "ECDSAInvalidSignature"
        )
    assert in_python == on_chain


def test_malformed_inputs_are_refused(chain: Chain) -> None:
    signature = sign_event(ALICE, chain.domain, EVENT, FAR_FUTURE)
    for bad_hash in (EVENT[:31], EVENT + b"\x00", b"", "0x" + EVENT.hex()):
        with pytest.raises(InvalidIdentifier, match="32 bytes"):
            event_digest(chain.domain, bad_hash, FAR_FUTURE)  # type: ignore[arg-type]
        with pytest.raises(InvalidIdentifier):
            sign_event(ALICE, chain.domain, bad_hash, FAR_FUTURE)  # type: ignore[arg-type]
        with pytest.raises(InvalidIdentifier):
            recover_event_signer(chain.domain, bad_hash, FAR_FUTURE, signature)  # type: ignore[arg-type]
    for bad_deadline in (-1, 2**256, 1.5, True):
        with pytest.raises(InvalidSignature, match="uint256"):
            event_digest(chain.domain, EVENT, bad_deadline)  # type: ignore[arg-type]
    with pytest.raises(InvalidSignature):
        recover_event_signer(chain.domain, EVENT, FAR_FUTURE, signature.hex())  # type: ignore[arg-type]
    for bad_key in (b"", b"\x00" * 32, SECP256K1_N.to_bytes(32, "big"), "0xzz", "12", 42):
        with pytest.raises(ConfigurationError):
            sign_event(bad_key, chain.domain, EVENT, FAR_FUTURE)  # type: ignore[arg-type]
    checksummed = chain.anchor.address
    miscased = checksummed[:2] + checksummed[2:].swapcase()
    for bad_address in ("0x1234", chain.anchor.address + "00", "0x" + "g" * 40, miscased, "", 0):
        with pytest.raises(InvalidIdentifier):
            EventDomain(1, bad_address)  # type: ignore[arg-type]
    for bad_chain in (-1, 2**256, "1"):
        with pytest.raises(InvalidIdentifier):
            EventDomain(bad_chain, checksummed)  # type: ignore[arg-type]
    assert EventDomain(1, "0x" + checksummed[2:].upper()).verifying_contract == checksummed
    assert to_checksum_address(checksummed.lower()) == EventDomain(1, checksummed.lower()).verifying_contract


@settings(max_examples=200, deadline=None)
@given(
    key=st.integers(1, SECP256K1_N - 1),
    chain_id=st.integers(1, 2**63),
    nonce=st.integers(0, 2**64 - 2),
    tip=st.integers(0, 2**96),
    fee=st.integers(0, 2**96),
    gas=st.integers(21_000, 30_000_000),
    to=st.binary(min_size=20, max_size=20),
    value=st.integers(0, 2**128),
    data=st.binary(max_size=600),
)
def test_transaction_signer_writes_eth_accounts_bytes(
    key: int, chain_id: int, nonce: int, tip: int, fee: int, gas: int, to: bytes, value: int, data: bytes
) -> None:
    """The pipeline's own EIP-1559 signer produces exactly eth-account's raw transaction and hash."""
    account = Account.from_key(key.to_bytes(32, "big"))
    signer = TransactionSigner(account)
    assert signer.address == account.address
    raw, tx_hash = signer.sign_dynamic_fee(
        chain_id=chain_id, nonce=nonce, max_priority_fee_per_gas=tip, max_fee_per_gas=fee, gas=gas, to=to,
        value=value, data=data,
    )
    expected = account.sign_transaction({
        "type": 2, "chainId": chain_id, "nonce": nonce, "maxPriorityFeePerGas": tip, "maxFeePerGas": fee, "gas": gas,
        "to": Web3.to_checksum_address(to), "value": value, "data": data, "accessList": [],
    })
    assert raw == bytes(expected.raw_transaction) and tx_hash == bytes(expected.hash)
    assert Account.recover_transaction(raw) == account.address
    with pytest.raises(InvalidIdentifier):
        signer.sign_dynamic_fee(chain_id=chain_id, nonce=nonce, max_priority_fee_per_gas=tip, max_fee_per_gas=fee,
                                gas=gas, to=to[:19], value=value, data=data)
