"""Outbox and anchoring worker: idempotent capture, exactly-once anchoring, proofs that verify on-chain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from ledger.epcis import events as ev
from ledger.epcis.hashing import hash_digest
from ledger.merkle import verify_proof
from ledger.outbox import Batch, BatchStatus, EventStatus, OutboxEvent, split_proof
from ledger.service import LedgerService

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def sold(n: int) -> list[dict]:
    return [
        ev.lifecycle(ev.Lifecycle.SOLD, [f"https://id.example/01/09506000134352/21/S{i}"], at=T0 + timedelta(seconds=i))
        for i in range(n)
    ]


def test_the_same_event_is_stored_once(service: LedgerService) -> None:
    brand = service.backend.dev_accounts()[1]
    first = service.record(brand, sold(3))
    again = service.record(brand, sold(3))
    assert [s.created for s in first] == [True, True, True]
    assert [s.created for s in again] == [False, False, False]
    assert [s.event_id for s in first] == [s.event_id for s in again]
    assert service.outbox.counts() == {"pending": 3}


def test_worker_anchors_every_event_once_with_proofs(service: LedgerService) -> None:
    brand, anchorer = service.backend.dev_accounts()[1], service.backend.dev_accounts()[6]
    stored = service.record(brand, sold(120))
    worker = service.worker(anchorer)
    results = worker.drain()
    assert sum(r.events for r in results) == 120
    assert len(results) == 3  # batch size 50: 50 + 50 + 20
    assert service.outbox.counts() == {"anchored": 120}
    for item in stored[::17]:
        row = service.outbox.get(item.event_id)
        assert row is not None and row.proof is not None and row.batch_id is not None
        with service.sessions() as session:
            root = session.get_one(Batch, row.batch_id).root
        proof = split_proof(row.proof)
        assert verify_proof(root, hash_digest(item.event_id), proof)
        assert service.ledger.verify_event_on_chain(root, hash_digest(item.event_id), proof)
    assert worker.run_once(force=True) == []  # nothing left, nothing sent twice
    with service.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Batch)) == 3


def test_a_crash_after_recording_the_tx_hash_is_recovered_by_hash(service: LedgerService) -> None:
    """The worker died after committing `sent` and before the node got the bytes: settle() re-broadcasts them."""
    brand, anchorer = service.backend.dev_accounts()[1], service.backend.dev_accounts()[6]
    service.record(brand, sold(10))
    worker = service.worker(anchorer)
    batch_id = worker._prepare(force=True)
    assert batch_id is not None
    broadcasts: list[bytes] = []
    worker._broadcast = broadcasts.append  # type: ignore[method-assign]  # the crash: nothing reaches the node
    worker._send(batch_id)
    with service.sessions() as session:
        batch = session.get_one(Batch, batch_id)
        assert batch.status is BatchStatus.SENT and batch.tx_hash is not None
    del worker._broadcast  # restart
    results = service.worker(anchorer).drain()
    assert [r.batch_id for r in results] == [batch_id]
    with service.sessions() as session:
        assert session.get_one(Batch, batch_id).status is BatchStatus.CONFIRMED
        assert set(session.scalars(select(OutboxEvent.status))) == {EventStatus.ANCHORED}


def test_a_root_already_on_chain_is_not_sent_again(service: LedgerService) -> None:
    """Crash after the anchor was mined but before it was marked confirmed: recovery finds the log."""
    brand, anchorer = service.backend.dev_accounts()[1], service.backend.dev_accounts()[6]
    service.record(brand, sold(5))
    worker = service.worker(anchorer)
    batch_id = worker._prepare(force=True)
    assert batch_id is not None
    worker._send(batch_id)  # mined, not confirmed in the database
    # Counted with the pool ("pending"): a node may not have put the broadcast in a block yet when _send returns.
    sent_before = service.backend.web3.eth.get_transaction_count(anchorer.address, "pending")
    results = service.worker(anchorer).drain()
    assert [r.batch_id for r in results] == [batch_id]
    assert service.backend.web3.eth.get_transaction_count(anchorer.address, "pending") == sent_before


def test_batches_wait_for_size_or_age(service: LedgerService) -> None:
    brand, anchorer = service.backend.dev_accounts()[1], service.backend.dev_accounts()[6]
    service.record(brand, sold(3))
    worker = service.worker(anchorer)
    worker.max_wait = timedelta(hours=1)
    assert worker.run_once() == []  # 3 < 50 and young: waits
    worker.max_wait = timedelta(0)
    assert sum(r.events for r in worker.run_once()) == 3


@pytest.mark.parametrize("confirmations", [2])
def test_events_count_as_anchored_only_after_confirmations(service: LedgerService, confirmations: int) -> None:
    brand, anchorer = service.backend.dev_accounts()[1], service.backend.dev_accounts()[6]
    service.record(brand, sold(4))
    worker = service.worker(anchorer)
    worker.confirmations = confirmations
    worker.receipt_timeout_s = 0.5
    assert worker.run_once(force=True) == []
    assert service.outbox.counts() == {"batched": 4}
    service.backend.mine(confirmations)
    assert sum(r.events for r in worker.settle()) == 4
