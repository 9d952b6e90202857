"""Scans off the request's path (api/scans.py): buffered, written in batches, bounded in memory and per client."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, func, select
from sqlalchemy.orm import sessionmaker

from api.models import Scan, UnknownScan
from api.scans import ScanBuffer, scans_for
from ledger.db import Base
from tests.reliability.pg import pg_schema

from .conftest import GTIN_A, World


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """The scan tables on SQLite, and on PostgreSQL (where the buffer writes by COPY)."""
    import api.models  # noqa: F401  (the tables)

    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'scans.sqlite'}"
        else:
            url = stack.enter_context(pg_schema("scans"))
        engine = create_engine(url)
        Base.metadata.create_all(engine)
        yield sessionmaker(engine)
        engine.dispose()


def _rows(sessions: Any, table: Any = Scan) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def test_scans_wait_in_memory_and_are_written_together(sessions: Any) -> None:
    buffer = ScanBuffer(sessions, flush_interval_s=60)
    commits: list[int] = []
    event.listen(sessions.kw["bind"], "commit", lambda conn: commits.append(1))
    for n in range(100):
        assert buffer.item_scan(GTIN_A, f"S{n}", "DE", f"client-{n % 10}")
    assert buffer.unknown_scan(GTIN_A, "21", "FAKE", "scanner/1.0", "client-x")
    assert _rows(sessions) == 0 and buffer.stats().waiting == 101  # nothing on any request's path
    assert buffer.flush() == 101
    assert _rows(sessions) == 100 and _rows(sessions, UnknownScan) == 1
    assert len(commits) == 1  # one transaction for the lot
    assert buffer.stats().waiting == 0 and buffer.flush() == 0


def test_memory_is_bounded(sessions: Any) -> None:
    buffer = ScanBuffer(sessions, flush_interval_s=60, max_rows=50, per_client_per_minute=10_000)
    kept = [buffer.item_scan(GTIN_A, f"S{n}", None, "flood") for n in range(80)]
    assert kept == [True] * 50 + [False] * 30
    assert buffer.stats().dropped_full == 30
    buffer.flush()
    assert buffer.item_scan(GTIN_A, "after", None, "flood")  # room again once written


def test_a_client_writes_at_most_its_rows_per_minute(sessions: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import api.scans as scans

    now = [1_000.0]
    monkeypatch.setattr(scans.time, "monotonic", lambda: now[0])
    buffer = ScanBuffer(sessions, flush_interval_s=60, per_client_per_minute=5, max_clients=3)
    flood = [buffer.item_scan(GTIN_A, "S1", "DE", "flooder") for _ in range(8)]
    assert flood == [True] * 5 + [False] * 3 and buffer.stats().dropped_client == 3
    assert buffer.item_scan(GTIN_A, "S1", "FR", "someone else")  # others are not held back
    now[0] += 60  # the next minute: the flooder's rows count afresh
    assert buffer.item_scan(GTIN_A, "S1", "DE", "flooder")
    for n in range(5):  # clients beyond the tracked number push the oldest out: memory stays bounded
        buffer.item_scan(GTIN_A, "S1", None, f"c{n}")
    assert len(buffer._clients) == 3


def test_scans_survive_a_database_error_and_are_written_later(sessions: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = ScanBuffer(sessions, flush_interval_s=60)
    for n in range(10):
        buffer.item_scan(GTIN_A, f"S{n}", None, "c")
    real = buffer.sessions

    def broken() -> Any:
        raise RuntimeError("database away")

    monkeypatch.setattr(buffer, "sessions", type("Broken", (), {"begin": staticmethod(broken)}))
    with pytest.raises(RuntimeError):
        buffer.flush()
    assert buffer.stats().waiting == 10
    monkeypatch.setattr(buffer, "sessions", real)
    assert buffer.flush() == 10 and _rows(sessions) == 10


def test_the_background_writer_writes_within_its_interval_and_everything_at_stop(sessions: Any) -> None:
    import time

    buffer = ScanBuffer(sessions, flush_interval_s=0.05)
    buffer.start()
    try:
        buffer.item_scan(GTIN_A, "S1", None, "c")
        deadline = time.monotonic() + 5
        while _rows(sessions) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _rows(sessions) == 1
        buffer.item_scan(GTIN_A, "S2", None, "c")
    finally:
        buffer.stop()  # a clean shut-down writes what is left
    assert _rows(sessions) == 2


def test_a_scan_commits_nothing_on_the_requests_path(world: World) -> None:
    lot = world.lot()
    item = world.item([(lot["lotId"], 100)])
    writes: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.lstrip().upper().startswith("SELECT"):
            writes.append(statement)

    state = world.client.app.state.circular  # type: ignore[attr-defined]
    buffer = scans_for(state)
    buffer.flush()
    event.listen(world.service.engine, "before_cursor_execute", count)
    try:
        for _ in range(3):
            response = world.client.get(
                f"/01/{GTIN_A}/21/{item['serial']}", headers={"Accept": "text/html"}, follow_redirects=False
            )
            assert response.status_code == 307
    finally:
        event.remove(world.service.engine, "before_cursor_execute", count)
    assert writes == []
    assert buffer.flush() >= 3
    with world.service.sessions() as session:
        assert session.scalar(select(func.count()).where(Scan.serial == item["serial"])) == 3
