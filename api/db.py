"""Database migrations, run programmatically: :func:`upgrade` brings any database (SQLite, PostgreSQL) to head."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, inspect

import api.models  # noqa: F401  (every table in the metadata)
import ledger.outbox
import ledger.projection
import ledger.versions  # noqa: F401
from ledger.db import Base, make_engine

API_DIR = Path(__file__).resolve().parent
ALEMBIC_INI = API_DIR / "alembic.ini"
MIGRATIONS_DIR = API_DIR / "migrations"


def alembic_config(url: str | None = None) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _created_without_migrations(connection: Connection) -> bool:
    """Tables made by ``Base.metadata.create_all`` (``LedgerService`` does so) but never stamped by alembic."""
    inspector = inspect(connection)
    if inspector.has_table("alembic_version"):
        return False
    return any(inspector.has_table(name) for name in Base.metadata.tables)


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` to `revision`.

    A database whose tables were created from the metadata directly (``LedgerService`` calls ``create_all``) and
    never stamped is completed from the same metadata and stamped at head, since the head migration describes
    exactly that metadata (``tests/api/test_migrations.py`` checks so).
    """
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            if _created_without_migrations(connection):
                Base.metadata.create_all(connection)
                command.stamp(config, revision)
            else:
                command.upgrade(config, revision)
    finally:
        engine.dispose()


def autogenerate(message: str, rev_id: str | None = None) -> None:
    """Write a new migration: the difference between head (built in a scratch SQLite file) and the metadata."""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / 'head.sqlite'}"
        upgrade(url)
        command.revision(alembic_config(url), message=message, autogenerate=True, rev_id=rev_id)


def main(argv: list[str] | None = None) -> None:
    """``python -m api.db upgrade [URL]`` or ``python -m api.db revision MESSAGE``."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["upgrade"]:
        from ledger.settings import Settings

        upgrade(args[1] if len(args) > 1 else Settings().database_url)
    elif args[:1] == ["revision"] and len(args) == 2:
        autogenerate(args[1])
    else:
        raise SystemExit("usage: python -m api.db upgrade [URL] | revision MESSAGE")


if __name__ == "__main__":
    main()

__all__ = ["alembic_config", "autogenerate", "upgrade"]
