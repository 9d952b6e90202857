"""What one running app holds: settings, the ledger service, actors' keys, and small in-process caches."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ledger.service import LedgerService
from ledger.settings import Settings

from .actors import ActorKeys
from .config import ApiSettings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from .models import WriteIntent

# What completing a write intent of one kind writes to the API's rows, inside the completing transaction. The intent's
# status flip guards it: it runs once per intent, so it need not be idempotent on its own.
Completion = Callable[["Session", "WriteIntent"], None]
# The same for many intents of one kind at once (a bulk write's): a few set-based statements, not a few per intent.
BatchCompletion = Callable[["Session", "Sequence[WriteIntent]"], None]


class RateLimiter:
    """A sliding-window limit per key (a client address, used transiently and never stored)."""

    def __init__(self, limit: int, window_s: float = 60.0, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_keys = max_keys
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, key: str) -> float | None:
        """Count a request; None when allowed, else the seconds until the next one would be."""
        now = time.monotonic()
        with self._lock:
            hits = self._hits.pop(key, None) or deque()
            while hits and hits[0] <= now - self.window_s:
                hits.popleft()
            self._hits[key] = hits
            while len(self._hits) > self.max_keys:
                self._hits.popitem(last=False)
            if len(hits) >= self.limit:
                return max(0.0, hits[0] + self.window_s - now)
            hits.append(now)
            return None


class TtlCache:
    """A small thread-safe LRU cache whose entries expire."""

    def __init__(self, ttl_s: float, max_entries: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._data: OrderedDict[Any, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any | None:
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                return None
            if entry[0] < time.monotonic():
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return entry[1]

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._data[key] = (time.monotonic() + self.ttl_s, value)
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)


@dataclass
class AppState:
    settings: Settings
    api_settings: ApiSettings
    service: LedgerService
    keys: ActorKeys
    return_limiter: RateLimiter
    verdicts: TtlCache
    completions: Mapping[str, Completion] = field(default_factory=dict)
    batch_completions: Mapping[str, BatchCompletion] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    # The secret local commands send to /rpc (``routes/chain_rpc.py``); None: the app serves no chain.
    rpc_secret: str | None = None

    @classmethod
    def create(
        cls,
        settings: Settings,
        api_settings: ApiSettings,
        service: LedgerService,
        completions: Mapping[str, Completion] | None = None,
        rpc_secret: str | None = None,
        batch_completions: Mapping[str, BatchCompletion] | None = None,
    ) -> AppState:
        return cls(
            settings=settings,
            api_settings=api_settings,
            service=service,
            keys=ActorKeys(service),
            return_limiter=RateLimiter(api_settings.return_requests_per_minute),
            verdicts=TtlCache(api_settings.verification_ttl_s),
            completions=dict(completions or {}),
            batch_completions=dict(batch_completions or {}),
            rpc_secret=rpc_secret,
        )


__all__ = ["AppState", "BatchCompletion", "Completion", "RateLimiter", "TtlCache"]
