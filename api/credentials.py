"""Brands as credential issuers: their signing keys, their ``did:web`` documents, and the revocation status lists of
the passport credentials they issue (``api/untp.py`` renders the credentials themselves).

**Keys.** Each brand signs with an Ed25519 key (JWS ``alg`` ``Ed25519``, RFC 9864's fully specified name for EdDSA
over Ed25519), generated when the brand is created (:func:`ensure_key`). Not its Ethereum key: npm ``jose`` 6 and
browsers' WebCrypto cannot verify secp256k1 (ES256K), so most verifiers could not check the credential. Ed25519
rather than ES256 because its signatures are deterministic: the same version signed with the same key is the same
bytes, from the resolver and from the command line. The private key is kept like the actor's Ethereum key: the
environment (``CIRCULAR_CREDENTIAL_KEY_<KEY_NAME>``, the private JWK as JSON) or a file in the keys directory
(``<key_name>.credential-<kid>.jwe``, mode 0600), the JWK encrypted under the keystore password (JWE,
PBES2-HS512+A256KW with A256GCM). The public part is in ``api_credential_keys``. A rotation (:func:`rotate_key`)
retires the signing key and makes a new one; retired keys stay in the DID document, for the credentials they signed.

**DID.** A brand is ``did:web:<resolver host>:brands:<actor id>``; its document, served at
``/brands/<actor id>/did.json``, lists every key as a ``JsonWebKey`` verification method (``publicKeyJwk``) and the
brand's on-chain account (``blockchainAccountId``, CAIP-10 ``eip155:<chain id>:<address>``).

**Status.** Every passport credential of an item carries one ``BitstringStatusListEntry``: the item's row in
``api_credential_status`` (allocated the first time a credential of the item is rendered), whose id is its
``statusListIndex`` in its brand's list. Revoking sets its bit; the list is served as a signed credential
(``/brands/<actor id>/status/revocation``).

**What survives the database.** Every allocation and every revocation is published to the batch archive before it
is committed: a master-data document ``credential-status-<index>`` (:func:`status_record`: the item, its index,
when it was revoked and why), signed by the brand's own account like its other master data. ``circular rebuild`` and
``circular sync`` replay them (:func:`restore_status`): each item gets back the index its credentials carry, a
revoked item's bit reads 1 again, and new indexes are handed out above every archived one, so no index is ever
given to two items. A database that finds the archive holding another item's record at the index it just
allocated (restored from a snapshot, not yet synced) replays the archive's records first (:class:`IndexTaken`).
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from joserfc import jwe, jws
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import OctKey, OKPKey
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledger.errors import ConfigurationError
from ledger.files import private_dir, write_private
from ledger.settings import Settings
from ledger.versions import iso_utc

from .models import Actor, ActorRole, CredentialKey, CredentialStatus, Item, utcnow

ALG = "Ed25519"
CURVE: Literal["Ed25519"] = "Ed25519"
VC_JWT = "application/vc+jwt"
VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"
KEY_ENCRYPTION: dict[str, Any] = {"alg": "PBES2-HS512+A256KW", "enc": "A256GCM", "p2c": 2**16}
KEY_ALGORITHMS = ["PBES2-HS512+A256KW", "A256GCM"]  # joserfc allows PBES2 only when named
# The W3C Bitstring Status List's minimum length (16 KiB of bits), so that a list says little about how many
# credentials a brand issued; a longer list grows by whole steps of this size.
MIN_LIST_BITS = 131_072
STATUS_PURPOSE = "revocation"
STATUS_KIND = "credential-status"  # the archive's master-data kind of an item's status (key: its index)

# Publishes a status row (allocated or revoked) durably, before its transaction commits; raising aborts it.
StatusPublisher = Callable[["CredentialStatus"], None]


class CredentialError(ValueError):
    """A credential cannot be made or changed: the message says why (a 4xx for the API, one line for the CLI)."""


# -- identifiers ------------------------------------------------------------------------------------------------------
def _root(resolver_base_url: str) -> str:
    return resolver_base_url.rstrip("/")


def brand_did(resolver_base_url: str, brand_id: int) -> str:
    """The brand's ``did:web``: the resolver's host (a port written ``%3A``), its path, then ``brands:<id>``."""
    parts = urlsplit(resolver_base_url)
    host = quote(parts.netloc, safe="")
    path = [quote(segment, safe="") for segment in parts.path.split("/") if segment]
    return ":".join(["did", "web", host, *path, "brands", str(brand_id)])


def did_document_url(resolver_base_url: str, brand_id: int) -> str:
    """Where ``did:web`` resolution finds the brand's document (the DID's path segments, then ``did.json``)."""
    return f"{_root(resolver_base_url)}/brands/{brand_id}/did.json"


def status_list_url(resolver_base_url: str, brand_id: int) -> str:
    return f"{_root(resolver_base_url)}/brands/{brand_id}/status/{STATUS_PURPOSE}"


# -- keys -------------------------------------------------------------------------------------------------------------
def _env_name(key_name: str) -> str:
    return f"CIRCULAR_CREDENTIAL_KEY_{key_name.upper().replace('-', '_')}"


def _key_file(settings: Settings, key_name: str, kid: str) -> Any:
    return settings.keys_dir / f"{key_name}.credential-{kid}.jwe"


def _password(settings: Settings) -> OctKey:
    if settings.keystore_password is None:
        raise ConfigurationError("CIRCULAR_KEYSTORE_PASSWORD is needed to keep or open credential keys")
    with warnings.catch_warnings():  # a password, not a key: PBES2 stretches it (p2c iterations), as scrypt does
        warnings.simplefilter("ignore", SecurityWarning)
        return OctKey.import_key(settings.keystore_password.get_secret_value().encode())


def _env_key(key_name: str) -> OKPKey | None:
    raw = os.environ.get(_env_name(key_name))
    if raw is None:
        return None
    try:
        key = OKPKey.import_key(json.loads(raw))
    except (ValueError, JoseError):
        raise ConfigurationError(f"{_env_name(key_name)} does not hold an Ed25519 private JWK") from None
    if key.as_dict(private=False).get("crv") != CURVE or not key.is_private:
        raise ConfigurationError(f"{_env_name(key_name)} does not hold an Ed25519 private JWK")
    return key


_KEYS: dict[str, OKPKey] = {}  # kid → private key, decrypted once per process (PBES2 is slow on purpose)
_KEYS_LOCK = threading.Lock()


def _register(session: Session, actor: Actor, key: OKPKey) -> CredentialKey:
    row = CredentialKey(
        actor_id=actor.id,
        kid=key.thumbprint(),
        alg=ALG,
        public_jwk=dict(key.as_dict(private=False)),
        created_at=utcnow(),
    )
    session.add(row)
    with _KEYS_LOCK:
        _KEYS[row.kid] = key
    return row


def _new_key(settings: Settings, session: Session, actor: Actor) -> CredentialKey:
    key = OKPKey.generate_key(CURVE)
    kid = key.thumbprint()
    encrypted = jwe.encrypt_compact(
        dict(KEY_ENCRYPTION), json.dumps(key.as_dict(private=True)).encode(), _password(settings),
        algorithms=KEY_ALGORITHMS,
    )
    private_dir(settings.keys_dir)
    path = _key_file(settings, actor.key_name, kid)
    if path.exists():
        raise ConfigurationError(f"a credential key {path} exists already: it is never overwritten")
    write_private(path, encrypted)
    return _register(session, actor, key)


def keys_of(session: Session, actor_id: int) -> list[CredentialKey]:
    """The brand's credential keys, oldest first."""
    return list(
        session.scalars(select(CredentialKey).where(CredentialKey.actor_id == actor_id).order_by(CredentialKey.id))
    )


