"""The ledger as one object for the CLI and the API: chain, deployment, outbox, signing and the anchoring worker.

The embedded chain is a file owned by one process at a time. When another process (``circular serve``) owns it,
:func:`open_chain` reaches the same chain through that process's JSON-RPC endpoint, recorded in
``<data_dir>/server.json``: every command acts on one chain and one database (see ``ledger/README.md``).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any

from eth_account.signers.local import LocalAccount
from sqlalchemy import Engine, inspect
from sqlalchemy.orm import Session, sessionmaker

from .anchoring import AnchoringWorker, AnchorResult
from .archive import Archive
from .chain import ChainBackend, EthTesterBackend, JsonRpcBackend
from .client import Deployment, Ledger, Role
from .db import make_engine, printable_url
from .durable import DurableTransactions
from .epcis.corrections import is_declaration, record_id
from .epcis.hashing import hash_digest
from .errors import ChainIdMismatch, ChainLocked, ConfigurationError, InvalidSignature, KeyNotFound
from .files import private_dir, write_private
from .integrity import ChainFacts
from .outbox import Outbox, OutboxEvent, SignedEvent, Stored
from .settings import Settings
from .signing import EventDomain, EventSigner, recover_event_signer, sign_event

SIGNATURE_TTL_S = 3600  # how long a freshly signed event may wait before submission
ACTOR_ROLES = ("brand", "recycler", "retailer", "repairer")
DEV_ACCOUNT_OF = {"admin": 0, "anchorer": 9}


def server_file(settings: Settings) -> Any:
    return settings.data_dir / "server.json"


def write_server_file(settings: Settings, rpc_url: str, pid: int) -> str:
    """Record the endpoint through which the serving process shares its embedded chain, with a new secret that
    callers must present (``Authorization: Bearer``). The file is 0600: the secret is for the server's own user's
    commands only, never for another local user or anyone a relay lets in. Returns the secret."""
    secret = secrets.token_urlsafe(32)
    write_private(server_file(settings), json.dumps({"rpc": rpc_url, "pid": pid, "secret": secret}))
    return secret


def _served_chain(settings: Settings) -> JsonRpcBackend:
    """The embedded chain through the process that owns it, authenticated with the secret it recorded."""
    info = json.loads(server_file(settings).read_text())
    secret = info.get("secret")
    if not isinstance(secret, str) or not secret:
        raise ConfigurationError(f"{server_file(settings)} holds no secret: restart `circular serve`")
    return JsonRpcBackend(info["rpc"], timeout=settings.rpc_timeout_s, headers={"Authorization": f"Bearer {secret}"})


def open_chain(settings: Settings) -> ChainBackend:
    """The configured chain: the RPC URL, else the embedded chain (in-process, or via the process that owns it)."""
    if settings.rpc_url:
        backend: ChainBackend = JsonRpcBackend(settings.rpc_url, timeout=settings.rpc_timeout_s)
    else:
        try:
            backend = EthTesterBackend(settings.chain_path)
        except ChainLocked:
            if not server_file(settings).exists():
                raise
            backend = _served_chain(settings)
    if settings.chain_id is not None and backend.web3.eth.chain_id != settings.chain_id:
        actual = backend.web3.eth.chain_id
        backend.close()
        raise ChainIdMismatch(
            f"the node reports chain id {actual}, CIRCULAR_CHAIN_ID says {settings.chain_id}: point CIRCULAR_RPC_URL "
            "at that chain's node, or correct CIRCULAR_CHAIN_ID"
        )
    return backend


def _require_tables(engine: Engine, url: str) -> None:
    """The ledger creates no tables: they come from the migrations, which whoever opens the database runs first (every
    `circular` command, the API on start-up). A database without them is refused here, before any work."""
    if not inspect(engine).has_table(OutboxEvent.__tablename__):
        engine.dispose()
        raise ConfigurationError(
            f"the database {printable_url(url)} has no tables yet: run the migrations first "
            "(python -m api.db upgrade URL; every circular command does)"
        )


class LedgerService:
    """Everything the CLI and the API need from the ledger, opened from one :class:`Settings`."""

    def __init__(self, settings: Settings, backend: ChainBackend | None = None) -> None:
        self.settings = settings
        private_dir(settings.data_dir)
        self.engine = make_engine(settings.database_url)
        _require_tables(self.engine, settings.database_url)
        self.backend = backend or open_chain(settings)
        self.sessions: sessionmaker[Session] = sessionmaker(self.engine, expire_on_commit=False)
        self.outbox = Outbox(self.sessions)
        self._role_cache: dict[tuple[str, str], tuple[bool, float]] = {}
        # Called after every batch the service's workers confirm (the API rebuilds the passports that show it).
        self.after_anchoring: list[Callable[[AnchorResult], object]] = []

    @cached_property
    def chain_id(self) -> int:
        return int(self.backend.web3.eth.chain_id)

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(self.backend, Deployment.load(self.settings.deployments_dir, self.chain_id))

    @cached_property
    def chain_facts(self) -> ChainFacts:
        """What the chain says about items' compositions and lots, read once (it does not change once mined)."""
        return ChainFacts(self.ledger)

    @cached_property
    def archive(self) -> Archive | None:
        """The batch archive, or None when archiving is off (then `circular rebuild` cannot restore events)."""
        if not self.settings.archive_enabled:
            return None
        return Archive(self.settings.archive_path, self.settings.archive_base_uri)

    def account(self, actor: str) -> LocalAccount:
        """`actor`'s configured key (env or keystore), or on a development chain its pre-funded account: the admin is
        dev account 0 and the anchorer dev account 9, the ones `circular deploy` sets up."""
        try:
            return self.settings.actor_key(actor)
        except KeyNotFound:
            accounts = self.backend.dev_accounts()
            if not accounts or actor not in DEV_ACCOUNT_OF:
                raise
            return accounts[DEV_ACCOUNT_OF[actor]]

    @property
    def transactions(self) -> DurableTransactions:
        """The durable-transaction protocol (``ledger.durable``) over the ledger's transactor, at the configured
        confirmation depth: how the API's writes reach the chain, as the anchoring worker's do."""
        tx = self.ledger.tx
        current: DurableTransactions | None = self.__dict__.get("_transactions")
        if current is None or current.tx is not tx:  # a new deployment comes with a new transactor
            current = self.__dict__["_transactions"] = DurableTransactions(tx, self.settings.confirmations)
        return current

    def deploy(self, admin: LocalAccount) -> Ledger:
        ledger = Ledger.deploy(self.backend, admin)
        ledger.deployment.save(self.settings.deployments_dir)
        self.__dict__["ledger"] = ledger
        return ledger

    @property
    def domain(self) -> EventDomain:
        return EventDomain(self.chain_id, self.ledger.deployment.addresses["EventAnchor"])

    # -- events -----------------------------------------------------------------------------------------------
    def sign(self, actor: LocalAccount, event: dict[str, Any], ttl_s: int = SIGNATURE_TTL_S) -> SignedEvent:
        deadline = int(time.time()) + ttl_s
        signature = sign_event(actor.key, self.domain, hash_digest(record_id(event)), deadline)
        return SignedEvent(event, actor.address, signature, deadline)

    def sign_many(self, actor: LocalAccount, events: Sequence[dict[str, Any]]) -> list[SignedEvent]:
        """Sign `events` as `actor`, the key loaded and the domain built once (a bulk write's hundreds of events)."""
        signer, domain = EventSigner(actor), self.domain
        deadline = int(time.time()) + SIGNATURE_TTL_S
        signed = []
        for event in events:
            event_id = record_id(event)
            signature = signer.sign(domain, hash_digest(event_id), deadline)
            signed.append(SignedEvent(event, actor.address, signature, deadline, computed_id=event_id))
        return signed

    def record(
        self,
        actor: LocalAccount,
        events: Sequence[dict[str, Any]],
        event_ids: Sequence[str] | None = None,
        session: Session | None = None,
    ) -> list[Stored]:
        """Sign `events` as `actor` and store them in the outbox (idempotently).

        `event_ids`, when given, are the events' Event Hash IDs as the caller has just computed them with
        :func:`event_hash_id` (EPCIS capture hashes every event to set its ``eventID``): each event is then hashed
        once, not twice. Never ids taken from input: they are what gets signed and anchored. With `session`, the
        events are written in its transaction and not committed (see :meth:`Outbox.add_many`).
        """
        if event_ids is not None and len(event_ids) != len(events):
            raise ValueError(f"{len(event_ids)} event ids for {len(events)} events")
        if len(events) < 2 and event_ids is None:
            return self.outbox.add_many([self.sign(actor, e) for e in events], session=session)
        # An EPCIS capture of 1,000 events: the key is loaded and the domain built once, not once per event (they
        # were a third of the signing time).
        signer, domain = EventSigner(actor), self.domain
        deadline = int(time.time()) + SIGNATURE_TTL_S
        signed = []
        for index, event in enumerate(events):
            # A declaration's record id is not its Event Hash ID (ledger.epcis.corrections): always computed here.
            given = event_ids is not None and not is_declaration(event)
            event_id = event_ids[index] if event_ids is not None and given else record_id(event)
            signature = signer.sign(domain, hash_digest(event_id), deadline)
            signed.append(SignedEvent(event, actor.address, signature, deadline, computed_id=event_id))
        return self.outbox.add_many(signed, session=session)

    def submit(self, signed: Sequence[SignedEvent]) -> list[Stored]:
        """Store events signed elsewhere, after checking each signature, deadline and the signer's role."""
        now = int(time.time())
        for item in signed:
            if item.deadline < now:
                raise InvalidSignature(f"the signature of {item.event_id} expired at {item.deadline}")
            signer = recover_event_signer(
                self.domain, hash_digest(record_id(item.event)), item.deadline, item.signature
            )
            if signer.lower() != item.signer.lower():
                raise InvalidSignature(f"event {item.event_id} is signed by {signer}, not {item.signer}")
            if not self.has_actor_role(signer):
                raise InvalidSignature(f"signer {signer} holds no brand, recycler, retailer or repairer role")
        return self.outbox.add_many(signed)

    def has_actor_role(self, account: str) -> bool:
        """Whether `account` holds an actor role; cached for 10 s (a revoked role stops working within that)."""
        key = (account.lower(), "actor")
        cached = self._role_cache.get(key)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        value = any(self.ledger.has_role(role, account) for role in ACTOR_ROLES)
        self._role_cache[key] = (value, time.monotonic() + 10)
        return value

    def worker(self, anchorer: LocalAccount) -> AnchoringWorker:
        return AnchoringWorker(
            self.ledger,
            self.sessions,
            anchorer,
            batch_size=self.settings.batch_size,
            max_wait_s=self.settings.batch_max_wait_s,
            confirmations=self.settings.confirmations,
            archive=self.archive,
            on_confirmed=self.after_anchoring,
        )

    def close(self) -> None:
        self.engine.dispose()
        self.backend.close()


__all__ = ["LedgerService", "Role", "open_chain", "server_file", "write_server_file"]
