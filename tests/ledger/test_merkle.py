"""ledger.merkle against its reference, OpenZeppelin's npm ``@openzeppelin/merkle-tree``, and against the contract.

Roots, every proof (by value and by position), and the dump must be *identical* to the npm library's, so that anyone
can re-check an anchored batch with public tools; and roots and proofs must verify in ``EventAnchor.verifyEvent``
(OpenZeppelin ``MerkleProof``) on the in-process eth-tester chain.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from eth_utils.crypto import keccak as reference_keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3 import EthereumTesterProvider, Web3
from web3.contract import Contract

from ledger import merkle
from ledger.errors import InvalidIdentifier, MerkleProofError
from ledger.merkle import MerkleTree, keccak256, leaf_hash, verify_proof

ROOT = Path(__file__).resolve().parents[2]
OZ_LIBRARY = ROOT / "node_modules" / "@openzeppelin" / "merkle-tree"
OZ_SCRIPT = Path(__file__).with_name("oz_merkle.mjs")
ARTIFACTS = ROOT / "contracts" / "artifacts"

Json = dict[str, Any]


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def _unhex(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


def _values(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(32) for _ in range(count)]


class OpenZeppelin:
    """One `node oz_merkle.mjs` process for the module, asked one JSON line at a time."""

    def __init__(self) -> None:
        node = shutil.which("node")
        if node is None:
            pytest.fail("node is not on PATH, but node_modules is installed: install Node 20")
        self._process = subprocess.Popen(
            [node, str(OZ_SCRIPT)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self._lock = threading.Lock()

    def ask(self, request: object) -> Json:
        assert self._process.stdin is not None and self._process.stdout is not None
        with self._lock:
            self._process.stdin.write(json.dumps(request) + "\n")
            self._process.stdin.flush()
            line = self._process.stdout.readline()
        if not line:
            pytest.fail(f"oz_merkle.mjs exited with code {self._process.poll()}")
        reply: Json = json.loads(line)
        if "error" in reply:
            raise AssertionError(f"@openzeppelin/merkle-tree refused the request: {reply['error']}")
        return reply

    def tree(self, values: list[bytes]) -> Json:
        return self.ask([_hex(v) for v in values])

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()


@pytest.fixture(scope="module")
def oz() -> Iterator[OpenZeppelin]:
    if not OZ_LIBRARY.is_dir():
        pytest.skip(f"the reference @openzeppelin/merkle-tree is not installed at {OZ_LIBRARY} (run `npm ci`)")
    reference = OpenZeppelin()
    yield reference
    reference.close()


def assert_same_as_openzeppelin(tree: MerkleTree, values: list[bytes], expected: Json) -> None:
    """Root, dump, every proof by value and by position, and the all-at-once proofs, as the npm library gives them."""
    assert _hex(tree.root) == expected["root"]
    assert tree.dump() == expected["dump"]
    assert len(tree) == len(values) == len(expected["dump"]["values"])
    by_value = [[_hex(node) for node in tree.proof(value)] for value in values]
    assert by_value == expected["proofsByValue"]
    all_proofs = tree.proofs()
    assert set(all_proofs) == set(values)
    for value, proof in zip(values, expected["proofsByValue"], strict=True):
        assert [_hex(node) for node in all_proofs[value]] == proof
    # By position (OZ's getProof(i)): the leaf each value sits at, climbed to the root.
    for (value, _index), proof in zip(tree.values, expected["proofs"], strict=True):
        assert verify_proof(tree.root, value, [_unhex(node) for node in proof])


@pytest.mark.parametrize("size", [1, 2, 3, 5, 16, 17, 100, 1000])
def test_root_proofs_and_dump_match_openzeppelin(oz: OpenZeppelin, size: int) -> None:
    values = _values(size, seed=size)
    tree = MerkleTree.of(values)
    assert_same_as_openzeppelin(tree, values, oz.tree(values))
    assert all(verify_proof(tree.root, value, proof) for value, proof in tree.proofs().items())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(
        # A small pool as well as fresh values, so that duplicates (kept as separate leaves by OZ) come up often.
        st.one_of(st.sampled_from([bytes([i]) * 32 for i in range(4)]), st.binary(min_size=32, max_size=32)),
        min_size=1,
        max_size=40,
    )
)
def test_any_small_batch_matches_openzeppelin(oz: OpenZeppelin, values: list[bytes]) -> None:
    assert_same_as_openzeppelin(MerkleTree.of(values), values, oz.tree(values))


def test_duplicates_are_kept_and_proved_at_their_last_occurrence_as_openzeppelin_does(oz: OpenZeppelin) -> None:
    a, b = b"\xaa" * 32, b"\xbb" * 32
    tree = MerkleTree.of([a, b, a])
    expected = oz.tree([a, b, a])
    assert_same_as_openzeppelin(tree, [a, b, a], expected)
    assert len(tree) == 3 and len(tree.tree) == 5  # three leaves, not two
    first, _, last = (index for _, index in tree.values)
    assert tree.proof(a) == tree.proofs()[a] == [_unhex(node) for node in expected["proofsByValue"][2]]
    assert first != last and tree.tree[first] == tree.tree[last] == leaf_hash(a)


def test_openzeppelin_loads_our_dump_and_accepts_our_proofs(oz: OpenZeppelin) -> None:
    values = _values(33, seed=7)
    tree = MerkleTree.of(values)
    loaded = oz.ask({"load": tree.dump()})  # StandardMerkleTree.load validates the whole tree
    assert loaded["root"] == _hex(tree.root) and loaded["dump"] == tree.dump()
    for value in values[:5]:
        proof = [_hex(node) for node in tree.proof(value)]
        assert oz.ask({"verify": [_hex(tree.root), _hex(value), proof]}) == {"verified": True}
        assert oz.ask({"verify": [_hex(tree.root), _hex(values[-1] if value != values[-1] else values[0]), proof]}) == {
            "verified": False
        }


def test_load_round_trips_our_dump_and_the_npm_librarys(oz: OpenZeppelin) -> None:
    values = _values(21, seed=21)
    tree = MerkleTree.of(values)
    for dump in (tree.dump(), oz.tree(values)["dump"], json.loads(json.dumps(tree.dump()))):
        loaded = MerkleTree.load(dump)
        assert loaded.root == tree.root and loaded.tree == tree.tree and loaded.values == tree.values
        assert loaded.dump() == tree.dump()
        assert loaded.proofs() == tree.proofs()
    upper = tree.dump()
    upper["tree"] = ["0x" + node[2:].upper() for node in upper["tree"]]
    assert MerkleTree.load(upper).root == tree.root


def _doctored(dump: Json, change: Callable[[Json], None]) -> Json:
    copy: Json = json.loads(json.dumps(dump))
    change(copy)
    return copy


def _flip(text: str) -> str:
    return text[:-1] + ("0" if text[-1] != "0" else "1")


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda d: d.update(format="standard-v2"), id="format"),
        pytest.param(lambda d: d.update(leafEncoding=["uint256"]), id="leaf-encoding"),
        pytest.param(lambda d: d.pop("tree"), id="no-tree"),
        pytest.param(lambda d: d["tree"].__setitem__(0, _flip(d["tree"][0])), id="root"),
        pytest.param(lambda d: d["tree"].__setitem__(3, _flip(d["tree"][3])), id="inner-node"),
        pytest.param(lambda d: d["tree"].__setitem__(-1, _flip(d["tree"][-1])), id="leaf"),
        pytest.param(lambda d: d["tree"].pop(), id="even-node-count"),
        pytest.param(lambda d: d.update(tree=[]), id="empty-tree"),
        pytest.param(lambda d: d["tree"].__setitem__(1, d["tree"][1][:-2]), id="short-node"),
        pytest.param(lambda d: d["tree"].__setitem__(1, "0x" + "zz" * 32), id="not-hex"),
        pytest.param(lambda d: d["values"][0].update(value=[_flip(d["values"][0]["value"][0])]), id="value"),
        pytest.param(lambda d: d["values"][0].update(value=d["values"][0]["value"] * 2), id="two-part-value"),
        pytest.param(lambda d: d["values"][0].update(treeIndex=0), id="index-of-inner-node"),
        pytest.param(lambda d: d["values"][0].update(treeIndex=len(d["tree"])), id="index-out-of-range"),
        pytest.param(lambda d: d["values"][0].update(treeIndex="5"), id="index-not-int"),
        pytest.param(lambda d: d["values"][0].pop("treeIndex"), id="no-index"),
    ],
)
def test_load_refuses_a_doctored_dump(change: Callable[[Json], None]) -> None:
    dump = MerkleTree.of(_values(6, seed=6)).dump()
    MerkleTree.load(dump)
    with pytest.raises(MerkleProofError):
        MerkleTree.load(_doctored(dump, change))


def test_tampered_proofs_values_and_roots_do_not_verify() -> None:
    values = _values(100, seed=100)
    tree = MerkleTree.of(values)
    other = MerkleTree.of(_values(100, seed=101))
    rng = random.Random(0)
    for value in values:
        proof = tree.proof(value)
        assert verify_proof(tree.root, value, proof)
        assert verify_proof(bytearray(tree.root), bytearray(value), [bytearray(node) for node in proof])  # type: ignore[arg-type,misc]
        position = rng.randrange(len(proof))
        flipped = bytearray(proof[position])
        flipped[rng.randrange(32)] ^= 1 << rng.randrange(8)
        assert not verify_proof(tree.root, value, [*proof[:position], bytes(flipped), *proof[position + 1 :]])
        assert not verify_proof(tree.root, value, proof[:-1])  # truncated
        assert not verify_proof(tree.root, value, [*proof, proof[-1]])  # extended
        assert not verify_proof(tree.root, value, proof[::-1])  # reordered
        assert not verify_proof(tree.root, bytes(32), proof)
        assert not verify_proof(tree.root, leaf_hash(value), proof)  # the leaf is not the value
        assert not verify_proof(other.root, value, proof)
        bad_root = bytearray(tree.root)
        bad_root[rng.randrange(32)] ^= 1
        assert not verify_proof(bytes(bad_root), value, proof)
    # An inner node is not a value: the double-hashed leaf stops a second-preimage "proof" of an inner node.
    inner = tree.tree[1]
    assert not verify_proof(tree.root, inner, tree.proof(values[0])[-1:])


def test_malformed_inputs_are_refused() -> None:
    tree = MerkleTree.of(_values(5, seed=5))
    value, index = tree.values[0]
    absent = b"\x01" * 32
    with pytest.raises(MerkleProofError, match="not a leaf"):
        tree.proof(absent)
    assert absent not in tree and value in tree and "0x00" not in tree
    with pytest.raises(MerkleProofError):
        MerkleTree.of([])
    for bad in (b"\x00" * 31, b"\x00" * 33, b"", "0x" + "00" * 32):
        with pytest.raises(InvalidIdentifier):
            MerkleTree.of([value, bad])  # type: ignore[list-item]
        with pytest.raises(InvalidIdentifier):
            leaf_hash(bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidIdentifier):
            tree.proof(bad)  # type: ignore[arg-type]
        assert not verify_proof(tree.root, bad, tree.proof(value))  # type: ignore[arg-type]
        assert not verify_proof(bad, value, tree.proof(value))  # type: ignore[arg-type]
        assert not verify_proof(tree.root, value, [*tree.proof(value)[:-1], bad])  # type: ignore[list-item]
    from_bytearray = MerkleTree.of([bytearray(value)])  # type: ignore[list-item]
    assert from_bytearray.root == MerkleTree.of([value]).root == leaf_hash(value)
    assert MerkleTree.of([value]).proof(value) == []
    assert repr(tree).startswith("MerkleTree(root=0x") and tree.tree[index] == leaf_hash(value)


def test_leaf_hash_is_the_double_keccak_of_the_abi_encoded_value() -> None:
    from eth_abi.abi import encode

    for value in _values(20, seed=20):
        assert leaf_hash(value) == reference_keccak(reference_keccak(encode(["bytes32"], [value])))


def test_every_keccak_backend_agrees_with_eth_hash_and_is_thread_safe() -> None:
    from Crypto.Hash import keccak as cryptodome

    def public(data: bytes) -> bytes:
        return cryptodome.new(data=data, digest_bits=256).digest()

    direct = merkle._cryptodome_direct(public)
    assert direct is not None, "pycryptodome's direct Keccak failed its self-check: the slow public API is in use"
    backends = {"selected": keccak256, "direct": direct, "public": public}
    rng = random.Random(3)
    samples = [rng.randbytes(rng.choice([0, 1, 31, 32, 64, 135, 136, 137, 300])) for _ in range(300)]
    for name, backend in backends.items():
        assert [backend(s) for s in samples] == [reference_keccak(s) for s in samples], name

    def hash_all(_: int) -> list[bytes]:
        return [direct(s) for s in samples for _ in range(5)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        for result in pool.map(hash_all, range(8)):
            assert result == [reference_keccak(s) for s in samples for _ in range(5)]
    assert merkle.KECCAK_BACKEND in ("pysha3", "pycryptodome-direct", "pycryptodome")


# -- on chain -----------------------------------------------------------------------------------------------------


@dataclass
class Chain:
    w3: Web3
    anchor: Contract
    admin: str
    anchorer: str


def _artifact(name: str) -> Json:
    data: Json = json.loads((ARTIFACTS / f"{name}.json").read_text())
    return data


def _deploy(w3: Web3, name: str, sender: str, *args: object) -> Contract:
    artifact = _artifact(name)
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    receipt = w3.eth.wait_for_transaction_receipt(factory.constructor(*args).transact({"from": sender}))
    assert receipt["status"] == 1
    return cast(Contract, w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"]))


@pytest.fixture(scope="module")
def chain() -> Chain:
    """EventAnchor on a fresh in-process eth-tester chain, with an anchorer holding ANCHORER_ROLE."""
    w3 = Web3(EthereumTesterProvider())
    admin, anchorer = list(w3.eth.accounts)[:2]
    anchor = _deploy(w3, "EventAnchor", admin, admin)  # EventAnchor(admin): it holds its own ANCHORER_ROLE
    role = anchor.functions.ANCHORER_ROLE().call()
    assert role == Web3.keccak(text="ANCHORER_ROLE")
    receipt = w3.eth.wait_for_transaction_receipt(anchor.functions.grantRole(role, anchorer).transact({"from": admin}))
    assert receipt["status"] == 1
    return Chain(w3, anchor, admin, anchorer)


def _anchor(chain: Chain, tree: MerkleTree) -> None:
    tx = chain.anchor.functions.anchor(tree.root, len(tree)).transact({"from": chain.anchorer})
    assert chain.w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
    record: Any = chain.anchor.functions.anchorOf(tree.root).call()
    assert record[0] == chain.anchorer


@pytest.mark.parametrize("size", [1, 2, 17, 1000])
def test_roots_and_proofs_verify_on_chain_in_event_anchor(chain: Chain, size: int) -> None:
    values = _values(size, seed=10_000 + size)
    tree = MerkleTree.of(values)
    verify = chain.anchor.functions.verifyEvent
    assert verify(tree.root, values[0], tree.proof(values[0])).call() is False  # not anchored yet
    _anchor(chain, tree)
    proofs = tree.proofs()
    for value in random.Random(size).sample(values, min(size, 8)):
        assert verify(tree.root, value, proofs[value]).call() is True
        tampered = bytes([value[0] ^ 1]) + value[1:]
        assert verify(tree.root, tampered, proofs[value]).call() is False
        if proofs[value]:
            bad_proof = [bytes([proofs[value][0][0] ^ 1]) + proofs[value][0][1:], *proofs[value][1:]]
            assert verify(tree.root, value, bad_proof).call() is False


def test_a_tree_with_duplicates_verifies_on_chain(chain: Chain) -> None:
    a, b, c = (bytes([i]) * 32 for i in (0x11, 0x22, 0x33))
    tree = MerkleTree.of([a, b, a, c, c, c])
    _anchor(chain, tree)
    for value in (a, b, c):
        assert chain.anchor.functions.verifyEvent(tree.root, value, tree.proof(value)).call() is True


@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=40))
def test_packed_proofs_are_the_proofs_concatenated(values: list[bytes]) -> None:
    tree = MerkleTree.of(values)
    packed = tree.packed_proofs()
    assert packed.keys() == tree.proofs().keys()
    for value in values:
        assert packed[value] == b"".join(tree.proof(value))