def signing_key_row(session: Session, actor_id: int) -> CredentialKey | None:
    """The key the brand signs with now: its newest key not retired."""
    live = [row for row in keys_of(session, actor_id) if row.retired_at is None]
    return live[-1] if live else None


def can_keep_keys(settings: Settings, key_name: str) -> bool:
    """Whether a brand's credential key can be had: configured in the environment, or kept under the keystore
    password (without either, the brand gets one at its first ``circular credentials rotate-key``)."""
    return settings.keystore_password is not None or _env_name(key_name) in os.environ


def ensure_key(settings: Settings, session: Session, actor: Actor) -> CredentialKey:
    """The brand's signing key, made if it has none (not committed): the key configured in the environment when
    there is one, else a new key in a new keystore file."""
    if actor.role != ActorRole.BRAND.value:
        raise CredentialError(f"only brands issue passport credentials, not a {actor.role}")
    found = signing_key_row(session, actor.id)
    if found is not None:
        return found
    configured = _env_key(actor.key_name)
    if configured is not None:
        existing = session.scalar(select(CredentialKey).where(CredentialKey.kid == configured.thumbprint()))
        if existing is not None:
            raise ConfigurationError(f"{_env_name(actor.key_name)} holds another brand's credential key")
        return _register(session, actor, configured)
    return _new_key(settings, session, actor)


