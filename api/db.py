"""Database migrations, run programmatically: :func:`upgrade` brings any database (SQLite, PostgreSQL) to head."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, MetaData, inspect, make_url, text

import api.models  # noqa: F401  (every table in the metadata)
import ledger.outbox
import ledger.projection
import ledger.versions  # noqa: F401
from ledger.db import Base, make_engine
from ledger.files import private_dir

API_DIR = Path(__file__).resolve().parent
ALEMBIC_INI = API_DIR / "alembic.ini"
MIGRATIONS_DIR = API_DIR / "migrations"


def alembic_config(url: str | None = None) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


class UnknownSchema(ValueError):
    """A database holds tables of ours but no Alembic version, and they are the tables of no revision."""


def _tables(connection: Connection) -> dict[str, frozenset[str]]:
    inspector = inspect(connection)
    return {
        name: frozenset(column["name"] for column in inspector.get_columns(name))
        for name in inspector.get_table_names()
        if name != "alembic_version"
    }


def revision_tables() -> list[tuple[str, dict[str, frozenset[str]]]]:
    """Every revision, oldest first, with the tables (and their columns) the migrations up to it make, as built in a
    scratch SQLite file."""
    import tempfile

    from alembic.script import ScriptDirectory

    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / 'revisions.sqlite'}"
        config = alembic_config(url)
        revisions = [script.revision for script in ScriptDirectory.from_config(config).walk_revisions()][::-1]
        engine = make_engine(url)
        try:
            result = []
            with engine.begin() as connection:
                config.attributes["connection"] = connection
                for revision in revisions:
                    command.upgrade(config, revision)
                    result.append((revision, _tables(connection)))
            return result
        finally:
            engine.dispose()


def _unstamped_revision(connection: Connection) -> str | None:
    """The revision an unstamped database of ours is at, or None for a stamped or an empty one.

    Before the ledger's tables came from migrations, ``LedgerService`` created them itself, from whichever models its
    process had loaded. So a database without an Alembic version was made by one of two things:

    - every model loaded (a command that imported the API): the whole schema of its day, which is at the newest
      revision whose tables and columns are exactly its own;
    - only the ledger's commands (``deploy``, ``worker``, ``export``): the outbox's tables, which are revision 0000's,
      and perhaps newer ledger tables created ahead of their migration. Those were never written outside the API, so
      they are empty: they are dropped (their migration makes them again) and the database is at revision 0000.

    Anything else is refused, never completed: the tables it would need are not those of any revision."""
    inspector = inspect(connection)
    if inspector.has_table("alembic_version"):
        return None
    if not set(inspector.get_table_names()) & set(Base.metadata.tables):
        return None
    revisions = revision_tables()
    ours = {name for _, tables in revisions for name in tables}
    present = {name: columns for name, columns in _tables(connection).items() if name in ours}
    for revision, tables in reversed(revisions):
        if tables == present:
            return revision
    first, outbox = revisions[0]
    ahead = sorted(set(present) - set(outbox))
    if all(present.get(name) == columns for name, columns in outbox.items()) and not any(
        connection.execute(text(f'SELECT 1 FROM "{name}" LIMIT 1')).first() for name in ahead
    ):
        made_ahead = MetaData()
        made_ahead.reflect(connection, only=ahead)  # also reflects the tables they refer to: those stay
        made_ahead.drop_all(connection, tables=[made_ahead.tables[name] for name in ahead])
        return first
    raise UnknownSchema(
        f"the database holds tables of circular-ledger ({', '.join(sorted(present))}) but no alembic_version, and "
        "they are the tables of no migration: restore it from a backup or migrate it by hand"
    )


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` to `revision`: every table, the ledger's included, comes from the migrations.

    A database from before the ledger's tables had migrations (no ``alembic_version``) is first stamped at the
    revision its tables are exactly (:func:`_unstamped_revision`), then migrated from there.
    """
    database = make_url(url).database
    if make_url(url).get_backend_name() == "sqlite" and database and database != ":memory:":
        private_dir(Path(database).parent)  # a new data directory's first database: its owner's only (0700)
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            unstamped = _unstamped_revision(connection)
            if unstamped is not None:
                command.stamp(config, unstamped)
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

__all__ = ["UnknownSchema", "alembic_config", "autogenerate", "revision_tables", "upgrade"]
