"""The durable outbox: signed EPCIS events wait here until a Merkle root covering them is anchored and confirmed.

The event hash is the idempotency key: the same event submitted twice is stored once. Rows move
``pending → batched → anchored``; a batch moves ``prepared → sent → confirmed`` (see ``ledger/README.md``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship, selectinload, sessionmaker

from .db import Base
from .epcis.corrections import is_declaration, record_id
from .epcis.hashing import event_hash_id, hash_digest


def _now() -> datetime:
    return datetime.now(UTC)


class EventStatus(enum.StrEnum):
    PENDING = "pending"
    BATCHED = "batched"
    ANCHORED = "anchored"


class BatchStatus(enum.StrEnum):
    PREPARED = "prepared"  # root computed, events assigned, nothing sent
    SENT = "sent"  # anchor tx signed, its hash and raw bytes recorded before sending
    CONFIRMED = "confirmed"  # mined with the configured confirmations, root on the canonical chain


class OutboxEvent(Base):
    __tablename__ = "ledger_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(120), unique=True)
    digest: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    event: Mapped[dict[str, Any]] = mapped_column(JSON)
    signer: Mapped[str] = mapped_column(String(42), index=True)
    signature: Mapped[bytes] = mapped_column(LargeBinary(65))
    deadline: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[EventStatus] = mapped_column(Enum(EventStatus, native_enum=False, length=16), index=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_batches.id"), index=True)
    # The Merkle proof, siblings concatenated (32 bytes each): a tenth of the size of a JSON list of hex strings,
    # and no encoding work on the anchoring hot path.
    proof: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    batch: Mapped[Batch | None] = relationship(back_populates="events")
    epcs: Mapped[list[EventEpc]] = relationship(back_populates="event", cascade="all, delete-orphan")


def split_proof(packed: bytes | None) -> list[bytes]:
    """The sibling hashes of a packed proof."""
    if not packed:
        return []
    return [packed[i : i + 32] for i in range(0, len(packed), 32)]


class EventEpc(Base):
    """Which identifiers (item and lot Digital Links) an event mentions: the index behind per-item queries."""

    __tablename__ = "ledger_event_epcs"

    event_pk: Mapped[int] = mapped_column(ForeignKey("ledger_events.id", ondelete="CASCADE"), primary_key=True)
    epc: Mapped[str] = mapped_column(String(512), primary_key=True)

    event: Mapped[OutboxEvent] = relationship(back_populates="epcs")

    __table_args__ = (Index("ix_ledger_event_epcs_epc", "epc"),)


class Batch(Base):
    __tablename__ = "ledger_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    root: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    event_count: Mapped[int] = mapped_column(Integer)
    status: Mapped[BatchStatus] = mapped_column(Enum(BatchStatus, native_enum=False, length=16), index=True)
    tx_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    raw_tx: Mapped[bytes | None] = mapped_column(LargeBinary)
    nonce: Mapped[int | None] = mapped_column(BigInteger)
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    events: Mapped[list[OutboxEvent]] = relationship(back_populates="batch")


def event_epcs(event: dict[str, Any]) -> set[str]:
    """Every identifier an EPCIS event names: EPC lists and quantity-list classes."""
    found: set[str] = set()
    for key in ("epcList", "childEPCs", "inputEPCList", "outputEPCList"):
        found.update(str(v) for v in event.get(key, ()) or ())
    if event.get("parentID"):
        found.add(str(event["parentID"]))
    for key in ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList"):
        found.update(str(q["epcClass"]) for q in event.get(key, ()) or () if isinstance(q, dict) and "epcClass" in q)
    return found


@dataclass(frozen=True)
class SignedEvent:
    """An EPCIS event with its actor's EIP-712 signature over its event hash."""

    event: dict[str, Any]
    signer: str
    signature: bytes
    deadline: int
    # The Event Hash ID when the signer has just computed it from this very event (it signed that hash): the outbox
    # then does not canonicalise and hash the event a second time, which was a third of a 1,000-event capture.
    # Never set from outside input; events signed elsewhere are hashed by the outbox.
    computed_id: str | None = None

    @property
    def event_id(self) -> str:
        if self.computed_id:
            return self.computed_id
        if is_declaration(self.event):  # its eventID is the declared event's: its record has an id of its own
            return record_id(self.event)
        return str(self.event.get("eventID") or event_hash_id(self.event))


@dataclass(frozen=True)
class Stored:
    event_id: str
    created: bool  # False: the event was already in the outbox (idempotent resubmission)
    status: EventStatus


