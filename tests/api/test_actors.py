"""``api.add_actor`` (what ``circular actors add`` calls): accounts from an env key or a new keystore, on-chain roles
and company prefixes, and API keys that only exist hashed."""

from __future__ import annotations

import stat

import pytest
from eth_account import Account

from api import add_actor, authenticate, hash_key
from api.actors import key_name_for

from .conftest import World


def _gtin_under(prefix: str) -> str:
    body = ("0" + prefix).ljust(13, "1")
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def test_a_new_actor_gets_a_keystore_a_role_and_prefixes(world: World) -> None:
    name = world.unique("Brand C ")
    prefix = f"7{world.unique('')[1:]}0"
    with world.service.sessions() as session:
        actor, api_key = add_actor(world.service, session, "brand", name, prefixes=[prefix])
    keystore = world.settings.keys_dir / f"{actor.key_name}.json"
    assert keystore.exists() and stat.S_IMODE(keystore.stat().st_mode) == 0o600
    assert world.settings.actor_key(actor.key_name).address == actor.address
    ledger = world.service.ledger
    assert ledger.has_role("brand", actor.address)
    assert ledger.gtin_owner(_gtin_under(prefix)) == actor.address
    assert actor.key_hash == hash_key(api_key) and api_key not in actor.key_hash
    with world.service.sessions() as session:
        found = authenticate(session, api_key)
        assert found is not None and found.id == actor.id


def test_an_env_key_is_used_when_named(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    name = world.unique("Recycler ")
    account = Account.create()
    key_name = world.unique("recycler-env-").lower()
    monkeypatch.setenv("CIRCULAR_KEY_" + key_name.upper().replace("-", "_"), account.key.hex())
    with world.service.sessions() as session:
        actor, _ = add_actor(world.service, session, "recycler", name, key_name=key_name)
    assert actor.address == account.address and actor.key_name == key_name
    assert not (world.settings.keys_dir / f"{key_name}.json").exists()
    assert world.service.ledger.has_role("recycler", account.address)


@pytest.mark.parametrize(
    ("role", "name", "prefixes"),
    [("owner", "X", ()), ("brand", "", ()), ("retailer", "Y", ("1234567",)), ("brand", "Z", ("12",))],
)
def test_bad_actors_are_refused(world: World, role: str, name: str, prefixes: tuple[str, ...]) -> None:
    with world.service.sessions() as session, pytest.raises(ValueError):
        add_actor(world.service, session, role, name or "", prefixes=prefixes)


def test_names_are_unique(world: World) -> None:
    with world.service.sessions() as session, pytest.raises(ValueError, match="exists"):
        add_actor(world.service, session, "retailer", "Retailer")


def test_key_names_are_safe_and_unique() -> None:
    assert key_name_for("Brand Ä / Ø 1").startswith("actor-brand-a-1-")
    assert key_name_for("!!!").startswith("actor-actor-")
    assert key_name_for("Brand A") != key_name_for("Brand A")
