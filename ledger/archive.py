"""The batch archive: what the chain does not hold, kept apart from the database so that the database can be rebuilt.

Only a batch's Merkle root goes on-chain. When the anchoring worker prepares a batch it first publishes the batch's
signed events as one EPCIS document, ``batches/<root>.jsonld``, named by its root (content-addressed: the file can
only be the batch whose root it names), and anchors the root with that file's URI (``anchorWithUri``).
``circular rebuild`` reads every anchor log, fetches each batch and re-inserts an event only once its hash, its
signature and the batch's root all check out (:func:`verify_batch`).

Master data the passport shows but no event carries (an actor's name, a product's name and texts) is published as
small documents signed by the account that owns them (``masterdata/<kind>-<key>.json``, EIP-191): the actor for its
own name, the GTIN's brand for its product. Rebuild keeps a document only when its signer is that owner.

The archive must live apart from the database (another disk, a bucket, IPFS...): it is what survives the database.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import requests
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from .epcis.corrections import is_declaration, record_id
from .epcis.events import epcis_document
from .epcis.hashing import event_hash_id, hash_digest
from .errors import InvalidSignature
from .merkle import MerkleTree
from .signing import EventDomain, recover_event_signer
from .versions import version_leaf

BATCH_FORMAT = "circular-ledger-batch/1"
MASTERDATA_FORMAT = "circular-ledger-masterdata/1"
FETCH_TIMEOUT_S = 10.0


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def _canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` so that a reader never sees half a file, and it is on disk before we go on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class ArchivedEvent:
    """One signed event of a batch, as archived and as recovered."""

    event: dict[str, Any]
    signer: str
    signature: bytes
    deadline: int
    recorded_at: str  # ISO 8601: the outbox's created_at, which EPCIS queries show as recordTime

    @property
    def event_id(self) -> str:
        return str(self.event["eventID"])


class SerialisedEvent(NamedTuple):
    """One signed event of a batch as it is archived: its JSON text as the outbox stored it, never decoded.

    A NamedTuple rather than a frozen dataclass: the worker makes 10,000 per batch, at a third of the cost."""

    event_json: str  # one JSON object, the event with its eventID
    event_id: str
    signer: str
    signature: bytes
    deadline: int
    recorded_at: str  # ISO 8601 in UTC: the outbox's created_at, which EPCIS queries show as recordTime


class SerialisedVersion(NamedTuple):
    """One document version of a batch (``ledger/versions.py``): archived as its exact canonical text, so that the
    archive alone gives back the bytes whose hash was anchored."""

    kind: str
    subject: str
    number: int
    document: str  # the envelope's JCS form


@dataclass
class BatchCheck:
    """The outcome of checking an archived batch against its anchored root."""

    events: list[ArchivedEvent] = field(default_factory=list)
    proofs: dict[str, list[bytes]] = field(default_factory=dict)  # event id → Merkle proof
    problems: list[str] = field(default_factory=list)
    versions: list[SerialisedVersion] = field(default_factory=list)
    version_proofs: dict[bytes, list[bytes]] = field(default_factory=dict)  # version leaf → Merkle proof

    @property
    def ok(self) -> bool:
        return not self.problems


class Archive:
    """A directory of batch documents and signed master data; `base_uri` is how others reach it (default file://)."""

    def __init__(self, directory: Path, base_uri: str | None = None) -> None:
        self.directory = directory
        self.base_uri = base_uri.rstrip("/") if base_uri else None

    # -- batches ------------------------------------------------------------------------------------------------
    def batch_path(self, root: bytes) -> Path:
        return self.directory / "batches" / f"{_hex(root)}.jsonld"

    def batch_uri(self, root: bytes) -> str:
        if self.base_uri:
            return f"{self.base_uri}/batches/{_hex(root)}.jsonld"
        return self.batch_path(root).resolve().as_uri()

    def publish_batch(
        self, root: bytes, events: Sequence[SerialisedEvent], versions: Sequence[SerialisedVersion] = ()
    ) -> str:
        """Write the batch document of `root` (idempotent: same root, same events and versions); return its URI."""
        if events:
            created = datetime.fromisoformat(events[0].recorded_at)
        else:
            created = datetime.fromisoformat(str(json.loads(versions[0].document)["createdAt"]).replace("Z", "+00:00"))
        head = epcis_document([], created=created)
        del head["epcisBody"]  # spliced in below, as the outbox stored each event
        batch: dict[str, Any] = {
            "format": BATCH_FORMAT,
            "root": _hex(root),
            "eventCount": len(events),
            "signatures": [
                {
                    "eventID": e.event_id,
                    "signer": e.signer,
                    "deadline": e.deadline,
                    "value": _hex(e.signature),
                    "recordTime": e.recorded_at,
                }
                for e in events
            ],
        }
        if versions:  # leaves of the same tree: the root is rebuilt from both
            batch["versions"] = [
                {"kind": v.kind, "subject": v.subject, "number": v.number, "document": v.document} for v in versions
            ]
        # The events go in as the JSON text the outbox holds: decoding 10,000 events only to encode them again was
        # a third of the anchoring worker's time (docs/performance.md). The result is the same JSON document.
        text = "".join(
            (
                json.dumps(head, ensure_ascii=False)[:-1],
                ', "epcisBody": {"eventList": [',
                ", ".join(e.event_json for e in events),
                ']}, "circ:batch": ',
                json.dumps(batch, ensure_ascii=False),
                "}",
            )
        )
        _write_atomically(self.batch_path(root), text)
        return self.batch_uri(root)

    def fetch_batch(self, root: bytes, uri: str = "") -> dict[str, Any] | None:
        """The batch document of `root`: from this archive by name first (wherever it was moved), else from `uri`."""
        local = self.batch_path(root)
        text: str | None = None
        if local.exists():
            text = local.read_text(encoding="utf-8")
        elif uri.startswith("file://"):
            path = Path(urllib.parse.unquote(urllib.parse.urlparse(uri).path))
            text = path.read_text(encoding="utf-8") if path.exists() else None
        elif uri.startswith(("https://", "http://")):
            try:
                response = requests.get(uri, timeout=FETCH_TIMEOUT_S)
            except requests.RequestException:
                return None
            text = response.text if response.ok else None
        if text is None:
            return None
        try:
            document = json.loads(text)
        except json.JSONDecodeError:
            return None
        return document if isinstance(document, dict) else None

    # -- master data --------------------------------------------------------------------------------------------
    def _masterdata_path(self, kind: str, key: str) -> Path:
        safe = "".join(c if c.isalnum() else "_" for c in key)
        return self.directory / "masterdata" / f"{kind}-{safe}.json"

    def publish_masterdata(self, kind: str, key: str, data: dict[str, Any], owner: LocalAccount) -> Path:
        """Publish the latest master data of (`kind`, `key`), signed by `owner`; replaces the previous version."""
        body = {"format": MASTERDATA_FORMAT, "kind": kind, "key": key, "data": data}
        signed = owner.sign_message(encode_defunct(text=_canonical(body)))
        document = {**body, "signer": owner.address, "signature": _hex(signed.signature)}
        path = self._masterdata_path(kind, key)
        _write_atomically(path, json.dumps(document, ensure_ascii=False, indent=1))
        return path

    def masterdata(self, kind: str) -> list[tuple[str, str, dict[str, Any]]]:
        """(key, signer, data) of every well-signed `kind` document. The caller checks that the signer owns the key."""
        found = []
        for path in sorted((self.directory / "masterdata").glob(f"{kind}-*.json")):
            document = _read_masterdata(path, kind)
            if document is not None:
                found.append(document)
        return found

    def masterdata_of(self, kind: str, key: str) -> tuple[str, str, dict[str, Any]] | None:
        """(key, signer, data) of the well-signed `kind` document published under `key`; None if there is none."""
        document = _read_masterdata(self._masterdata_path(kind, key), kind)
        return document if document is not None and document[0] == key else None


def _read_masterdata(path: Path, kind: str) -> tuple[str, str, dict[str, Any]] | None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        body = {k: document[k] for k in ("format", "kind", "key", "data")}
        signer = Account.recover_message(
            encode_defunct(text=_canonical(body)), signature=bytes.fromhex(document["signature"][2:])
        )
        data = dict(body["data"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent, unreadable or unsigned: not master data anyone vouches for
    if body["format"] != MASTERDATA_FORMAT or body["kind"] != kind or signer != document["signer"]:
        return None
    return str(body["key"]), signer, data


def verify_batch(document: dict[str, Any], root: bytes, event_count: int, domain: EventDomain) -> BatchCheck:
    """Check an archived batch against its anchored `root`: every event's hash and signature, and the root itself.

    Events that fail are left out (and named in ``problems``); when the root does not match, none is kept, since
    then the document is not the anchored batch."""
    check = BatchCheck()
    try:
        events = list(document["epcisBody"]["eventList"])
        signatures = list(document["circ:batch"]["signatures"])
        archived_versions = [
            SerialisedVersion(str(v["kind"]), str(v["subject"]), int(v["number"]), str(v["document"]))
            for v in document["circ:batch"].get("versions") or []
        ]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        check.problems.append(f"batch {_hex(root)}: malformed archive document ({exc})")
        return check
    if len(events) != len(signatures):
        check.problems.append(f"batch {_hex(root)}: {len(events)} events but {len(signatures)} signatures")
        return check
    digests: list[bytes] = []
    candidates: list[ArchivedEvent] = []
    for event, signature in zip(events, signatures, strict=True):
        try:
            event_id = record_id(event)  # an error declaration's record has an id of its own
            named = event_hash_id(event) if is_declaration(event) else event_id
            digest = hash_digest(event_id)
        except Exception as exc:  # a malformed event cannot be hashed: nothing of it can be trusted
            check.problems.append(f"batch {_hex(root)}: an event cannot be hashed ({exc})")
            return check
        digests.append(digest)
        if event.get("eventID", named) != named or signature.get("eventID") != event_id:
            check.problems.append(f"event {event.get('eventID')}: hashes to {event_id}")
            continue
        try:
            value = bytes.fromhex(str(signature["value"]).removeprefix("0x"))
            deadline = int(signature["deadline"])
            signer = recover_event_signer(domain, digest, deadline, value)
        except (KeyError, TypeError, ValueError, InvalidSignature) as exc:
            check.problems.append(f"event {event_id}: bad signature ({exc})")
            continue
        if signer.lower() != str(signature.get("signer", "")).lower():
            check.problems.append(f"event {event_id}: signed by {signer}, not {signature.get('signer')}")
            continue
        candidates.append(
            ArchivedEvent({**event, "eventID": event_id}, signer, value, deadline, str(signature.get("recordTime")))
        )
    leaves = [version_leaf(hashlib.sha256(v.document.encode()).digest()) for v in archived_versions]
    if not digests and not leaves:
        check.problems.append(f"batch {_hex(root)}: no events")
        return check
    tree = MerkleTree.of(digests + leaves)
    if tree.root != root or len(digests) + len(leaves) != event_count:
        check.problems.append(f"batch {_hex(root)}: the archived events do not make the anchored root")
        return check
    check.events = candidates
    check.proofs = {e.event_id: tree.proof(hash_digest(e.event_id)) for e in candidates}
    check.versions = archived_versions
    check.version_proofs = {leaf: tree.proof(leaf) for leaf in leaves}
    return check


__all__ = [
    "BATCH_FORMAT",
    "MASTERDATA_FORMAT",
    "Archive",
    "ArchivedEvent",
    "BatchCheck",
    "SerialisedEvent",
    "SerialisedVersion",
    "verify_batch",
]
