"""Actors: API keys bound to on-chain accounts and roles. ``circular actors add`` calls :func:`add_actor`.

An API key is 32 random bytes; only its SHA-256 is stored (a fast hash is enough for a key with 256 bits of entropy),
so a leaked database yields no usable key. Revocation flips ``revoked`` and takes effect on the next request.
Each actor's Ethereum key is an env key (``CIRCULAR_KEY_<KEY_NAME>``) or an encrypted keystore file written through
:meth:`ledger.settings.Settings.save_actor_key`.

A key's name holds a random id (``actor-<slug>-<id>``): keys were named by a slug of the actor's name alone, so an
actor created as ``BRAND-A`` got Brand A's keystore, signed with Brand A's key, and kept signing after Brand A's API
key was revoked. A new actor gets a new key under a new name (an existing keystore is never reused for it); an
existing key is used only when named explicitly (``key_name``), and never when its account is another actor's. No
two actors that may act share an account (a unique index, ``0009``).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger.accounts import LocalAccount, new_account
from ledger.errors import ConfigurationError, KeyNotFound

from .models import Actor, ActorRole, utcnow

if TYPE_CHECKING:
    from ledger.service import LedgerService

KEY_PREFIX = "clk_"
ADMIN_KEY_NAME = "admin"
DEV_FUNDING_WEI = 10**20  # 100 ether on a development chain


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


KEY_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,79}")


def key_name_for(name: str) -> str:
    """``actor-<slug>-<id>``: a new, unique name under which a new actor's Ethereum key is kept (env var or keystore
    file). The slug is for people reading the keys directory; the random id is what keeps two actors apart."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:40] or "actor"
    return f"actor-{slug}-{secrets.token_hex(8)}"


def chain_admin(service: LedgerService) -> LocalAccount:
    """The chain's admin key: ``actor_key("admin")`` (env or keystore), else a dev chain's first account."""
    try:
        return service.settings.actor_key(ADMIN_KEY_NAME)
    except KeyNotFound:
        accounts = service.backend.dev_accounts()
        if not accounts:
            raise
        return accounts[0]


class ActorKeys:
    """Actors' Ethereum keys, decrypted once per process (a keystore's KDF is deliberately slow)."""

    def __init__(self, service: LedgerService) -> None:
        self.service = service
        self._cache: dict[str, LocalAccount] = {}
        self._lock = threading.Lock()

    def account(self, actor: Actor) -> LocalAccount:
        with self._lock:
            cached = self._cache.get(actor.key_name)
        if cached is not None and cached.address == actor.address:
            return cached
        if actor.key_name == ADMIN_KEY_NAME:
            account = chain_admin(self.service)
        else:
            account = self.service.settings.actor_key(actor.key_name)
        if account.address.lower() != actor.address.lower():
            raise ConfigurationError(f"the key {actor.key_name!r} is not the one of actor {actor.name!r}")
        with self._lock:
            self._cache[actor.key_name] = account
        return account

    def remember(self, key_name: str, account: LocalAccount) -> None:
        with self._lock:
            self._cache[key_name] = account


def _new_account(service: LedgerService, key_name: str) -> LocalAccount:
    """A new account, kept under `key_name` in a new keystore (refused if one exists: it would be another key)."""
    account = new_account()
    service.settings.save_actor_key(key_name, account)
    return account


def _named_account(service: LedgerService, session: Session, key_name: str) -> LocalAccount:
    """The existing key configured as `key_name` (env or keystore), for an actor whose key was made elsewhere."""
    if not KEY_NAME.fullmatch(key_name) or key_name == ADMIN_KEY_NAME:
        raise ValueError(f"a key name is 1 to 80 lower-case letters, digits and hyphens, not {key_name!r}")
    holder = session.scalar(select(Actor.name).where(Actor.key_name == key_name))
    if holder is not None:
        raise ValueError(f"the key {key_name!r} is the key of actor {holder!r} already")
    try:
        return service.settings.actor_key(key_name)
    except KeyNotFound:
        raise ValueError(f"no key named {key_name!r} is configured (env or keystore)") from None


def _fund(service: LedgerService, address: str) -> None:
    """Fund a new account on a development chain (a production network's operator funds it instead)."""
    service.ledger.tx.fund_dev_account(address, DEV_FUNDING_WEI)


