"""A fault-injecting JSON-RPC proxy for reliability tests: sits between a client and a node and, by a seeded random
schedule, drops requests, delays them (past the client's timeout too), answers HTTP 502/503/429 or JSON-RPC errors.

    with FaultProxy(node_url, seed=7) as proxy:     # proxy.url is what the client talks to
        proxy.faults_on(FaultRates(...))           # from now on a share of requests fails
        ...
        proxy.faults_off()                         # every request is forwarded again
        proxy.counts                               # {"dropped": 12, "delayed": 30, ...}

When the node behind it is down, the proxy closes the client's connection without an answer, as a dead node would
(connection reset), so a client sees the same error class with or without the proxy in front.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class FaultRates:
    """Probability of each fault per request; what is left over is forwarded untouched."""

    drop: float = 0.05  # connection closed, request never reaches the node
    drop_answer: float = 0.03  # forwarded, then the connection is closed: the node acted, the client never hears
    delay: float = 0.05  # answered late, within the client's timeout
    delay_past_timeout: float = 0.02  # held past the client's timeout, then forwarded anyway (a late delivery)
    http_502: float = 0.02
    http_503: float = 0.02
    http_429: float = 0.02
    rpc_internal_error: float = 0.02  # JSON-RPC -32000 "internal error"
    rpc_header_not_found: float = 0.02  # JSON-RPC -32000 "header not found" (a node behind the head)
    short_delay_s: float = 0.3
    long_delay_s: float = 3.0

    @classmethod
    def only(cls, kind: str) -> FaultRates:
        """Every request gets fault `kind` (a field name above): a burst, e.g. a provider rate-limiting everything."""
        return cls(**{**{name: 0.0 for name in FAULT_CLASS}, kind: 1.0})


# How each fault is counted in the figure: the classes the brief names.
FAULT_CLASS = {
    "drop": "dropped",
    "drop_answer": "dropped",
    "delay": "delayed",
    "delay_past_timeout": "delayed",
    "http_502": "errors",
    "http_503": "errors",
    "http_429": "errors",
    "rpc_internal_error": "errors",
    "rpc_header_not_found": "errors",
}


class FaultProxy:
    def __init__(self, upstream: str, seed: int = 0) -> None:
        self.upstream = upstream
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._rates: FaultRates | None = None
        self.counts: Counter[str] = Counter()  # per fault kind, plus "forwarded" and "node down"
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()

    def faults_on(self, rates: FaultRates | None = None) -> None:
        with self._lock:
            self._rates = rates or FaultRates()

    def faults_off(self) -> None:
        with self._lock:
            self._rates = None

    def by_class(self) -> Counter[str]:
        totals: Counter[str] = Counter()
        for kind, count in self.counts.items():
            if kind in FAULT_CLASS:
                totals[FAULT_CLASS[kind]] += count
        return totals

    def _choose(self) -> tuple[str | None, FaultRates | None]:
        with self._lock:
            rates = self._rates
            if rates is None:
                return None, None
            roll = self._rng.random()
            for kind in FAULT_CLASS:
                roll -= getattr(rates, kind)
                if roll < 0:
                    self.counts[kind] += 1
                    return kind, rates
            return None, rates

    def _count(self, what: str) -> None:
        with self._lock:
            self.counts[what] += 1

    def forward(self, body: bytes) -> tuple[int, bytes] | None:
        """The node's (status, body), or None when it cannot be reached."""
        parts = urlsplit(self.upstream)
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=30)
        try:
            connection.request("POST", parts.path or "/", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            return response.status, response.read()
        except OSError:
            return None
        finally:
            connection.close()


def _rpc_error(body: bytes, code: int, message: str) -> bytes:
    """A JSON-RPC error answer to `body` (a single request or a batch)."""
    try:
        request: Any = json.loads(body)
    except ValueError:
        request = {}

    def one(item: Any) -> dict[str, Any]:
        ident = item.get("id") if isinstance(item, dict) else None
        return {"jsonrpc": "2.0", "id": ident, "error": {"code": code, "message": message}}

    answer: Any = [one(item) for item in request] if isinstance(request, list) else one(request)
    return json.dumps(answer).encode()


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as web3's requests session expects

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the test reports counts

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            kind, rates = proxy._choose()
            try:
                self._serve(kind, rates, body)
            except OSError:  # the client gave up (timeout) before the answer: what a slow node causes too
                self.close_connection = True

        def _serve(self, kind: str | None, rates: FaultRates | None, body: bytes) -> None:
            if kind == "drop":
                self.close_connection = True
                return
            if kind in ("http_502", "http_503", "http_429"):
                status = int(kind[-3:])
                self._answer(status, b"fault proxy: injected", "text/plain")
                return
            if kind == "rpc_internal_error":
                self._answer(200, _rpc_error(body, -32000, "internal error"))
                return
            if kind == "rpc_header_not_found":
                self._answer(200, _rpc_error(body, -32000, "header not found"))
                return
            if kind in ("delay", "delay_past_timeout") and rates is not None:
                time.sleep(rates.short_delay_s if kind == "delay" else rates.long_delay_s)
            answer = proxy.forward(body)
            if answer is None:  # the node is down: reset the connection, as the node itself would
                proxy._count("node down")
                self.close_connection = True
                return
            proxy._count("forwarded")
            if kind == "drop_answer":
                self.close_connection = True
                return
            self._answer(*answer)

        def _answer(self, status: int, payload: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler
