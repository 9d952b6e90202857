"""Health for load balancers and orchestrators, and the API's answer to a node that is away or not ours.

- ``GET /healthz``: the process answers (always 200, no database, no node).
- ``GET /readyz``: the database answers, the node answers and is the chain this database was built on
  (``ledger.health.check_chain``, as last checked: at most ``CIRCULAR_API_CHAIN_CHECK_S`` old), and the oldest event
  not yet anchored is younger than ``CIRCULAR_API_READY_MAX_ANCHOR_LAG_S``: 200 when all hold, else 503, with one
  small JSON body naming each check either way.
- Writes (``/api/v1`` and ``/epcis/capture``, every method but GET, HEAD and OPTIONS) are answered 503 with the reason
  before any work while the node does not answer or is not ours (``WriteGuardMiddleware``); reads go on, and say
  "verification unavailable right now" (``api/reads.py``, ``api/passport.py``).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func, select, text
from starlette.types import ASGIApp, Receive, Scope, Send

from ledger.health import ChainMonitor, ChainStatus
from ledger.outbox import EventStatus, OutboxEvent

from .problems import problem_response
from .state import AppState

router = APIRouter(include_in_schema=False)
MONITOR = "chain_monitor"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
WRITE_PATHS = ("/api/v1/", "/epcis/capture")
RETRY_AFTER_S = "5"
PROBES = frozenset({"/healthz", "/readyz"})


def monitor_of(state: AppState) -> ChainMonitor:
    """The app's chain monitor (one per app state, made on first use)."""
    monitor = state.extra.get(MONITOR)
    if not isinstance(monitor, ChainMonitor):
        monitor = ChainMonitor(state.service, state.api_settings.chain_check_s)
        state.extra[MONITOR] = monitor
    return monitor


def unavailable_detail(status: ChainStatus | None) -> str:
    """Why verification is unavailable right now, in one line."""
    if status is None or status.ok:
        return "verification unavailable right now: the chain cannot be asked"
    return f"verification unavailable right now: {status.detail}"


@router.get("/healthz")
def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})


def _database(state: AppState) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        with state.service.sessions() as session:
            session.execute(text("SELECT 1"))
            oldest = session.scalar(
                select(func.min(OutboxEvent.created_at)).where(OutboxEvent.status != EventStatus.ANCHORED)
            )
    except Exception as exc:
        return {"ok": False, "detail": f"{type(exc).__name__}", "ms": round((time.perf_counter() - started) * 1000, 1)}
    lag = 0.0
    if oldest is not None:
        moment = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
        lag = max(0.0, (datetime.now(UTC) - moment).total_seconds())
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1), "lag": lag}


def readiness(state: AppState) -> tuple[bool, dict[str, Any]]:
    """Each check of ``/readyz`` and whether all hold."""
    database = _database(state)
    started = time.perf_counter()
    monitor = monitor_of(state)
    status = monitor.current(3 * monitor.interval_s)  # the monitor's thread keeps it fresh: no node call here
    elapsed = round((time.perf_counter() - started) * 1000, 1)
    # The state only: the reason names the node's address and the server's directories (it is in the log).
    chain: dict[str, Any] = {"ok": status.ok, "state": status.state, "ms": elapsed}
    limit = state.api_settings.ready_max_anchor_lag_s
    lag = database.pop("lag", None)
    anchoring: dict[str, Any] = {"ok": lag is not None and lag <= limit, "maxLagSeconds": limit}
    if lag is not None:
        anchoring["lagSeconds"] = round(lag, 1)
    checks = {"database": database, "chain": chain, "anchoring": anchoring}
    return all(check["ok"] for check in checks.values()), checks


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    return _ready(request.app.state.circular)


class ProbeMiddleware:
    """``/healthz`` and ``/readyz`` answered outermost, before the Host check (``api/edge.py``): an orchestrator probes
    a pod by its address, which is no host the deployment serves. They reveal nothing but the checks' states."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD") and scope["path"] in PROBES:
            state: AppState | None = getattr(scope["app"].state, "circular", None)
            response: JSONResponse | None = healthz() if scope["path"] == "/healthz" else None
            if response is None and state is not None:
                response = await to_thread.run_sync(_ready, state)
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _ready(state: AppState) -> JSONResponse:
    ready, checks = readiness(state)
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
        headers={"Cache-Control": "no-store"},
    )


class WriteGuardMiddleware:
    """Refuses a write with 503 and the reason, before any work, while the node is away or not our chain."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in WRITE_METHODS and scope["path"].startswith(WRITE_PATHS):
            state = getattr(scope["app"].state, "circular", None)
            if state is not None:
                monitor = monitor_of(state)
                status = monitor.status
                if status is None or not status.ok:
                    status = await to_thread.run_sync(monitor.current, 1.0 if status is not None else None)
                if not status.ok:
                    title = "Chain unavailable" if status.state == "unreachable" else "Wrong chain"
                    detail = f"nothing was written: {status.detail}"
                    headers = {"Retry-After": RETRY_AFTER_S} if status.state == "unreachable" else {}
                    response = problem_response(Request(scope), 503, title, detail, headers=headers)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


__all__ = ["ProbeMiddleware", "WriteGuardMiddleware", "monitor_of", "readiness", "router", "unavailable_detail"]