def add_actor(
    service: LedgerService,
    session: Session,
    role: str,
    name: str,
    *,
    prefixes: Sequence[str] = (),
    keys: ActorKeys | None = None,
    key_name: str | None = None,
) -> tuple[Actor, str]:
    """Create an actor: an account (a new keystore, or the existing key named `key_name`), its on-chain role, a
    brand's GS1 company prefixes, and an API key. Returns the actor (committed) and the API key, which is shown once
    and never stored. An account that is another actor's is refused."""
    try:
        actor_role = ActorRole(role)
    except ValueError:
        raise ValueError(f"role must be one of {', '.join(r.value for r in ActorRole)}: {role!r}") from None
    name = name.strip()
    if not name or len(name) > 120:
        raise ValueError("an actor's name is 1 to 120 characters")
    if prefixes and actor_role is not ActorRole.BRAND:
        raise ValueError("only brands hold GS1 company prefixes")
    if session.scalar(select(Actor.id).where(Actor.name == name)) is not None:
        raise ValueError(f"an actor named {name!r} exists already")
    for prefix in prefixes:
        if not prefix.isdigit() or not 4 <= len(prefix) <= 12:
            raise ValueError(f"a GS1 company prefix is 4 to 12 digits: {prefix!r}")
    admin = chain_admin(service)
    ledger = service.ledger
    if actor_role is ActorRole.ADMIN:
        key_name, account = ADMIN_KEY_NAME, admin
    elif key_name is not None:
        account = _named_account(service, session, key_name)
    else:
        key_name = key_name_for(name)
        account = _new_account(service, key_name)
    holder = session.scalar(
        select(Actor.name).where(func.lower(Actor.address) == account.address.lower(), Actor.revoked.is_(False))
    )
    if holder is not None:
        raise ValueError(f"account {account.address} is actor {holder!r}'s: an actor's account is its own")
    if actor_role not in (ActorRole.ADMIN, ActorRole.AUTHORITY):  # an authority reads; it holds no on-chain role
        _fund(service, account.address)
        if not ledger.has_role(actor_role.value, account.address):
            ledger.grant_role(admin, actor_role.value, account.address)
        for prefix in prefixes:
            ledger.assign_prefix(admin, prefix, account.address)
    api_key = new_api_key()
    actor = Actor(
        name=name,
        role=actor_role.value,
        address=account.address,
        key_name=key_name,
        key_hash=hash_key(api_key),
        revoked=False,
        created_at=utcnow(),
    )
    session.add(actor)
    if actor_role is ActorRole.BRAND:  # the key its passport credentials are signed with (api/credentials.py)
        from .credentials import can_keep_keys, ensure_key

        session.flush()
        if can_keep_keys(service.settings, key_name):
            ensure_key(service.settings, session, actor)
    session.commit()
    if service.archive is not None:  # the actor's name, signed by its own account, survives a lost database
        from .recovery import actor_masterdata

        service.archive.publish_masterdata("actor", account.address, actor_masterdata(actor), account)
    if keys is not None:
        keys.remember(key_name, account)
    return actor, api_key


def authenticate(session: Session, api_key: str) -> Actor | None:
    """The actor holding `api_key`, or None (unknown or revoked key)."""
    actor = session.scalar(select(Actor).where(Actor.key_hash == hash_key(api_key)))
    if actor is None or actor.revoked:
        return None
    return actor


def rotate_key(session: Session, actor: Actor) -> str:
    """Give `actor` a new API key and revoke the one it had (only its hash is kept, so a lost key, or every key after
    a rebuild, is replaced rather than recovered). Returns the new key, shown once. A revoked actor gets none."""
    if actor.revoked:
        raise ValueError(f"actor {actor.name!r} is revoked: it gets no new key")
    api_key = new_api_key()
    actor.key_hash = hash_key(api_key)
    session.commit()
    return api_key


def revoke_actor(session: Session, actor: Actor) -> Actor:
    actor.revoked = True
    actor.revoked_at = utcnow()
    session.commit()
    return actor


__all__ = [
    "ActorKeys",
    "add_actor",
    "authenticate",
    "chain_admin",
    "hash_key",
    "key_name_for",
    "revoke_actor",
    "rotate_key",
]
