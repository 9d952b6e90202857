"""4 writer processes x 250 lifecycle writes through a real uvicorn API (2 worker processes) on Anvil and PostgreSQL.

Every write signs and sends a transaction; two writers share each brand's account, and the two API worker processes
both send for it, so nonces are contended across threads and processes (``api/intents.py`` picks them under a
PostgreSQL advisory lock). Afterwards the anchoring worker drains the outbox, and every item's evidence bundle must
verify: nothing lost, nothing duplicated, no nonce error, every event anchored and provable.
"""

from __future__ import annotations

import multiprocessing
import re
import statistics
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from api.intents import DONE
from api.models import Item, WriteIntent
from ledger.client import ItemState
from ledger.evidence import export_bundle, verify_bundle
from ledger.ids import item_id
from ledger.outbox import EventEpc, EventStatus, OutboxEvent

from .writers_world import BRANDS, item_uri, lifecycle_body, make_runs, writers_world

WRITERS = 4
EVENTS_PER_WRITER = 250
ACTIONS = ("sold", "in_use")  # per item: its run's Merkle proof on the first move, a plain transition on the second
THREADS_PER_WRITER = 2
API_WORKERS = 2
NONCE_TROUBLE = re.compile(r"nonce too low|nonce too high|replacement transaction underpriced|already known", re.I)

pytestmark = [pytest.mark.slow, pytest.mark.anvil, pytest.mark.postgres]


