"""Secrets at rest: what a local user could read is readable by its owner only.

The findings: `circular backup` wrote its snapshot 0644 (every actor's key hash and every business record, for any
local user to copy), ``circular.sqlite`` and ``chain.sqlite`` were 0644, and ``pg_dump``/``pg_restore`` got the
database URL with its password on their command line, where ``ps`` shows it to everyone.

Now the data directory is made 0700, the databases (and SQLite's -wal and -shm files, which take the database's
mode), the embedded chain's store, the keystores (in a 0700 directory), ``server.json`` with the /rpc secret, and
every snapshot are 0600 whatever the umask; pg_dump and pg_restore get the password in ``PGPASSWORD``; and a
snapshot can be encrypted to an age public key, so that the machine making backups holds no secret (``age -d``
decrypts it without our software).
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyrage import x25519
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

import ledger.backup
from api.db import upgrade
from circular.cli import app
from ledger.chain import EthTesterBackend
from ledger.service import LedgerService
from ledger.settings import Settings

AGE_HEADER = b"age-encryption.org/v1\n"  # how every age file begins
runner = CliRunner()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The usual umask (022): files nobody narrows come out 0644, as they did."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_the_data_directory_and_its_databases_are_private(tmp_path: Path, open_umask: None) -> None:
    data = tmp_path / "data"
    settings = Settings(data_dir=data, keystore_password="x")  # type: ignore[arg-type]
    upgrade(settings.database_url)
    service = LedgerService(settings)  # the embedded chain in data/chain.sqlite, SQLite in data/circular.sqlite
    try:
        with service.sessions() as session:
            session.execute(text("CREATE TABLE IF NOT EXISTS probe (k INTEGER)"))
            session.execute(text("INSERT INTO probe VALUES (1)"))
            session.commit()
            service.backend.mine(1)
        assert _mode(data) == 0o700
        files = [data / "circular.sqlite", data / "circular.sqlite-wal", data / "circular.sqlite-shm",
                 data / "chain.sqlite"]
        for path in files:
            assert path.exists() and _mode(path) == 0o600, (path.name, oct(_mode(path)))
    finally:
        service.close()


def test_files_left_wide_by_an_earlier_version_are_narrowed(tmp_path: Path, open_umask: None) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for name in ("circular.sqlite", "chain.sqlite"):
        sqlite3.connect(data / name).close()
        os.chmod(data / name, 0o644)
    settings = Settings(data_dir=data)
    upgrade(settings.database_url)
    service = LedgerService(settings)
    try:
        with service.sessions() as session:
            session.execute(text("SELECT 1"))
        assert _mode(data / "circular.sqlite") == 0o600 and _mode(data / "chain.sqlite") == 0o600
    finally:
        service.close()


def test_a_keystore_directory_is_private(tmp_path: Path, open_umask: None) -> None:
    settings = Settings(data_dir=tmp_path / "data", keystore_password="x")  # type: ignore[arg-type]
    backend = EthTesterBackend()
    path = settings.save_actor_key("actor-probe-1", backend.dev_accounts()[3])
    assert _mode(path) == 0o600 and _mode(settings.keys_dir) == 0o700


def _sqlite_db(tmp_path: Path) -> str:
    db = tmp_path / "live.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
        conn.executemany("INSERT INTO t (v) VALUES (?)", [(f"secret {i}",) for i in range(100)])
    return f"sqlite:///{db}"


def test_a_snapshot_is_private(tmp_path: Path, open_umask: None) -> None:
    url = _sqlite_db(tmp_path)
    target = tmp_path / "backup.sqlite"
    target.write_bytes(b"")
    os.chmod(target, 0o644)  # even over an existing world-readable file
    result = runner.invoke(app, ["backup", str(target), "--db", url])
    assert result.exit_code == 0, result.output
    assert _mode(target) == 0o600


def test_an_encrypted_snapshot_round_trip(tmp_path: Path, open_umask: None) -> None:
    url = _sqlite_db(tmp_path)
    identity = x25519.Identity.generate()
    key_file = tmp_path / "key.txt"
    key_file.write_text(f"# backup key\n{identity}\n")
    target = tmp_path / "backup.age"
    result = runner.invoke(app, ["backup", str(target), "--db", url, "--recipient", str(identity.to_public())])
    assert result.exit_code == 0, result.output
    sealed = target.read_bytes()
    assert sealed.startswith(AGE_HEADER) and b"secret 7" not in sealed and _mode(target) == 0o600
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        conn.execute("DELETE FROM t")
    refused = runner.invoke(app, ["restore", str(target), "--db", url])
    assert refused.exit_code == 1 and "encrypted" in refused.output
    other = tmp_path / "other.txt"
    other.write_text(f"{x25519.Identity.generate()}\n")
    wrong = runner.invoke(app, ["restore", str(target), "--db", url, "--identity", str(other)])
    assert wrong.exit_code == 1 and "does not decrypt" in wrong.output
    restored = runner.invoke(app, ["restore", str(target), "--db", url, "--identity", str(key_file)])
    assert restored.exit_code == 0, restored.output
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 100


@pytest.mark.postgres
def test_pg_dump_and_pg_restore_never_see_the_password_in_argv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, open_umask: None
) -> None:
    name = f"secrets_{uuid.uuid4().hex[:10]}"
    admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    # Trust authentication ignores the password: it is there to be looked for.
    url = f"postgresql+psycopg://postgres:hunter2-s3cret@127.0.0.1:5432/{name}"
    calls: list[tuple[list[str], dict[str, str]]] = []
    real_run = subprocess.run

    def spy(args: list[str], **kwargs: Any) -> Any:
        calls.append((list(args), dict(kwargs.get("env") or {})))
        return real_run(args, **kwargs)

    monkeypatch.setattr(ledger.backup.subprocess, "run", spy)
    try:
        with create_engine(url).begin() as conn:
            conn.execute(text("CREATE TABLE t (k serial PRIMARY KEY)"))
        target = tmp_path / "backup.dump"
        assert runner.invoke(app, ["backup", str(target), "--db", url]).exit_code == 0
        assert runner.invoke(app, ["restore", str(target), "--db", url]).exit_code == 0
        assert [args[0] for args, _ in calls] == ["pg_dump", "pg_restore"]
        for args, env in calls:
            assert not any("hunter2" in arg for arg in args), args
            assert env.get("PGPASSWORD") == "hunter2-s3cret"
        assert _mode(target) == 0o600
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def test_a_database_password_is_never_printed(tmp_path: Path) -> None:
    """`serve`'s start-up line and the unmigrated-database error name the database, never its password."""
    from ledger.db import make_engine, printable_url
    from ledger.errors import ConfigurationError
    from ledger.service import _require_tables

    dsn = "postgresql+psycopg://circular:s3cret-pw@db.internal:5432/ledger"
    assert printable_url(dsn) == "postgresql+psycopg://circular:***@db.internal:5432/ledger"
    assert printable_url(f"sqlite:///{tmp_path}/circular.sqlite") == f"sqlite:///{tmp_path}/circular.sqlite"
    engine = make_engine(f"sqlite:///{tmp_path}/empty.sqlite")
    with pytest.raises(ConfigurationError) as refused:
        _require_tables(engine, dsn)
    assert "s3cret-pw" not in str(refused.value) and "circular:***@db.internal" in str(refused.value)
