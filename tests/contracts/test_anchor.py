"""EventAnchor: anchoring Merkle roots of event batches, verifying events against them, and the EIP-712 domain in
which actors sign events."""

from __future__ import annotations

import os

import pytest
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_utils import keccak

from ledger.client import Role
from ledger.merkle import MerkleTree

from .conftest import World
from .helpers import ZERO32, ZERO_ADDRESS, logs, reverts, send, view

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def test_anchor(world: World) -> None:
    ledger = world.ledger
    root = keccak(text="batch-1")
    receipt = send(world, world.anchorer, ledger.anchor.functions.anchor(root, 250))
    assert logs(ledger, receipt) == [("EventAnchor", "RootAnchored", {"root": root,
                                                                      "anchorer": world.anchorer.address,
                                                                      "eventCount": 250})]
    timestamp = world.backend.web3.eth.get_block(receipt["blockNumber"])["timestamp"]
    assert ledger.anchor_of(root) == {"anchorer": world.anchorer.address, "anchoredAt": timestamp, "eventCount": 250}
    assert ledger.anchor_of(b"\x01" * 32) == {"anchorer": ZERO_ADDRESS, "anchoredAt": 0, "eventCount": 0}
    with reverts("RootAlreadyAnchored", root=root):
        send(world, world.anchorer, ledger.anchor.functions.anchor(root, 1))
    with reverts("RootAlreadyAnchored", root=root):
        send(world, world.anchorer, ledger.anchor.functions.anchorWithUri(root, 1, "https://b.example/1"))
    assert ledger.anchor_of(root)["eventCount"] == 250


def test_anchor_with_uri(world: World) -> None:
    ledger = world.ledger
    root = keccak(text="batch-2")
    uri = "https://batches.example/2?x=ü"
    receipt = send(world, world.anchorer, ledger.anchor.functions.anchorWithUri(root, 2**32 - 1, uri))
    assert logs(ledger, receipt) == [
        ("EventAnchor", "RootAnchored", {"root": root, "anchorer": world.anchorer.address, "eventCount": 2**32 - 1}),
        ("EventAnchor", "BatchLocated", {"root": root, "uri": uri}),
    ]
    with reverts("RootAlreadyAnchored", root=root):
        send(world, world.anchorer, ledger.anchor.functions.anchor(root, 1))


@pytest.mark.parametrize("function", ["anchor", "anchorWithUri"])
def test_empty_batch(world: World, function: str) -> None:
    functions = world.ledger.anchor.functions
    extra = [] if function == "anchor" else ["https://b.example/x"]
    for root, count in [(ZERO32, 5), (b"\x01" * 32, 0), (ZERO32, 0)]:
        with reverts("EmptyBatch", root=root, eventCount=count):
            send(world, world.anchorer, getattr(functions, function)(root, count, *extra))


def test_anchor_role(world: World) -> None:
    ledger = world.ledger
    for caller in (world.stranger, world.admin, world.brand_a):
        with reverts("AccessControlUnauthorizedAccount", account=caller.address, neededRole=Role.ANCHORER):
            send(world, caller, ledger.anchor.functions.anchor(b"\x01" * 32, 1))
    ledger.grant_role(world.admin, "anchorer", world.stranger.address)
    send(world, world.stranger, ledger.anchor.functions.anchor(b"\x01" * 32, 1))
    ledger.revoke_role(world.admin, "anchorer", world.anchorer.address)
    with reverts("AccessControlUnauthorizedAccount", account=world.anchorer.address, neededRole=Role.ANCHORER):
        send(world, world.anchorer, ledger.anchor.functions.anchor(b"\x02" * 32, 1))


