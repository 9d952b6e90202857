"""Bench room "api": EPCIS capture, passport reads on one uvicorn worker, the provenance trace, the demo's memory.

One world is built once per bench process and shared by the sections that need it: an Anvil node (0.2 s interval
mining, so that pipelined transitions of 1,000 items take about a second), a SQLite database and three generations of
1,000 items each, made through the API as brands and a recycler would:

* generation 1: Brand A's run of 1,000 T-shirts from virgin cotton and polyester;
* they are sold, worn and collected (pipelined on-chain transitions, as a till or a recycler's intake would send
  them), then recycled 100 at a time into 10 recovered lots R1-0..9, each approved for Brand B;
* generation 2: Brand B's 1,000 tote bags in 10 runs, run k made of R1-k and virgin cotton;
* they are collected and recycled into 10 recovered lots R2-0..9, lot m taking the bags m, m+10, m+20…, so that
  each R2 lot has ancestors in every R1 lot (a third-generation item has 1,000 first-generation ancestors);
* generation 3: Brand A's 1,000 T-shirts in 10 runs, run m made of R2-m and virgin cotton.

Reads and capture go through real HTTP to ``uvicorn --factory api.main:create_app --workers 1`` in a subprocess
(``wrk`` from Debian generates the read load from its own process); the trace is timed in-process on the same database.
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
RESOLVER = "https://id.circular.example"
GTIN_A, GTIN_A_LOTS = "09506000134352", "09506000134369"  # Brand A (prefix 9506000): T-shirts, its lots
GTIN_B, GTIN_B_LOTS = "04012345123456", "04012345123463"  # Brand B (prefix 4012345): tote bags, its lots
GTIN_ELSEWHERE = "00614141107346"  # no brand's product here: what any actor may capture events about
ITEMS_PER_GENERATION = 1_000
GROUP = 100  # items per recycling and per run from one recovered lot
RECOVERED_GRAMS = 14_000  # recycled cotton, of the 15,000 g of cotton in 100 collected items (per-material balance)
RECOVERED_PER_ITEM, VIRGIN_PER_ITEM = 120, 80
PASSWORD = "bench-api"
READ_SECONDS = 5  # wrk takes whole seconds
WARMUP_SECONDS = 2
READ_ITEMS = 100  # the read load rotates over this many third-generation items
CONNECTIONS = 16  # saturates one worker; more only lengthens the queue (and the p99) without adding rps


@dataclass
class World:
    data_dir: Path
    rpc_url: str
    keys: dict[str, str]  # actor name → API key
    gen1: list[str] = field(default_factory=list)  # Digital Link paths
    gen2: list[str] = field(default_factory=list)
    gen3: list[str] = field(default_factory=list)
    db_url: str | None = None  # unset: SQLite in data_dir
    filler: list[str] = field(default_factory=list)  # the scale world's further items

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{(self.data_dir / 'circular.sqlite').resolve()}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CIRCULAR_")}
        env.update(
            {
                "CIRCULAR_DATA_DIR": str(self.data_dir),
                "CIRCULAR_RPC_URL": self.rpc_url,
                "CIRCULAR_RESOLVER_BASE_URL": RESOLVER,
                "CIRCULAR_KEYSTORE_PASSWORD": PASSWORD,
                "CIRCULAR_RUN_WORKER_IN_API": "false",
                "CIRCULAR_BATCH_SIZE": "10000",
                "CIRCULAR_BATCH_MAX_WAIT_S": "0",
                # The load generator is one client on loopback, standing for many: it plays their proxy (the scan
                # flows name each phone's address), and the per-client request limit runs, but never binds.
                "CIRCULAR_API_TRUSTED_PROXIES": '["127.0.0.1"]',
                "CIRCULAR_API_REQUESTS_PER_CLIENT_PER_MINUTE": "1000000000",
            }
        )
        if self.db_url:
            env["CIRCULAR_DB_URL"] = self.db_url
        return env


_WORLD: World | None = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _check(response: httpx.Response, expect: int) -> Any:
    if response.status_code != expect:
        raise RuntimeError(f"{response.request.method} {response.request.url}: {response.status_code} "
                           f"{response.text[:300]}")
    return response.json() if response.content else None


def _serials(prefix: str, start: int, count: int) -> list[str]:
    return [f"{prefix}{n:05d}" for n in range(start, start + count)]


def world() -> World:
    """The shared three-generation world (built on first use, removed at exit)."""
    global _WORLD
    if _WORLD is None:
        _WORLD = _build_world()
    return _WORLD


SCALE_ITEMS = 100_000  # the scale section's world: the three generations and items of further runs up to this many
FILLER_RUN = 10_000  # items per further run (the API's largest run)
_WORLDS: dict[str, World] = {}


def scale_world() -> World:
    """The three-generation world (:func:`world`, the same database and chain) grown to SCALE_ITEMS items with runs
    of virgin material, made through the API and anchored. Growing the world rather than building another one
    spares a second build of its three generations; the sections that read the 3,000-item world run before it."""
    if "scale" not in _WORLDS:
        w = world()
        _grow_world(w, int(os.environ.get("CIRCULAR_BENCH_SCALE_ITEMS", SCALE_ITEMS)) - 3 * ITEMS_PER_GENERATION)
        _WORLDS["scale"] = w
    return _WORLDS["scale"]


def postgres_world() -> World:
    """The three-generation world on PostgreSQL (a schema of its own, dropped at exit)."""
    if "postgres" not in _WORLDS:
        from sqlalchemy import create_engine, text

        schema = f"bench_{os.getpid()}_{int(time.time())}"
        admin = create_engine(PG_URL)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))

        def drop() -> None:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            admin.dispose()

        atexit.register(drop)
        built = _build_world(db_url=f"{PG_URL}?options=-csearch_path%3D{schema}")
        # As a database in service would be: vacuumed and analysed (a freshly loaded table's autovacuum otherwise
        # starts when it likes, in the middle of a measurement, on the same two cores).
        engine = create_engine(built.database_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            tables = connection.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = :schema"), {"schema": schema}
            ).scalars()
            for table in list(tables):
                connection.execute(text(f'VACUUM ANALYZE "{schema}"."{table}"'))
        engine.dispose()
        _WORLDS["postgres"] = built
    return _WORLDS["postgres"]


PG_URL = os.environ.get("CIRCULAR_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _build_world(db_url: str | None = None) -> World:
    from fastapi.testclient import TestClient

    from api import add_actor, create_app
    from api.db import upgrade
    from ledger.client import ItemState, RunCommitment
    from ledger.ids import item_id
    from ledger.merkle import MerkleTree
    from ledger.service import LedgerService
    from ledger.settings import Settings
    from scripts.bench import _anvil

    started = time.perf_counter()
    node = _anvil("--block-time", "0.2")
    atexit.register(node.stop)
    data_dir = Path(tempfile.mkdtemp(prefix="bench-api-"))
    atexit.register(shutil.rmtree, data_dir, True)
    settings = Settings(
        data_dir=data_dir,
        rpc_url=node.url,
        db_url=db_url,
        resolver_base_url=RESOLVER,
        keystore_password=PASSWORD,  # type: ignore[arg-type]
        run_worker_in_api=False,
        batch_size=10_000,
        batch_max_wait_s=0,
    )
    upgrade(settings.database_url)
    service = LedgerService(settings)
    dev = service.backend.dev_accounts()
    admin, anchorer = dev[0], dev[9]
    ledger = service.deploy(admin)
    ledger.grant_role(admin, "anchorer", anchorer.address)
    app = create_app(settings, service, run_worker=False)
    keys: dict[str, str] = {}
    accounts: dict[str, Any] = {}
    ids: dict[str, int] = {}
    out = World(data_dir, node.url, keys, db_url=db_url)
    with TestClient(app, base_url=RESOLVER) as client:
        with service.sessions() as session:
            for role, name, prefixes in (
                ("brand", "Brand A", ("9506000",)),
                ("brand", "Brand B", ("4012345",)),
                ("recycler", "Recycler", ()),
                ("retailer", "Retailer", ()),
            ):
                actor, key = add_actor(service, session, role, name, prefixes=prefixes, keys=app.state.circular.keys)
                keys[name], ids[name] = key, actor.id
                accounts[name] = app.state.circular.keys.account(actor)

        def call(method: str, path: str, who: str, body: Any, expect: int = 201) -> Any:
            headers = {"Authorization": f"Bearer {keys[who]}"}
            return _check(client.request(method, path, json=body, headers=headers), expect)

        for brand in ("Brand A", "Brand B"):  # each brand works with the retailer and the recycler
            for partner in ("Retailer", "Recycler"):
                call("POST", "/api/v1/partners", brand, {"actorId": ids[partner]})

        for gtin, who, name in ((GTIN_A, "Brand A", "Organic cotton T-shirt"),
                                (GTIN_B, "Brand B", "Recycled-cotton tote bag")):
            call("PUT", f"/api/v1/products/{gtin}", who, {"name": name, "description": "bench"}, 200)

        def lot(who: str, gtin: str, number: str, code: str, grams: int) -> str:
            body = {"gtin": gtin, "lotNumber": number, "materialCode": code, "massGrams": grams}
            lot_id: str = call("POST", "/api/v1/lots", who, body)["lot"]["lotId"]
            return lot_id

        cotton_a = lot("Brand A", GTIN_A_LOTS, "CO-A", "CO", 10_000_000)
        polyester_a = lot("Brand A", GTIN_A_LOTS, "PES-A", "PES", 10_000_000)
        cotton_b = lot("Brand B", GTIN_B_LOTS, "CO-B", "CO", 10_000_000)

        runs: list[RunCommitment] = []

        def run(who: str, gtin: str, serials: list[str], parts: list[tuple[str, int]]) -> list[str]:
            body = {"gtin": gtin, "serials": serials, "composition": [{"lotId": i, "grams": g} for i, g in parts]}
            made = call("POST", "/api/v1/runs", who, body)
            ident = {s: item_id(gtin, s) for s in serials}
            proofs = MerkleTree.of(list(ident.values())).proofs()
            runs.append(RunCommitment(bytes.fromhex(made["runId"][2:]), gtin, bytes.fromhex(made["itemsRoot"][2:]),
                                      tuple(serials), {s: proofs[i] for s, i in ident.items()}))
            return [f"/01/{gtin}/21/{s}" for s in serials]

        def collect(gtin: str, serials: list[str], made: list[RunCommitment]) -> None:
            """Sold and worn (the retailer), collected (the recycler): pipelined, as a till or an intake sends them."""
            by_run = {s: r for r in made for s in r.serials}
            for commitment in made:
                mine = [s for s in serials if by_run[s] is commitment]
                ledger.transition_run_items(accounts["Retailer"], commitment, [(s, ItemState.SOLD) for s in mine])
            ids_ = [item_id(gtin, s) for s in serials]
            ledger.transition_many(accounts["Retailer"], [(i, ItemState.IN_USE) for i in ids_])
            ledger.transition_many(accounts["Recycler"], [(i, ItemState.COLLECTED) for i in ids_])

        def recycle(gtin: str, groups: list[list[str]], number: str, approve_for: str) -> list[str]:
            recovered = []
            for k, serials in enumerate(groups):
                body = {"items": [{"gtin": gtin, "serial": s} for s in serials], "materialCode": "rCO",
                        "lotNumber": f"{number}-{k}", "massGrams": RECOVERED_GRAMS}
                lot_id = call("POST", "/api/v1/recycling", "Recycler", body)["lot"]["lotId"]
                call("POST", f"/api/v1/lots/{lot_id}/approvals", "Recycler",
                     {"operatorId": ids[approve_for], "grams": RECOVERED_GRAMS})
                recovered.append(lot_id)
            return recovered

        n = ITEMS_PER_GENERATION
        gen1 = _serials("G1-", 0, n)
        out.gen1 = run("Brand A", GTIN_A, gen1, [(cotton_a, 150), (polyester_a, 50)])
        collect(GTIN_A, gen1, runs[-1:])
        r1 = recycle(GTIN_A, [gen1[i : i + GROUP] for i in range(0, n, GROUP)], "R1", "Brand B")

        gen2 = _serials("G2-", 0, n)
        for k, lot_id in enumerate(r1):
            out.gen2 += run("Brand B", GTIN_B, gen2[k * GROUP : (k + 1) * GROUP],
                            [(lot_id, RECOVERED_PER_ITEM), (cotton_b, VIRGIN_PER_ITEM)])
        collect(GTIN_B, gen2, runs[-len(r1):])
        groups = [gen2[m::10] for m in range(10)]  # every R2 lot draws on every R1 lot
        r2 = recycle(GTIN_B, groups, "R2", "Brand A")

        gen3 = _serials("G3-", 0, n)
        for m, lot_id in enumerate(r2):
            out.gen3 += run("Brand A", GTIN_A, gen3[m * GROUP : (m + 1) * GROUP],
                            [(lot_id, RECOVERED_PER_ITEM), (cotton_a, VIRGIN_PER_ITEM)])
        service.worker(anchorer).drain()  # passports say "verified", as they would in production
    service.close()
    kind = f"{len(out.gen1) + len(out.gen2) + len(out.gen3):,} items"
    print(f"FIGURE bench_api_world_seconds ({kind}, {'PostgreSQL' if db_url else 'SQLite'}): "
          f"{time.perf_counter() - started:.1f}")
    return out


def _world_settings(w: World) -> Any:
    from ledger.settings import Settings

    return Settings(
        data_dir=w.data_dir,
        rpc_url=w.rpc_url,
        db_url=w.db_url,
        resolver_base_url=RESOLVER,
        keystore_password=PASSWORD,  # type: ignore[arg-type]
        run_worker_in_api=False,
        batch_size=10_000,
        batch_max_wait_s=0,
    )


def _grow_world(w: World, filler: int) -> None:
    """Add `filler` items to `w` in runs of FILLER_RUN of virgin material, as Brand A's other products would be made,
    through the API, and anchor them (their passports then say "verified", as they would in production)."""
    from fastapi.testclient import TestClient

    from api import create_app
    from ledger.service import LedgerService

    started = time.perf_counter()
    service = LedgerService(_world_settings(w))
    anchorer = service.backend.dev_accounts()[9]
    app = create_app(service.settings, service, run_worker=False)
    with TestClient(app, base_url="http://testserver") as client:

        def call(path: str, body: Any) -> Any:
            headers = {"Authorization": f"Bearer {w.keys['Brand A']}"}
            return _check(client.post(path, json=body, headers=headers), 201)

        lots = []
        for number, code, grams in (("CO-F", "CO", 200 * filler), ("PES-F", "PES", 100 * filler)):
            body = {"gtin": GTIN_A_LOTS, "lotNumber": number, "materialCode": code, "massGrams": grams}
            lots.append(call("/api/v1/lots", body)["lot"]["lotId"])
        for start in range(0, filler, FILLER_RUN):
            serials = _serials("F-", start, min(FILLER_RUN, filler - start))
            body = {"gtin": GTIN_A, "serials": serials,
                    "composition": [{"lotId": lots[0], "grams": 150}, {"lotId": lots[1], "grams": 50}]}
            call("/api/v1/runs", body)
            w.filler += [f"/01/{GTIN_A}/21/{s}" for s in serials]
        made = time.perf_counter()
        service.worker(anchorer).drain()
    service.close()
    total = len(w.gen1) + len(w.gen2) + len(w.gen3) + len(w.filler)
    print(f"FIGURE bench_api_world_grown_seconds (to {total:,} items, SQLite): {time.perf_counter() - started:.1f} "
          f"(runs {made - started:.1f}, anchoring {time.perf_counter() - made:.1f})")


# -- the API server -------------------------------------------------------------------------------------------------
@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str

    def rss_peak_mb(self) -> float:
        """VmHWM: the process's peak resident set so far."""
        return self._status_mb("VmHWM:")

    def rss_now_mb(self) -> float:
        """VmRSS: the process's resident set now."""
        return self._status_mb("VmRSS:")

    def _status_mb(self, field: str) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field):
                return round(int(line.split()[1]) / 1024, 1)
        return 0.0


