"""Consistent database snapshots: SQLite's online backup API, or pg_dump/pg_restore for PostgreSQL.

A snapshot holds everything the database does (actors' hashed API keys, business data): it is written readable by
its owner only (0600), and can be encrypted to one or more age recipients (``age1...`` public keys, through
pyrage, the Rust implementation of age): the machine that makes backups then needs no secret at all, and
``age -d -i key.txt`` decrypts one without our software. An encrypted snapshot is held in memory while it is
encrypted or decrypted, so its size is bounded by the machine's memory.

pg_dump and pg_restore get the database's password through their environment (``PGPASSWORD``), never on their
command line, where every local user can read it (``ps``, ``/proc/<pid>/cmdline``).
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from .errors import ConfigurationError
from .files import PRIVATE_FILE_MODE, create_private, make_private, write_private

AGE_HEADER = b"age-encryption.org/v1\n"
PRIVATE_UMASK = 0o077


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise ConfigurationError("cannot back up an in-memory SQLite database")
    return Path(database)


def _pg(url: str) -> tuple[str, dict[str, str]]:
    """The libpq URI of `url` without its password, and the environment that carries the password instead."""
    parsed: URL = make_url(url)
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    # URL.set(password=None) leaves the password as it is: the tuple's own _replace drops it.
    dsn = parsed._replace(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return dsn, env


def _schema_of(url: str) -> list[str]:
    """pg_dump's ``--schema`` for a database URL that keeps its tables in one schema (libpq's
    ``options=-csearch_path=NAME``, as several deployments or test runs sharing one database do): the snapshot holds
    that schema only, so that it neither carries nor, on restore, depends on its neighbours'."""
    options = make_url(url).query.get("options")
    for option in [options] if isinstance(options, str) else list(options or ()):
        match = re.search(r"-c\s*search_path\s*=\s*([^\s,]+)", option)
        if match:
            return ["--schema", match.group(1).strip('"')]
    return []


def _recipients(recipients: Sequence[str]) -> list[object]:
    from pyrage import x25519

    try:
        return [x25519.Recipient.from_str(r.strip()) for r in recipients]
    except Exception:
        raise ConfigurationError("an age recipient is an age1... public key") from None


def _identities(identity_file: Path) -> list[object]:
    from pyrage import x25519

    keys = [
        line.strip()
        for line in identity_file.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    try:
        return [x25519.Identity.from_str(key) for key in keys]
    except Exception:
        raise ConfigurationError(f"{identity_file} holds no age identity (AGE-SECRET-KEY-1...)") from None


@contextmanager
def _scratch() -> Iterator[Path]:
    """A private (0600) temporary file for the plain snapshot, removed afterwards."""
    fd, name = tempfile.mkstemp(prefix="circular-snapshot-", suffix=".tmp")
    os.close(fd)
    path = Path(name)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def backup_database(url: str, target: Path, recipients: Sequence[str] = ()) -> None:
    """Write a snapshot of the database at `url` to `target` (0600), encrypted to `recipients` when given."""
    target.parent.mkdir(parents=True, exist_ok=True)
    keys = _recipients(recipients) if recipients else None
    if keys is None:
        _snapshot(url, target)
        return
    from pyrage import encrypt

    with _scratch() as plain:
        _snapshot(url, plain)
        write_private(target, encrypt(plain.read_bytes(), keys))


def _snapshot(url: str, target: Path) -> None:
    # Created 0600 before anything writes to it: SQLite and pg_dump keep an existing file's mode.
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    os.close(fd)
    make_private(target)
    target.with_name(target.name + "-journal").unlink(missing_ok=True)
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
        dsn, env = _pg(url)
        subprocess.run(["pg_dump", "--format=custom", *_schema_of(url), "--file", str(target), dsn], check=True,
                       env=env, umask=PRIVATE_UMASK)
        return
    raise ConfigurationError(f"no backup method for {make_url(url).drivername}")


def restore_database(url: str, source: Path, identity_file: Path | None = None) -> None:
    """Bring back a snapshot written by :func:`backup_database`; an encrypted one needs `identity_file` (an age
    identity, ``AGE-SECRET-KEY-1...``, one per line)."""
    if not source.exists():
        raise FileNotFoundError(f"no snapshot at {source}")
    with source.open("rb") as handle:
        encrypted = handle.read(len(AGE_HEADER)) == AGE_HEADER
    if not encrypted:
        _restore(url, source)
        return
    if identity_file is None:
        raise ConfigurationError(f"{source} is encrypted: give the age identity that decrypts it (--identity)")
    from pyrage import decrypt

    try:
        plain_bytes = decrypt(source.read_bytes(), _identities(identity_file))
    except ConfigurationError:
        raise
    except Exception:
        raise ConfigurationError(f"{identity_file} does not decrypt {source}") from None
    with _scratch() as plain:
        write_private(plain, plain_bytes)
        _restore(url, plain)


def _restore(url: str, source: Path) -> None:
    if url.startswith("sqlite"):
        snapshot = sqlite3.connect(source)
        try:
            try:
                healthy = snapshot.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            except sqlite3.DatabaseError as exc:
                raise ConfigurationError(f"{source} is not a SQLite snapshot: {exc}") from None
            if not healthy:
                raise ConfigurationError(f"{source} fails SQLite's integrity check")
            database = _sqlite_path(url)
            create_private(database)
            destination = sqlite3.connect(database)
            with destination:
                snapshot.backup(destination)
            destination.close()
        finally:
            snapshot.close()
        return
    if url.startswith("postgresql"):
        if shutil.which("pg_restore") is None:
            raise ConfigurationError("pg_restore is not installed")
        dsn, env = _pg(url)
        subprocess.run(
            ["pg_restore", "--clean", "--if-exists", "--no-owner", "--dbname", dsn, str(source)], check=True, env=env
        )
        return
    raise ConfigurationError(f"no restore method for {make_url(url).drivername}")


__all__ = ["backup_database", "restore_database"]