def test_verify_event(world: World) -> None:
    ledger = world.ledger
    hashes = [os.urandom(32) for _ in range(13)]
    tree = MerkleTree.of(hashes)
    assert ledger.verify_event_on_chain(tree.root, hashes[0], tree.proof(hashes[0])) is False  # not anchored yet
    ledger.anchor_root(world.anchorer, tree.root, len(hashes))
    for value in hashes:
        assert ledger.verify_event_on_chain(tree.root, value, tree.proof(value)) is True
    proof = tree.proof(hashes[3])
    assert ledger.verify_event_on_chain(tree.root, hashes[4], proof) is False
    assert ledger.verify_event_on_chain(tree.root, os.urandom(32), proof) is False
    assert ledger.verify_event_on_chain(tree.root, hashes[3], [bytes([proof[0][0] ^ 1]) + proof[0][1:],
                                                               *proof[1:]]) is False
    assert ledger.verify_event_on_chain(tree.root, hashes[3], proof[:-1]) is False
    # The raw leaf hash is no event: a second preimage of an inner node is refused by the double hashing.
    assert ledger.verify_event_on_chain(tree.root, tree.tree[1], [tree.tree[2]]) is False
    single = MerkleTree.of([hashes[0]])
    ledger.anchor_root(world.anchorer, single.root, 1)
    assert ledger.verify_event_on_chain(single.root, hashes[0], []) is True


# -- EIP-712 -----------------------------------------------------------------------------------------------------------
def _digest(world: World, event_hash: bytes, deadline: int) -> bytes:
    """The EIP-712 digest, computed from the spec (not from the contract)."""
    domain_type = keccak(text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
    domain = keccak(abi_encode(["bytes32", "bytes32", "bytes32", "uint256", "address"], [
        domain_type, keccak(text="CircularLedger"), keccak(text="1"), world.backend.web3.eth.chain_id,
        world.ledger.anchor.address]))
    struct = keccak(abi_encode(["bytes32", "bytes32", "uint256"], [
        keccak(text="SignedEvent(bytes32 eventHash,uint256 deadline)"), event_hash, deadline]))
    return keccak(b"\x19\x01" + domain + struct)


def test_eip712_domain(world: World) -> None:
    fields, name, version, chain_id, contract, salt, extensions = world.ledger.anchor.functions.eip712Domain().call()
    assert (fields, name, version, chain_id, contract, salt, extensions) == (
        b"\x0f", "CircularLedger", "1", world.backend.web3.eth.chain_id, world.ledger.anchor.address, ZERO32, [])


def test_event_digest_and_signer(world: World) -> None:
    functions = world.ledger.anchor.functions
    now = world.backend.web3.eth.get_block("latest")["timestamp"]
    event_hash, deadline = keccak(text="event"), now + 3_600
    digest = _digest(world, event_hash, deadline)
    assert functions.eventDigest(event_hash, deadline).call() == digest
    signer = world.brand_a
    signature = bytes(Account.unsafe_sign_hash(digest, signer.key).signature)
    assert view(functions.recoverEventSigner(event_hash, deadline, signature)) == signer.address
    # Another event or deadline recovers someone else.
    assert view(functions.recoverEventSigner(keccak(text="other"), deadline, signature)) != signer.address
    assert view(functions.recoverEventSigner(event_hash, deadline + 1, signature)) != signer.address


def test_recover_event_signer_errors(world: World) -> None:
    functions = world.ledger.anchor.functions
    now = world.backend.web3.eth.get_block("latest")["timestamp"]
    event_hash, deadline = keccak(text="event"), now + 3_600
    signature = bytes(Account.unsafe_sign_hash(_digest(world, event_hash, deadline), world.brand_a.key).signature)
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]

    expired = now - 1_000
    with reverts("ExpiredEventSignature", deadline=expired):
        view(functions.recoverEventSigner(event_hash, expired, signature))
    with reverts("ECDSAInvalidSignatureLength", length=64):
        view(functions.recoverEventSigner(event_hash, deadline, signature[:64]))
    with reverts("ECDSAInvalidSignatureLength", length=0):
        view(functions.recoverEventSigner(event_hash, deadline, b""))
    high_s = (SECP256K1_N - s).to_bytes(32, "big")
    with reverts("ECDSAInvalidSignatureS", s=high_s):  # the malleable twin of a valid signature
        view(functions.recoverEventSigner(event_hash, deadline, r + high_s + bytes([55 - v])))
    with reverts("ECDSAInvalidSignature"):
        view(functions.recoverEventSigner(event_hash, deadline, r + signature[32:64] + bytes([29])))
    with reverts("ECDSAInvalidSignature"):
        view(functions.recoverEventSigner(event_hash, deadline, ZERO32 + signature[32:64] + bytes([v])))
