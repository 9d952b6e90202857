"""Writes that change the chain, made atomic with the database by an intent recorded before sending.

A write follows the ledger's durable-transaction protocol (``ledger.durable``, the anchoring worker's too); what this
module adds is the database side (see "Writes: chain and database together" in ``api/README.md``):

1. *record*: the EPCIS events are signed, the transaction is signed with a nonce chosen under a per-sender lock
   (a PostgreSQL advisory lock across processes, a thread lock within one), and both are committed as one
   ``pending`` intent. Nothing has been sent yet: a crash here leaves an intent whose transaction nobody knows.
2. *send* the signed bytes (``DurableTransactions.broadcast``) and settle them by hash
   (``DurableTransactions.wait``): a receipt counts only on the canonical chain with the configured confirmations.
3. *complete*, in one database transaction: the events into the outbox, the API's rows (per kind of write), and the
   intent ``done``. A crash before this commit leaves the intent ``pending``; the chain and the rows never disagree
   for longer than that, and never because of a block that a reorganisation took away.

:func:`reconcile` settles a pending intent by its transaction hash, as the worker settles a batch: confirmed →
complete it; reverted → failed; unknown to the node with its nonce still free (never sent, lost from a pool, or
reorganised out) → the same bytes again; nonce used by another transaction → failed (nothing happened on-chain); still
on its way → left pending. It runs at start-up, before each write on the same item, and for a sender's intents left
pending too long (a crashed process's nonce would otherwise hold up the sender's later ones).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import CursorResult, select, text, update
from sqlalchemy.orm import Session

from ledger.accounts import LocalAccount
from ledger.durable import Outcome as Settled
from ledger.durable import RecordedTx, Sent, Settlement
from ledger.errors import TransactionFailed
from ledger.outbox import SignedEvent, Stored

from . import versions
from .models import Actor, WriteIntent, utcnow
from .problems import Problem
from .state import AppState, Completion
from .uris import hex32

if TYPE_CHECKING:
    from ledger.client import ContractCall, PreparedTx, Receipt

log = logging.getLogger("circular.api.intents")

PENDING, DONE, FAILED = "pending", "done", "failed"
# A pending intent older than this, of the sender about to write, is reconciled first: its process probably died
# between recording and sending, and its nonce would hold up every later transaction of the sender.
STALE_AFTER = timedelta(seconds=30)

_sender_locks: dict[str, threading.Lock] = {}
_sender_locks_guard = threading.Lock()


@dataclass(frozen=True)
class Written:
    tx_hash: str
    events: list[Stored]


def _sender_lock(sender: str) -> threading.Lock:
    with _sender_locks_guard:
        return _sender_locks.setdefault(sender.lower(), threading.Lock())


def _advisory_key(sender: str) -> int:
    """A signed 64-bit key for ``pg_advisory_xact_lock``: one lock per sending account."""
    return int.from_bytes(hashlib.sha256(b"circular-nonce:" + sender.lower().encode()).digest()[:8], "big", signed=True)


def _json_safe(tx: dict[str, Any]) -> dict[str, Any]:
    return {k: ("0x" + bytes(v).hex() if isinstance(v, bytes | bytearray) else v) for k, v in tx.items()}


def _signed_json(signed: SignedEvent) -> dict[str, Any]:
    return {
        "event": signed.event,
        "signer": signed.signer,
        "signature": signed.signature.hex(),
        "deadline": signed.deadline,
    }


def _signed_from(data: dict[str, Any]) -> SignedEvent:
    return SignedEvent(data["event"], data["signer"], bytes.fromhex(data["signature"]), int(data["deadline"]))


# -- one write ----------------------------------------------------------------------------------------------------
def write(
    state: AppState,
    actor: Actor,
    account: LocalAccount,
    *,
    kind: str,
    subject: str,
    call: ContractCall,
    events: Sequence[dict[str, Any]],
    effect: dict[str, Any],
    gas: int | None = None,
) -> Written:
    """Make one write: record the intent, send its transaction, complete it once settled. A revert raises as the
    contract named it (no intent is left behind when gas estimation already sees it); a node that cannot be reached,
    or a transaction not yet confirmed, leaves the intent pending and answers 503, and the same request can be
    retried."""
    if kind not in state.completions:
        raise ValueError(f"no completion registered for {kind!r}")
    signed = [state.service.sign(account, event) for event in events]
    reconcile(state, sender=account.address, older_than=STALE_AFTER)
    intent_id, recorded, tx_hash = _record(state, actor, account, kind, subject, call, signed, effect, gas)
    transactions = state.service.transactions
    try:
        sent = transactions.broadcast(recorded.raw, recorded.sender)
    except Exception as exc:  # a transient fault: the node may or may not have it; left for reconciliation
        log.warning("sending intent %s failed, left pending: %s", intent_id, exc)
        raise _in_doubt(tx_hash) from exc
    if sent.sent is Sent.REVERTED:  # the node ran it on arrival: nothing happened on-chain, the nonce is free again
        assert sent.error is not None
        _fail(state, intent_id, f"refused by the node: {sent.error}")
        raise sent.error
    if sent.sent is Sent.REFUSED:
        log.warning("intent %s refused by the node, left pending: %s", intent_id, sent.error)
        raise _in_doubt(tx_hash) from sent.error
    try:
        settled = transactions.wait(recorded, timeout_s=transactions.tx.receipt_timeout)
    except Exception as exc:
        log.warning("intent %s not settled yet, left pending: %s", intent_id, exc)
        raise _in_doubt(tx_hash) from exc
    written = _settled(state, intent_id, settled)
    if written is None:
        if settled.outcome is Settled.REPLACED:
            raise Problem(
                503,
                "Write not made",
                f"transaction {tx_hash} lost its nonce to another transaction of the same account: nothing was "
                "written, and retrying the request is safe",
                headers={"Retry-After": "1"},
                txHash=tx_hash,
            )
        raise _in_doubt(tx_hash)
    return written


def _settled(state: AppState, intent_id: int, settled: Settlement, *, raise_revert: bool = True) -> Written | None:
    """Act on a settled intent: complete it when confirmed, mark it failed when reverted (and raise the revert, if
    `raise_revert`) or replaced; None when it is not final yet or was replaced."""
    if settled.outcome is Settled.CONFIRMED:
        assert settled.receipt is not None
        return _complete(state, intent_id, settled.receipt)
    if settled.outcome is Settled.REVERTED:
        if settled.receipt is not None:
            return _complete(state, intent_id, settled.receipt)  # marks it failed and raises the named revert
        assert settled.error is not None
        _fail(state, intent_id, f"refused by the node: {settled.error}")
        if raise_revert:
            raise settled.error
    if settled.outcome is Settled.REPLACED:
        with state.service.sessions() as session:
            intent = session.get(WriteIntent, intent_id)
            nonce = intent.nonce if intent is not None else "?"
        _fail(state, intent_id, f"nonce {nonce} was used by another transaction; nothing was written")
    return None


def _in_doubt(tx_hash: str) -> Problem:
    return Problem(
        503,
        "Write pending",
        f"transaction {tx_hash} is sent but not confirmed yet; the write completes on its own, and retrying the "
        "request is safe",
        headers={"Retry-After": "5"},
        txHash=tx_hash,
    )


def _record(
    state: AppState,
    actor: Actor,
    account: LocalAccount,
    kind: str,
    subject: str,
    call: ContractCall,
    signed: list[SignedEvent],
    effect: dict[str, Any],
    gas: int | None,
) -> tuple[int, RecordedTx, str]:
    """Choose a nonce, sign, and commit the intent, all under the sender's lock (protocol step 1); return its id,
    what it recorded, and the transaction's hash as hex."""
    tx = state.service.ledger.tx
    sender = account.address
    unsigned = tx.build(account, call, gas=gas)  # the gas estimate, outside the lock: only the nonce needs it
    with _sender_lock(sender), state.service.sessions.begin() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _advisory_key(sender)})
        # Read the reserved nonces before the node's count: an intent that turns done in between is then counted by
        # the node, since it is marked done only after its transaction is mined.
        reserved = set(
            session.scalars(
                select(WriteIntent.nonce).where(WriteIntent.sender == sender, WriteIntent.status == PENDING)
            )
        )
        nonce = tx.pending_count(sender)
        while nonce in reserved:  # the lowest free nonce: one freed by a refused send is reused, leaving no gap
            nonce += 1
        prepared = tx.sign_with_nonce(account, unsigned, nonce)
        intent = WriteIntent(
            kind=kind,
            subject=subject,
            actor_id=actor.id,
            sender=sender,
            nonce=prepared.nonce,
            tx_hash=hex32(prepared.tx_hash),
            raw_tx=prepared.raw,
            tx=_json_safe(prepared.tx),
            events=[_signed_json(s) for s in signed],
            effect=effect,
            status=PENDING,
            created_at=utcnow(),
        )
        session.add(intent)
        session.flush()
        return intent.id, RecordedTx.of(prepared), intent.tx_hash


