"""Versioned documents anchored beside the events: what a subject (an item's passport) said, when, and why.

A subject has versions 1, 2, 3…; each is a JSON document, the *envelope*::

    {"kind": "passport", "subject": <URI>, "number": n, "createdAt": <ISO 8601, UTC>, "reason": <why>,
     "previous": <SHA-256 of version n-1, hex> | null, "content": {...}}

stored as its JCS canonical form (RFC 8785, the ``rfc8785`` package), and the version's hash is the SHA-256 of those
bytes. ``previous`` chains the versions: a version cannot be dropped or replaced without breaking the next one.

The hash is anchored in the same Merkle batches as the events, as the leaf value
``keccak256(VERSION_LEAF_TAG ‖ sha256)`` (``VERSION_LEAF_TAG`` = ``keccak256("circular-ledger/document-version/1")``).
An event's leaf value is the SHA-256 of its EPCIS pre-hash string, so a version leaf can never be taken for an event
(it would take a preimage of SHA-256 under Keccak), and a verifier who holds the document recomputes every step with
public tools: JCS, SHA-256, Keccak-256, OpenZeppelin's Merkle proof (``tests/ledger/oz_versions.mjs`` does, in node).

Rows move ``pending → batched → anchored`` with the events they are batched with (``ledger/anchoring.py``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, cast

import rfc8785
from sqlalchemy import (
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    func,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from .db import Base
from .errors import LedgerError
from .merkle import keccak256
from .outbox import Batch, EventStatus

VERSION_LEAF_TAG = keccak256(b"circular-ledger/document-version/1")
ENVELOPE_KEYS = ("kind", "subject", "number", "createdAt", "reason", "previous", "content")


class VersionError(LedgerError, ValueError):
    """A version document that cannot be canonicalised (a float that is not finite, an integer beyond 2^53...)."""


class DocumentVersion(Base):
    """One version of a subject's document, with its anchoring (status, batch, Merkle proof) like an event's."""

    __tablename__ = "ledger_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(512))
    number: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(String(64))
    document: Mapped[str] = mapped_column(Text)  # the envelope's JCS form (UTF-8 text): the bytes that are hashed
    sha256: Mapped[bytes] = mapped_column(LargeBinary(32))
    # Of the content alone: a content that did not change makes no version.
    content_sha256: Mapped[bytes] = mapped_column(LargeBinary(32))
    leaf: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    status: Mapped[EventStatus] = mapped_column(Enum(EventStatus, native_enum=False, length=16), index=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_batches.id"), index=True)
    proof: Mapped[bytes | None] = mapped_column(LargeBinary)  # siblings concatenated, as the outbox stores them

    __table_args__ = (
        # The read of a passport: the subject's newest version (or version n), one index seek.
        Index("ux_ledger_versions_subject", "kind", "subject", "number", unique=True),
    )


@dataclass(frozen=True)
class Canonical:
    """A JSON value already in its JCS form: a part that many documents share (the materials and provenance of a
    run's items), canonicalised once and placed as it is in each document (see :func:`canonical`)."""

    raw: bytes

    @classmethod
    def of(cls, value: Any) -> Canonical:
        return cls(canonical(value))


def canonical(value: Any) -> bytes:
    """The JCS (RFC 8785) form of `value`, by ``rfc8785``. VersionError when JSON cannot represent it exactly.

    An object whose member values include :class:`Canonical` parts is written as JCS writes any object: its members
    sorted by their keys' UTF-16 code units, each as its key's JCS form, a colon and the value's JCS form (rfc8785's,
    or the part's own). ``tests/ledger/test_versions.py`` holds the result against ``rfc8785.dumps`` of the whole."""
    if isinstance(value, Mapping) and any(isinstance(member, Canonical) for member in value.values()):
        members = sorted(value.items(), key=lambda kv: str(kv[0]).encode("utf-16be"))
        return b"{" + b",".join(
            canonical(str(key)) + b":" + (member.raw if isinstance(member, Canonical) else canonical(member))
            for key, member in members
        ) + b"}"
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as exc:
        raise VersionError(f"not canonicalisable: {exc}") from None


def envelope_bytes(meta: Mapping[str, Any], content_canonical: bytes) -> bytes:
    """The JCS form of the envelope ``{**meta, "content": content}`` from the content's own JCS form.

    JCS writes an object as its members sorted by key, each value in its own canonical form whatever surrounds it,
    and ``"content"`` sorts before every other envelope key: so the envelope is ``{"content":`` + the content's
    bytes + ``,`` + the rest of the metadata's canonical form. The content is canonicalised once, for its own hash
    and for the envelope (tested against ``rfc8785.dumps`` of the whole envelope)."""
    if set(meta) != set(ENVELOPE_KEYS) - {"content"}:
        raise VersionError(f"an envelope has the keys {ENVELOPE_KEYS}, not {sorted(meta)}")
    rest = canonical(dict(meta))
    return b'{"content":' + content_canonical + b"," + rest[1:]


def version_leaf(sha256: bytes) -> bytes:
    """The Merkle leaf value under which a version's hash is anchored (domain-separated from event digests)."""
    if len(sha256) != 32:
        raise VersionError("a version hash is 32 bytes")
    return keccak256(VERSION_LEAF_TAG + sha256)


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds, as the envelope's ``createdAt`` is written."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class NewVersion:
    """A version to add: the subject, its content, and why it was made."""

    subject: str
    content: Mapping[str, Any]
    reason: str


@dataclass(frozen=True)
class Added:
    subject: str
    number: int
    sha256: bytes


@dataclass(frozen=True)
class Head:
    """The newest version of a subject, as needed to add the next one."""

    number: int
    sha256: bytes
    content_sha256: bytes


def heads(session: Session, kind: str, subjects: Iterable[str], chunk: int = 500) -> dict[str, Head]:
    """The newest version of each of `subjects` that has one."""
    wanted = sorted(set(subjects))
    found: dict[str, Head] = {}
    table = cast(Table, DocumentVersion.__table__)
    if len(wanted) == 1:  # one write's item: the unique index's last entry, no grouping
        last = (
            select(table.c.number, table.c.sha256, table.c.content_sha256)
            .where(table.c.kind == kind, table.c.subject == wanted[0])
            .order_by(table.c.number.desc())
            .limit(1)
        )
        row = session.connection().execute(last).first()
        if row is not None:
            found[wanted[0]] = Head(int(row[0]), bytes(row[1]), bytes(row[2]))
        return found
    for start in range(0, len(wanted), chunk):
        part = wanted[start : start + chunk]
        newest = (
            select(table.c.subject, func.max(table.c.number).label("number"))
            .where(table.c.kind == kind, table.c.subject.in_(part))
            .group_by(table.c.subject)
            .subquery()
        )
        query = select(table.c.subject, table.c.number, table.c.sha256, table.c.content_sha256).join(
            newest, (table.c.subject == newest.c.subject) & (table.c.number == newest.c.number)
        ).where(table.c.kind == kind)
        for subject, number, sha, content_sha in session.connection().execute(query):
            found[subject] = Head(int(number), bytes(sha), bytes(content_sha))
    return found


def add_versions(
    session: Session, kind: str, versions: Sequence[NewVersion], at: datetime | None = None
) -> list[Added]:
    """Add the next version of each subject whose content differs from its newest version's, in the session's
    transaction (not committed: the caller's write and its versions commit together). Returns what was added.

    Two writers adding a version of one subject at once cannot both succeed: the second one's insert breaks the
    unique (kind, subject, number) index and its transaction rolls back, as any conflicting write would."""
    if not versions:
        return []
    moment = at or datetime.now(UTC)
    created = iso_utc(moment)
    latest = heads(session, kind, (v.subject for v in versions))
    rows: list[dict[str, Any]] = []
    added: list[Added] = []
    for version in versions:
        content = canonical(version.content)
        content_sha = hashlib.sha256(content).digest()
        head = latest.get(version.subject)
        if head is not None and head.content_sha256 == content_sha:
            continue  # nothing the document shows has changed
        number = head.number + 1 if head is not None else 1
        meta = {
            "kind": kind,
            "subject": version.subject,
            "number": number,
            "createdAt": created,
            "reason": version.reason,
            "previous": head.sha256.hex() if head is not None else None,
        }
        document = envelope_bytes(meta, content)
        sha = hashlib.sha256(document).digest()
        rows.append(
            {
                "kind": kind,
                "subject": version.subject,
                "number": number,
                "created_at": moment,
                "reason": version.reason,
                "document": document.decode(),
                "sha256": sha,
                "content_sha256": content_sha,
                "leaf": version_leaf(sha),
                "status": EventStatus.PENDING,
            }
        )
        latest[version.subject] = Head(number, sha, content_sha)  # a subject twice in one call: a chain of two
        added.append(Added(version.subject, number, sha))
    if rows:
        session.execute(cast(Table, DocumentVersion.__table__).insert(), rows)
    return added


@dataclass(frozen=True)
class StoredVersion:
    """A version as read back, with its anchoring."""

    kind: str
    subject: str
    number: int
    created_at: datetime
    reason: str
    document: str
    sha256: bytes
    leaf: bytes
    status: str
    proof: bytes | None
    root: bytes | None
    tx_hash: bytes | None
    block_number: int | None


def _stored(row: Any) -> StoredVersion:
    return StoredVersion(
        row.kind,
        row.subject,
        int(row.number),
        row.created_at,
        row.reason,
        row.document,
        bytes(row.sha256),
        bytes(row.leaf),
        str(row.status.value if hasattr(row.status, "value") else row.status),
        bytes(row.proof) if row.proof is not None else None,
        bytes(row.root) if row.root is not None else None,
        bytes(row.tx_hash) if row.tx_hash is not None else None,
        int(row.block_number) if row.block_number is not None else None,
    )


def _with_anchor() -> Any:
    table = cast(Table, DocumentVersion.__table__)
    batches = cast(Table, Batch.__table__)
    return select(
        table.c.kind,
        table.c.subject,
        table.c.number,
        table.c.created_at,
        table.c.reason,
        table.c.document,
        table.c.sha256,
        table.c.leaf,
        table.c.status,
        table.c.proof,
        batches.c.root,
        batches.c.tx_hash,
        batches.c.block_number,
    ).outerjoin(batches, (batches.c.id == table.c.batch_id) & (table.c.status == EventStatus.ANCHORED.value))


# -- anchoring (used by ledger/anchoring.py) ------------------------------------------------------------------------
class PendingVersion(NamedTuple):
    """A version waiting for a batch, with what the archive keeps of it."""

    id: int
    leaf: bytes
    created_at: datetime
    kind: str
    subject: str
    number: int
    document: str


def pending_for_batch(session: Session, limit: int) -> list[PendingVersion]:
    """Up to `limit` pending versions, oldest first (on PostgreSQL locked, skipping rows another worker holds)."""
    if limit <= 0:
        return []
    table = cast(Table, DocumentVersion.__table__)
    query = (
        select(
            table.c.id, table.c.leaf, table.c.created_at, table.c.kind, table.c.subject, table.c.number,
            table.c.document,
        )
        .where(table.c.status == EventStatus.PENDING.value)
        .order_by(table.c.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return [PendingVersion(*row) for row in session.connection().execute(query)]


def mark_batched(session: Session, pending: Sequence[PendingVersion], batch_id: int) -> None:
    """Assign `pending` to batch `batch_id`; refuses (RuntimeError) when any of them is no longer pending."""
    if not pending:
        return
    table = cast(Table, DocumentVersion.__table__)
    marked = table.update().values(status=EventStatus.BATCHED.value, batch_id=batch_id)
    if session.get_bind().dialect.name == "postgresql":  # the rows this transaction locked (SKIP LOCKED)
        marked = marked.where(table.c.id.in_([p.id for p in pending]))
    else:
        # The first pending rows by id, read in this transaction: the pending rows of their id range are exactly
        # them unless the range changed since, and then the count below differs. One range rather than 10,000
        # bound ids (as the outbox marks its events).
        ids = sorted(p.id for p in pending)
        marked = marked.where(table.c.status == EventStatus.PENDING.value, table.c.id.between(ids[0], ids[-1]))
    done = session.connection().execute(marked).rowcount
    if done != len(pending):
        raise RuntimeError(f"marked {done} versions for a batch of {len(pending)}")


def batch_leaves(session: Session, batch_id: int) -> list[tuple[int, bytes]]:
    """(id, leaf) of the versions in batch `batch_id`."""
    table = cast(Table, DocumentVersion.__table__)
    query = select(table.c.id, table.c.leaf).where(table.c.batch_id == batch_id)
    return [(int(i), bytes(leaf)) for i, leaf in session.connection().execute(query)]


def mark_anchored(session: Session, leaves: Sequence[tuple[int, bytes]], proofs: Mapping[bytes, bytes]) -> None:
    """The versions of a confirmed batch: anchored, each with its packed Merkle proof."""
    if not leaves:
        return
    table = cast(Table, DocumentVersion.__table__)
    connection = session.connection()
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    # Below SQLAlchemy's Enum type, as the outbox's confirmation does: the member's name is what the column stores.
    connection.exec_driver_sql(
        f"UPDATE {table.name} SET status = {mark}, proof = {mark} WHERE id = {mark}",
        [(EventStatus.ANCHORED.name, proofs[leaf], version_id) for version_id, leaf in leaves],
    )


def reset_batch_versions(session: Session, batch_id: int) -> None:
    """Return a batch's versions to pending (its root never made it on-chain)."""
    session.execute(
        update(DocumentVersion)
        .where(DocumentVersion.batch_id == batch_id)
        .values(status=EventStatus.PENDING, batch_id=None, proof=None)
    )


def has_pending(session: Session) -> bool:
    """Whether a version waits to be anchored."""
    table = cast(Table, DocumentVersion.__table__)
    query = select(table.c.id).where(table.c.status != EventStatus.ANCHORED.value).limit(1)
    return session.connection().execute(query).first() is not None


def restore_versions(
    session: Session, archived: Sequence[Any], proofs: Mapping[bytes, Sequence[bytes]], batch_id: int
) -> int:
    """Put archived versions (``ledger.archive.SerialisedVersion``, checked against their batch's root) back as
    anchored under `batch_id`; a version the database still holds stays as it is (anchored under `batch_id` when it
    was not yet). Returns how many were restored."""
    restored = 0
    for item in archived:
        held = session.scalar(
            select(DocumentVersion).where(
                DocumentVersion.kind == item.kind,
                DocumentVersion.subject == item.subject,
                DocumentVersion.number == item.number,
            )
        )
        sha = hashlib.sha256(item.document.encode()).digest()
        leaf = version_leaf(sha)
        if held is not None:
            # A restored snapshot's version, not anchored there, that this batch anchored: anchored now.
            if held.status != EventStatus.ANCHORED and held.leaf == leaf:
                held.status, held.batch_id, held.proof = EventStatus.ANCHORED, batch_id, b"".join(proofs[leaf])
                restored += 1
            continue
        envelope = json.loads(item.document)
        session.add(
            DocumentVersion(
                kind=item.kind,
                subject=item.subject,
                number=item.number,
                created_at=datetime.fromisoformat(str(envelope["createdAt"]).replace("Z", "+00:00")),
                reason=str(envelope["reason"]),
                document=item.document,
                sha256=sha,
                content_sha256=hashlib.sha256(canonical(envelope["content"])).digest(),
                leaf=leaf,
                status=EventStatus.ANCHORED,
                batch_id=batch_id,
                proof=b"".join(proofs[leaf]),
            )
        )
        restored += 1
    return restored


# -- reading ----------------------------------------------------------------------------------------------------------
def history(session: Session, kind: str, subject: str) -> list[StoredVersion]:
    """Every version of `subject`, oldest first, with its anchoring."""
    table = cast(Table, DocumentVersion.__table__)
    query = _with_anchor().where(table.c.kind == kind, table.c.subject == subject).order_by(table.c.number)
    return [_stored(row) for row in session.connection().execute(query)]


def history_of(session: Session, subject: str) -> list[StoredVersion]:
    """Every version of `subject`, of every kind, oldest first, with its anchoring (what an evidence bundle holds)."""
    table = cast(Table, DocumentVersion.__table__)
    query = _with_anchor().where(table.c.subject == subject).order_by(table.c.kind, table.c.number)
    return [_stored(row) for row in session.connection().execute(query)]


def version(session: Session, kind: str, subject: str, number: int | None = None) -> StoredVersion | None:
    """Version `number` of `subject` (the newest when None), with its anchoring."""
    table = cast(Table, DocumentVersion.__table__)
    query = _with_anchor().where(table.c.kind == kind, table.c.subject == subject)
    newest = query.order_by(table.c.number.desc()).limit(1)
    query = newest if number is None else query.where(table.c.number == number)
    row = session.connection().execute(query).first()
    return _stored(row) if row is not None else None


__all__ = [
    "ENVELOPE_KEYS",
    "VERSION_LEAF_TAG",
    "Added",
    "Canonical",
    "DocumentVersion",
    "Head",
    "NewVersion",
    "PendingVersion",
    "StoredVersion",
    "VersionError",
    "add_versions",
    "batch_leaves",
    "canonical",
    "envelope_bytes",
    "has_pending",
    "heads",
    "history",
    "history_of",
    "iso_utc",
    "mark_anchored",
    "mark_batched",
    "pending_for_batch",
    "reset_batch_versions",
    "restore_versions",
    "version",
    "version_leaf",
]
