"""The anchoring worker: pending outbox events → a Merkle batch → one anchor transaction → confirmed proofs.

Exactly once, across crashes, RPC faults and reorganisations, by the durable-transaction protocol of
``ledger.durable`` (the API's write intents follow the same one):

1. A batch is *prepared* in one database transaction: root computed, events assigned to it (and archived).
2. Under the transactor's lock the anchor transaction is signed with the next nonce, and its hash and raw bytes are
   committed (*sent*) before the bytes go to the node. A crash after that point leaves a record to check by hash.
3. A *sent* batch is settled by hash: it is confirmed only when its receipt (or the root's ``RootAnchored`` log, if
   an earlier transaction of ours anchored it) is on the canonical chain with the configured confirmations; only
   then are its events marked anchored with their proofs.
4. On restart, or after any error, every unconfirmed batch is settled again: the same raw transaction is
   re-broadcast when the node lost it; when it reverted or its nonce was taken by another transaction, the root is
   re-anchored under a new transaction (recorded before sending, as above). A root the contract already holds is
   never sent again (``RootAlreadyAnchored`` cannot happen twice for us): the worker finds its log instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from eth_account.signers.local import LocalAccount
from sqlalchemy import ColumnElement, Table, Text, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session, sessionmaker

from . import versions
from .archive import Archive, SerialisedEvent, SerialisedVersion
from .chain import describe_fault, rpc_fault
from .client import Ledger
from .durable import DurableTransactions, Outcome, RecordedTx, Sent
from .merkle import MerkleTree
from .outbox import Batch, BatchStatus, EventStatus, OutboxEvent

log = logging.getLogger("circular.anchoring")

ANCHOR_GAS = 120_000  # anchor() uses about 50k; a fixed limit saves an estimate round trip per batch


class Backoff:
    """Bounded exponential delay between retries: `first`, twice that, … up to `cap`; back to `first` on success."""

    def __init__(self, first: float = 0.5, cap: float = 30.0) -> None:
        self.first = first
        self.cap = max(cap, first)
        self.current = first

    def next(self) -> float:
        delay = self.current
        self.current = min(self.current * 2, self.cap)
        return delay

    def reset(self) -> None:
        self.current = self.first


class RetryLog:
    """One log line per failed attempt, named by its fault class; a traceback only the first time an unexpected
    error is seen, so an outage of minutes reads as a few lines rather than pages of stack."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.failing = False
        self._traced: set[str] = set()

    def failed(self, exc: BaseException, delay: float, what: str = "anchoring pass failed") -> None:
        self.failing = True
        fault = rpc_fault(exc)
        if fault is not None:
            self.logger.warning("%s, retrying in %.1f s (%s)", fault.value, delay, describe_fault(exc))
            return
        key = describe_fault(exc, limit=80)
        self.logger.warning(
            "%s, retrying in %.1f s (%s)", what, delay, describe_fault(exc), exc_info=key not in self._traced
        )
        self._traced.add(key)

    def succeeded(self) -> None:
        if self.failing:
            self.logger.info("rpc reachable again; anchoring resumed")
            self.failing = False


@dataclass(frozen=True)
class AnchorResult:
    batch_id: int
    root: bytes
    events: int
    tx_hash: bytes
    block_number: int
    versions: int = 0  # document versions anchored with the events (ledger/versions.py)


def _utc_iso(moment: datetime) -> str:
    """ISO 8601 in UTC; SQLite hands timezone-aware columns back naive (they were stored in UTC)."""
    if moment.tzinfo is None:  # the same text as the aware path, at a third of its cost: 10,000 per batch
        return moment.isoformat() + "+00:00"
    return moment.astimezone(UTC).isoformat()