def rotate_key(settings: Settings, session: Session, actor: Actor) -> CredentialKey:
    """Retire the brand's signing key and make a new one (not committed). The retired key stays in the brand's DID
    document: the credentials it signed still verify."""
    if actor.role != ActorRole.BRAND.value:
        raise CredentialError(f"only brands issue passport credentials, not a {actor.role}")
    current = signing_key_row(session, actor.id)
    if current is not None:
        current.retired_at = utcnow()
        session.flush()
    return _new_key(settings, session, actor)


def private_key(settings: Settings, actor: Actor, row: CredentialKey) -> OKPKey:
    """The private key of `row`: from the environment or its keystore file, decrypted once per process."""
    with _KEYS_LOCK:
        cached = _KEYS.get(row.kid)
    if cached is not None:
        return cached
    key = _env_key(actor.key_name)
    if key is None or key.thumbprint() != row.kid:
        path = _key_file(settings, actor.key_name, row.kid)
        if not path.exists():
            raise ConfigurationError(f"no credential key {row.kid} for {actor.name!r}: set {_env_name(actor.key_name)}"
                                     f" or restore {path}")
        try:
            plain = jwe.decrypt_compact(path.read_text().strip(), _password(settings), algorithms=KEY_ALGORITHMS)
        except (JoseError, ValueError):
            raise ConfigurationError(f"cannot decrypt {path}: wrong password or corrupt file") from None
        key = OKPKey.import_key(json.loads(plain.plaintext or b"{}"))
    if key.thumbprint() != row.kid:
        raise ConfigurationError(f"the credential key of {actor.name!r} is not key {row.kid}")
    with _KEYS_LOCK:
        _KEYS[row.kid] = key
    return key


def restore_keys(settings: Settings, session: Session) -> tuple[int, list[str]]:
    """After ``circular rebuild``: the public keys of brands' credential keys back in ``api_credential_keys``, from
    their keystore files (decrypted under the keystore password; the newest file signs, the older ones are retired
    and stay in the DID documents) or the environment. Returns how many keys, and the brands left without one."""
    restored, problems = 0, []
    brands = session.scalars(select(Actor).where(Actor.role == ActorRole.BRAND.value).order_by(Actor.id))
    for actor in brands:
        if keys_of(session, actor.id) or not actor.key_name:
            continue
        files = sorted(
            settings.keys_dir.glob(f"{actor.key_name}.credential-*.jwe"), key=lambda path: path.stat().st_mtime
        )
        found: list[OKPKey] = []
        for path in files:
            try:
                plain = jwe.decrypt_compact(path.read_text().strip(), _password(settings), algorithms=KEY_ALGORITHMS)
                found.append(OKPKey.import_key(json.loads(plain.plaintext or b"{}")))
            except (JoseError, ValueError, ConfigurationError) as exc:
                problems.append(f"brand {actor.name}: credential key {path.name} not restored ({exc})")
        configured = _env_key(actor.key_name)
        if configured is not None and configured.thumbprint() not in {key.thumbprint() for key in found}:
            found.append(configured)
        if not found:
            problems.append(f"brand {actor.name}: no credential key found (keystore files or the environment)")
            continue
        for number, key in enumerate(found):
            row = _register(session, actor, key)
            if number < len(found) - 1:
                row.retired_at = utcnow()
            restored += 1
    session.flush()
    return restored, problems


