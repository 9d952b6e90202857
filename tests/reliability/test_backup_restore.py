"""`circular backup` writes a consistent snapshot and `circular restore` brings it back (SQLite and PostgreSQL)."""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from circular.cli import app

runner = CliRunner()


def test_sqlite_round_trip(tmp_path: Path) -> None:
    db = tmp_path / "circular.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
        conn.executemany("INSERT INTO t (v) VALUES (?)", [(f"row {i}",) for i in range(1000)])
    url = f"sqlite:///{db}"
    snapshot = tmp_path / "backup.sqlite"
    result = runner.invoke(app, ["backup", str(snapshot), "--db", url])
    assert result.exit_code == 0, result.output
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM t WHERE k > 10")
    result = runner.invoke(app, ["restore", str(snapshot), "--db", url])
    assert result.exit_code == 0, result.output
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 1000
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    print("\nSQLite backup/restore: 1000 of 1000 rows back, integrity ok")


def test_restore_refuses_a_corrupt_snapshot(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"not a database at all" * 100)
    result = runner.invoke(app, ["restore", str(bad), "--db", f"sqlite:///{tmp_path / 'x.sqlite'}"])
    assert result.exit_code == 1 and result.output.startswith("error:")


@pytest.mark.postgres
def test_postgresql_round_trip(tmp_path: Path) -> None:
    if shutil.which("pg_dump") is None:
        pytest.skip("pg_dump not installed")
    from sqlalchemy import create_engine, text

    name = f"backup_{uuid.uuid4().hex[:10]}"
    admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (k serial PRIMARY KEY, v text)"))
            conn.execute(text("INSERT INTO t (v) SELECT 'row ' || g FROM generate_series(1, 1000) g"))
        snapshot = tmp_path / "backup.dump"
        assert runner.invoke(app, ["backup", str(snapshot), "--db", url]).exit_code == 0
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM t"))
        result = runner.invoke(app, ["restore", str(snapshot), "--db", url])
        assert result.exit_code == 0, result.output
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 1000
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.postgres
def test_postgresql_snapshot_of_one_schema_holds_that_schema_only(tmp_path: Path) -> None:
    """A deployment keeping its tables in one schema of a shared database (``options=-csearch_path=...``) snapshots
    that schema alone: a neighbour dropped meanwhile neither breaks the restore nor comes back with it."""
    if shutil.which("pg_dump") is None:
        pytest.skip("pg_dump not installed")
    from sqlalchemy import create_engine, text

    ours, neighbour = f"ours_{uuid.uuid4().hex[:10]}", f"theirs_{uuid.uuid4().hex[:10]}"
    base = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    url = f"{base}?options=-csearch_path%3D{ours}"
    try:
        with admin.connect() as conn:
            for schema in (ours, neighbour):
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
                conn.execute(text(f'CREATE TABLE "{schema}".t (k serial PRIMARY KEY, v text)'))
                conn.execute(text(f"INSERT INTO \"{schema}\".t (v) SELECT 'row ' || g FROM generate_series(1, 10) g"))
        snapshot = tmp_path / "backup.dump"
        assert runner.invoke(app, ["backup", str(snapshot), "--db", url]).exit_code == 0
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{neighbour}" CASCADE'))
            conn.execute(text(f'DELETE FROM "{ours}".t'))
        result = runner.invoke(app, ["restore", str(snapshot), "--db", url])
        assert result.exit_code == 0, result.output
        with admin.connect() as conn:
            assert conn.execute(text(f'SELECT count(*) FROM "{ours}".t')).scalar() == 10
            schemas = set(conn.scalars(text("SELECT nspname FROM pg_namespace")))
            assert neighbour not in schemas
    finally:
        with admin.connect() as conn:
            for schema in (ours, neighbour):
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