def _fail(state: AppState, intent_id: int, reason: str) -> None:
    with state.service.sessions.begin() as session:
        session.execute(
            update(WriteIntent)
            .where(WriteIntent.id == intent_id, WriteIntent.status == PENDING)
            .values(status=FAILED, error=reason[:2000], finished_at=utcnow())
        )


def _complete(state: AppState, intent_id: int, receipt: Receipt) -> Written:
    """The database side of a mined intent, in one transaction; a reverted one is marked failed and its revert
    raised."""
    service = state.service
    with service.sessions() as session:
        intent = session.get(WriteIntent, intent_id)
        assert intent is not None
        tx_fields, tx_hash = dict(intent.tx), intent.tx_hash
    try:
        service.ledger.tx.settle(tx_fields, receipt)
    except TransactionFailed as exc:
        _fail(state, intent_id, str(exc))
        raise
    with service.sessions.begin() as session:
        # The status flip comes first and is conditional: of two completers (a request and a reconciler), exactly
        # one sees a row change; on SQLite it also takes the write lock before anything is read.
        result = session.execute(
            update(WriteIntent)
            .where(WriteIntent.id == intent_id, WriteIntent.status == PENDING)
            .values(status=DONE, finished_at=utcnow())
        )
        claimed = cast(CursorResult[Any], result).rowcount == 1
        intent = session.get(WriteIntent, intent_id)
        assert intent is not None
        signed = [_signed_from(data) for data in intent.events]
        stored = service.outbox.add_many(signed, session=session)
        if claimed:
            state.completions[intent.kind](session, intent)
            # The passports the events change, in the same transaction: the write's answer comes after them.
            versions.after_events(session, state, [s.event for s in signed])
    return Written(tx_hash, stored)


