"""EIP-712 signatures of EPCIS events, exactly as ``EventAnchor`` defines and checks them.

An actor signs the 32-byte digest inside an event's CBV Event Hash ID together with a deadline, as the typed struct
``SignedEvent(bytes32 eventHash,uint256 deadline)`` in the domain ``{name: "CircularLedger", version: "1", chainId,
verifyingContract: <the EventAnchor address>}``. Binding the chain id and the contract address means a signature
replayed on another chain, or against another deployment, recovers a different (unauthorised) address; the deadline
bounds how long a signed event may be submitted.

Recovery refuses exactly what OpenZeppelin's ``ECDSA.recover`` refuses, in the same order, so that a signature this
module accepts is accepted on chain and vice versa: a length other than 65 bytes (``ECDSAInvalidSignatureLength``),
an ``s`` above n/2 (``ECDSAInvalidSignatureS``: the malleable twin of a valid signature), and anything ``ecrecover``
cannot recover, including ``v`` other than 27 or 28, ``r`` or ``s`` zero or not below n (``ECDSAInvalidSignature``).

Signing and recovery call coincurve (libsecp256k1) directly: eth-account's ``unsafe_sign_hash`` produces the same
deterministic (RFC 6979) signature but costs about ten times as much, and the digest is two short Keccak-256 hashes
over a cached domain separator rather than eth-account's generic typed-data encoder; the tests check all three against
eth-account and against the deployed contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import rlp
from coincurve import PrivateKey, PublicKey
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount

from .errors import ConfigurationError, InvalidIdentifier, InvalidSignature
from .merkle import keccak256

DOMAIN_NAME: Final = "CircularLedger"
DOMAIN_VERSION: Final = "1"
SIGNED_EVENT_TYPE: Final = "SignedEvent(bytes32 eventHash,uint256 deadline)"
#: The secp256k1 group order; OpenZeppelin's ECDSA accepts only ``s <= n // 2`` (EIP-2).
SECP256K1_N: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SECP256K1_HALF_N: Final = SECP256K1_N // 2

_DOMAIN_TYPE: Final = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
_DOMAIN_TYPEHASH: Final = keccak256(_DOMAIN_TYPE.encode())
_SIGNED_EVENT_TYPEHASH: Final = keccak256(SIGNED_EVENT_TYPE.encode())
_NAME_HASH: Final = keccak256(DOMAIN_NAME.encode())
_VERSION_HASH: Final = keccak256(DOMAIN_VERSION.encode())
_UINT256_LIMIT: Final = 1 << 256


def _checksum(address: bytes) -> str:
    """EIP-55 mixed-case hex of a 20-byte address (eth-utils' version costs about 25 µs, this one about 3)."""
    hexed = address.hex()
    digest = keccak256(hexed.encode()).hex()
    return "0x" + "".join(c.upper() if c > "9" and digest[i] >= "8" else c for i, c in enumerate(hexed))


def _address_bytes(address: str) -> bytes:
    """The 20 bytes of a 0x-hex address; a mixed-case one must carry a valid EIP-55 checksum (a mistyped address
    would otherwise silently make every signature of the domain unverifiable on chain)."""
    digits = address[2:] if isinstance(address, str) and address[:2] in ("0x", "0X") else ""
    try:
        raw = bytes.fromhex(digits) if len(digits) == 40 else b""
    except ValueError:
        raw = b""
    if not raw:
        raise InvalidIdentifier(f"an address is 0x and 40 hex digits, got {address!r}")
    if digits not in (digits.lower(), digits.upper()) and address != _checksum(raw):
        raise InvalidIdentifier(f"{address!r} fails its EIP-55 checksum")
    return raw


@dataclass(frozen=True)
class EventDomain:
    """The EIP-712 domain of one EventAnchor deployment: the chain and the contract a signature is valid for.

    ``verifying_contract`` is normalised to its checksum form (a mixed-case address with a bad checksum is refused,
    as a mistyped address would be), and the domain separator is computed once, here, not at every signature.
    """

    chain_id: int
    verifying_contract: str
    _separator: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if type(self.chain_id) is not int or not 0 <= self.chain_id < _UINT256_LIMIT:
            raise InvalidIdentifier(f"a chain id is a uint256, got {self.chain_id!r}")
        contract = _address_bytes(self.verifying_contract)
        object.__setattr__(self, "verifying_contract", _checksum(contract))
        chain_id = self.chain_id.to_bytes(32, "big")
        separator = keccak256(_DOMAIN_TYPEHASH + _NAME_HASH + _VERSION_HASH + chain_id + contract.rjust(32, b"\0"))
        object.__setattr__(self, "_separator", separator)

    @property
    def separator(self) -> bytes:
        """The EIP-712 domain separator, equal to the contract's ``_domainSeparatorV4()``."""
        return self._separator

    def typed_data(self, event_hash: bytes, deadline: int) -> dict[str, Any]:
        """The full EIP-712 typed data, for wallets (``eth_signTypedData_v4``) and other tools."""
        return {
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "SignedEvent": [{"name": "eventHash", "type": "bytes32"}, {"name": "deadline", "type": "uint256"}],
            },
            "primaryType": "SignedEvent",
            "domain": {
                "name": DOMAIN_NAME,
                "version": DOMAIN_VERSION,
                "chainId": self.chain_id,
                "verifyingContract": self.verifying_contract,
            },
            "message": {"eventHash": bytes(event_hash), "deadline": deadline},
        }


