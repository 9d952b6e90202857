"""Migrations: ``api.db.upgrade`` builds every table of the one metadata on an empty SQLite or PostgreSQL database,
and the head migration describes exactly the metadata (no drift between models and migrations)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

import api.models
import ledger.outbox
import ledger.projection
from api.db import upgrade
from ledger.db import Base, make_engine

from .conftest import PG_URL

OUR_TABLES = {
    *(model.__tablename__ for model in api.models.API_TABLES),
    *(model.__tablename__ for model in ledger.projection.PROJECTION_TABLES),
    ledger.outbox.OutboxEvent.__tablename__,
    ledger.outbox.EventEpc.__tablename__,
    ledger.outbox.Batch.__tablename__,
}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.sqlite'}"
        return
    schema = f"api_mig_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # pragma: no cover
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _diff(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    finally:
        engine.dispose()
    return [d for d in diff if _table_of(d) in OUR_TABLES]


def _table_of(entry: object) -> str | None:
    item = entry[0] if isinstance(entry, list) else entry
    for part in item[1:] if isinstance(item, tuple) else ():
        name = getattr(part, "name", None) if not isinstance(part, str) else part
        table = getattr(part, "table", None)
        if table is not None:
            return str(table.name)
        if isinstance(name, str) and name in OUR_TABLES:
            return name
    return None


def _head() -> str:
    """The one head revision (two heads mean two migrations were added side by side: merge them)."""
    from alembic.script import ScriptDirectory

    from api.db import alembic_config

    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1, f"migrations have several heads: {heads}"
    return str(heads[0])


def test_upgrade_builds_every_table(empty_db: str) -> None:
    upgrade(empty_db)
    engine = make_engine(empty_db)
    try:
        tables = set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()
    assert tables >= OUR_TABLES
    assert version == _head()
    assert _diff(empty_db) == []
    upgrade(empty_db)  # idempotent


def test_a_database_made_by_create_all_is_stamped(empty_db: str) -> None:
    engine = make_engine(empty_db)
    Base.metadata.create_all(engine)  # what LedgerService does on start-up
    engine.dispose()
    upgrade(empty_db)
    engine = make_engine(empty_db)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == _head()
    finally:
        engine.dispose()


def _version(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


def test_a_database_only_the_ledger_opened_before_migrations_upgrades(empty_db: str) -> None:
    """The ledger used to create its outbox's tables itself: such a database is stamped at the revision that makes
    exactly those tables, then migrated, its rows kept."""
    outbox = [ledger.outbox.Batch.__table__, ledger.outbox.OutboxEvent.__table__, ledger.outbox.EventEpc.__table__]
    engine = make_engine(empty_db)
    Base.metadata.create_all(engine, tables=outbox)  # what LedgerService did before the migrations owned its tables
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO ledger_events (event_id, digest, event, signer, signature, deadline, status, created_at) "
            "VALUES ('ni:///sha-256;00?ver=CBV2.0', :digest, '{}', '0x00', :sig, 0, 'PENDING', CURRENT_TIMESTAMP)"
        ), {"digest": b"\x01" * 32, "sig": b"\x02" * 65})
    engine.dispose()
    upgrade(empty_db)
    assert _version(empty_db) == _head()
    assert _diff(empty_db) == []
    engine = make_engine(empty_db)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT event_id FROM ledger_events")).scalars().all() == [
                "ni:///sha-256;00?ver=CBV2.0"
            ]
    finally:
        engine.dispose()


def test_newer_ledger_tables_made_ahead_of_their_migration_are_remade_by_it(empty_db: str) -> None:
    """The ledger also created, empty, its tables of later revisions (document versions): they are dropped and made
    by their migration; a row in one of them would have been refused."""
    import ledger.versions

    outbox = [ledger.outbox.Batch.__table__, ledger.outbox.OutboxEvent.__table__, ledger.outbox.EventEpc.__table__]
    engine = make_engine(empty_db)
    Base.metadata.create_all(engine, tables=[*outbox, ledger.versions.DocumentVersion.__table__])
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO ledger_batches (root, event_count, status, attempts, created_at) "
            "VALUES (:root, 1, 'CONFIRMED', 1, CURRENT_TIMESTAMP)"
        ), {"root": b"\x03" * 32})
    engine.dispose()
    upgrade(empty_db)
    assert _version(empty_db) == _head()
    assert _diff(empty_db) == []
    engine = make_engine(empty_db)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM ledger_batches")).scalar() == 1  # the outbox kept
    finally:
        engine.dispose()


def test_a_database_at_an_older_revision_upgrades(empty_db: str) -> None:
    from api.db import revision_tables

    revisions = [revision for revision, _ in revision_tables()]
    assert revisions[0] == "0000" and revisions[-1] == _head()
    upgrade(empty_db, revisions[1])
    assert _version(empty_db) == revisions[1]
    upgrade(empty_db)
    assert _version(empty_db) == _head()
    assert _diff(empty_db) == []


def test_tables_of_no_revision_are_refused_not_completed(empty_db: str) -> None:
    from api.db import UnknownSchema

    engine = make_engine(empty_db)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE ledger_events (id INTEGER PRIMARY KEY, something_else TEXT)"))
    engine.dispose()
    with pytest.raises(UnknownSchema, match="no migration"):
        upgrade(empty_db)
    engine = make_engine(empty_db)
    try:
        assert set(inspect(engine).get_table_names()) == {"ledger_events"}
    finally:
        engine.dispose()


def test_a_written_table_ahead_of_its_migration_is_refused(empty_db: str) -> None:
    from api.db import UnknownSchema

    outbox = [ledger.outbox.Batch.__table__, ledger.outbox.OutboxEvent.__table__, ledger.outbox.EventEpc.__table__]
    engine = make_engine(empty_db)
    Base.metadata.create_all(engine, tables=[*outbox, api.models.Actor.__table__])
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO api_actors (name, role, address, key_name, key_hash, revoked, created_at) "
            "VALUES ('a', 'brand', '0x00', 'k', 'h', false, CURRENT_TIMESTAMP)"
        ))
    engine.dispose()
    with pytest.raises(UnknownSchema):
        upgrade(empty_db)
    assert _version(empty_db) is None


def test_the_ledger_refuses_a_database_without_its_tables(empty_db: str, tmp_path: Path) -> None:
    from ledger.errors import ConfigurationError
    from ledger.service import LedgerService
    from ledger.settings import Settings

    settings = Settings(data_dir=tmp_path / "data", db_url=empty_db)
    with pytest.raises(ConfigurationError, match="run the migrations first"):
        LedgerService(settings)
    engine = make_engine(empty_db)
    try:
        assert inspect(engine).get_table_names() == []  # it created nothing
    finally:
        engine.dispose()
