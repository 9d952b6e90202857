"""Recording resolver scans for the audit's clone rules (``api/audit.py``), off the request's path.

Where a scan came from is kept coarse, a country, and only when something trustworthy says: the header a CDN in
front sets (``ApiSettings.geo_header``: Cloudflare's ``CF-IPCountry``, CloudFront's ``CloudFront-Viewer-Country``),
read only from a configured proxy (``api/edge.py``); unset, scans have no country. A client sends such a header, or a
``?loc=`` parameter, as easily as a CDN: believed, twelve anonymous GETs raised ``impossible-travel`` for a
competitor's item. The client is a truncated hash of its address (after trusted-proxy handling): enough to count
distinct clients, useless to identify anyone; a new User-Agent is no new client.

A scan is not written by the request that makes it: :class:`ScanBuffer` keeps it in memory and a background thread
writes what has gathered every ``scan_flush_interval_s`` seconds, in one transaction (one multi-row insert per
table). A request never waits for the database's write lock, and a scan commits nothing a passport read depends on.
What this costs, and what bounds it:

* **a crash loses at most the scans of the last flush interval** (those accepted since the last write began), and
  never more than ``scan_buffer_rows``; a clean shut-down writes them all. ``tests/reliability/test_scan_buffer.py``
  kills a server with scans in its buffer and counts what survived;
* **memory is bounded**: at most ``scan_buffer_rows`` scans wait; beyond that a scan is counted (``dropped_full``)
  and not kept, so a flood can fill the buffer but not the process;
* **scans are kept ``scan_retention_days``** (90): the writer deletes older ones about once an hour, so the tables
  hold at most what the per-client bound lets in over that time;
* **a client writes at most ``scans_per_client_per_minute`` rows per minute** (per client fingerprint, a fixed
  one-minute window; at most ``scan_clients_tracked`` clients are remembered, the least recently seen forgotten
  first): a flooding client's extra scans are counted (``dropped_client``) and not stored. The audit's rules need
  few scans per client (a burst is many *clients*), so what a flood drops is what the rules do not use. A flooder
  that changes its user agent with every scan is a new client each time: the per-client bound does not hold it
  back, the buffer's does (at most ``scan_buffer_rows`` rows per flush interval reach the database, whoever sent
  them); holding back the requests themselves is the request rate limits' part.

The audit reads what has been written: run in another process (``circular audit``), it sees a scan at most one
interval after it was made.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from fastapi import Request
from sqlalchemy import Table, delete
from sqlalchemy.orm import Session, sessionmaker

from .edge import client_address, via_trusted_proxy
from .models import Scan, UnknownScan
from .state import AppState

log = logging.getLogger("circular.api.scans")

_COUNTRY = re.compile(r"[A-Z]{2}")
NOT_A_COUNTRY = frozenset({"XX", "T1", "ZZ"})  # Cloudflare's "unknown" and "Tor"; ZZ: unknown in CLDR


def scan_region(request: Request, geo_header: str | None) -> str | None:
    """The scan's country (ISO 3166-1 alpha-2) from the configured CDN header of a trusted proxy, or None."""
    if not geo_header or not via_trusted_proxy(request):
        return None
    code = (request.headers.get(geo_header) or "").strip().upper()
    return code if _COUNTRY.fullmatch(code) and code not in NOT_A_COUNTRY else None