def event_digest(domain: EventDomain, event_hash: bytes, deadline: int) -> bytes:
    """The 32-byte digest that is signed: ``keccak256(0x1901 ‖ domainSeparator ‖ keccak256(typeHash ‖ eventHash ‖
    deadline))``, equal to the contract's ``eventDigest(eventHash, deadline)``.

    Raises InvalidIdentifier unless `event_hash` is 32 bytes, InvalidSignature unless `deadline` is a uint256.
    """
    if not isinstance(event_hash, bytes | bytearray) or len(event_hash) != 32:
        size = len(event_hash) if isinstance(event_hash, bytes | bytearray) else type(event_hash).__name__
        raise InvalidIdentifier(f"an event hash is 32 bytes, got {size}")
    if type(deadline) is not int or not 0 <= deadline < _UINT256_LIMIT:
        raise InvalidSignature(f"a deadline is a uint256 (seconds since the epoch), got {deadline!r}")
    struct_hash = keccak256(_SIGNED_EVENT_TYPEHASH + bytes(event_hash) + deadline.to_bytes(32, "big"))
    return keccak256(b"\x19\x01" + domain.separator + struct_hash)


def typed_data_digest(domain: EventDomain, event_hash: bytes, deadline: int) -> bytes:
    """The same digest through eth-account's generic EIP-712 encoder (slow; the tests cross-check with it)."""
    message = encode_typed_data(full_message=domain.typed_data(event_hash, deadline))
    return keccak256(b"\x19" + message.version + message.header + message.body)


class EventSigner:
    """A signing key held ready for many signatures.

    Loading a key derives its public key (most of the cost of a one-off :func:`sign_event`); an EventSigner does it
    once, for bulk signing. It keeps the secret only as long as the object lives.
    """

    __slots__ = ("_key", "address")

    def __init__(self, private_key: bytes | str | LocalAccount) -> None:
        self._key = _load_key(private_key)
        #: The signer's checksum address.
        self.address: str = _address_of(self._key)

    def __repr__(self) -> str:
        return f"EventSigner({self.address})"

    def sign(self, domain: EventDomain, event_hash: bytes, deadline: int) -> bytes:
        """The 65-byte signature ``r ‖ s ‖ v`` (v in {27, 28}, s low) of `event_hash` until `deadline`."""
        return _sign(self._key, event_digest(domain, event_hash, deadline))


class TransactionSigner:
    """Signs EIP-1559 (type 2) transactions with a key held ready: the hot path of pipelined sends.

    Written here rather than taken from eth-account because eth-account is too slow for a pipeline: its
    ``sign_transaction`` took about 440 µs per transaction on the 2-core machine (dictionary validation, typed-
    transaction objects, curried formatters), more than the node spends on it. The bytes are the same ones: the
    payload is RLP-encoded by ``rlp`` (eth-account's own encoder), hashed with Keccak-256 and signed by libsecp256k1
    (coincurve, RFC 6979, low s), and ``tests/ledger/test_signing.py`` checks raw transaction and hash against
    eth-account's for random fields. Everything else (legacy transactions, deployments) still goes through eth-account.
    """

    __slots__ = ("_key", "address")

    def __init__(self, private_key: bytes | str | LocalAccount) -> None:
        self._key = _load_key(private_key)
        #: The signer's checksum address.
        self.address: str = _address_of(self._key)

    def __repr__(self) -> str:
        return f"TransactionSigner({self.address})"

    def sign_dynamic_fee(
        self,
        *,
        chain_id: int,
        nonce: int,
        max_priority_fee_per_gas: int,
        max_fee_per_gas: int,
        gas: int,
        to: bytes,
        value: int,
        data: bytes,
    ) -> tuple[bytes, bytes]:
        """The raw signed transaction (``0x02 ‖ rlp([...])``, no access list) and its hash."""
        if len(to) != 20:
            raise InvalidIdentifier(f"a transaction's recipient is 20 bytes, got {len(to)}")
        fields = [chain_id, nonce, max_priority_fee_per_gas, max_fee_per_gas, gas, to, value, data, []]
        signature = self._key.sign_recoverable(keccak256(b"\x02" + rlp.encode(fields)), hasher=None)
        r, s, y_parity = signature[:32], signature[32:64], signature[64]
        raw = b"\x02" + rlp.encode([*fields, y_parity, int.from_bytes(r, "big"), int.from_bytes(s, "big")])
        return raw, keccak256(raw)


def _address_of(key: PrivateKey) -> str:
    return _checksum(keccak256(key.public_key.format(compressed=False)[1:])[12:])


def _load_key(private_key: bytes | str | LocalAccount | EventSigner) -> PrivateKey:
    if isinstance(private_key, EventSigner):
        return private_key._key
    secret: object = private_key
    if isinstance(private_key, LocalAccount):
        secret = bytes(private_key.key)
    elif isinstance(private_key, str):
        try:
            secret = bytes.fromhex(private_key.removeprefix("0x"))
        except ValueError:
            secret = None
    if isinstance(secret, bytes | bytearray) and len(secret) == 32 and 0 < int.from_bytes(secret, "big") < SECP256K1_N:
        return PrivateKey(bytes(secret))
    raise ConfigurationError("not a secp256k1 private key (32 bytes, or 64 hex digits, in 1 .. n-1)")


def _sign(key: PrivateKey, digest: bytes) -> bytes:
    # libsecp256k1 signs deterministically (RFC 6979) and always with a low s, as OpenZeppelin requires.
    signature = key.sign_recoverable(digest, hasher=None)
    return signature[:64] + bytes((signature[64] + 27,))


def sign_event(
    private_key: bytes | str | LocalAccount | EventSigner, domain: EventDomain, event_hash: bytes, deadline: int
) -> bytes:
    """The 65-byte signature (``r ‖ s ‖ v``, v in {27, 28}) of `event_hash` under `domain`, valid until `deadline`.

    Identical to eth-account's ``unsafe_sign_hash`` of :func:`event_digest`. Raises ConfigurationError for a key
    that is not a secp256k1 private key. For many signatures with one key, use an :class:`EventSigner`.
    """
    return _sign(_load_key(private_key), event_digest(domain, event_hash, deadline))


def recover_event_signer(domain: EventDomain, event_hash: bytes, deadline: int, signature: bytes) -> str:
    """The checksum address that signed `event_hash` under `domain` until `deadline`.

    Does not check the deadline against the clock (the caller knows its own notion of now). Raises InvalidSignature
    where the contract's ``recoverEventSigner`` reverts with an ECDSA error: a wrong length, a high s, or a signature
    that recovers no key. Any other well-formed signature recovers *some* address: compare it with the expected one
    (:func:`verify_event_signature`).
    """
    if not isinstance(signature, bytes | bytearray):
        raise InvalidSignature(f"a signature is 65 bytes, got {type(signature).__name__}")
    if len(signature) != 65:
        raise InvalidSignature(f"a signature is 65 bytes (r, s, v), got {len(signature)}")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if s > SECP256K1_HALF_N:
        raise InvalidSignature("malleable signature: s is above n/2 (OpenZeppelin ECDSAInvalidSignatureS)")
    if v not in (27, 28) or not 0 < r < SECP256K1_N or s == 0:
        raise InvalidSignature(f"invalid signature: v={v} (must be 27 or 28), r or s out of range")
    digest = event_digest(domain, event_hash, deadline)
    try:
        public = PublicKey.from_signature_and_message(
            bytes(signature[:64]) + bytes((v - 27,)), digest, hasher=None
        ).format(compressed=False)
    except ValueError:  # r is not the x of a curve point: ecrecover returns address(0)
        raise InvalidSignature("invalid signature: it recovers no public key") from None
    return _checksum(keccak256(public[1:])[12:])


def verify_event_signature(
    domain: EventDomain, event_hash: bytes, deadline: int, signature: bytes, expected_signer: str
) -> None:
    """Return if `expected_signer` signed `event_hash` under `domain` until `deadline`; raise InvalidSignature if not.

    A signature made for another chain or another EventAnchor recovers another address and so fails here.
    The deadline is not compared with the clock (see :func:`recover_event_signer`).
    """
    signer = recover_event_signer(domain, event_hash, deadline, signature)
    if signer.lower() != expected_signer.lower():
        raise InvalidSignature(
            f"event 0x{bytes(event_hash).hex()} is signed by {signer}, not by {expected_signer} "
            f"(or signed for another chain, contract or deadline)"
        )


__all__ = [
    "DOMAIN_NAME",
    "DOMAIN_VERSION",
    "SECP256K1_HALF_N",
    "SECP256K1_N",
    "SIGNED_EVENT_TYPE",
    "EventDomain",
    "EventSigner",
    "TransactionSigner",
    "event_digest",
    "recover_event_signer",
    "sign_event",
    "typed_data_digest",
    "verify_event_signature",
]