# -- signing ----------------------------------------------------------------------------------------------------------
def compact_json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def sign(settings: Settings, session: Session, actor: Actor, credential: Mapping[str, Any]) -> str:
    """`credential` secured the VC-JOSE-COSE way: a compact JWS whose payload is the credential itself, typed
    ``vc+jwt``, its ``kid`` the verification method of the brand's DID document that holds the key."""
    row = signing_key_row(session, actor.id)
    if row is None:
        raise CredentialError(f"brand {actor.name!r} has no credential key (`circular credentials rotate-key`)")
    key = private_key(settings, actor, row)
    did = brand_did(settings.resolver_base_url, actor.id)
    header = {"alg": ALG, "kid": f"{did}#{row.kid}", "typ": "vc+jwt", "cty": "vc"}
    return jws.serialize_compact(header, compact_json(credential), key, algorithms=[ALG])


# -- DID documents ----------------------------------------------------------------------------------------------------
def did_document(settings: Settings, session: Session, actor: Actor, chain_id: int) -> dict[str, Any]:
    """The brand's DID document: every credential key it has had (newest first), and its on-chain account."""
    did = brand_did(settings.resolver_base_url, actor.id)
    keys = list(reversed(keys_of(session, actor.id)))
    methods: list[dict[str, Any]] = [
        {"id": f"{did}#{row.kid}", "type": "JsonWebKey", "controller": did, "publicKeyJwk": dict(row.public_jwk)}
        for row in keys
    ]
    account = f"{did}#chain-account"
    methods.append(
        {
            "id": account,
            "type": "EcdsaSecp256k1RecoveryMethod2020",
            "controller": did,
            "blockchainAccountId": f"eip155:{chain_id}:{actor.address}",
        }
    )
    signing = [f"{did}#{row.kid}" for row in keys]
    return {
        "@context": [
            "https://www.w3.org/ns/did/v1",
            "https://www.w3.org/ns/cid/v1",
            "https://w3id.org/security/suites/secp256k1recovery-2020/v2",
        ],
        "id": did,
        "alsoKnownAs": [f"{_root(settings.resolver_base_url)}/brands/{actor.id}"],
        "verificationMethod": methods,
        "assertionMethod": signing,
        "authentication": [account],
    }


# -- status -----------------------------------------------------------------------------------------------------------
def status_record(row: CredentialStatus) -> dict[str, Any]:
    """What the archive keeps of an item's status: its index, the item, the brand, and its revocation if any."""
    return {
        "index": int(row.id),
        "subject": row.subject,
        "brandId": int(row.brand_id),
        "revokedAt": iso_utc(row.revoked_at) if row.revoked_at is not None else None,
        "reason": row.reason,
    }


class IndexTaken(Exception):
    """The archive holds another item's status record at the index just allocated: the database is behind the
    archive (a snapshot restored and not yet caught up by ``circular sync``). `catch_up` replays the archive's
    records into a session."""

    def __init__(self, index: int, catch_up: Callable[[Session], StatusRestore]) -> None:
        super().__init__(f"status index {index} is another item's in the archive")
        self.index = index
        self.catch_up = catch_up