def client_fingerprint(request: Request) -> str:
    """The client, pseudonymous: a hash of its address after trusted-proxy handling (no header of its own choice)."""
    return hashlib.sha256(client_address(request).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class BufferStats:
    waiting: int
    written: int
    dropped_full: int
    dropped_client: int
    flushes: int


class ScanBuffer:
    """Scans waiting to be written, and the thread that writes them (see the module's docstring)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        flush_interval_s: float = 0.5,
        max_rows: int = 20_000,
        per_client_per_minute: int = 60,
        max_clients: int = 100_000,
        retention_s: float | None = None,
        prune_every_s: float = 3600.0,
    ) -> None:
        self.sessions = sessions
        self.flush_interval_s = flush_interval_s
        self.max_rows = max_rows
        self.per_client_per_minute = per_client_per_minute
        self.max_clients = max_clients
        self.retention_s = retention_s
        self.prune_every_s = prune_every_s
        self._pruned_at: float | None = None
        self.pruned = 0
        self._scans: list[dict[str, Any]] = []
        self._unknown: list[dict[str, Any]] = []
        self._clients: OrderedDict[str, list[int]] = OrderedDict()  # client → [minute, rows kept in it]
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # one flush at a time, so rows are written in the order they came
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.written = 0
        self.dropped_full = 0
        self.dropped_client = 0
        self.flushes = 0

    # -- recording ------------------------------------------------------------------------------------------------
    def _admit(self, client: str) -> bool:
        """Whether a row of `client` may be kept now (called under the lock)."""
        if len(self._scans) + len(self._unknown) >= self.max_rows:
            self.dropped_full += 1
            return False
        minute = int(time.monotonic() // 60)
        seen = self._clients.get(client)
        if seen is None or seen[0] != minute:
            seen = [minute, 0]
            self._clients[client] = seen
        self._clients.move_to_end(client)
        while len(self._clients) > self.max_clients:
            self._clients.popitem(last=False)
        if seen[1] >= self.per_client_per_minute:
            self.dropped_client += 1
            return False
        seen[1] += 1
        return True

    def item_scan(self, gtin: str, serial: str, region: str | None, client: str) -> bool:
        """Keep a scan of a registered item; False when a bound left it out (it is counted)."""
        row = {"gtin": gtin, "serial": serial, "region": region, "client": client, "scanned_at": datetime.now(UTC)}
        with self._lock:
            if not self._admit(client):
                return False
            self._scans.append(row)
        return True

    def unknown_scan(self, gtin: str, ai: str, value: str, user_agent: str | None, client: str) -> bool:
        """Keep a scan of a serial or lot that is not registered under a registered GTIN."""
        agent = user_agent[:300] if user_agent else None
        row = {"gtin": gtin, "ai": ai, "value": value, "user_agent": agent, "scanned_at": datetime.now(UTC)}
        with self._lock:
            if not self._admit(client):
                return False
            self._unknown.append(row)
        return True

    # -- writing --------------------------------------------------------------------------------------------------
    def flush(self) -> int:
        """Write every waiting scan now, in one transaction; how many were written. On a database error the scans
        go back to the buffer (within its bound) and the error is raised."""
        with self._write_lock:
            with self._lock:
                scans, self._scans = self._scans, []
                unknown, self._unknown = self._unknown, []
            if not scans and not unknown:
                return 0
            try:
                with self.sessions.begin() as session:
                    for model, rows in ((Scan, scans), (UnknownScan, unknown)):
                        if rows:
                            _insert(session, cast(Table, model.__table__), rows)
            except Exception:
                with self._lock:
                    room = max(0, self.max_rows - len(self._scans) - len(self._unknown))
                    kept_scans = scans[:room]
                    kept_unknown = unknown[: max(0, room - len(kept_scans))]
                    self.dropped_full += len(scans) + len(unknown) - len(kept_scans) - len(kept_unknown)
                    self._scans[:0] = kept_scans
                    self._unknown[:0] = kept_unknown
                raise
            self.written += len(scans) + len(unknown)
            self.flushes += 1
            return len(scans) + len(unknown)

    def prune(self, now: datetime | None = None) -> int:
        """Delete the scans older than the retention (none without one); how many were deleted."""
        if self.retention_s is None:
            return 0
        cutoff = (now or datetime.now(UTC)) - timedelta(seconds=self.retention_s)
        with self.sessions.begin() as session:
            deleted = 0
            for table in (Scan, UnknownScan):
                result = session.execute(delete(table).where(table.scanned_at < cutoff))
                deleted += int(getattr(result, "rowcount", 0) or 0)
        self.pruned += deleted
        return deleted

    def _prune_due(self) -> None:
        moment = time.monotonic()
        if self._pruned_at is None or moment - self._pruned_at >= self.prune_every_s:
            self._pruned_at = moment
            self.prune()

    def stats(self) -> BufferStats:
        with self._lock:
            waiting = len(self._scans) + len(self._unknown)
        return BufferStats(waiting, self.written, self.dropped_full, self.dropped_client, self.flushes)

    def start(self) -> None:
        """Write in the background every `flush_interval_s` seconds, until :meth:`stop`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="scan-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            try:
                self.flush()
                self._prune_due()
            except Exception as exc:  # the database is away: the scans wait (within the bound) for the next try
                log.warning("scans not written yet: %s", exc)

    def stop(self) -> None:
        """Stop the background writer and write what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        try:
            self.flush()
        except Exception as exc:
            log.warning("scans lost at shut-down: %s", exc)


def _insert(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """`rows` into `table` in the session's transaction. On PostgreSQL by ``COPY``: a multi-row ``INSERT`` of a
    flush's few hundred rows took about 10 ms of the writer thread's CPU, under the interpreter's lock, so each
    flush held up the requests; ``COPY`` takes about 2 ms."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        connection.execute(table.insert(), rows)
        return
    columns = list(rows[0])
    driver: Any = connection.connection.driver_connection  # psycopg's, in the session's transaction
    names = ", ".join(f'"{column}"' for column in columns)  # our own column names, never input
    with driver.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row([row[column] for column in columns])


_SETUP_LOCK = threading.Lock()


def scans_for(state: AppState) -> ScanBuffer:
    """The app's scan buffer (made on first use; the app's lifespan starts and stops its writer)."""
    found = state.extra.get("scans")
    if found is None:
        with _SETUP_LOCK:
            found = state.extra.get("scans")
            if found is None:
                settings = state.api_settings
                found = state.extra["scans"] = ScanBuffer(
                    state.service.sessions,
                    flush_interval_s=settings.scan_flush_interval_s,
                    max_rows=settings.scan_buffer_rows,
                    per_client_per_minute=settings.scans_per_client_per_minute,
                    max_clients=settings.scan_clients_tracked,
                    retention_s=settings.scan_retention_days * 86_400,
                )
    assert isinstance(found, ScanBuffer)
    return found


def record_item_scan(state: AppState, request: Request, gtin: str, serial: str) -> bool:
    """Keep a scan of a registered item for the next write (see the module's docstring)."""
    region = scan_region(request, state.api_settings.geo_header)
    return scans_for(state).item_scan(gtin, serial, region, client_fingerprint(request))


def record_unknown_scan(state: AppState, request: Request, gtin: str, ai: str, value: str) -> bool:
    """Keep a scan of an unregistered serial (`ai` 21) or lot (10) of a registered GTIN."""
    agent = request.headers.get("user-agent")
    return scans_for(state).unknown_scan(gtin, ai, value, agent, client_fingerprint(request))


__all__ = [
    "BufferStats",
    "ScanBuffer",
    "client_fingerprint",
    "record_item_scan",
    "record_unknown_scan",
    "scan_region",
    "scans_for",
]
