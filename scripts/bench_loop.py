"""Bench room "loop": a recycler's intake of 500 items in one bulk request, against 500 single requests.

The scene: 500 worn items arrive at a recycler. Through the API (in-process, FastAPI's TestClient: the API's own
work is in both figures), the recycler records every collection either with one ``POST /api/v1/lifecycle-batches``
(500 write intents recorded together, their transactions pipelined, completed together) or with 500
``POST /api/v1/lifecycle-events``, each waiting for its receipt before the next.

Mining as in the "chain" room: the bulk request rides **1 s interval mining** (``--block-time 1``), as a production
chain would make it; the 500 single calls run on an **automining** node, where each waits only for its own
transaction (on 1 s blocks each would wait for a block: 500 s, which would measure the block time, not the client).
The items are sold and put in use first, through the same bulk endpoint; that setup is not timed.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from scripts.bench import _anvil

ITEMS = 500
RESOLVER = "https://id.circular.example"
GTIN, GTIN_LOTS = "09506000134352", "09506000134369"


def _intake_world(url: str, data_dir: Path) -> tuple[Any, Any, dict[str, str], list[str]]:
    """The API on the node at `url`: a brand, a retailer and a recycler, and a run of ITEMS items sold and in use."""
    from fastapi.testclient import TestClient

    from api import add_actor, create_app
    from api.db import upgrade
    from ledger.service import LedgerService
    from ledger.settings import Settings

    settings = Settings(
        data_dir=data_dir,
        rpc_url=url,
        resolver_base_url=RESOLVER,
        keystore_password="bench-loop",  # type: ignore[arg-type]
        run_worker_in_api=False,
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    service = LedgerService(settings)
    admin = service.backend.dev_accounts()[0]
    service.deploy(admin)
    app = create_app(settings, service, run_worker=False)
    client = TestClient(app, base_url="http://testserver")
    client.__enter__()
    keys: dict[str, str] = {}
    ids: dict[str, int] = {}
    with service.sessions() as session:
        for role, name, prefixes in (("brand", "brand", ("9506000",)), ("retailer", "retailer", ()),
                                     ("recycler", "recycler", ())):
            actor, keys[name] = add_actor(service, session, role, name, prefixes=prefixes,
                                          keys=app.state.circular.keys)
            ids[name] = actor.id

    def call(path: str, who: str, body: Any, expect: int) -> Any:
        response = client.post(path, json=body, headers={"Authorization": f"Bearer {keys[who]}"})
        if response.status_code != expect:
            raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
        return response.json()

    for partner in ("retailer", "recycler"):  # the brand works with them: they may move its items
        call("/api/v1/partners", "brand", {"actorId": ids[partner]}, 201)
    lot = call("/api/v1/lots", "brand", {"gtin": GTIN_LOTS, "lotNumber": "BULK", "materialCode": "CO",
                                          "massGrams": 10_000_000}, 201)["lot"]
    serials = [f"K{n:05d}" for n in range(ITEMS)]
    call("/api/v1/runs", "brand", {"gtin": GTIN, "serials": serials,
                                   "composition": [{"lotId": lot["lotId"], "grams": 200}]}, 201)
    for action in ("sold", "in_use"):
        done = call("/api/v1/lifecycle-batches", "retailer",
                    {"action": action, "items": [{"gtin": GTIN, "serial": s} for s in serials]}, 200)
        if done["recorded"] != ITEMS:
            raise RuntimeError(f"setup: {action} recorded {done['recorded']} of {ITEMS}")
    return client, service, keys, serials


def bulk_section() -> dict[str, Any]:
    out: dict[str, Any] = {}
    data_dir = Path(tempfile.mkdtemp(prefix="bench-loop-"))
    node = _anvil("--block-time", "1")
    try:
        client, service, keys, serials = _intake_world(node.url, data_dir / "bulk")
        body = {"action": "collected", "items": [{"gtin": GTIN, "serial": s} for s in serials]}
        started = time.perf_counter()
        response = client.post("/api/v1/lifecycle-batches", json=body,
                               headers={"Authorization": f"Bearer {keys['recycler']}"})
        elapsed = time.perf_counter() - started
        answer = response.json()
        # A figure never counts a step that was not recorded.
        if response.status_code != 200 or answer["recorded"] != ITEMS:
            raise RuntimeError(f"bulk collect: {response.status_code} {str(answer)[:300]}")
        out["bulk_collect_500_s"] = round(elapsed, 2)
        out["bulk_collect_items_per_s"] = round(ITEMS / elapsed, 1)
        client.__exit__(None, None, None)
        service.close()
    finally:
        node.stop()

    node = _anvil()  # automine: each single call waits for its own transaction only
    try:
        client, service, keys, serials = _intake_world(node.url, data_dir / "single")
        headers = {"Authorization": f"Bearer {keys['recycler']}"}
        started = time.perf_counter()
        for serial in serials:
            response = client.post("/api/v1/lifecycle-events", json={"gtin": GTIN, "serial": serial,
                                                                      "action": "collected"}, headers=headers)
            if response.status_code != 201:
                raise RuntimeError(f"single collect: {response.status_code} {response.text[:300]}")
        out["single_collect_500_s"] = round(time.perf_counter() - started, 2)
        client.__exit__(None, None, None)
        service.close()
    finally:
        node.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    out["bulk_collect_speedup_vs_single"] = round(out["single_collect_500_s"] / out["bulk_collect_500_s"], 1)
    print(f"FIGURE bulk collect of {ITEMS}: {out['bulk_collect_500_s']} s in one request (1 s blocks), "
          f"{out['single_collect_500_s']} s in {ITEMS} requests (automine): {out['bulk_collect_speedup_vs_single']}x")
    return out


__all__ = ["bulk_section"]