class Outbox:
    """Adds signed events durably and idempotently; reads them back with their anchoring status."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.sessions = session_factory

    def add_many(self, events: Sequence[SignedEvent], session: Session | None = None) -> list[Stored]:
        """Store `events` in one transaction; an event already present (same hash) is left as it is.

        With `session`, the rows are written in that session's transaction and not committed: the caller's other
        writes and these events then commit, or roll back, together."""
        if not events:
            return []
        rows: list[dict[str, Any]] = []
        for signed in events:
            event_id = signed.computed_id or record_id(signed.event)
            # An event's eventID is its Event Hash ID; an error declaration's is the declared event's (its record
            # has an id of its own, see ledger.epcis.corrections).
            named = event_hash_id(signed.event) if is_declaration(signed.event) else event_id
            if signed.event.get("eventID") not in (None, named):
                raise ValueError(f"eventID {signed.event['eventID']} is not the event's hash {named}")
            body = {**signed.event, "eventID": named}
            rows.append(
                {
                    "event_id": event_id,
                    "digest": hash_digest(event_id),
                    "event": body,
                    "signer": signed.signer,
                    "signature": signed.signature,
                    "deadline": signed.deadline,
                    "status": EventStatus.PENDING,
                    "created_at": _now(),
                }
            )
        if session is not None:
            existing = self._insert(session, rows)
        else:
            with self.sessions.begin() as own:
                existing = self._insert(own, rows)
        seen: set[str] = set()
        result = []
        for r in rows:
            created = r["event_id"] not in existing and r["event_id"] not in seen
            seen.add(r["event_id"])
            result.append(Stored(r["event_id"], created, existing.get(r["event_id"], EventStatus.PENDING)))
        return result

    @staticmethod
    def _insert(session: Session, rows: list[dict[str, Any]]) -> dict[str, EventStatus]:
        """Insert the rows not yet present, with their EPC index; the statuses of those already present."""
        dialect = session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        events = cast(Table, OutboxEvent.__table__)
        unique = list({r["event_id"]: r for r in rows}.values())
        # One INSERT ... ON CONFLICT DO NOTHING RETURNING for the batch (SQLAlchemy's "insertmanyvalues", on
        # SQLite and PostgreSQL alike): the rows it returns are the new ones with their keys, and only the others
        # are looked up. The Core table, not the ORM entity: an ORM bulk insert builds per-row state for every row,
        # and a lookup of a thousand ids before and after the insert cost as much as SQLite's write itself.
        stmt = insert(events).on_conflict_do_nothing(index_elements=["event_id"])
        new_pks: dict[str, int] = dict(
            session.execute(stmt.returning(events.c.event_id, events.c.id), unique).all()
        )
        others = [r["event_id"] for r in unique if r["event_id"] not in new_pks]
        existing: dict[str, EventStatus] = {}
        if others:
            query = select(OutboxEvent.event_id, OutboxEvent.status).where(OutboxEvent.event_id.in_(others))
            existing = {event_id: status for event_id, status in session.execute(query)}
        epc_rows = [
            {"event_pk": new_pks[r["event_id"]], "epc": epc}
            for r in unique
            if r["event_id"] in new_pks
            for epc in event_epcs(r["event"])
        ]
        if epc_rows:
            session.execute(insert(cast(Table, EventEpc.__table__)).on_conflict_do_nothing(), epc_rows)
        return existing

    def add(self, event: SignedEvent) -> Stored:
        return self.add_many([event])[0]

    def get(self, event_id: str) -> OutboxEvent | None:
        with self.sessions() as session:
            row = session.scalar(select(OutboxEvent).where(OutboxEvent.event_id == event_id))
            if row is not None:
                session.expunge(row)
            return row

    def events_for(self, epc: str) -> list[OutboxEvent]:
        """Events naming `epc`, oldest first, with their batches loaded."""
        with self.sessions() as session:
            rows = list(
                session.scalars(select(OutboxEvent).join(EventEpc).where(EventEpc.epc == epc).order_by(OutboxEvent.id))
            )
            for row in rows:
                _ = row.batch
            session.expunge_all()
            return rows

    def events_for_many(self, epcs: Sequence[str], chunk: int = 500) -> dict[str, list[OutboxEvent]]:
        """Events naming each of `epcs`, oldest first, with their batches loaded: a few queries for many EPCs (an
        evidence bundle's walk asks for a generation's lots, then its items, a set at a time)."""
        found: dict[str, list[OutboxEvent]] = {epc: [] for epc in epcs}
        wanted = sorted(found)
        with self.sessions() as session:
            for start in range(0, len(wanted), chunk):
                rows = session.execute(
                    select(EventEpc.epc, OutboxEvent)
                    .join(OutboxEvent, OutboxEvent.id == EventEpc.event_pk)
                    .where(EventEpc.epc.in_(wanted[start : start + chunk]))
                    .options(selectinload(OutboxEvent.batch))
                    .order_by(OutboxEvent.id)
                )
                for epc, row in rows:
                    found[epc].append(row)
            session.expunge_all()
        return found

    def counts(self) -> dict[str, int]:
        with self.sessions() as session:
            return {
                str(status.value): n
                for status, n in session.execute(select(OutboxEvent.status, func.count()).group_by(OutboxEvent.status))
            }


def reset_batch(session: Session, batch: Batch) -> None:
    """Return a batch's events to pending (its root never made it on-chain) and drop the batch."""
    session.execute(
        update(OutboxEvent)
        .where(OutboxEvent.batch_id == batch.id)
        .values(status=EventStatus.PENDING, batch_id=None, proof=None)
    )
    session.delete(batch)


def proofs_as_hex(proof: Iterable[bytes]) -> list[str]:
    return ["0x" + p.hex() for p in proof]


def pack_proof(proof: Iterable[bytes]) -> bytes:
    return b"".join(proof)


__all__ = [
    "Batch",
    "BatchStatus",
    "EventEpc",
    "EventStatus",
    "Outbox",
    "OutboxEvent",
    "SignedEvent",
    "Stored",
    "event_epcs",
    "pack_proof",
    "split_proof",
]
