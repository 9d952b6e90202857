"""kill -9 of the API while consumers scan: scans are buffered and written in batches (api/scans.py), so a crash may
lose the scans of the last flush interval, and no more. Each scan here is of its own item from its own client, so
every answered scan can be looked for in the database after the kill."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest

from .writers_world import BRANDS, make_runs, writers_world

pytestmark = [pytest.mark.slow, pytest.mark.anvil]
INTERVAL_S = 0.2  # the server's scan_flush_interval_s
SLACK_S = 0.5  # a write that the kill interrupts began at most this long after its rows were taken
ITEMS = 1_500


def test_a_crash_loses_at_most_the_last_flush_interval_of_scans(tmp_path: Path) -> None:
    gtin = BRANDS["brand"][2]
    with writers_world(tmp_path, "sqlite") as world:
        serials = make_runs(world, "brand", "SC", ITEMS)
        world.env["CIRCULAR_API_SCAN_FLUSH_INTERVAL_S"] = str(INTERVAL_S)
        world.env["CIRCULAR_API_TRUSTED_PROXIES"] = '["127.0.0.1"]'  # the phones' addresses come forwarded
        world.start_api()
        answered: list[tuple[str, float]] = []  # (serial, when its 307 came back)
        stop = threading.Event()

        def scan() -> None:
            with httpx.Client(base_url=world.url, timeout=10) as client:
                for n, serial in enumerate(serials):
                    if stop.is_set():
                        return
                    phone = f"10.{n // 65536}.{n // 256 % 256}.{n % 256}"  # a client each
                    headers = {"Accept": "text/html", "X-Forwarded-For": phone}
                    try:
                        response = client.get(f"/01/{gtin}/21/{serial}", headers=headers)
                    except httpx.HTTPError:
                        return
                    assert response.status_code == 307, response.text
                    answered.append((serial, time.monotonic()))

        scanner = threading.Thread(target=scan)
        scanner.start()
        while len(answered) < ITEMS // 2 and scanner.is_alive():
            time.sleep(0.01)
        world.kill_api()  # SIGKILL, scans still coming
        killed = time.monotonic()
        stop.set()
        scanner.join()

        with sqlite3.connect(world.settings.data_dir / "circular.sqlite") as db:
            stored = {row[0] for row in db.execute("SELECT serial FROM api_scans WHERE gtin = ?", (gtin,))}
        lost = [(serial, killed - at) for serial, at in answered if serial not in stored]
        assert all(age <= INTERVAL_S + SLACK_S for _, age in lost), sorted(lost, key=lambda x: -x[1])[:5]
        assert stored <= {serial for serial, _ in answered} | set(serials)
        oldest = max((age for _, age in lost), default=0.0)
        print(
            f"FIGURE scan_buffer_crash: kill -9 after {len(answered)} answered scans; {len(lost)} lost, all answered "
            f"within {oldest:.2f} s of the kill (flush interval {INTERVAL_S} s); {len(stored)} written"
        )
