"""kill -9 of the API (uvicorn, SQLite, Anvil) during 1,000 concurrent lifecycle writes, then a restart.

Every write acknowledged with a 201 before the kill must survive it; right after the restart the chain and the
database must agree item by item (the start-up reconciliation of ``api/intents.py`` finishes or fails what the kill
interrupted), the SQLite file must pass its integrity check, and every write left without an answer must be
retryable: 201 (it had not happened) or 409 (it had), never a 5xx.
"""

from __future__ import annotations

import queue
import random
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from api.intents import PENDING
from api.models import Item, WriteIntent
from ledger.client import ItemState
from ledger.ids import item_id
from ledger.outbox import EventEpc, OutboxEvent

from .writers_world import BRANDS, WritersWorld, item_uri, lifecycle_body, make_runs, writers_world

WRITES = 1000
CLIENTS = 12
ROLE = "brand"  # one account for every write: the worst case for nonces
SEED = 20261123

pytestmark = [pytest.mark.slow, pytest.mark.anvil]


class Writers:
    """CLIENTS threads posting "sold" for serials from a queue until it is empty or `stop` is set."""

    def __init__(self, world: WritersWorld, serials: list[str]) -> None:
        self.world = world
        self.todo: queue.Queue[str] = queue.Queue()
        for serial in serials:
            self.todo.put(serial)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acknowledged: dict[str, dict[str, Any]] = {}  # serial → the 201's body
        self.unanswered: list[str] = []  # sent, no answer (the kill)
        self.other: list[tuple[str, int, Any]] = []  # any other answer: a failure of the test

    def run(self) -> None:
        headers = self.world.auth(ROLE)
        with httpx.Client(base_url=self.world.url, headers=headers, timeout=60) as client:
            while not self.stop.is_set():
                try:
                    serial = self.todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    response = client.post("/api/v1/lifecycle-events", json=lifecycle_body(ROLE, serial, "sold"))
                except httpx.HTTPError:
                    with self.lock:
                        self.unanswered.append(serial)
                    continue
                with self.lock:
                    if response.status_code == 201:
                        self.acknowledged[serial] = response.json()
                    else:
                        self.other.append((serial, response.status_code, response.text[:300]))

    def acknowledged_count(self) -> int:
        with self.lock:
            return len(self.acknowledged)

    def not_sent(self) -> list[str]:
        left = []
        while True:
            try:
                left.append(self.todo.get_nowait())
            except queue.Empty:
                return left


def _pending_intents(database: Path) -> int:
    with sqlite3.connect(database, timeout=30) as db:
        count: int = db.execute("SELECT count(*) FROM api_write_intents WHERE status = 'pending'").fetchone()[0]
    return count


def _chain_and_rows_agree(world: WritersWorld, serials: list[str]) -> dict[str, int]:
    """Per item: its chain state, its row's state and its events must tell the same story; the states' counts."""
    gtin = BRANDS[ROLE][2]
    with world.service.sessions() as session:
        rows = dict(session.execute(select(Item.serial, Item.state).where(Item.gtin == gtin)).all())
        events = dict(
            session.execute(select(EventEpc.epc, func.count()).join(OutboxEvent).group_by(EventEpc.epc)).all()
        )
    counts: dict[str, int] = {}
    for serial in serials:
        chain = world.service.ledger.item(item_id(gtin, serial))["state"]
        # A run item not moved yet is not on-chain in its own right (NONE): its row says manufactured.
        expected_row = ItemState.MANUFACTURED if chain == ItemState.NONE else chain
        assert rows[serial] == int(expected_row), f"{serial}: chain {chain.name}, row {ItemState(rows[serial]).name}"
        sold = chain == ItemState.SOLD
        # The run's manufacturing event, plus the sale's event exactly when the chain has the sale.
        assert events.get(item_uri(ROLE, serial)) == 1 + sold, f"{serial}: {events.get(item_uri(ROLE, serial))} events"
        counts[chain.name] = counts.get(chain.name, 0) + 1
    return counts