# -- reconciliation -----------------------------------------------------------------------------------------------
def reconcile(
    state: AppState, *, subject: str | None = None, sender: str | None = None, older_than: timedelta | None = None
) -> int:
    """Settle pending intents (of `subject`, of `sender`, older than `older_than`); how many were settled. An intent
    whose transaction is still on its way stays pending; one whose node is unreachable is left for next time."""
    query = select(WriteIntent.id).where(WriteIntent.status == PENDING).order_by(WriteIntent.nonce)
    if subject is not None:
        query = query.where(WriteIntent.subject == subject)
    if sender is not None:
        query = query.where(WriteIntent.sender == sender)
    if older_than is not None:
        query = query.where(WriteIntent.created_at < utcnow() - older_than)
    with state.service.sessions() as session:
        ids = list(session.scalars(query))
    settled = 0
    for intent_id in ids:
        try:
            settled += _reconcile_one(state, intent_id)
        except TransactionFailed:
            settled += 1  # reverted on-chain: marked failed
        except Exception as exc:
            log.warning("intent %s not reconciled yet: %s", intent_id, exc)
    return settled


def _reconcile_one(state: AppState, intent_id: int) -> bool:
    with state.service.sessions() as session:
        intent = session.get(WriteIntent, intent_id)
        if intent is None or intent.status != PENDING:
            return False
        recorded = RecordedTx(intent.sender, intent.nonce, bytes.fromhex(intent.tx_hash[2:]), intent.raw_tx)
    transactions = state.service.transactions
    settled = transactions.wait(recorded, timeout_s=transactions.tx.receipt_timeout)
    if settled.outcome is Settled.WAITING:
        log.info("intent %s not settled yet (transaction 0x%s on its way)", intent_id, recorded.tx_hash.hex())
        return False
    _settled(state, intent_id, settled)
    return True