class AnchoringWorker:
    """Anchors pending outbox events in batches. One worker per database (PostgreSQL rows are locked, SKIP LOCKED)."""

    def __init__(
        self,
        ledger: Ledger,
        sessions: sessionmaker[Session],
        anchorer: LocalAccount,
        *,
        batch_size: int = 1000,
        max_wait_s: float = 2.0,
        confirmations: int = 0,
        receipt_timeout_s: float = 60.0,
        archive: Archive | None = None,
        on_confirmed: Sequence[Callable[[AnchorResult], object]] = (),
    ) -> None:
        self.ledger = ledger
        # Called after each batch's confirmation has committed (the API rebuilds the passports that show it).
        self.on_confirmed = tuple(on_confirmed)
        self.archive = archive  # where each batch's signed events are published before its root is anchored
        self.web3 = ledger.web3
        self.sessions = sessions
        self.anchorer = anchorer
        self.batch_size = batch_size
        self.max_wait = timedelta(seconds=max_wait_s)
        self.transactions = DurableTransactions(ledger.tx, confirmations)
        self.receipt_timeout_s = receipt_timeout_s
        self._trees: dict[int, MerkleTree] = {}

    @property
    def confirmations(self) -> int:
        """Blocks on top of an anchor before its events count as anchored (the protocol's depth)."""
        return self.transactions.confirmations

    @confirmations.setter
    def confirmations(self, value: int) -> None:
        self.transactions.confirmations = value

    # -- the loop ---------------------------------------------------------------------------------------------
    def run_once(self, *, force: bool = False, max_in_flight: int = 8) -> list[AnchorResult]:
        """Settle unconfirmed batches, then anchor what is due. Up to `max_in_flight` batches are sent before the
        first receipt is awaited, so that a backlog lands in one block rather than one block per batch."""
        confirmed = self.settle()
        sent: list[int] = []
        while len(sent) < max_in_flight:
            batch_id = self._prepare(force=force)
            if batch_id is None:
                break
            self._send(batch_id)
            sent.append(batch_id)
        for batch_id in sent:
            result = self._await(batch_id)
            if result is not None:
                confirmed.append(result)
        return confirmed

    def drain(self, timeout_s: float = 600.0) -> list[AnchorResult]:
        """Anchor everything pending now, whatever the batch's size or age; return when none is left."""
        deadline = time.monotonic() + timeout_s
        results: list[AnchorResult] = []
        while True:
            results += self.run_once(force=True)
            if not self._has_work():
                return results
            if time.monotonic() > deadline:
                raise TimeoutError("events still unanchored after drain timeout")
            if self.confirmations:
                time.sleep(0.2)

    def run_forever(
        self,
        stop: threading.Event,
        poll_s: float = 0.5,
        max_backoff_s: float = 30.0,
        guard: Callable[[], object] | None = None,
        on_fault: Callable[[BaseException], object] | None = None,
    ) -> None:
        """Anchor until `stop` is set. Never exits on an error: a node outage is waited out with a bounded
        exponential backoff (one log line per attempt), and the next pass re-checks every open batch by hash.
        `guard`, called before each pass, raises to skip it (``ledger.health``: a node that is not our chain);
        `on_fault` hears of every failed pass."""
        log.info("anchoring worker started (batch %d, max wait %s)", self.batch_size, self.max_wait)
        backoff = Backoff(poll_s, max_backoff_s)
        retries = RetryLog(log)
        refused = ""
        while not stop.is_set():
            if guard is not None:
                try:
                    guard()
                except Exception as exc:  # not our chain: nothing is sent; said once per reason, not per retry
                    delay = backoff.next()
                    if str(exc) != refused:
                        log.error("not anchoring: %s", exc)
                        refused = str(exc)
                    stop.wait(delay)
                    continue
                if refused:
                    log.info("anchoring resumed: the node is our chain again")
                    refused = ""
            try:
                done = self.run_once()
            except Exception as exc:  # keep the loop alive; the next pass re-checks by hash
                if on_fault is not None:
                    on_fault(exc)
                delay = backoff.next()
                retries.failed(exc, delay)
                stop.wait(delay)
                continue
            backoff.reset()
            retries.succeeded()
            for result in done:
                log.info(
                    "anchored %d events under root 0x%s in block %d",
                    result.events,
                    result.root.hex(),
                    result.block_number,
                )
            stop.wait(poll_s)

    # -- steps ------------------------------------------------------------------------------------------------
    def _has_work(self) -> bool:
        with self.sessions() as session:
            pending = session.scalar(select(OutboxEvent.id).where(OutboxEvent.status != EventStatus.ANCHORED).limit(1))
            return pending is not None or versions.has_pending(session)

    def _prepare(self, *, force: bool) -> int | None:
        with self.sessions.begin() as session:
            # Core rows through the session's connection, not ORM rows: a batch can hold 10,000 events and this is the
            # hot path (the ORM's per-row loading cost a tenth of the pass). When the batch is archived, what the
            # archive needs is read in the same query rather than again by 10,000 ids.
            table = cast(Table, OutboxEvent.__table__)
            columns: list[ColumnElement[Any]] = [table.c.id, table.c.digest]
            if self.archive is not None:
                # The event as the JSON text it was stored as: the archive splices it in without decoding it.
                event_json = sql_cast(table.c.event, Text).label("event_json")
                columns += [event_json, table.c.event_id, table.c.signer, table.c.signature, table.c.deadline]
                columns += [table.c.created_at]
            query = (
                select(*columns)
                .where(table.c.status == EventStatus.PENDING.value)
                .order_by(table.c.id)
                .limit(self.batch_size)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = session.connection().execute(query).all()
            # Document versions (passports) share the batch, as leaves of their own kind (ledger/versions.py).
            pending = versions.pending_for_batch(session, self.batch_size - len(rows))
            if not rows and not pending:
                return None
            # Only the oldest event's (or version's) time decides whether a part batch is due.
            times = [version.created_at for version in pending[:1]]
            if rows:
                first = session.scalar(select(OutboxEvent.created_at).where(OutboxEvent.id == rows[0].id))
                assert first is not None
                times.append(first)
            oldest = min(t if t.tzinfo is not None else t.replace(tzinfo=UTC) for t in times)
            leaves = len(rows) + len(pending)
            if not force and leaves < self.batch_size and datetime.now(UTC) - oldest < self.max_wait:
                return None
            tree = MerkleTree.of([r.digest for r in rows] + [version.leaf for version in pending])
            # The on-chain count is of every leaf, events and versions alike.
            batch = Batch(root=tree.root, event_count=leaves, status=BatchStatus.PREPARED)
            session.add(batch)
            session.flush()
            self._trees[batch.id] = tree  # reused at confirmation; rebuilt from the outbox after a restart
            if pending:
                versions.mark_batched(session, pending, batch.id)
            if not rows:
                if self.archive is not None:
                    self._publish(tree.root, rows, pending)
                return batch.id
            marked = table.update().values(status=EventStatus.BATCHED.value, batch_id=batch.id)
            if session.get_bind().dialect.name == "postgresql":
                # The rows this transaction locked (SKIP LOCKED): others in the same id range may be another
                # worker's.
                marked = marked.where(table.c.id.in_([r.id for r in rows]))
            else:
                # The rows are the first pending ones by id, so the pending rows of their id range are exactly them
                # unless someone changed that range since our read; then the count below differs and the batch rolls
                # back. One range instead of 10,000 bound ids: a third of the time of preparing a batch.
                marked = marked.where(
                    table.c.status == EventStatus.PENDING.value, table.c.id.between(rows[0].id, rows[-1].id)
                )
            done = session.connection().execute(marked).rowcount
            if done != len(rows):  # never expected; refuse to anchor a batch whose rows are not the ones read
                raise RuntimeError(f"marked {done} events for a batch of {len(rows)}")
            if self.archive is not None:
                # Inside the transaction: a batch that could not be archived is never prepared, so never anchored.
                self._publish(tree.root, rows, pending)
            return batch.id

    def _publish(self, root: bytes, rows: Sequence[Any], pending: Sequence[versions.PendingVersion]) -> None:
        """Archive the batch's signed events (`rows` in id order, with the archive's columns) and versions."""
        assert self.archive is not None
        # Rows unpacked by position (the columns _prepare selects): attribute access by name on 10,000 rows was
        # most of the cost of building this list.
        self.archive.publish_batch(
            root,
            [
                SerialisedEvent(event_json, event_id, signer, bytes(signature), int(deadline), _utc_iso(created_at))
                for _, _, event_json, event_id, signer, signature, deadline, created_at in rows
            ],
            [SerialisedVersion(v.kind, v.subject, v.number, v.document) for v in pending],
        )

    def _send(self, batch_id: int) -> None:
        """Sign, record, then broadcast the anchor transaction of a prepared (or lost) batch (protocol steps 1-2)."""
        tx = self.ledger.tx
        with self.sessions() as session:
            batch = session.get_one(Batch, batch_id)
            if self.archive is not None:  # the anchor says where its batch is archived
                uri = self.archive.batch_uri(batch.root)
                call = self.ledger.anchor.functions.anchorWithUri(batch.root, batch.event_count, uri)
            else:
                call = self.ledger.anchor.functions.anchor(batch.root, batch.event_count)
        # Fees come from the node: ask before a nonce is allocated, so that an RPC fault here cannot leave a nonce
        # allocated to nothing (every later anchor would wait behind that gap). The placeholder nonce is replaced.
        params: Any = {"from": self.anchorer.address, "nonce": 0, "gas": ANCHOR_GAS, "chainId": tx.chain_id}
        unsigned: Any = call.build_transaction(params)
        with tx.lock:  # one lock over nonce allocation and sending
            try:
                signed = tx.sign_with_nonce(self.anchorer, unsigned)
                with self.sessions.begin() as session:
                    batch = session.get_one(Batch, batch_id)
                    batch.status = BatchStatus.SENT
                    batch.tx_hash = signed.tx_hash
                    batch.raw_tx = signed.raw
                    batch.nonce = signed.nonce
                    batch.attempts += 1
            except BaseException:
                tx.forget_nonce(self.anchorer.address)  # nothing recorded: the nonce is not ours to keep
                raise
            # Committed: from here a crash leaves a hash to check. Now broadcast.
            self._broadcast(signed.raw)

    def _broadcast(self, raw: bytes) -> None:
        """Send recorded bytes. A transient fault (node down, timeout, 5xx, 429) propagates: the pass backs off and
        the next settle() sends the same bytes again. Their nonce stays allocated to them meanwhile, so that no
        later batch takes it; forgetting it here would hand it to the next batch and strand this one."""
        sent = self.transactions.broadcast(raw, self.anchorer.address)
        if sent.sent in (Sent.ACCEPTED, Sent.KNOWN):
            return
        if sent.sent is Sent.NONCE_USED:  # usually our own send, mined before its answer came back
            log.info("broadcast answered %r; checking the anchor by hash", sent.sent.value)
        else:
            assert sent.error is not None
            log.warning("broadcast refused, checking the anchor by hash (%s)", describe_fault(sent.error))

    def _await(self, batch_id: int) -> AnchorResult | None:
        deadline = time.monotonic() + self.receipt_timeout_s
        while True:
            result = self._check(batch_id)
            if result is not None or time.monotonic() > deadline:
                return result
            time.sleep(self.transactions.poll_s)

    def settle(self) -> list[AnchorResult]:
        """Check every batch that is not confirmed yet (after a crash, a fault or a reorg)."""
        with self.sessions() as session:
            open_batches = list(
                session.scalars(select(Batch.id).where(Batch.status != BatchStatus.CONFIRMED).order_by(Batch.id))
            )
        results = []
        for batch_id in open_batches:
            result = self._check(batch_id)
            if result is not None:
                results.append(result)
        return results

    def _check(self, batch_id: int) -> AnchorResult | None:
        """Settle one batch by hash (protocol step 3) and act on the outcome."""
        with self.sessions() as session:
            batch = session.get_one(Batch, batch_id)
            status, root, tx_hash, raw_tx, nonce = batch.status, batch.root, batch.tx_hash, batch.raw_tx, batch.nonce
        if status == BatchStatus.CONFIRMED:
            return None
        if status == BatchStatus.PREPARED:
            if self._anchor_log(root) is None:
                self._send(batch_id)
            return None
        assert tx_hash is not None and raw_tx is not None and nonce is not None
        recorded = RecordedTx(self.anchorer.address, nonce, tx_hash, raw_tx)
        settled = self.transactions.settle(recorded, elsewhere=lambda: self._anchor_log(root))
        if settled.outcome is Outcome.CONFIRMED:
            assert settled.tx_hash is not None and settled.block_number is not None
            return self._confirm(batch_id, settled.tx_hash, settled.block_number)
        if settled.outcome is Outcome.LOST:  # pending lost with a restarted node's pool, dropped or reorged out
            if self._stranded(batch_id, nonce):
                log.warning(
                    "anchor tx 0x%s of batch %d has nonce %d, past the node's count with no transaction of ours "
                    "before it (the chain went back); re-anchoring under a new nonce",
                    tx_hash.hex(), batch_id, nonce,
                )
                self.ledger.tx.forget_nonce(self.anchorer.address)
                self._send(batch_id)
                return None
            log.info("anchor tx 0x%s of batch %d unknown to the node; re-broadcasting it", tx_hash.hex(), batch_id)
            self._broadcast(raw_tx)
        elif settled.outcome is Outcome.REVERTED:  # mined but failed without the root on chain: send anew
            log.warning("anchor tx 0x%s of batch %d failed; re-anchoring", tx_hash.hex(), batch_id)
            self._send(batch_id)
        elif settled.outcome is Outcome.REPLACED:
            log.warning("anchor tx 0x%s of batch %d lost and its nonce reused; re-anchoring", tx_hash.hex(), batch_id)
            self._send(batch_id)
        return None

    def _stranded(self, batch_id: int, nonce: int) -> bool:
        """Whether the batch's nonce lies past the node's count (mined and pooled) with none of our open batches
        holding a nonce in between: a gap nothing will fill, so its bytes can never be mined. That happens when the
        chain goes back under the worker (a revert of a development chain, a reorganisation that drops our earlier
        transactions): re-broadcasting the same bytes then failed forever (``nonce: Expected 4, but got 5``)."""
        pending = self.web3.eth.get_transaction_count(self.anchorer.address, "pending")
        if nonce <= pending:
            return False
        with self.sessions() as session:
            filler = session.scalar(
                select(Batch.id).where(
                    Batch.id != batch_id,
                    Batch.status == BatchStatus.SENT,
                    Batch.nonce >= pending,
                    Batch.nonce < nonce,
                ).limit(1)
            )
        return filler is None

    def _anchor_log(self, root: bytes) -> tuple[bytes, int] | None:
        """(tx hash, block) of the RootAnchored log of `root` on the canonical chain, if any."""
        if self.ledger.anchor.functions.anchorOf(root).call()[0] == "0x" + "0" * 40:
            return None
        logs = self.ledger.anchor.events.RootAnchored().get_logs(
            argument_filters={"root": root}, from_block=self.ledger.deployment.block_number
        )
        if not logs:
            return None
        return bytes(logs[-1]["transactionHash"]), int(logs[-1]["blockNumber"])

    def _confirm(self, batch_id: int, tx_hash: bytes, block_number: int) -> AnchorResult:
        """Mark a settled batch confirmed and its events anchored with their proofs, in one database transaction."""
        with self.sessions.begin() as session:
            batch = session.get_one(Batch, batch_id)
            table = cast(Table, OutboxEvent.__table__)
            query = select(table.c.id, table.c.digest).where(table.c.batch_id == batch_id)
            rows = session.connection().execute(query).all()
            leaves = versions.batch_leaves(session, batch_id)
            tree = self._trees.pop(batch_id, None)
            if tree is None or len(tree) != len(rows) + len(leaves):
                tree = MerkleTree.of([r.digest for r in rows] + [leaf for _, leaf in leaves])
            if tree.root != batch.root:  # would mean the outbox was edited under us
                raise RuntimeError(f"batch {batch_id}: events no longer hash to root 0x{batch.root.hex()}")
            proofs = tree.packed_proofs()  # stored as pack_proof() packs them
            # One driver-level executemany by primary key. The ORM's bulk path costs several times more for 10,000
            # rows, and even a Core executemany spent as long building per-row parameters as the database spent
            # writing them (docs/performance.md); the statement is fixed, so it goes to the driver as text.
            # Below SQLAlchemy's Enum type, so the column's stored form: the member's name (as Enum stores it).
            anchored = EventStatus.ANCHORED.name
            connection = session.connection()
            mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
            if rows:
                connection.exec_driver_sql(
                    f"UPDATE {table.name} SET status = {mark}, proof = {mark} WHERE id = {mark}",
                    [(anchored, proofs[r.digest], r.id) for r in rows],
                )
            versions.mark_anchored(session, leaves, proofs)
            batch.status = BatchStatus.CONFIRMED
            batch.tx_hash = tx_hash
            batch.block_number = block_number
            batch.confirmed_at = datetime.now(UTC)
            result = AnchorResult(batch_id, batch.root, len(rows), tx_hash, block_number, len(leaves))
        # Committed: what follows an anchoring (rebuilding the documents that show it) sees the batch confirmed.
        for hook in self.on_confirmed:
            try:
                hook(result)
            except Exception:  # the anchoring stands; whoever registered the hook catches up on its own
                log.exception("a hook after the anchoring of batch %d failed", batch_id)
        return result


__all__ = ["AnchorResult", "AnchoringWorker", "Backoff", "RetryLog"]