def test_kill_9_during_1000_writes_loses_nothing_acknowledged(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    with writers_world(tmp_path, "sqlite") as world:
        serials = make_runs(world, ROLE, "K", WRITES)
        world.start_api()
        writers = Writers(world, serials)
        threads = [threading.Thread(target=writers.run) for _ in range(CLIENTS)]
        kill_after = rng.randint(WRITES // 4, WRITES // 2)
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        while writers.acknowledged_count() < kill_after and any(t.is_alive() for t in threads):
            time.sleep(0.005)
        # Then the moment a write is between its intent and its completion (sent or about to be), as a crash would
        # find it; at worst, two seconds later.
        database = world.settings.data_dir / "circular.sqlite"
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and _pending_intents(database) == 0:
            time.sleep(0.001)
        writers.stop.set()  # no new requests: what is in flight now is what the kill interrupts
        world.kill_api()  # SIGKILL
        killed_at = time.perf_counter() - started
        for thread in threads:
            thread.join()
        assert not writers.other, f"answers other than 201 before the kill: {writers.other[:5]}"
        acknowledged = dict(writers.acknowledged)
        unanswered = list(writers.unanswered)
        not_sent = writers.not_sent()
        assert len(acknowledged) + len(unanswered) + len(not_sent) == WRITES
        pending_at_kill = _pending_intents(database)

        restarted = time.perf_counter()
        world.start_api()  # reconciles the pending intents on start-up
        restart_s = time.perf_counter() - restarted
        with world.service.sessions() as session:
            still_pending = session.scalar(select(func.count()).where(WriteIntent.status == PENDING))
        assert still_pending == 0, f"{still_pending} writes still pending after the restart's reconciliation"
        # No half-written data: item by item, chain, rows and outbox agree before anyone retries anything.
        after_restart = _chain_and_rows_agree(world, serials)

        # Nothing acknowledged is lost: each 201's event is in the outbox and its item is sold, on-chain too.
        gtin = BRANDS[ROLE][2]
        for serial, body in acknowledged.items():
            assert world.service.outbox.get(body["event"]["eventId"]) is not None, f"{serial}: acknowledged event lost"
            assert world.service.ledger.item(item_id(gtin, serial))["state"] == ItemState.SOLD, serial

        # Writes without an answer are retryable: done already (409) or done now (201), never a 5xx. The writes never
        # sent are sent now, concurrently as before.
        retried: dict[int, int] = {}
        with httpx.Client(base_url=world.url, headers=world.auth(ROLE), timeout=60) as client:
            for serial in unanswered:
                response = client.post("/api/v1/lifecycle-events", json=lifecycle_body(ROLE, serial, "sold"))
                retried[response.status_code] = retried.get(response.status_code, 0) + 1
                assert response.status_code in (201, 409), (serial, response.status_code, response.text)
                if response.status_code == 409:
                    assert response.json()["error"] == "IllegalTransition", response.text
        rest = Writers(world, not_sent)
        threads = [threading.Thread(target=rest.run) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not rest.other and not rest.unanswered, (rest.other[:5], rest.unanswered[:5])
        assert len(rest.acknowledged) == len(not_sent)
        world.kill_api(sig=15)

        final = _chain_and_rows_agree(world, serials)
        assert final == {"SOLD": WRITES}, final
        with sqlite3.connect(database) as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        assert "Traceback" not in world.log_text(), world.log_text()[-3000:]
        print(
            f"FIGURE api_crash: kill -9 after {killed_at:.1f} s with {len(acknowledged)} of {WRITES} writes "
            f"acknowledged ({CLIENTS} clients), {len(unanswered)} in flight, {pending_at_kill} intents pending; "
            f"restart and reconciliation {restart_s:.1f} s; after it {after_restart}; retries of the unanswered "
            f"{dict(sorted(retried.items()))}; 0 acknowledged writes lost, integrity_check ok"
        )
