"""Database engines for the outbox and the API: SQLite by default, PostgreSQL in production."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import DeclarativeBase

from .files import create_private


class Base(DeclarativeBase):
    """Declarative base of every table (the ledger's outbox and the API's records share one metadata)."""


# JSON columns hold strict JSON: Python's default writes NaN and Infinity, which every strict reader (the API's
# answers, PostgreSQL's jsonb) refuses, so one stored NaN made each later answer holding it a 500.
_strict_json = functools.partial(json.dumps, allow_nan=False)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`. SQLite gets WAL, a busy timeout and foreign keys, so that the API and the worker can
    share one file safely; PostgreSQL is used as it is. JSON columns refuse NaN and Infinity on both."""
    kwargs.setdefault("json_serializer", _strict_json)
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        engine = create_engine(url, **kwargs)
        database = engine.url.database
        if database and database != ":memory:" and not database.startswith("file:"):
            # The database holds actors' key hashes and every business record: its owner's only. SQLite gives its
            # -wal and -shm files the database file's mode.
            create_private(Path(database))

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def printable_url(url: str) -> str:
    """`url` as it may be printed or logged: a password in it shows as ``***`` (a DSN names the PostgreSQL password,
    and start-up lines and errors end up in logs that more people read than the secrets' owner)."""
    return make_url(url).render_as_string(hide_password=True)


__all__ = ["Base", "make_engine", "printable_url"]
