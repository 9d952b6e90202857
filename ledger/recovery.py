"""Restoring the outbox from the chain and the batch archive, after the database was lost.

The projection (``chain_anchors``) lists every root the deployment anchored, in chain order; each root's batch is
fetched from the archive (:mod:`ledger.archive`) and checked against the root before its events go back into the
outbox as anchored, with their recomputed Merkle proofs. What cannot be recovered is reported, one line each:
a batch missing from the archive, or an archived event whose hash, signature or root does not check out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .archive import Archive, verify_batch
from .epcis.hashing import hash_digest
from .outbox import Batch, BatchStatus, EventEpc, EventStatus, OutboxEvent, event_epcs, pack_proof
from .projection import ChainAnchor, IngestedLog
from .signing import EventDomain
from .versions import restore_versions


@dataclass
class EventRecovery:
    batches: int = 0
    events: int = 0
    lost_events: int = 0  # anchored (counted on-chain) but not recovered
    versions: int = 0  # document versions (passports) recovered with them
    problems: list[str] = field(default_factory=list)


def _unhex(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return datetime.now(UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def recover_events(session: Session, archive: Archive, domain: EventDomain) -> EventRecovery:
    """Put every archived, verified event of every anchored root back into the outbox (in anchoring order)."""
    result = EventRecovery()
    first_log = (
        select(IngestedLog.tx_hash, func.min(IngestedLog.log_index).label("log_index"))
        .group_by(IngestedLog.tx_hash)
        .subquery()
    )
    anchors = session.execute(
        select(ChainAnchor)
        .join(first_log, first_log.c.tx_hash == ChainAnchor.tx_hash, isouter=True)
        .order_by(ChainAnchor.block_number, first_log.c.log_index, ChainAnchor.root)
    ).scalars()
    known = set(session.scalars(select(OutboxEvent.event_id)))
    for anchor in list(anchors):
        root = _unhex(anchor.root)
        document = archive.fetch_batch(root, anchor.uri)
        if document is None:
            result.problems.append(f"batch {anchor.root}: not in the archive ({anchor.uri or 'no URI on-chain'})")
            result.lost_events += anchor.event_count
            continue
        check = verify_batch(document, root, anchor.event_count, domain)
        result.problems += check.problems
        result.lost_events += anchor.event_count - len(check.events) - len(check.versions)
        if not check.events and not check.versions:
            continue
        batch = Batch(
            root=root,
            event_count=anchor.event_count,
            status=BatchStatus.CONFIRMED,
            tx_hash=_unhex(anchor.tx_hash),
            block_number=anchor.block_number,
            attempts=1,
            confirmed_at=datetime.now(UTC),
        )
        session.add(batch)
        session.flush()
        result.batches += 1
        for archived in check.events:
            if archived.event_id in known:  # a database that kept some events: those stay as they are
                continue
            known.add(archived.event_id)
            row = OutboxEvent(
                event_id=archived.event_id,
                digest=hash_digest(archived.event_id),
                event=archived.event,
                signer=archived.signer,
                signature=archived.signature,
                deadline=archived.deadline,
                status=EventStatus.ANCHORED,
                batch_id=batch.id,
                proof=pack_proof(check.proofs[archived.event_id]),
                created_at=_parse_time(archived.recorded_at),
            )
            row.epcs = [EventEpc(epc=epc[:512]) for epc in sorted(event_epcs(archived.event))]
            session.add(row)
            result.events += 1
        result.versions += restore_versions(session, check.versions, check.version_proofs, batch.id)
        session.flush()
    return result


__all__ = ["EventRecovery", "recover_events"]