# -- many writes at once ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Planned:
    """One write of a bulk: what :func:`write` takes, with a fixed gas limit (a pipeline estimates nothing)."""

    kind: str
    subject: str
    call: ContractCall
    gas: int
    events: Sequence[dict[str, Any]]
    effect: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    """Where one write of a bulk ended: ``done`` (events stored, rows written), ``failed`` (nothing happened
    on-chain; `error` says why) or ``pending`` (sent, its receipt not seen yet: it completes on its own)."""

    status: str
    tx_hash: str | None
    events: list[Stored]
    error: Exception | None = None


def write_many(state: AppState, actor: Actor, account: LocalAccount, planned: Sequence[Planned]) -> list[Outcome]:
    """Make many writes as one pipeline, each an intent of its own: recorded together (consecutive free nonces,
    one database transaction) before anything is sent, broadcast in JSON-RPC batches, settled together by the
    durable-transaction protocol (``DurableTransactions.wait_many``: on the canonical chain, at the configured
    depth), and completed together in one database transaction. An outcome per write, in order.

    The guarantees of :func:`write` hold for each: nothing reaches the chain unrecorded, and a write not settled in
    time stays ``pending`` and is reconciled like any other. A write the node refuses outright is ``failed``; those
    after it are left ``pending`` (they may sit in the node's pool behind the refused nonce, and only their hashes
    can tell). A revert fails its own write only: the others are mined on the state it left unchanged."""
    for plan in planned:
        if plan.kind not in state.completions:
            raise ValueError(f"no completion registered for {plan.kind!r}")
    if not planned:
        return []
    service = state.service
    tx = service.ledger.tx
    signed = service.sign_many(account, [event for plan in planned for event in plan.events])
    per_write: list[list[SignedEvent]] = []
    at = 0
    for plan in planned:
        per_write.append(signed[at : at + len(plan.events)])
        at += len(plan.events)
    reconcile(state, sender=account.address, older_than=STALE_AFTER)
    sender = account.address
    transactions = service.transactions
    with _sender_lock(sender):  # held through the broadcast: the node gets the nonces in order
        ids, prepared = _record_many(state, actor, account, planned, per_write)
        sent = len(prepared)
        try:
            refusal = transactions.broadcast_many([p.raw for p in prepared], sender)
        except Exception as exc:  # a transient fault: every write of the bulk is settled by hash later
            log.warning("a bulk of %d writes not all sent, left pending: %s", len(planned), exc)
            refusal, sent = None, 0
    outcomes: list[Outcome | None] = [None] * len(planned)
    if refusal is not None:
        index, refused = refusal
        sent = index
        if refused.sent in (Sent.REVERTED, Sent.REFUSED):  # the node holds nothing of it
            _fail(state, ids[index], f"refused by the node: {refused.error}")
            outcomes[index] = Outcome(FAILED, hex32(prepared[index].tx_hash), [], refused.error)
        else:  # its nonce is taken, by our own earlier send or by another transaction: its hash will tell
            sent = index + 1
    recorded = [RecordedTx.of(p) for p in prepared[:sent]]
    try:
        settlements = transactions.wait_many(recorded, timeout_s=tx.receipt_timeout)
    except Exception as exc:  # the node unreachable: every write of the bulk is settled by hash later
        log.warning("a bulk of %d writes not settled, left pending: %s", sent, exc)
        settlements = []
    receipts: dict[int, Receipt] = {}
    for index, settled in enumerate(settlements):
        if settled.receipt is not None and settled.outcome in (Settled.CONFIRMED, Settled.REVERTED):
            receipts[index] = settled.receipt
        elif settled.outcome in (Settled.REVERTED, Settled.REPLACED):
            _settled(state, ids[index], settled, raise_revert=False)
            error = settled.error or TransactionFailed("its nonce was used by another transaction")
            outcomes[index] = Outcome(FAILED, hex32(prepared[index].tx_hash), [], error)
    done = _complete_many(state, ids, prepared, receipts, outcomes)
    for index, plan_outcome in enumerate(outcomes):
        if plan_outcome is None:
            outcomes[index] = Outcome(PENDING, hex32(prepared[index].tx_hash), [])
    log.info("bulk of %d writes: %d done", len(planned), done)
    return [o for o in outcomes if o is not None]


