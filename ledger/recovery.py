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
from .client import Ledger
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


def _anchor_held(session: Session, event_id: str, batch_id: int, proof: list[bytes]) -> int:
    """An event the database holds as not anchored yet (a restored snapshot's), which this batch anchored: marked
    anchored under it, with its proof (1), rather than anchored a second time; an anchored one stays as it is (0)."""
    row = session.scalar(select(OutboxEvent).where(OutboxEvent.event_id == event_id))
    if row is None or row.status == EventStatus.ANCHORED:
        return 0
    row.status = EventStatus.ANCHORED
    row.batch_id = batch_id
    row.proof = pack_proof(proof)
    return 1


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
    held_roots = set(session.scalars(select(Batch.root)))  # batches the database holds: the worker settles them
    for anchor in list(anchors):
        root = _unhex(anchor.root)
        if root in held_roots:
            continue
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
            if archived.event_id in known:  # a database that kept some events: those stay, anchored now if not yet
                result.events += _anchor_held(session, archived.event_id, batch.id, check.proofs[archived.event_id])
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


@dataclass(frozen=True)
class Allowance:
    """A lot owner's latest approval of an operator (``MaterialLots.approve``), as the chain logged it."""

    lot_id: str  # 0x-hex
    operator: str
    grams: int
    tx_hash: str  # 0x-hex


def lot_allowances(ledger: Ledger, chunk: int = 5_000) -> list[Allowance]:
    """Every lot's latest allowance per operator, from the deployment's ``LotAllowanceSet`` logs, in chain order."""
    from .audit import _block_ranges
    from .projection import Projector

    projector = Projector(ledger)
    latest: dict[tuple[str, str], Allowance] = {}
    for low, high in _block_ranges(ledger, chunk):
        logs = ledger.web3.eth.get_logs({"address": ledger.lots.address, "fromBlock": low, "toBlock": high})
        for event in projector.decode(sorted(logs, key=lambda log: (log["blockNumber"], log["logIndex"]))):
            if event["event"] != "LotAllowanceSet":
                continue
            args = event["args"]
            allowance = Allowance(
                "0x" + bytes(args["lotId"]).hex(),
                str(args["operator"]),
                int(args["grams"]),
                "0x" + bytes(event["transactionHash"]).hex(),
            )
            latest[(allowance.lot_id, allowance.operator.lower())] = allowance
    return list(latest.values())


__all__ = ["Allowance", "EventRecovery", "lot_allowances", "recover_events"]
