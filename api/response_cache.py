"""Public read resources (passports, QR codes) answered from memory while the database is unchanged.

A passport is built from many rows (the item, its lots, generations of recycled ancestors, its events and their
anchoring, the chain's verdict), any of which may change when an event is recorded, a batch anchored, or a row edited
by another process (a second uvicorn worker, ``circular`` commands, someone tampering with the database). A stale or
tamper-hiding passport is a bug, so entries are not invalidated one by one: each entry remembers the database's
**change marker** as it was before the answer was built, and is used only while the marker is still the same.

The marker is read on a connection of its own, outside any transaction, for every cached request (a few microseconds
on SQLite, one round trip on PostgreSQL):

* SQLite: ``PRAGMA data_version``, which changes whenever any other connection, of any process, commits;
* PostgreSQL: the transaction snapshot (``pg_current_snapshot()``), whose horizon and in-progress list change when any
  transaction that wrote something ends.

The price of exactness: any commit empties the cache in effect, a consumer's recorded scan included. Entries also
expire after ``verification_ttl_s``, so the verdict on the chain is not kept longer than the passport showing it (a
reorganised chain changes no row here).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

log = logging.getLogger("circular.api.cache")


class ChangeMarker:
    """A value that differs whenever anything was committed to the database since it was last read."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self.query = "PRAGMA data_version" if self.sqlite else "SELECT pg_current_snapshot()::text"
        self._connection: Any = None
        self._lock = threading.Lock()
        self._unknown = 0

    def _connect(self) -> Any:
        fairy = self.engine.raw_connection()
        connection: Any = fairy.driver_connection
        fairy.detach()  # ours for good, never handed back to the pool in autocommit mode
        if self.sqlite:
            connection.isolation_level = None  # a PRAGMA outside any transaction sees other connections' commits
        else:
            connection.autocommit = True  # never left idle in a transaction (it would hold back vacuum)
        return connection

    def read(self) -> Any:
        with self._lock:
            try:
                if self._connection is None:
                    self._connection = self._connect()
                cursor = self._connection.cursor()
                cursor.execute(self.query)
                value = cursor.fetchone()[0]
                cursor.close()
                return value
            except Exception as exc:  # the database restarting: a value that matches nothing, so no entry is used
                log.warning("response cache: cannot read the database's change marker: %s", exc)
                if self._connection is not None:
                    with contextlib.suppress(Exception):
                        self._connection.close()
                    self._connection = None
                self._unknown += 1
                return ("unknown", self._unknown)


@dataclass(frozen=True)
class Entry:
    marker: Any
    status: int
    body: bytes
    raw_headers: tuple[tuple[bytes, bytes], ...]
    expires: float


class ResponseCache:
    """Whole responses by key, each valid while the database's change marker is the one it was built under."""

    def __init__(self, marker: ChangeMarker, max_bytes: int, ttl_s: float) -> None:
        self.marker = marker
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self._entries: OrderedDict[Any, Entry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Any, marker: Any) -> Entry | None:
        """The entry of `key` if it was built under `marker` (read just now) and has not expired."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.marker != marker or entry.expires < time.monotonic():
                if entry is not None:
                    self._drop(key)
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: Any, marker: Any, status: int, body: bytes, raw_headers: list[tuple[bytes, bytes]]) -> None:
        """Keep an answer built after `marker` was read: if anything committed meanwhile, the marker has moved on and
        the entry is never used."""
        if len(body) > self.max_bytes // 8:
            return
        entry = Entry(marker, status, body, tuple(raw_headers), time.monotonic() + self.ttl_s)
        with self._lock:
            self._drop(key)
            self._entries[key] = entry
            self._bytes += len(body)
            while self._bytes > self.max_bytes and self._entries:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= len(evicted.body)

    def _drop(self, key: Any) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old.body)


__all__ = ["ChangeMarker", "Entry", "ResponseCache"]