def _record_many(
    state: AppState,
    actor: Actor,
    account: LocalAccount,
    planned: Sequence[Planned],
    signed: Sequence[Sequence[SignedEvent]],
) -> tuple[list[int], list[PreparedTx]]:
    """Choose a free nonce for each write, sign each transaction and commit every intent, in one transaction under
    the sender's locks (as :func:`_record` does for one)."""
    tx = state.service.ledger.tx
    sender = account.address
    with state.service.sessions.begin() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _advisory_key(sender)})
        reserved = set(
            session.scalars(
                select(WriteIntent.nonce).where(WriteIntent.sender == sender, WriteIntent.status == PENDING)
            )
        )
        nonces: list[int] = []
        nonce = tx.pending_count(sender)
        while len(nonces) < len(planned):
            if nonce not in reserved:
                nonces.append(nonce)
            nonce += 1
        prepared = tx.sign_many(account, [p.call for p in planned], [p.gas for p in planned], nonces)
        now = utcnow()
        intents = [
            WriteIntent(
                kind=plan.kind,
                subject=plan.subject,
                actor_id=actor.id,
                sender=sender,
                nonce=ready.nonce,
                tx_hash=hex32(ready.tx_hash),
                raw_tx=ready.raw,
                tx=_json_safe(ready.tx),
                events=[_signed_json(e) for e in events],
                effect=plan.effect,
                status=PENDING,
                created_at=now,
            )
            for plan, ready, events in zip(planned, prepared, signed, strict=True)
        ]
        session.add_all(intents)
        session.flush()
        return [intent.id for intent in intents], prepared


def _complete_many(
    state: AppState,
    ids: Sequence[int],
    prepared: Sequence[PreparedTx],
    receipts: dict[int, Receipt],
    outcomes: list[Outcome | None],
) -> int:
    """The database side of the mined writes of a bulk, in one transaction: the reverted ones failed, the others
    done with their events and rows. How many are done."""
    service = state.service
    tx = service.ledger.tx
    succeeded: dict[int, int] = {}  # intent id → index
    for index, receipt in sorted(receipts.items()):
        intent_id = ids[index]
        try:
            tx.settle(prepared[index].tx, receipt)
        except TransactionFailed as exc:
            _fail(state, intent_id, str(exc))
            outcomes[index] = Outcome(FAILED, hex32(prepared[index].tx_hash), [], exc)
            continue
        succeeded[intent_id] = index
    if not succeeded:
        return 0
    with service.sessions.begin() as session:
        claimed: set[int] = set()
        wanted = sorted(succeeded)
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            result = session.execute(
                update(WriteIntent)
                .where(WriteIntent.id.in_(chunk), WriteIntent.status == PENDING)
                .values(status=DONE, finished_at=utcnow())
                .returning(WriteIntent.id)
            )
            claimed.update(result.scalars())
        rows = {i.id: i for i in session.scalars(select(WriteIntent).where(WriteIntent.id.in_(wanted)))}
        order = [rows[intent_id] for intent_id in wanted]
        signed = [[_signed_from(data) for data in intent.events] for intent in order]
        stored = service.outbox.add_many([e for events in signed for e in events], session=session)
        by_kind: dict[str, list[WriteIntent]] = {}
        at = 0
        for intent, events in zip(order, signed, strict=True):
            mine = stored[at : at + len(events)]
            at += len(events)
            if intent.id in claimed:
                by_kind.setdefault(intent.kind, []).append(intent)
            index = succeeded[intent.id]
            outcomes[index] = Outcome(DONE, intent.tx_hash, list(mine))
        for kind, intents in by_kind.items():
            many = state.batch_completions.get(kind)
            if many is not None:
                many(session, intents)
            else:
                for intent in intents:
                    state.completions[kind](session, intent)
        # The passports the claimed writes change, in the same transaction (as for one write).
        done = [events for intent, events in zip(order, signed, strict=True) if intent.id in claimed]
        changed = [e.event for events in done for e in events]
        versions.after_events(session, state, changed)
    return len(succeeded)


def signed_events(intent: WriteIntent) -> list[SignedEvent]:
    return [_signed_from(data) for data in intent.events]


def pending_count(session: Session) -> int:
    return len(list(session.scalars(select(WriteIntent.id).where(WriteIntent.status == PENDING))))


__all__ = [
    "DONE",
    "FAILED",
    "PENDING",
    "Completion",
    "Written",
    "pending_count",
    "reconcile",
    "signed_events",
    "write",
    "write_many",
]