def archive_publisher(archive: Any, account: Callable[[], Any], resolver_base_url: str) -> StatusPublisher | None:
    """A :data:`StatusPublisher` writing to `archive` (``ledger.archive.Archive``), signed by the brand's own account
    (`account` gives it, when first needed); None when archiving is off. It never overwrites another item's record:
    it raises :class:`IndexTaken` instead."""
    if archive is None:
        return None

    def catch_up(session: Session) -> StatusRestore:
        return restore_status(session, resolver_base_url, archive.masterdata(STATUS_KIND))

    def publish(row: CredentialStatus) -> None:
        held = archive.masterdata_of(STATUS_KIND, str(row.id))
        if held is not None and held[2].get("subject") != row.subject:
            raise IndexTaken(int(row.id), catch_up)
        archive.publish_masterdata(STATUS_KIND, str(row.id), status_record(row), account())

    return publish


def advance_status_sequence(session: Session, floor: int) -> None:
    """PostgreSQL's sequence of status indexes past the highest row and `floor` (the highest archived index). SQLite
    hands out the highest id plus one by itself."""
    if session.get_bind().dialect.name != "postgresql":
        return
    session.execute(
        text(
            "SELECT setval(pg_get_serial_sequence('api_credential_status', 'id'), "
            "GREATEST((SELECT max(id) FROM api_credential_status), :floor))"
        ),
        {"floor": max(int(floor), 1)},
    )


def status_index(session: Session, subject: str, brand_id: int, publish: StatusPublisher | None = None) -> int:
    """The item's index in its brand's status list, allocated on first use (flushed, not committed; published with
    `publish` before it is returned)."""
    found = session.scalar(select(CredentialStatus.id).where(CredentialStatus.subject == subject))
    if found is not None:
        return int(found)
    taken: IndexTaken | None = None
    for _ in range(3):
        try:
            with session.begin_nested():
                row = CredentialStatus(subject=subject, brand_id=brand_id)
                session.add(row)
                session.flush()
                if publish is not None:
                    publish(row)
            return int(row.id)
        except IntegrityError:  # another request allocated it at the same moment
            again = session.scalar(select(CredentialStatus.id).where(CredentialStatus.subject == subject))
            if again is None:
                raise
            return int(again)
        except IndexTaken as exc:  # behind the archive: catch up with its records, then allocate above them
            if taken is not None and taken.index == exc.index:
                break
            taken = exc
            done = exc.catch_up(session)
            advance_status_sequence(session, done.highest)
            again = session.scalar(select(CredentialStatus.id).where(CredentialStatus.subject == subject))
            if again is not None:
                return int(again)
    raise CredentialError(
        f"status index {taken.index if taken else '?'} is held in the archive by a record this database cannot "
        "take (`circular sync` reports why): no index is handed out twice"
    )


def status_entry(settings: Settings, brand_id: int, index: int) -> dict[str, Any]:
    """The credential's ``credentialStatus``. UNTP 0.7.0's schema types ``statusListIndex`` as an integer (the
    W3C recommendation writes it as a string of digits); this follows the schema the credential is checked against."""
    url = status_list_url(settings.resolver_base_url, brand_id)
    return {
        "id": f"{url}#{index}",
        "type": "BitstringStatusListEntry",
        "statusPurpose": STATUS_PURPOSE,
        "statusListIndex": index,
        "statusListCredential": url,
    }


