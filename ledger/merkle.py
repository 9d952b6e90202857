"""OpenZeppelin StandardMerkleTree-compatible Merkle trees for `bytes32` leaves.

Written here rather than taken from PyPI's `multiproof` (which pins eth-abi<6 and so web3 7-only); tests cross-check
roots and proofs against the npm `@openzeppelin/merkle-tree` library.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth_hash.auto import keccak

from .errors import MerkleProofError


def leaf_hash(value: bytes) -> bytes:
    """`keccak256(keccak256(abi.encode(bytes32)))`: abi.encode of a bytes32 is the value itself."""
    if len(value) != 32:
        raise MerkleProofError(f"a leaf value must be 32 bytes, got {len(value)}")
    return keccak(keccak(value))


def _pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a < b else keccak(b + a)


class MerkleTree:
    """The tree OpenZeppelin builds: leaves sorted by hash, laid out as a complete binary tree in an array."""

    def __init__(self, tree: list[bytes], values: list[tuple[bytes, int]]) -> None:
        self.tree = tree
        self.values = values  # (value, tree index), in input order
        self._index = {value: index for value, index in values}

    @classmethod
    def of(cls, values: Sequence[bytes]) -> MerkleTree:
        if not values:
            raise MerkleProofError("a Merkle tree needs at least one leaf")
        hashed = sorted(((leaf_hash(v), i) for i, v in enumerate(values)), key=lambda p: p[0])
        n = len(hashed)
        tree: list[bytes] = [b""] * (2 * n - 1)
        positions = [0] * n
        for k, (h, i) in enumerate(hashed):
            tree[len(tree) - 1 - k] = h
            positions[i] = len(tree) - 1 - k
        for j in range(len(tree) - 1 - n, -1, -1):
            tree[j] = _pair(tree[2 * j + 1], tree[2 * j + 2])
        return cls(tree, [(bytes(v), positions[i]) for i, v in enumerate(values)])

    @property
    def root(self) -> bytes:
        return self.tree[0]

    def __len__(self) -> int:
        return len(self.values)

    def _proof_at(self, index: int) -> list[bytes]:
        proof = []
        while index > 0:
            sibling = index - 1 if index % 2 == 0 else index + 1
            proof.append(self.tree[sibling])
            index = (index - 1) // 2
        return proof

    def proof(self, value: bytes) -> list[bytes]:
        index = self._index.get(bytes(value))
        if index is None:
            raise MerkleProofError(f"0x{bytes(value).hex()} is not a leaf of this tree")
        return self._proof_at(index)

    def proofs(self) -> dict[bytes, list[bytes]]:
        return {value: self._proof_at(index) for value, index in self.values}

    def dump(self) -> dict[str, Any]:
        return {
            "format": "standard-v1",
            "leafEncoding": ["bytes32"],
            "tree": ["0x" + node.hex() for node in self.tree],
            "values": [{"value": ["0x" + v.hex()], "treeIndex": i} for v, i in self.values],
        }

    @classmethod
    def load(cls, data: dict[str, Any]) -> MerkleTree:
        if data.get("format") != "standard-v1" or data.get("leafEncoding") != ["bytes32"]:
            raise MerkleProofError("not a standard-v1 bytes32 Merkle tree dump")
        tree = [bytes.fromhex(node[2:]) for node in data["tree"]]
        values = [(bytes.fromhex(v["value"][0][2:]), int(v["treeIndex"])) for v in data["values"]]
        return cls(tree, values)


def verify_proof(root: bytes, value: bytes, proof: Sequence[bytes]) -> bool:
    """Whether `proof` leads from `value`'s leaf to `root` (as OpenZeppelin's MerkleProof.verify)."""
    try:
        node = leaf_hash(value)
    except MerkleProofError:
        return False
    for sibling in proof:
        node = _pair(node, bytes(sibling))
    return node == root


__all__ = ["MerkleTree", "leaf_hash", "verify_proof"]
