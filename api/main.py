"""The FastAPI app: the GS1 resolver and passports (public), the actors' write API and the EPCIS 2.0 REST interface.

``create_app(settings, service)`` builds an app; importing this module builds none. ``circular serve`` runs one, and
so does ``uvicorn --factory api.main:create_app``, with settings from the environment. Without a ``service`` the app
opens the ledger on start-up (migrating the database first) and, when ``run_worker_in_api`` is set and an anchorer key
is configured, runs the anchoring worker.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from ledger.files import private_dir
from ledger.settings import Settings

from . import edge, health, problems, services, versions, writes
from .config import ApiSettings
from .limits import BodyLimitMiddleware
from .ratelimit import ClientRateLimit
from .routes import (
    actors,
    brands,
    chain_rpc,
    console,
    corrections,
    epcis,
    items,
    lots,
    operators,
    partners,
    products,
    recycling,
    resolver,
    returns,
)
from .scans import scans_for
from .state import AppState, BatchCompletion, Completion

if TYPE_CHECKING:
    from ledger.service import LedgerService

log = logging.getLogger("circular.api")

STATIC_DIR = Path(__file__).resolve().parent / "static"
EXPOSED_HEADERS = [
    "Link",
    "Location",
    "Retry-After",
    "GS1-EPCIS-Version",
    "GS1-CBV-Version",
    "GS1-Next-Page-Token-Expires",
    "GS1-EPCIS-Capture-Limit",
    "GS1-Extensions",
]


def batch_completions() -> dict[str, BatchCompletion]:
    """The completions that also take many intents of their kind at once (a bulk write's)."""
    return {"lifecycle": services.items.complete_lifecycles}


def completions() -> dict[str, Completion]:
    """What completing a write intent of each kind writes to the API's rows (``api/intents.py`` runs them)."""
    return {
        "lot": writes.complete_lot,
        "approval": writes.complete_approval,
        "item": services.items.complete_item,
        "run": services.items.complete_run,
        "lifecycle": services.items.complete_lifecycle,
        "partner": services.partners.complete_partner,
    }


def _start_worker(state: AppState) -> tuple[threading.Event, threading.Thread] | None:
    from ledger.errors import LedgerError

    try:
        anchorer = state.service.account("anchorer")
    except LedgerError as exc:
        log.warning("anchoring worker not started: %s", exc)
        return None
    stop = threading.Event()
    worker = state.service.worker(anchorer)
    thread = threading.Thread(
        target=worker.run_forever,
        args=(stop,),
        kwargs={
            "max_backoff_s": state.service.settings.worker_max_backoff_s,
            "guard": health.monitor_of(state).require_ours,  # never anchors to a node that is not our chain
            "on_fault": health.monitor_of(state).fault,
        },
        name="anchoring-worker",
        daemon=True,
    )
    thread.start()
    return stop, thread


def _reconcile_writes(state: AppState) -> None:
    """Settle the writes a previous run left between sending and recording (see ``api/intents.py``)."""
    from .intents import reconcile

    try:
        settled = reconcile(state)
    except Exception as exc:  # the node or the database is not there yet: each write's retry reconciles it too
        log.warning("pending writes not reconciled at start-up: %s", exc)
        return
    if settled:
        log.info("reconciled %d pending writes", settled)


def _resume_captures(state: AppState) -> None:
    """Run the EPCIS capture jobs a previous run accepted but did not finish (see ``epcis.resume_captures``)."""
    try:
        resumed = epcis.resume_captures(state)
    except Exception as exc:  # as for writes: a database not there yet is no reason not to start
        log.warning("unfinished capture jobs not resumed at start-up: %s", exc)
        return
    if resumed:
        log.info("resumed %d unfinished capture jobs", resumed)


def create_app(
    settings: Settings | None = None,
    service: LedgerService | None = None,
    *,
    api_settings: ApiSettings | None = None,
    run_worker: bool | None = None,
    rpc_secret: str | None = None,
) -> FastAPI:
    """Build the app. With `service` given, it is used as it is (tests, the CLI) and left open at shut-down.

    On start-up the database is migrated. The anchoring worker runs when `run_worker` says so (default: when the
    app opens the service itself and ``settings.run_worker_in_api`` is set), with the ``anchorer`` key. With
    `rpc_secret` (``circular serve`` on the embedded chain) ``/rpc`` serves the chain to local commands holding it.
    """
    settings = settings or (service.settings if service is not None else Settings())
    api_settings = api_settings or ApiSettings()
    own_service = service is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from ledger.health import keystore_problem
        from ledger.service import LedgerService

        from .db import upgrade

        private_dir(settings.data_dir)
        problem = keystore_problem(settings)
        if problem:  # the app still answers reads; the reason every write will give is said once, here
            log.error("%s", problem)
        upgrade(settings.database_url)
        current = service if service is not None else LedgerService(settings)
        existing = getattr(app.state, "circular", None)
        state = existing or AppState.create(
            settings, api_settings, current, completions(), rpc_secret, batch_completions()
        )
        app.state.circular = state
        versions.install(state)  # passports are rebuilt after each anchoring of this app's workers
        monitor = health.monitor_of(state)
        if not monitor.refresh().foreign:  # pending writes are never sent to a node that is not our chain
            _reconcile_writes(state)
        monitor.start()
        _resume_captures(state)
        scans = scans_for(state)
        scans.start()  # scans are written in batches, off the requests' path
        catch_up = versions.CatchUp(state, api_settings.version_catch_up_s)
        catch_up.start()  # and after anchorings by other processes' workers
        wanted = run_worker if run_worker is not None else (own_service and settings.run_worker_in_api)
        worker = _start_worker(state) if wanted else None
        # Everything loaded so far (web3, SQLAlchemy, the ABIs, the app) lives as long as the process: frozen, it is
        # left out of the garbage collector's full passes, which otherwise walked it every few thousand requests and
        # held every request of one worker for about 100 ms (the p99 of passport reads went from 118 ms to 9 ms).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if worker is not None:
                worker[0].set()
                worker[1].join(timeout=10)
            catch_up.stop()
            monitor.stop()
            scans.stop()  # what is buffered is written before the process ends
            versions.uninstall(state)  # a service that outlives the app builds no passports for it
            if own_service:
                current.close()

    app = FastAPI(
        title="circular-ledger",
        summary="Product passports and material loops: a GS1 resolver, an actors' write API and EPCIS 2.0.",
        version="0.1.0",
        lifespan=lifespan,
    )
    if service is not None:  # usable without the lifespan running (a TestClient outside `with`)
        app.state.circular = AppState.create(
            settings, api_settings, service, completions(), rpc_secret, batch_completions()
        )
        versions.install(app.state.circular, start=False)
    # Innermost: a passport or QR answered from the response cache still passes CORS (see resolver.py).
    app.add_middleware(resolver.CachedReadsMiddleware)
    # Before CORS, so that CORS wraps it: a refused body's 413 carries the CORS headers too.
    app.add_middleware(BodyLimitMiddleware, settings=api_settings)
    # Inside CORS too, and before the body is read: a client over its limit costs nothing more.
    app.add_middleware(ClientRateLimit, settings=api_settings)
    app.add_middleware(health.WriteGuardMiddleware)  # a write while the node is away or not ours: 503, the reason
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "HEAD", "OPTIONS", "POST", "PUT"],
        allow_headers=["*"],
        expose_headers=EXPOSED_HEADERS,
        max_age=86400,
    )
    edge.install(app, settings, api_settings)  # outermost: Host and forwarded headers are settled first
    app.add_middleware(health.ProbeMiddleware)  # but for /healthz and /readyz, which orchestrators probe by address
    problems.install(app)
    console.install(app)
    problems.document(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(actors.router, prefix="/api/v1")
    app.include_router(products.router, prefix="/api/v1")
    app.include_router(lots.router, prefix="/api/v1")
    app.include_router(items.router, prefix="/api/v1")
    app.include_router(recycling.router, prefix="/api/v1")
    app.include_router(returns.router, prefix="/api/v1")
    app.include_router(corrections.router, prefix="/api/v1")
    app.include_router(partners.router, prefix="/api/v1")
    app.include_router(brands.api, prefix="/api/v1")
    app.include_router(operators.router, prefix="/api/v1")
    app.include_router(brands.router)
    app.include_router(lots.public)
    app.include_router(epcis.router, prefix="/epcis")
    app.include_router(chain_rpc.router)
    app.include_router(health.router)
    app.include_router(console.router)
    app.include_router(resolver.router)
    app.include_router(resolver.catch_all_router())  # compressed Digital Links and 404s: last
    return app


__all__ = ["batch_completions", "completions", "create_app"]
