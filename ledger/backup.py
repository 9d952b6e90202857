"""Consistent database snapshots: SQLite's online backup API, or pg_dump/pg_restore for PostgreSQL."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

from .errors import ConfigurationError


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise ConfigurationError("cannot back up an in-memory SQLite database")
    return Path(database)


def _pg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def backup_database(url: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("sqlite"):
        source = sqlite3.connect(_sqlite_path(url))
        try:
            destination = sqlite3.connect(target)
            with destination:
                source.backup(destination)  # a consistent copy even while the API writes
            destination.close()
        finally:
            source.close()
        return
    if url.startswith("postgresql"):
        if shutil.which("pg_dump") is None:
            raise ConfigurationError("pg_dump is not installed")
        subprocess.run(["pg_dump", "--format=custom", "--file", str(target), _pg_dsn(url)], check=True)
        return
    raise ConfigurationError(f"no backup method for {make_url(url).drivername}")


def restore_database(url: str, source: Path) -> None:
    if not source.exists():
        raise FileNotFoundError(f"no snapshot at {source}")
    if url.startswith("sqlite"):
        snapshot = sqlite3.connect(source)
        try:
            try:
                healthy = snapshot.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            except sqlite3.DatabaseError as exc:
                raise ConfigurationError(f"{source} is not a SQLite snapshot: {exc}") from None
            if not healthy:
                raise ConfigurationError(f"{source} fails SQLite's integrity check")
            destination = sqlite3.connect(_sqlite_path(url))
            with destination:
                snapshot.backup(destination)
            destination.close()
        finally:
            snapshot.close()
        return
    if url.startswith("postgresql"):
        if shutil.which("pg_restore") is None:
            raise ConfigurationError("pg_restore is not installed")
        subprocess.run(
            ["pg_restore", "--clean", "--if-exists", "--no-owner", "--dbname", _pg_dsn(url), str(source)], check=True
        )
        return
    raise ConfigurationError(f"no restore method for {make_url(url).drivername}")


__all__ = ["backup_database", "restore_database"]
