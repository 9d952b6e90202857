"""An actor's Ethereum key is its own: a name that slugs alike no longer hands over another actor's key.

The attack: keystores were named by a slug of the actor's name. An actor created as ``BRAND-A`` with the role
retailer got Brand A's keystore (``actor-brand-a``), so Brand A's address: it signed with Brand A's key, and kept
signing after Brand A's API key was revoked.

Now a new actor's key is named by a random id (``actor-<slug>-<id>``), an existing keystore is never reused or
overwritten for a new actor, an existing key is used only when named explicitly and never when its account is
another actor's, and the database refuses two actors that may act with one account (a unique index; the migration
revokes the later of two actors that already share one). On SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.exc import IntegrityError

import api.actors
from api import add_actor
from api.db import upgrade
from api.models import Actor, utcnow
from ledger.errors import ConfigurationError
from tests.api.conftest import PG_URL, World


def test_a_look_alike_name_gets_a_key_of_its_own(any_db_world: World) -> None:
    w = any_db_world
    name = w.unique("Brand Q ")
    with w.service.sessions() as session:
        brand, _ = add_actor(w.service, session, "brand", name)
        keystore = w.settings.keys_dir / f"{brand.key_name}.json"
        before = keystore.read_bytes()
        impostor, _ = add_actor(w.service, session, "retailer", name.upper().replace(" ", "-"))
    assert impostor.address != brand.address
    assert impostor.key_name != brand.key_name
    assert keystore.read_bytes() == before
    assert not w.service.ledger.has_role("retailer", brand.address)


def test_an_existing_keystore_is_never_reused_for_a_new_actor(
    any_db_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even if a new name met an existing keystore (a collision of ids, a file put there by hand), it is refused."""
    w = any_db_world
    with w.service.sessions() as session:
        first, _ = add_actor(w.service, session, "brand", w.unique("Brand R "))
        keystore = w.settings.keys_dir / f"{first.key_name}.json"
        before = keystore.read_bytes()
        monkeypatch.setattr(api.actors, "key_name_for", lambda _name: first.key_name)
        name = w.unique("Retailer R ")
        with pytest.raises(ConfigurationError, match="exists already"):
            add_actor(w.service, session, "retailer", name)
        assert session.scalar(select(Actor.id).where(Actor.name == name)) is None
    assert keystore.read_bytes() == before


def test_a_named_key_is_never_another_actors(any_db_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    w = any_db_world
    with w.service.sessions() as session:
        first, _ = add_actor(w.service, session, "brand", w.unique("Brand S "))
        with pytest.raises(ValueError, match="is the key of actor"):
            add_actor(w.service, session, "retailer", w.unique("Retailer S "), key_name=first.key_name)
        # The same key under another name (an env var holding Brand S's private key): the account is refused.
        other = w.unique("copy-").lower()
        monkeypatch.setenv("CIRCULAR_KEY_" + other.upper().replace("-", "_"),
                           w.settings.actor_key(first.key_name).key.hex())
        with pytest.raises(ValueError, match="an actor's account is its own"):
            add_actor(w.service, session, "retailer", w.unique("Retailer T "), key_name=other)


def test_the_database_refuses_two_acting_actors_with_one_account(any_db_world: World) -> None:
    w = any_db_world
    address = Account.create().address
    with w.service.sessions() as session:
        for index in range(2):
            session.add(Actor(name=w.unique("Twin "), role="retailer", address=address,
                              key_name=f"twin-{uuid.uuid4().hex}", key_hash=uuid.uuid4().hex * 2,
                              revoked=index == 0, created_at=utcnow()))
        session.commit()  # a revoked actor and an acting one may share an account (a key rotation)
        session.add(Actor(name=w.unique("Twin "), role="retailer", address=address, key_name="twin-3",
                          key_hash=uuid.uuid4().hex * 2, revoked=False, created_at=utcnow()))
        with pytest.raises(IntegrityError):
            session.commit()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def old_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.sqlite'}"
        return
    schema = f"sec_mig_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def test_the_migration_revokes_the_later_of_two_actors_sharing_an_account(old_db: str) -> None:
    """A database from before the fix, where ``BRAND-A`` got Brand A's account: the later actor is revoked (it never
    had a key of its own), Brand A keeps it, and the unique index is there afterwards."""
    upgrade(old_db, "0008_passport_versions")
    engine = create_engine(old_db)
    try:
        with engine.begin() as conn:
            for name, role in (("Brand A", "brand"), ("BRAND-A", "retailer"), ("Retailer", "retailer")):
                address = "0x" + ("22" if name != "Retailer" else "33") * 20
                conn.execute(
                    text("INSERT INTO api_actors (name, role, address, key_name, key_hash, revoked, created_at) "
                         "VALUES (:n, :r, :a, 'actor-brand-a', :h, :f, :t)"),
                    {"n": name, "r": role, "a": address, "h": uuid.uuid4().hex * 2, "f": False, "t": utcnow()},
                )
        upgrade(old_db)
        with engine.connect() as conn:
            revoked = dict(conn.execute(text("SELECT name, revoked FROM api_actors")).all())
            indexes = {ix["name"] for ix in inspect(conn).get_indexes("api_actors")}
        assert {name: bool(flag) for name, flag in revoked.items()} == {
            "Brand A": False, "BRAND-A": True, "Retailer": False
        }
        assert "uq_api_actors_address_active" in indexes
    finally:
        engine.dispose()
