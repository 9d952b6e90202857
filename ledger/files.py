"""Files that hold secrets or private data, readable by the process's own user only (mode 0600).

A file is written to a temporary name created 0600 in the same directory and renamed over the target, so that it is
never readable by others, not even for a moment, and an existing file with a wider mode is replaced rather than
truncated (truncating keeps the old mode).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

PRIVATE_FILE_MODE = 0o600


def write_private(path: Path, data: str | bytes) -> Path:
    """Write `data` to `path` atomically, mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mkstemp: 0600
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(raw)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return path


def create_private(path: Path) -> Path:
    """Make sure `path` exists and is mode 0600: created empty if missing (a SQLite database or store about to be
    opened: SQLite gives its journal files the database file's mode), narrowed if an earlier version left it wider.
    A directory created for it is 0700."""
    private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
    except FileExistsError:
        make_private(path)
    return path


def private_dir(path: Path) -> Path:
    """Create the directory `path` if missing, readable by its owner only (0700) when this call creates it."""
    if not path.exists():
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o700)
    return path


def make_private(path: Path) -> None:
    """Narrow an existing file to mode 0600 (files written by earlier versions, or by libraries that use the umask)."""
    with contextlib.suppress(FileNotFoundError):
        os.chmod(path, PRIVATE_FILE_MODE)


__all__ = ["PRIVATE_FILE_MODE", "create_private", "make_private", "private_dir", "write_private"]
