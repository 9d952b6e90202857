"""kill -9 of the anchoring worker at random points, 20 trials: every event is anchored exactly once afterwards and no
root is anchored twice. Anvil mines every second, so many kills land between sending and the receipt."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ledger.epcis import events as ev
from ledger.outbox import Batch, BatchStatus, EventStatus, OutboxEvent
from ledger.service import LedgerService
from ledger.settings import Settings
from tests.conftest import AnvilNode, migrated

TRIALS = 20
EVENTS_PER_TRIAL = 40
T0 = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.mark.slow
def test_worker_killed_at_random_points_anchors_everything_exactly_once(tmp_path: Path) -> None:
    node = AnvilNode("--block-time", "1")
    try:
        _trials(node, tmp_path)
    finally:
        node.stop()


def _trials(node: AnvilNode, tmp_path: Path) -> None:
    data = tmp_path / "data"
    db = f"sqlite:///{tmp_path / 'outbox.sqlite'}"
    settings = Settings(data_dir=data, rpc_url=node.url, db_url=db)
    service = LedgerService(migrated(settings))
    admin, brand, anchorer = (service.backend.dev_accounts()[i] for i in (0, 1, 9))
    ledger = service.deploy(admin)
    ledger.grant_role(admin, "brand", brand.address)
    ledger.grant_role(admin, "anchorer", anchorer.address)
    env = {**os.environ, "CIRCULAR_BATCH_SIZE": "15", "CIRCULAR_BATCH_MAX_WAIT_S": "0"}
    command = [sys.executable, "-m", "circular", "worker", "--rpc", node.url, "--db", db, "--data-dir", str(data)]
    rng = random.Random(20261123)
    recorded = 0
    kills_while_sent = 0
    for trial in range(TRIALS):
        batch = [ev.lifecycle(ev.Lifecycle.SOLD, [f"https://id.example/01/09506000134352/21/T{trial}-{i}"],
                              at=T0 + timedelta(seconds=trial * 100 + i)) for i in range(EVENTS_PER_TRIAL)]
        recorded += sum(s.created for s in service.record(brand, batch))
        worker = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if trial % 2:  # at a random moment
            time.sleep(rng.uniform(0.3, 2.5))
        else:  # right after a batch is recorded as sent: between sending and the receipt (1 s blocks)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and not _has_sent_batch(service):
                time.sleep(0.01)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        with service.sessions() as session:
            kills_while_sent += bool(session.scalar(select(func.count()).where(Batch.status == BatchStatus.SENT)))
    finish = subprocess.run([*command, "--once"], env=env, capture_output=True, text=True, timeout=300)
    assert finish.returncode == 0, finish.stderr

    with service.sessions() as session:
        statuses = dict(session.execute(select(OutboxEvent.status, func.count()).group_by(OutboxEvent.status)).all())
        batches = list(session.scalars(select(Batch)))
        per_batch = dict(session.execute(
            select(OutboxEvent.batch_id, func.count()).group_by(OutboxEvent.batch_id)).all())
    logs = ledger.anchor.events.RootAnchored().get_logs(from_block=ledger.deployment.block_number)
    on_chain = [bytes(log["args"]["root"]) for log in logs]
    print(f"\n{TRIALS} kill -9 trials ({kills_while_sent} with a batch sent and unconfirmed): {recorded} events, "
          f"{len(batches)} batches, {len(on_chain)} roots on-chain")
    assert statuses == {EventStatus.ANCHORED: TRIALS * EVENTS_PER_TRIAL}
    assert all(b.status is BatchStatus.CONFIRMED for b in batches)
    assert len(on_chain) == len(set(on_chain)) == len(batches)  # no root anchored twice, none lost
    assert {b.root for b in batches} == set(on_chain)
    assert all(per_batch[b.id] == b.event_count for b in batches)  # every event in exactly one anchored batch
    assert kills_while_sent >= TRIALS // 4  # the window between send and receipt was hit, many times
    service.close()


def _has_sent_batch(service: LedgerService) -> bool:
    with service.sessions() as session:
        return bool(session.scalar(select(func.count()).where(Batch.status == BatchStatus.SENT)))
