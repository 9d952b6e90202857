"""A per-client request limit: a token bucket per client address (after trusted-proxy handling, ``api/edge.py``).

Every public read is cheap when it is a cache hit and costs milliseconds when it is not: one client's random query
parameters once held a worker at about 100 requests/s of misses. The cache keys are normalised now; this bounds what
one client can ask for at all, whatever it asks: ``requests_per_client_per_minute`` sustained, bursts of
``requests_burst``, 429 with ``Retry-After`` beyond (0: no limit).

Why our own, and not a library: the well-kept ones (``limits``, which ``slowapi`` wraps) keep a timestamp per request
in a moving window, or a counter per client and window, in a store that forgets a client only when its window
expires: a flood of distinct addresses grows it without bound until then. A token bucket is two numbers per client,
and at most ``rate_limit_clients`` clients are remembered (the least recently seen forgotten first, which only ever
lets a forgotten client start again with a full bucket). One process's memory: with several workers, each counts
its own share.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from .config import ApiSettings
from .edge import client_key
from .problems import problem_response

RPC_PATH = "/rpc"


class TokenBuckets:
    """A token bucket per key: `rate_per_s` tokens a second, at most `burst`; bounded to `max_keys` keys."""

    def __init__(self, rate_per_s: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate_per_s = rate_per_s
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()  # key → [tokens, when last counted]
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> float | None:
        """Take a token for `key`: None when there was one, else the seconds until there will be."""
        moment = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._buckets.pop(key, None)
            if bucket is None:
                bucket = [self.burst, moment]
            else:
                bucket[0] = min(self.burst, bucket[0] + (moment - bucket[1]) * self.rate_per_s)
                bucket[1] = moment
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            if bucket[0] >= 1.0:
                bucket[0] -= 1.0
                return None
            return (1.0 - bucket[0]) / self.rate_per_s

    def __len__(self) -> int:
        return len(self._buckets)


class ClientRateLimit:
    """The limit as middleware, for every HTTP request (installed inside CORS, so that a 429 carries its headers)."""

    def __init__(self, app: ASGIApp, settings: ApiSettings) -> None:
        self.app = app
        per_minute = settings.requests_per_client_per_minute
        self.buckets: TokenBuckets | None = None
        if per_minute:
            self.buckets = TokenBuckets(per_minute / 60.0, settings.requests_burst, settings.rate_limit_clients)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # /rpc answers only local commands holding the secret of server.json (routes/chain_rpc.py), and an audit or
        # a verify asks it for a batch's logs and receipts many times a second: no budget of the public's binds it.
        if self.buckets is None or scope["type"] != "http" or scope["path"] == RPC_PATH:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        wait = self.buckets.take(client_key(client[0]) if client else "unknown")
        if wait is None:
            await self.app(scope, receive, send)
            return
        response = problem_response(
            Request(scope),
            429,
            "Too many requests",
            "this client sent more requests than the server answers for one client; try again later",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
        await response(scope, receive, send)


__all__ = ["ClientRateLimit", "TokenBuckets"]