def encode_list(revoked: Sequence[int], length: int) -> str:
    """A bitstring of `length` bits, those at `revoked` set, as ``encodedList``: multibase base64url (prefix ``u``,
    no padding) of its GZIP form, bit 0 the first byte's most significant bit.

    Written here rather than taken from a package: no maintained Python package does the W3C list alone (the ones
    on PyPI are whole credential frameworks, or the IETF Token Status List, a different format), and the format is
    these few lines. ``mtime=0`` keeps the GZIP header, and so the list, the same for the same bits."""
    bits = bytearray((length + 7) // 8)
    for index in revoked:
        if not 0 <= index < length:
            raise ValueError(f"status index {index} is outside a list of {length}")
        bits[index // 8] |= 0x80 >> (index % 8)
    packed = gzip.compress(bytes(bits), compresslevel=9, mtime=0)
    return "u" + base64.urlsafe_b64encode(packed).decode().rstrip("=")


def decode_list(encoded: str) -> bytes:
    """The bitstring of an ``encodedList`` (what a verifier does)."""
    if not encoded.startswith("u"):
        raise ValueError("an encodedList is multibase base64url: it starts with 'u'")
    raw = encoded[1:]
    return gzip.decompress(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))


def bit(bitstring: bytes, index: int) -> int:
    return (bitstring[index // 8] >> (7 - index % 8)) & 1


@dataclass(frozen=True)
class Revocation:
    subject: str
    index: int
    revoked_at: datetime
    already: bool


def revoke(
    session: Session,
    actor: Actor,
    subject: str,
    brand_id: int,
    reason: str | None,
    publish: StatusPublisher | None = None,
) -> Revocation:
    """Revoke the passport credentials of item `subject` (of brand `brand_id`): its brand only. Not committed, but
    published with `publish` first (the archive's record is what a rebuild brings back); revoking twice keeps the
    first revocation."""
    if actor.role != ActorRole.BRAND.value or actor.id != brand_id:
        raise PermissionError("only the item's brand revokes its passport credentials")
    index = status_index(session, subject, brand_id, publish)
    row = session.get(CredentialStatus, index)
    assert row is not None
    if row.revoked_at is not None:
        return Revocation(subject, index, row.revoked_at, True)
    row.revoked_at = utcnow()
    row.revoked_by = actor.id
    row.reason = reason
    session.flush()
    if publish is not None:
        try:
            publish(row)
        except IndexTaken:
            raise CredentialError(
                f"status index {index} is another item's in the archive: this database is behind it (`circular sync`)"
            ) from None
    return Revocation(subject, index, row.revoked_at, False)


@dataclass
class StatusRestore:
    """What :func:`restore_status` brought back."""

    indexes: int = 0  # items given back the index their credentials carry
    revocations: int = 0  # items whose bit reads 1 again
    highest: int = 0  # the highest index the archive holds: new ones are handed out above it
    problems: list[str] = field(default_factory=list)


def _archived_moment(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def restore_status(
    session: Session, resolver_base_url: str, documents: Iterable[tuple[str, str, dict[str, Any]]]
) -> StatusRestore:
    """Replay the archive's status records (``archive.masterdata(STATUS_KIND)``: key, signer, data) into
    ``api_credential_status`` after the items are back: a record counts only when signed by the account of the item's
    brand (as the chain registered the item) and filed under its own index. An item with no row gets its archived
    index back; a revoked record revokes the item's row. Where two records name one item, the higher index (the later
    allocation) is the one its credentials carry. Not committed."""
    from .uris import item_uri

    report = StatusRestore()
    brands = {actor.id: actor for actor in session.scalars(select(Actor))}
    brand_of: dict[str, Actor] = {}
    for gtin, serial, brand_id in session.execute(select(Item.gtin, Item.serial, Item.brand_id)):
        if brand_id in brands:
            brand_of[item_uri(resolver_base_url, gtin, serial)] = brands[brand_id]
    by_subject = {row.subject: row for row in session.scalars(select(CredentialStatus))}
    by_index = {row.id: row for row in by_subject.values()}
    records = []
    for key, signer, data in documents:
        index, subject = data.get("index"), data.get("subject")
        if not isinstance(index, int) or isinstance(index, bool) or index < 1 or key != str(index):
            report.problems.append(f"credential status {key}: not a status record filed under its index, ignored")
            continue
        if not isinstance(subject, str) or subject not in brand_of:
            report.problems.append(f"credential status {index}: {subject!r} is no registered item, ignored")
            continue
        brand = brand_of[subject]
        if brand.address.lower() != signer.lower():
            report.problems.append(f"credential status {index}: not signed by the brand of {subject}, ignored")
            continue
        records.append((index, subject, brand, data))
        report.highest = max(report.highest, index)
    for index, subject, brand, data in sorted(records, key=lambda record: -record[0]):
        row = by_subject.get(subject)
        if row is None:
            other = by_index.get(index)
            if other is not None:
                report.problems.append(
                    f"credential status {index}: the archive gives it to {subject}, the database to {other.subject}"
                )
                continue
            row = CredentialStatus(id=index, subject=subject, brand_id=brand.id)
            session.add(row)
            by_subject[subject], by_index[index] = row, row
            report.indexes += 1
        elif row.id != index:
            if row.id < index:
                report.problems.append(
                    f"credential status {index}: {subject} holds index {row.id} in the database, kept"
                )
            continue  # a lower index of an item that has a higher one: an allocation whose commit failed
        revoked_at = _archived_moment(data.get("revokedAt"))
        if revoked_at is not None and row.revoked_at is None:
            reason = data.get("reason")
            row.revoked_at, row.revoked_by = revoked_at, brand.id
            row.reason = reason if isinstance(reason, str) else None
            report.revocations += 1
    session.flush()
    return report


def status_list_credential(settings: Settings, session: Session, actor: Actor) -> dict[str, Any]:
    """The brand's revocation list as a ``BitstringStatusListCredential`` (unsigned: :func:`sign` secures it). Valid
    from its latest change (the brand's first key when nothing was revoked), so the same list is the same bytes."""
    url = status_list_url(settings.resolver_base_url, actor.id)
    revoked = [
        int(i)
        for i in session.scalars(
            select(CredentialStatus.id).where(
                CredentialStatus.brand_id == actor.id, CredentialStatus.revoked_at.is_not(None)
            )
        )
    ]
    highest = session.scalar(select(func.max(CredentialStatus.id)).where(CredentialStatus.brand_id == actor.id))
    length = max(MIN_LIST_BITS, -(-(int(highest or 0) + 1) // MIN_LIST_BITS) * MIN_LIST_BITS)
    changed = session.scalar(
        select(func.max(CredentialStatus.revoked_at)).where(CredentialStatus.brand_id == actor.id)
    )
    if changed is None:
        changed = session.scalar(select(func.min(CredentialKey.created_at)).where(CredentialKey.actor_id == actor.id))
    return {
        "@context": [VC_CONTEXT],
        "id": url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": {"id": brand_did(settings.resolver_base_url, actor.id), "name": actor.name},
        "validFrom": iso_utc(changed or actor.created_at),
        "credentialSubject": {
            "id": f"{url}#list",
            "type": "BitstringStatusList",
            "statusPurpose": STATUS_PURPOSE,
            "encodedList": encode_list(revoked, length),
        },
    }


@cache
def countries() -> dict[str, str]:
    """ISO 3166-1 alpha-2 code → English short name (countryinfo's offline data)."""
    from countryinfo import all_countries

    found: dict[str, str] = {}
    for country in all_countries():
        try:
            code, name = country.iso(2), country.name()
        except Exception:  # an entry without a code
            continue
        if isinstance(code, str) and len(code) == 2 and isinstance(name, str):
            found[code.upper()] = name[:1].upper() + name[1:]
    return found


__all__ = [
    "ALG",
    "MIN_LIST_BITS",
    "STATUS_KIND",
    "VC_CONTEXT",
    "VC_JWT",
    "CredentialError",
    "IndexTaken",
    "Revocation",
    "StatusPublisher",
    "StatusRestore",
    "advance_status_sequence",
    "archive_publisher",
    "bit",
    "brand_did",
    "can_keep_keys",
    "compact_json",
    "countries",
    "decode_list",
    "did_document",
    "did_document_url",
    "encode_list",
    "ensure_key",
    "keys_of",
    "private_key",
    "restore_keys",
    "restore_status",
    "revoke",
    "rotate_key",
    "sign",
    "signing_key_row",
    "status_entry",
    "status_index",
    "status_list_credential",
    "status_list_url",
    "status_record",
]