@contextmanager
def server(w: World) -> Iterator[Server]:
    """``uvicorn --factory api.main:create_app`` with one worker, warning logs and no access log, in its own process."""
    port = _free_port()
    command = [PY, "-m", "uvicorn", "--factory", "api.main:create_app", "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1", "--log-level", "warning", "--no-access-log"]
    process = subprocess.Popen(command, cwd=ROOT, env=w.env(), stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {process.returncode}")
            try:
                if httpx.get(f"{url}/epcis", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not answer within 60 s")
            time.sleep(0.1)
        yield Server(process, url)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- 1. capture -----------------------------------------------------------------------------------------------------
def _capture_events(count: int, start: int) -> list[dict[str, Any]]:
    from ledger.epcis import events as ev

    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    # Events about a product no brand registered here: capture authorises them without looking items up (events
    # about registered items cost about 22 ms more per 1,000: docs/security.md), and the passports read by the other
    # sections keep the timeline they had.
    return [
        ev.lifecycle(ev.Lifecycle.IN_USE, [f"{RESOLVER}/01/{GTIN_ELSEWHERE}/21/CAP-{start + i:07d}"],
                     at=t0 + timedelta(seconds=start + i))
        for i in range(count)
    ]


def _document(events: list[dict[str, Any]]) -> bytes:
    from ledger.epcis import events as ev

    return json.dumps(ev.epcis_document(events)).encode()


POLL_S = 0.02  # how often the client asks for the job's state (the figure does not depend on it; see _capture)


def _capture(client: httpx.Client, key: str, events: list[dict[str, Any]], body: bytes | None = None) -> float:
    """POST one EPCIS document, wait until its capture job reports success (202 + job, EPCIS REST), and return the
    seconds from sending the request to the job's ``finishedAt``: the server sets it right after the events are
    committed to the outbox, so it is the moment the capture became durable, on the same clock as ours.

    Timed by the job's own timestamp rather than by when a poll happens to see it: polling every 5 ms both rounded
    the figure up to the poll and took the server's CPU (each poll authenticates and reads the job) from the very
    capture it was timing. The body is serialised before the clock starts when given: the client's JSON encoding is
    not the server's capture time."""
    body = body if body is not None else _document(events)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    sent = datetime.now(UTC)
    response = client.post("/epcis/capture", content=body, headers=headers)
    if response.status_code != 202:
        raise RuntimeError(f"capture: {response.status_code} {response.text[:300]}")
    job = response.headers["location"]
    while True:
        state = _check(client.get(job, headers=headers), 200)
        if not state["running"]:
            if not state["success"] or len(state["eventIDs"]) != len(events):
                raise RuntimeError(f"capture job failed: {state['errors'][:3]}")
            return (datetime.fromisoformat(state["finishedAt"]) - sent).total_seconds()
        time.sleep(POLL_S)


def capture_section() -> dict[str, Any]:
    """EPCIS capture through the API: documents of 1,000 events, request until the job reports the events durable
    in the outbox; against the same events captured one per request."""
    w = world()
    key = w.keys["Brand A"]
    documents, per_document, singles = 5, 1_000, 200
    with server(w) as srv, httpx.Client(base_url=srv.url, timeout=120) as client:
        _capture(client, key, _capture_events(per_document, 0))  # warm-up: schema, first signature, first batch
        batches = [_capture_events(per_document, (d + 1) * per_document) for d in range(documents)]
        bodies = [_document(events) for events in batches]
        bulk_s = sum(_capture(client, key, events, body) for events, body in zip(batches, bodies, strict=True))
        single = _capture_events(singles, 10_000_000)
        single_bodies = [_document([event]) for event in single]
        single_s = sum(_capture(client, key, [event], body) for event, body in zip(single, single_bodies, strict=True))
    out: dict[str, Any] = {
        "capture_events_per_s": round(documents * per_document / bulk_s),
        "capture_document_1000_ms": round(bulk_s / documents * 1000, 1),
        "capture_single_events_per_s": round(singles / single_s, 1),
    }
    out["capture_speedup_vs_single"] = round(out["capture_events_per_s"] / out["capture_single_events_per_s"], 1)
    return out


# -- 2. reads -------------------------------------------------------------------------------------------------------
WRK_SCRIPT = """
paths = {%s}
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1], {["Accept"] = "%s"})
end
"""


def _wrk(url: str, paths: list[str], accept: str, seconds: int) -> tuple[float, float, int]:
    """Requests per second, p99 latency (ms) and non-2xx answers of `seconds` of load rotating over `paths`."""
    if shutil.which("wrk") is None:
        raise ImportError("wrk is not installed (apt-get install wrk; `make bench` does it)")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % (", ".join(json.dumps(p) for p in paths), accept))
    try:
        completed = subprocess.run(
            ["wrk", "-t", "1", "-c", str(CONNECTIONS), "-d", f"{seconds}s", "--latency", "-s", script.name, url],
            capture_output=True, text=True,
        )
    finally:
        os.unlink(script.name)
    if completed.returncode != 0:
        raise RuntimeError(f"wrk failed: {completed.stderr.strip()[:300]}")
    result = completed.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", result).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"\s99%\s+([\d.]+)(us|ms|s)", result).groups()  # type: ignore[union-attr]
    p99_ms = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", result)
    return rps, p99_ms, int(errors.group(1)) if errors else 0


def _load(url: str, paths: list[str], accept: str) -> tuple[float, float]:
    _wrk(url, paths, accept, WARMUP_SECONDS)
    rps, p99, errors = _wrk(url, paths, accept, READ_SECONDS)
    if errors:
        raise RuntimeError(f"{errors} error answers under load on {paths[0]}")
    return round(rps), round(p99, 2)


def reads_section() -> dict[str, Any]:
    """Passport JSON-LD, HTML and QR PNG on one uvicorn worker under ``wrk`` load (16 connections), rotating over
    100 third-generation items; and a trivial route of the same server (``GET /epcis``) as the ceiling."""
    w = world()
    items = w.gen3[:READ_ITEMS]
    out: dict[str, Any] = {}
    with server(w) as srv:
        out["api_start_rss_mb"] = srv.rss_now_mb()  # started and answering, before any passport is built
        for name, suffix, accept in (
            ("passport_json", "/passport.jsonld", "application/ld+json"),
            ("passport_html", "/passport", "text/html"),
            ("qr", "/qr.png", "image/png"),
        ):
            with httpx.Client(base_url=srv.url, timeout=60) as client:
                for path in items:  # each answers (and is built once) before the load: the steady state is measured
                    _check_ok(client.get(path + suffix, headers={"Accept": accept}))
            rps, p99 = _load(srv.url, [p + suffix for p in items], accept)
            out[f"{name}_rps"], out[f"{name}_p99_ms"] = rps, p99
        out["hello_rps"], out["hello_p99_ms"] = _load(srv.url, ["/epcis"], "application/json")
        out["api_peak_rss_mb"] = srv.rss_peak_mb()
    for name in ("passport_json", "passport_html", "qr"):
        out[f"{name}_vs_hello"] = round(out[f"{name}_rps"] / out["hello_rps"], 2)
    return out


def _check_ok(response: httpx.Response) -> None:
    if response.status_code != 200:
        raise RuntimeError(f"GET {response.request.url}: {response.status_code} {response.text[:200]}")


# -- 2b. the scan flow -----------------------------------------------------------------------------------------------
# What a consumer does: scan the QR code (GET the item's Digital Link with a browser's Accept: the resolver records the
# scan and answers 307), then load the page it is sent to. Each wrk thread drives one connection, so that a thread's
# Lua state sees its own flow: request() sends the scan, response() takes the 307's Location, the next request() loads
# it. A flow's time runs from sending the scan to the page's answer, read from CLOCK_MONOTONIC through LuaJIT's ffi
# (wrk's own latency figures are per request), into 0.1 ms buckets that done() merges across threads.
FLOW_SCRIPT = """
local ffi = require("ffi")
ffi.cdef[[ typedef struct { long tv_sec; long tv_nsec; } flow_timespec; int clock_gettime(int, flow_timespec *); ]]
local clock = ffi.new("flow_timespec")
local function now_us()
  ffi.C.clock_gettime(1, clock)
  return tonumber(clock.tv_sec) * 1000000 + tonumber(clock.tv_nsec) / 1000
end
local paths = {%s}
local accept = "%s"
local threads = {}
function setup(thread)
  thread:set("offset", #threads * 61)
  table.insert(threads, thread)
end
counter, following, started, phone = 0, nil, 0, ""
flows, scans, others = 0, 0, 0
buckets = {}
function request()
  if following ~= nil then
    local path = following
    following = nil
    return wrk.format("GET", path, {["Accept"] = accept, ["X-Forwarded-For"] = phone})
  end
  counter = counter + 1
  started = now_us()
  -- every flow a consumer of its own (its address, forwarded by the proxy wrk plays), as 1,000 items would be
  phone = "10." .. (offset %% 256) .. "." .. (math.floor(counter / 256) %% 256) .. "." .. (counter %% 256)
  local path = paths[((counter + offset) %% #paths) + 1]
  return wrk.format("GET", path, {["Accept"] = accept, ["X-Forwarded-For"] = phone})
end
function response(status, headers, body)
  if status == 307 then
    scans = scans + 1
    following = string.gsub(headers["location"] or headers["Location"], "^https?://[^/]+", "")
  elseif status == 200 then
    flows = flows + 1
    local bucket = math.floor((now_us() - started) / 100)
    buckets[bucket] = (buckets[bucket] or 0) + 1
  else
    others = others + 1
  end
end
function done(summary, latency, requests)
  local total, scanned, other, merged = 0, 0, 0, {}
  for _, thread in ipairs(threads) do
    total = total + thread:get("flows")
    scanned = scanned + thread:get("scans")
    other = other + thread:get("others")
    for bucket, n in pairs(thread:get("buckets")) do merged[bucket] = (merged[bucket] or 0) + n end
  end
  local keys = {}
  for bucket in pairs(merged) do table.insert(keys, bucket) end
  table.sort(keys)
  local seen, p99 = 0, 0
  for _, bucket in ipairs(keys) do
    seen = seen + merged[bucket]
    if seen >= total * 0.99 then p99 = (bucket + 1) / 10; break end
  end
  io.write(string.format("FLOWS %%d SCANS %%d OTHER %%d SECONDS %%.3f P99MS %%.1f\\n",
                         total, scanned, other, summary.duration / 1e6, p99))
end
"""
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
FLOW_ITEMS = 1_000  # distinct third-generation items: every one of them is scanned


@dataclass(frozen=True)
class FlowRun:
    flows_per_s: float
    p99_ms: float
    flows: int
    scans: int  # 307 answers: each is a scan the resolver must have recorded
    others: int  # answers that were neither a redirect nor a page


def _flow(url: str, paths: list[str], seconds: int) -> FlowRun:
    """`seconds` of scan flows over `paths`, CONNECTIONS at once (one wrk thread each)."""
    if shutil.which("wrk") is None:
        raise ImportError("wrk is not installed (apt-get install wrk; `make bench` does it)")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(FLOW_SCRIPT % (", ".join(json.dumps(p) for p in paths), BROWSER_ACCEPT))
    try:
        completed = subprocess.run(
            ["wrk", "-t", str(CONNECTIONS), "-c", str(CONNECTIONS), "-d", f"{seconds}s", "-s", script.name, url],
            capture_output=True, text=True,
        )
    finally:
        os.unlink(script.name)
    if completed.returncode != 0:
        raise RuntimeError(f"wrk failed: {completed.stderr.strip()[:300]}")
    found = re.search(r"FLOWS (\d+) SCANS (\d+) OTHER (\d+) SECONDS ([\d.]+) P99MS ([\d.]+)", completed.stdout)
    if found is None:
        raise RuntimeError(f"wrk's flow script printed no summary: {completed.stdout[-300:]}")
    flows, scans, others = (int(found.group(i)) for i in (1, 2, 3))
    seconds_run, p99 = float(found.group(4)), float(found.group(5))
    return FlowRun(round(flows / seconds_run, 1), p99, flows, scans, others)


def _scan_rows(w: World) -> int:
    from sqlalchemy import create_engine, func, select

    from api.models import Scan

    engine = create_engine(w.database_url)
    try:
        with engine.connect() as connection:
            return int(connection.scalar(select(func.count()).select_from(Scan)) or 0)
    finally:
        engine.dispose()


def _scan_flow(w: World, name: str, items: list[str]) -> dict[str, Any]:
    """`name`_rps and _p99_ms of the scan flow over `items` on one worker; `name`_page_rps and _page_p99_ms of the
    page alone in the same server's run. Every answered scan must be in the database once the server has stopped."""
    out: dict[str, Any] = {}
    before = _scan_rows(w)
    with server(w) as srv:
        _flow(srv.url, items, WARMUP_SECONDS)
        run = _flow(srv.url, items, READ_SECONDS)
        out[f"{name}_rps"], out[f"{name}_p99_ms"] = run.flows_per_s, run.p99_ms
        with httpx.Client(base_url=srv.url, timeout=120) as client:
            for path in items:  # every page answers (and is rendered once) before the page-only load
                _check_ok(client.get(path + "/passport", headers={"Accept": BROWSER_ACCEPT}))
        out[f"{name}_page_rps"], out[f"{name}_page_p99_ms"] = _load(
            srv.url, [p + "/passport" for p in items], BROWSER_ACCEPT
        )
    if run.others:
        raise RuntimeError(f"{run.others} answers of the scan flow were neither a redirect nor a page")
    recorded = _scan_rows(w) - before  # the warm-up's scans and the measured run's
    if recorded < run.scans:
        raise RuntimeError(f"{run.scans} scans answered in the measured run, {recorded} recorded in all")
    out[f"{name}_scans_recorded"] = recorded
    out[f"{name}_vs_page"] = round(out[f"{name}_rps"] / out[f"{name}_page_rps"], 3)
    return out


def _first_reads(url: str, paths: list[str], accept: str) -> float:
    """p99 (ms) of reading each of `paths` once, one after the other, on a server that has rendered none of them."""
    timings = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for path in paths:
            started = time.perf_counter()
            _check_ok(client.get(path, headers={"Accept": accept}))
            timings.append(time.perf_counter() - started)
    return _p99(timings)


def scan_flow_section() -> dict[str, Any]:
    """The scan flow (Digital Link with a browser's Accept, recorded, 307, then the page) over 1,000 distinct
    third-generation items on one worker, beside the same run's page reads without scans (SQLite); and beside them,
    a page and a JSON-LD read of a version not rendered yet, and the JSON-LD and QR code reads under load."""
    w = world()
    items = w.gen3[:FLOW_ITEMS]
    out = _scan_flow(w, "scan_flow", items)
    with server(w) as srv:
        pages = [p + "/passport" for p in items[:200]]
        out["passport_page_uncached_p99_ms"] = _first_reads(srv.url, pages, BROWSER_ACCEPT)
        out["passport_json_uncached_version_p99_ms"] = _first_reads(
            srv.url, [p + "/passport.jsonld" for p in items[:200]], "application/ld+json"
        )
        for name, suffix, accept in (("flow_items_json", "/passport.jsonld", "application/ld+json"),
                                     ("flow_items_qr", "/qr.png", "image/png")):
            paths = [p + suffix for p in items]
            with httpx.Client(base_url=srv.url, timeout=120) as client:
                for path in paths:  # each rendered once before the load: the steady state is measured
                    _check_ok(client.get(path, headers={"Accept": accept}))
            out[f"{name}_rps"], out[f"{name}_p99_ms"] = _load(srv.url, paths, accept)
    return out


def scan_flow_pg_section() -> dict[str, Any]:
    """The scan flow of :func:`scan_flow_section` on PostgreSQL."""
    w = postgres_world()
    return _scan_flow(w, "scan_flow_pg", w.gen3[:FLOW_ITEMS])


def _database_bytes(w: World) -> int:
    from sqlalchemy import create_engine, text

    if w.db_url is None:
        path = w.data_dir / "circular.sqlite"
        with sqlite3.connect(path) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return path.stat().st_size
    engine = create_engine(w.database_url)
    try:
        with engine.connect() as connection:
            schema = connection.execute(text("SELECT current_schema()")).scalar_one()
            total = connection.execute(
                text("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n "
                     "ON n.oid = c.relnamespace WHERE n.nspname = :schema AND c.relkind = 'r'"),
                {"schema": schema},
            ).scalar_one()
            return int(total or 0)
    finally:
        engine.dispose()


def _counts(w: World) -> tuple[int, int, int]:
    """(items, events, passport versions) in the world's database."""
    from sqlalchemy import create_engine, func, select

    from api.models import Item
    from ledger.outbox import OutboxEvent
    from ledger.versions import DocumentVersion

    engine = create_engine(w.database_url)
    try:
        with engine.connect() as connection:
            return tuple(  # type: ignore[return-value]
                int(connection.scalar(select(func.count()).select_from(table)) or 0)
                for table in (Item, OutboxEvent, DocumentVersion)
            )
    finally:
        engine.dispose()


def scale_section() -> dict[str, Any]:
    """The scan flow and the page on the 3,000-item world, then on the same world grown to 100,000 items (the same
    1,000 third-generation items flowed in both, in the same run); the database's size per item and per event."""
    small = world()
    out: dict[str, Any] = {}
    out.update(_scan_flow(small, "scale_small", small.gen3[:FLOW_ITEMS]))
    big = scale_world()
    out.update(_scan_flow(big, "scale_big", big.gen3[:FLOW_ITEMS]))
    out["scale_flow_slowdown"] = round(out["scale_small_rps"] / out["scale_big_rps"], 2)
    out["scale_flow_p99_ratio"] = round(out["scale_big_p99_ms"] / out["scale_small_p99_ms"], 2)
    out["scale_page_p99_ratio"] = round(out["scale_big_page_p99_ms"] / out["scale_small_page_p99_ms"], 2)
    items, events, versions = _counts(big)
    size = _database_bytes(big)
    out.update(
        scale_items=items,
        scale_events=events,
        scale_versions=versions,
        scale_db_mb=round(size / 1e6, 1),
        scale_db_bytes_per_item=round(size / items),
        scale_db_bytes_per_event=round(size / events),
    )
    return out


def build_section() -> dict[str, Any]:
    """A third-generation passport version built as a write builds it (its content, JCS form, hash and row), in-process
    on the world's database, each in a transaction rolled back; and a lot correction that reaches every passport
    showing the lot (a recovered lot of the first generation: its 100 tote bags and every third-generation item)."""
    from sqlalchemy import select

    from api import versions
    from api.config import ApiSettings
    from api.main import completions
    from api.models import Item, Lot
    from api.state import AppState
    from ledger.client import ItemState
    from ledger.service import LedgerService
    from ledger.settings import Settings

    w = world()
    settings = Settings(data_dir=w.data_dir, rpc_url=w.rpc_url, db_url=w.db_url, resolver_base_url=RESOLVER,
                        keystore_password=PASSWORD)  # type: ignore[arg-type]
    service = LedgerService(settings)
    state = AppState.create(settings, ApiSettings(), service, completions())
    serials = [p.rsplit("/", 1)[1] for p in w.gen3][::5]  # 200 items, spread over the 10 runs
    timings: list[float] = []
    cpu: list[float] = []  # the process's own CPU time: what the build costs whatever else shares the machine
    gc.collect()
    gc.freeze()  # as the API does at start-up (see trace_section)
    try:
        for serial in serials:
            with service.sessions() as session:
                item = session.scalar(select(Item).where(Item.gtin == GTIN_A, Item.serial == serial))
                assert item is not None
                item.state = int(ItemState.SOLD)  # what a sale changes: a version to make
                session.flush()  # the write's own row, not the version's work
                started, started_cpu = time.perf_counter(), time.process_time()
                made = versions.build(session, state, [item], "event")
                timings.append(time.perf_counter() - started)
                cpu.append(time.process_time() - started_cpu)
                assert len(made) == 1
                session.rollback()
        with service.sessions() as session:
            lot = session.scalar(select(Lot).where(Lot.lot_number == "R1-0"))
            assert lot is not None
            lot.origin = "Corrected by the bench"
            started, started_cpu = time.perf_counter(), time.process_time()
            fanned = versions.after_lot(session, state, lot)
            fan_s, fan_cpu_s = time.perf_counter() - started, time.process_time() - started_cpu
            session.rollback()
        checks = _read_checks(state, [p.rsplit("/", 1)[1] for p in w.gen3])
    finally:
        gc.unfreeze()
        service.close()
    return {
        **checks,
        "version_build_p99_ms": _p99(timings),
        "version_build_median_ms": round(statistics.median(timings) * 1000, 2),
        "version_build_cpu_p99_ms": _p99(cpu),
        "lot_correction_versions": len(fanned),
        "lot_correction_versions_per_s": round(len(fanned) / fan_s),
        "lot_correction_versions_per_cpu_s": round(len(fanned) / fan_cpu_s),
    }


def _read_checks(state: Any, serials: list[str]) -> dict[str, Any]:
    """What a passport read does before it renders, in-process on the world's database, per third-generation item:
    the indexed lookup of its current version, and the check of the stored bytes against their anchored hash
    (SHA-256, leaf, Merkle proof and a root the chain confirmed, the last two remembered once checked). Each item is
    read once to warm what is remembered (the roots are asked of the chain once), then timed."""
    import hashlib

    from api.reads import PassportReads
    from api.routes.passport import TEMPLATES, subject_of

    reads = PassportReads(state, TEMPLATES)
    subjects = [subject_of(state, GTIN_A, serial) for serial in serials]
    lookups: list[float] = []
    checks: list[float] = []
    statuses: dict[str, int] = {}
    for timed in (False, True):
        for subject in subjects:
            started = time.perf_counter()
            row = reads.store.read(subject)
            looked = time.perf_counter()
            assert row is not None
            digest = hashlib.sha256(row.document.encode()).digest()
            envelope = reads._envelope(digest, row.document)
            check = reads.verifier.check(row, digest, envelope, subject)
            done = time.perf_counter()
            if timed:
                lookups.append(looked - started)
                checks.append(done - looked)
                statuses[check.status] = statuses.get(check.status, 0) + 1
    micro = {"read_lookup": lookups, "read_check": checks}
    out: dict[str, Any] = {"read_check_verified": statuses.get("verified", 0), "read_check_items": len(subjects)}
    for name, samples in micro.items():
        out[f"{name}_median_us"] = round(statistics.median(samples) * 1e6, 1)
        out[f"{name}_p99_us"] = round(statistics.quantiles(samples, n=100)[98] * 1e6, 1)
    return out


# -- 3. trace -------------------------------------------------------------------------------------------------------
def _p99(samples: list[float]) -> float:
    return round(statistics.quantiles(samples, n=100)[98] * 1000, 2)


def trace_section() -> dict[str, Any]:
    """p99 of the provenance trace of third-generation items (1,000 items per generation), in-process on the API's
    database, against a naive walk (one query per item and per lot); and p99 of the whole passport JSON over HTTP."""
    from sqlalchemy import select

    from api import passport as pp
    from api.models import Item, Lot
    from ledger.service import LedgerService
    from ledger.settings import Settings

    w = world()
    settings = Settings(data_dir=w.data_dir, rpc_url=w.rpc_url, resolver_base_url=RESOLVER,
                        keystore_password=PASSWORD)  # type: ignore[arg-type]
    service = LedgerService(settings)
    serials = [p.rsplit("/", 1)[1] for p in w.gen3]
    sample = serials[::5]  # 200 items, spread over the 10 runs
    ours: list[float] = []
    naive: list[float] = []
    generations = 0
    # The bench process holds the whole world it built; a full collection over that heap (150 ms) is this process's
    # cost, not the trace's. Frozen, it is left out of collections, as a server's start-up heap would be.
    gc.collect()
    gc.freeze()
    try:
        with service.sessions() as session:
            for serial in sample:
                item = session.scalar(select(Item).where(Item.gtin == GTIN_A, Item.serial == serial))
                assert item is not None
                started = time.perf_counter()
                lots = {lot.lot_id: lot for lot in session.scalars(
                    select(Lot).where(Lot.lot_id.in_([str(i) for i, _ in item.composition])))}
                trace = pp.provenance(session, [(lots[str(i)], int(g)) for i, g in item.composition], 12)
                ours.append(time.perf_counter() - started)
                generations = max(generations, len(trace))
                session.expunge_all()  # each trace starts cold, as a request's session does
            for serial in sample[:20]:
                started = time.perf_counter()
                naive_trace = _naive_provenance(session, GTIN_A, serial)
                naive.append(time.perf_counter() - started)
                session.expunge_all()
            assert len(naive_trace) == generations == 3, (len(naive_trace), generations)
    finally:
        gc.unfreeze()
        service.close()
    out: dict[str, Any] = {
        "trace_p99_ms": _p99(ours),
        "trace_median_ms": round(statistics.median(ours) * 1000, 2),
        "trace_naive_median_ms": round(statistics.median(naive) * 1000, 2),
    }
    out["trace_speedup_vs_naive"] = round(out["trace_naive_median_ms"] / out["trace_median_ms"], 1)
    # The whole passport of a third-generation item, uncached: a fresh item each time.
    with server(w) as srv, httpx.Client(base_url=srv.url, timeout=60) as client:
        timings = []
        for path in w.gen3[1::5][:100]:
            started = time.perf_counter()
            _check_ok(client.get(path + "/passport.jsonld"))
            timings.append(time.perf_counter() - started)
    out["passport_json_uncached_p99_ms"] = _p99(timings)
    return out


def _naive_provenance(session: Any, gtin: str, serial: str) -> list[list[str]]:
    """The walk without set-based queries: every item and every lot loaded on its own (N+1)."""
    from sqlalchemy import select

    from api.models import Item, Lot

    item = session.scalar(select(Item).where(Item.gtin == gtin, Item.serial == serial))
    frontier = [session.get(Lot, str(lot_id)) for lot_id, _ in item.composition]
    generations = [[lot.lot_id for lot in frontier]]
    while True:
        sources = [i for lot in frontier if lot.recovered for i in (lot.source_items or [])]
        if not sources:
            return generations
        items = [session.scalar(select(Item).where(Item.item_id == i)) for i in sources]
        frontier = []
        for source in items:
            for lot_id, _ in source.composition:
                lot = session.get(Lot, str(lot_id))
                if lot not in frontier:
                    frontier.append(lot)
        generations.append([lot.lot_id for lot in frontier])


# -- 4. demo --------------------------------------------------------------------------------------------------------
def demo_section() -> dict[str, Any]:
    """`make demo` (``circular demo``) in a subprocess: wall-clock time and peak RSS.

    The demo runs under a small Python parent of its own, which reports ``RUSAGE_CHILDREN``: in this process that
    figure would be the largest of every child so far (uvicorn servers, Anvil), not the demo's."""
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        command = [str(Path(PY).parent / "circular"), "demo", "--out", tmp + "/out"]
        probe = (
            "import resource, subprocess, sys, time\n"
            "t = time.perf_counter()\n"
            "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - t)\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("CIRCULAR_")}
        result = subprocess.run([PY, "-c", probe, *command], cwd=tmp, env=env, check=True, capture_output=True,
                                text=True)
    peak_kb, seconds = result.stdout.split()
    return {"demo_peak_rss_mb": round(int(peak_kb) / 1024, 1), "demo_seconds": round(float(seconds), 1)}


__all__ = [
    "build_section",
    "capture_section",
    "demo_section",
    "reads_section",
    "scale_section",
    "scale_world",
    "scan_flow_pg_section",
    "scan_flow_section",
    "trace_section",
    "world",
]
