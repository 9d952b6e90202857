"""OpenZeppelin ``StandardMerkleTree``-compatible Merkle trees for ``bytes32`` leaves.

Anyone must be able to check an event against an anchored root with public tools (the npm
``@openzeppelin/merkle-tree`` library, OpenZeppelin's ``MerkleProof`` in ``EventAnchor.verifyEvent``), so this tree
reproduces that library bit for bit, not merely "a" Merkle tree:

- a leaf is ``keccak256(keccak256(abi.encode(bytes32 value)))``; ``abi.encode`` of a ``bytes32`` is the value itself;
- leaves are sorted by hash (a stable sort, so equal leaves keep their input order) and laid out, as OZ does, in
  one array of ``2n - 1`` nodes: node ``i`` has children ``2i + 1`` and ``2i + 2``, the k-th sorted leaf sits at
  ``2n - 2 - k`` (so the tree is complete but not perfect, and proofs differ in length by at most one);
- an inner node hashes its two children sorted (``keccak256(min ‖ max)``), so a proof is a plain list of siblings.

Duplicate values are kept as separate leaves, as OZ keeps them; a proof by value is the proof of the value's *last*
occurrence, as in OZ (whose hash lookup is built in input order, later entries overwriting earlier ones).

Written here rather than taken from PyPI's ``multiproof`` (which pins ``eth-abi<6``). The tests cross-check roots,
every proof and the dump against the npm library, and verify proofs on chain.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from .errors import InvalidIdentifier, MerkleProofError

DUMP_FORMAT: Final = "standard-v1"
LEAF_ENCODING: Final = ("bytes32",)


def _select_keccak() -> tuple[Callable[[bytes], bytes], str]:
    """The fastest Keccak-256 at hand: hashing is nearly all of the cost of building and verifying trees.

    Per 64-byte hash: ``safe-pysha3`` (a C extension, used when installed) about 1.5 µs; pycryptodome's C Keccak
    called directly (:func:`_cryptodome_direct`) about 2.5 µs; pycryptodome's public ``keccak.new`` (what
    ``eth_hash.auto`` does) about 7 µs, most of it per-object ctypes overhead. pycryptodome is always installed
    (eth-account depends on it).
    """
    try:
        from sha3 import keccak_256  # safe-pysha3
    except ImportError:
        pass
    else:

        def pysha3(data: bytes) -> bytes:
            return keccak_256(data).digest()  # type: ignore[no-any-return]

        return pysha3, "pysha3"
    from Crypto.Hash import keccak as cryptodome_keccak

    def cryptodome(data: bytes) -> bytes:
        return cryptodome_keccak.new(data=data, digest_bits=256).digest()

    direct = _cryptodome_direct(cryptodome)
    return (direct, "pycryptodome-direct") if direct is not None else (cryptodome, "pycryptodome")


def _cryptodome_direct(reference: Callable[[bytes], bytes]) -> Callable[[bytes], bytes] | None:
    """pycryptodome's C Keccak through one reused state per thread (reset, absorb, digest: three C calls).

    It uses pycryptodome's raw library binding, which is internal (although unchanged for years), so it is
    checked against `reference` (the public API) on a few inputs first and not used at all if anything differs.
    """
    try:
        lib: Any = importlib.import_module("Crypto.Hash.keccak")._raw_keccak_lib
        raw: Any = importlib.import_module("Crypto.Util._raw_api")
        local = threading.local()
        digest_size, padding = raw.c_size_t(32), raw.c_ubyte(0x01)  # 0x01: Keccak's padding, not SHA-3's 0x06

        def state() -> tuple[Any, Any, Any]:
            pointer = raw.VoidPointer()
            if lib.keccak_init(pointer.address_of(), raw.c_size_t(64), raw.c_ubyte(24)):
                raise RuntimeError("keccak_init failed")
            owner = raw.SmartPointer(pointer.get(), lib.keccak_destroy)  # frees the state with the thread's data
            local.state = (owner, owner.get(), raw.create_string_buffer(32))
            return local.state  # type: ignore[no-any-return]

        def keccak(data: bytes) -> bytes:
            try:
                _, pointer, out = local.state
            except AttributeError:
                _, pointer, out = state()
            if (
                lib.keccak_reset(pointer)
                or lib.keccak_absorb(pointer, raw.c_uint8_ptr(data), raw.c_size_t(len(data)))
                or lib.keccak_digest(pointer, out, digest_size, padding)
            ):
                raise RuntimeError("pycryptodome's Keccak failed")
            return raw.get_raw_buffer(out)  # type: ignore[no-any-return]

        samples = [b"", b"abc", bytes(range(256)) * 3, b"\xff" * 64, b"\x00" * 136, b"\x01" * 137]
        if all(keccak(sample) == reference(sample) for sample in samples + samples[::-1]):
            return keccak
    except Exception:  # any change in pycryptodome's internals: use its public API
        pass
    return None


keccak256, KECCAK_BACKEND = _select_keccak()
keccak256.__doc__ = "Keccak-256 (Ethereum's, not NIST SHA3-256) of ``data``, by the fastest backend installed."


def _bytes32(value: object, what: str) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        if len(raw) == 32:
            return raw
        raise InvalidIdentifier(f"{what} must be 32 bytes, got {len(raw)}")
    raise InvalidIdentifier(f"{what} must be 32 bytes, got {type(value).__name__}")


def leaf_hash(value: bytes) -> bytes:
    """The leaf of `value`: ``keccak256(keccak256(abi.encode(bytes32)))``, as OZ's ``standardLeafHash``.

    The double hash keeps a leaf from ever being read as an inner node (a second-preimage defence).
    Raises InvalidIdentifier unless `value` is 32 bytes.
    """
    return keccak256(keccak256(_bytes32(value, "a leaf value")))


def _node_hash(a: bytes, b: bytes) -> bytes:
    return keccak256(a + b) if a <= b else keccak256(b + a)


class MerkleTree:
    """An immutable tree laid out exactly as OZ's ``StandardMerkleTree.of(values, ["bytes32"])``.

    Build one with :meth:`of` or :meth:`load`. ``values`` keeps the input order, each with the index of its leaf
    in ``tree`` (as OZ's dump), so the dump of a tree round-trips with the npm library's.
    """

    __slots__ = ("_index", "_tree", "_values")

    def __init__(self, tree: Sequence[bytes], values: Sequence[tuple[bytes, int]]) -> None:
        """Wrap an already built and checked tree; use :meth:`of` or :meth:`load` instead."""
        self._tree: tuple[bytes, ...] = tuple(tree)
        self._values: tuple[tuple[bytes, int], ...] = tuple(values)
        # Later duplicates overwrite earlier ones, as in OZ's hash lookup.
        self._index: dict[bytes, int] = {value: index for value, index in self._values}

    @classmethod
    def of(cls, values: Sequence[bytes]) -> MerkleTree:
        """The tree of `values` (32 bytes each, at least one). Duplicates are kept, as OZ keeps them."""
        if not values:
            raise MerkleProofError("a Merkle tree needs at least one leaf")
        raw = [_bytes32(value, "a leaf value") for value in values]
        h = keccak256
        hashes = [h(h(value)) for value in raw]
        order = sorted(range(len(hashes)), key=hashes.__getitem__)  # stable, as Array.prototype.sort
        n = len(hashes)
        last = 2 * n - 2
        tree: list[bytes] = [b""] * (2 * n - 1)
        positions = [0] * n
        for k, value_index in enumerate(order):
            tree[last - k] = hashes[value_index]
            positions[value_index] = last - k
        for i in range(n - 2, -1, -1):
            a, b = tree[2 * i + 1], tree[2 * i + 2]
            tree[i] = h(a + b) if a <= b else h(b + a)
        return cls(tree, list(zip(raw, positions, strict=True)))

    @property
    def root(self) -> bytes:
        """The 32-byte root, as anchored by ``EventAnchor.anchor``."""
        return self._tree[0]

    @property
    def tree(self) -> tuple[bytes, ...]:
        """Every node, root first, in OZ's array layout."""
        return self._tree

    @property
    def values(self) -> tuple[tuple[bytes, int], ...]:
        """``(value, tree index)`` pairs in input order."""
        return self._values

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, value: object) -> bool:
        return isinstance(value, bytes | bytearray | memoryview) and bytes(value) in self._index

    def __repr__(self) -> str:
        return f"MerkleTree(root=0x{self.root.hex()}, leaves={len(self)})"

    def _proof_at(self, index: int) -> list[bytes]:
        tree = self._tree
        proof = []
        while index > 0:
            proof.append(tree[index + 1 if index % 2 else index - 1])
            index = (index - 1) // 2
        return proof

    def proof(self, value: bytes) -> list[bytes]:
        """The siblings from `value`'s leaf up to the root; MerkleProofError if `value` is not a leaf."""
        index = self._index.get(_bytes32(value, "a leaf value"))
        if index is None:
            raise MerkleProofError(f"0x{bytes(value).hex()} is not a leaf of the tree 0x{self.root.hex()}")
        return self._proof_at(index)

    def proofs(self) -> dict[bytes, list[bytes]]:
        """The proof of every distinct value at once (one pass over the leaves; for a batch being anchored)."""
        return {value: self._proof_at(index) for value, index in self._index.items()}

    def packed_proofs(self) -> dict[bytes, bytes]:
        """Every distinct value's proof with its siblings concatenated (32 bytes each), as the outbox stores it.

        One pass down the tree: a node's path to the root is its sibling followed by its parent's path, so each node
        costs one concatenation instead of one loop step per level."""
        tree = self._tree
        paths: list[bytes] = [b""] * len(tree)
        for index in range(1, len(tree)):  # parents come before their children in OZ's layout
            paths[index] = tree[index + 1 if index % 2 else index - 1] + paths[(index - 1) // 2]
        return {value: paths[index] for value, index in self._index.items()}

    def dump(self) -> dict[str, Any]:
        """The tree as OZ's ``StandardMerkleTree.dump()`` (JSON-ready; ``StandardMerkleTree.load`` accepts it)."""
        return {
            "format": DUMP_FORMAT,
            "leafEncoding": list(LEAF_ENCODING),
            "tree": ["0x" + node.hex() for node in self._tree],
            "values": [{"value": ["0x" + value.hex()], "treeIndex": index} for value, index in self._values],
        }

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> MerkleTree:
        """A tree from a ``standard-v1`` ``bytes32`` dump (ours or the npm library's).

        Checks what OZ's ``load`` checks, so a doctored dump is refused rather than trusted: every inner node is the
        hash of its children, and every value's ``treeIndex`` is a leaf holding that value's hash.
        Raises MerkleProofError otherwise.
        """
        try:
            if data["format"] != DUMP_FORMAT:
                raise MerkleProofError(f"unknown Merkle tree dump format {data['format']!r}")
            if list(data["leafEncoding"]) != list(LEAF_ENCODING):
                raise MerkleProofError(f"only bytes32 leaves are supported, not {data['leafEncoding']!r}")
            tree = [_unhex32(node) for node in data["tree"]]
            values = [(_unhex32(_single(entry["value"])), entry["treeIndex"]) for entry in data["values"]]
        except MerkleProofError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise MerkleProofError(f"malformed Merkle tree dump: {exc!r}") from None
        size = len(tree)
        if size % 2 == 0:  # also refuses an empty tree
            raise MerkleProofError(f"a Merkle tree has an odd number of nodes, this dump has {size}")
        for i in range((size - 1) // 2):
            if tree[i] != _node_hash(tree[2 * i + 1], tree[2 * i + 2]):
                raise MerkleProofError(f"node {i} of the dump is not the hash of its children")
        first_leaf = (size - 1) // 2
        for value, index in values:
            if type(index) is not int or not first_leaf <= index < size:
                raise MerkleProofError(f"treeIndex {index!r} is not a leaf of the tree")
            if tree[index] != leaf_hash(value):
                raise MerkleProofError(f"leaf {index} does not hold the value 0x{value.hex()}")
        return cls(tree, values)


def _single(items: object) -> object:
    if not isinstance(items, list) or len(items) != 1:
        raise ValueError(f"a bytes32 leaf value is a one-element list, got {items!r}")
    return items[0]


def _unhex32(text: object) -> bytes:
    if not isinstance(text, str) or not text.startswith(("0x", "0X")) or len(text) != 66:
        raise ValueError(f"expected 0x and 64 hex digits, got {text!r}")
    return bytes.fromhex(text[2:])


def verify_proof(root: bytes, value: bytes, proof: Sequence[bytes]) -> bool:
    """Whether `proof` leads from `value`'s leaf to `root`, as OZ's ``MerkleProof.verify`` decides.

    A malformed input (a root, value or sibling that is not 32 bytes) cannot be a valid proof: it gives False
    rather than an exception, so a verifier of untrusted evidence needs no special case.
    """
    if not isinstance(root, bytes | bytearray) or len(root) != 32:
        return False
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        return False
    h = keccak256
    node = h(h(bytes(value)))
    for sibling in proof:
        if not isinstance(sibling, bytes | bytearray) or len(sibling) != 32:
            return False
        node = h(node + sibling) if node <= sibling else h(bytes(sibling) + node)
    return node == root


__all__ = ["DUMP_FORMAT", "KECCAK_BACKEND", "LEAF_ENCODING", "MerkleTree", "keccak256", "leaf_hash", "verify_proof"]