def _writer(url: str, api_key: str, role: str, serials: list[str]) -> list[dict[str, Any]]:
    """One writer process: its items, each moved through ACTIONS in order, by THREADS_PER_WRITER threads."""
    results: list[dict[str, Any]] = []
    lock = threading.Lock()

    def run(part: list[str]) -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {api_key}"}, timeout=120) as client:
            for serial in part:
                for action in ACTIONS:
                    started = time.perf_counter()
                    try:
                        response = client.post("/api/v1/lifecycle-events", json=lifecycle_body(role, serial, action))
                        status, body = response.status_code, response.json()
                    except httpx.HTTPError as exc:
                        status, body = 0, {"error": repr(exc)}
                    outcome = {
                        "serial": serial,
                        "action": action,
                        "status": status,
                        "seconds": time.perf_counter() - started,
                        "event_id": body.get("event", {}).get("eventId") if status == 201 else None,
                        "tx_hash": body.get("txHash") if status == 201 else None,
                        "body": None if status == 201 else body,
                    }
                    with lock:
                        results.append(outcome)

    threads = [threading.Thread(target=run, args=(serials[i::THREADS_PER_WRITER],)) for i in range(THREADS_PER_WRITER)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_four_writer_processes_lose_nothing_and_duplicate_nothing(tmp_path: Path) -> None:
    items_per_writer = EVENTS_PER_WRITER // len(ACTIONS)
    with writers_world(tmp_path, "postgresql") as world:
        # Writers 0 and 2 write for brand A, 1 and 3 for brand B: two writers (and both API workers) per account.
        roles = [("brand", "brand_b")[w % 2] for w in range(WRITERS)]
        serials: dict[int, list[str]] = {}
        for role in BRANDS:
            made = make_runs(world, role, f"W{role[-1].upper()}", items_per_writer * roles.count(role))
            mine = [w for w in range(WRITERS) if roles[w] == role]
            for index, writer in enumerate(mine):
                serials[writer] = made[index * items_per_writer : (index + 1) * items_per_writer]
        before = sum(world.service.outbox.counts().values())  # the lots' and runs' own events
        world.start_api(workers=API_WORKERS)

        started = time.perf_counter()
        with ProcessPoolExecutor(WRITERS, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = [
                pool.submit(_writer, world.url, world.keys[roles[w]], roles[w], serials[w]) for w in range(WRITERS)
            ]
            outcomes = [(roles[w], o) for w, f in enumerate(futures) for o in f.result()]
        elapsed = time.perf_counter() - started
        world.kill_api(sig=15)

        acknowledged = [o for _, o in outcomes if o["status"] == 201]
        refused = [o for _, o in outcomes if o["status"] != 201]
        latencies = sorted(o["seconds"] for _, o in outcomes)
        print(
            f"FIGURE concurrent_writers: {len(outcomes)} writes by {WRITERS} processes "
            f"({WRITERS * THREADS_PER_WRITER} connections) through {API_WORKERS} uvicorn workers in {elapsed:.1f} s = "
            f"{len(outcomes) / elapsed:.0f} writes/s; latency p50 {statistics.median(latencies) * 1000:.0f} ms, "
            f"p95 {latencies[int(len(latencies) * 0.95)] * 1000:.0f} ms; {len(acknowledged)} acknowledged, "
            f"{len(refused)} refused"
        )
        assert len(outcomes) == WRITERS * EVENTS_PER_WRITER
        assert not refused, f"{len(refused)} writes not acknowledged, e.g. {refused[:3]}"
        log = world.log_text()
        assert not NONCE_TROUBLE.findall(log), "nonce trouble in the API's log"
        assert "Traceback" not in log, log[-3000:]

        service = world.service
        event_ids = [o["event_id"] for o in acknowledged]
        tx_hashes = [o["tx_hash"] for o in acknowledged]
        assert len(set(event_ids)) == len(event_ids), "two writes acknowledged with the same event"
        assert len(set(tx_hashes)) == len(tx_hashes), "two writes acknowledged with the same transaction"
        with service.sessions() as session:
            stored = set(session.scalars(select(OutboxEvent.event_id).where(OutboxEvent.event_id.in_(event_ids))))
            lost = set(event_ids) - stored
            assert not lost, f"{len(lost)} acknowledged events are not in the outbox"
            # The run's event and one per (item, action): each item's history holds its writes, none twice.
            per_item = dict(session.execute(select(EventEpc.epc, func.count()).group_by(EventEpc.epc)).all())
            by_status = select(WriteIntent.kind, WriteIntent.status, func.count())
            intents = {
                (k, st): n for k, st, n in session.execute(by_status.group_by(WriteIntent.kind, WriteIntent.status))
            }
            assert intents[("lifecycle", DONE)] == len(outcomes), intents
            assert all(status == DONE for _, status in intents), intents  # none pending, none failed
            states = dict(session.execute(select(Item.item_id, Item.state)).all())
        all_serials = [(roles[w], s) for w in range(WRITERS) for s in serials[w]]
        for role, serial in all_serials:
            assert per_item.get(item_uri(role, serial)) == 1 + len(ACTIONS), (
                serial,
                per_item.get(item_uri(role, serial)),
            )
            ident = item_id(BRANDS[role][2], serial)
            assert states["0x" + ident.hex()] == int(ItemState.IN_USE)
            assert service.ledger.item(ident)["state"] == ItemState.IN_USE  # the chain agrees with the rows

        anchorer = service.account("anchorer")
        started = time.perf_counter()
        service.worker(anchorer).drain()
        drained = time.perf_counter() - started
        assert service.outbox.counts() == {EventStatus.ANCHORED.value: before + len(outcomes)}

        started = time.perf_counter()
        web3 = service.backend.web3
        contract = service.ledger.deployment.addresses["EventAnchor"]
        for role, serial in all_serials:
            bundle = export_bundle(service.outbox, service.chain_id, contract, item_uri(role, serial))
            verdict = verify_bundle(bundle, web3)
            assert verdict.ok, (serial, verdict.problems, [e.problems for e in verdict.events])
            # The lot's registration, the run's manufacturing event and this item's two moves, each anchored.
            steps = sorted(e["event"].get("circ:lifecycle", e["event"]["bizStep"]) for e in bundle["events"])
            assert len(bundle["events"]) == 2 + len(ACTIONS), steps
            assert all(entry["anchor"] is not None for entry in bundle["events"])
        verified = time.perf_counter() - started
        print(
            f"FIGURE concurrent_writers_proofs: {len(outcomes)} events anchored in {drained:.1f} s; "
            f"{len(all_serials)} evidence bundles exported and verified on-chain in {verified:.1f} s"
        )
