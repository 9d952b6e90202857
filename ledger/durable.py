"""Durable transactions: the one protocol by which a write reaches the chain exactly once, across crashes, RPC faults
and reorganisations. The anchoring worker (``ledger.anchoring``) and the API's write intents (``api.intents``) both
follow it; each keeps only what it records and what it does once a transaction is settled.

1. **Record.** The transaction is signed (``Transactor.sign_with_nonce``) and its hash, raw bytes, sender and nonce
   are committed to the caller's database (a batch row, an intent row) *before* the bytes go to the node. A crash
   after that leaves something to check by hash; a crash before it leaves nothing on-chain.
2. **Broadcast** (:meth:`DurableTransactions.broadcast`). A transient fault (node down, timeout, 5xx, 429) raises:
   the caller backs off and sends the same bytes again later. A refusal is read by ``ledger.chain.broadcast_refusal``
   (never by one message string): "already known" means the bytes are there; "nonce too low" and "replacement
   underpriced" mean the nonce is taken (by our own send whose answer was lost, or by another transaction), so the
   nonce cache is dropped and the transaction is left to the check by hash. Sending the same bytes twice is harmless:
   they have one hash and take effect at most once.
3. **Settle by hash** (:meth:`DurableTransactions.settle`), the same rules for everyone:

   - a receipt counts only when it is on the canonical chain (its block is the block at its height) with
     ``confirmations`` blocks on top: ``CONFIRMED`` (status 1) or ``REVERTED`` (status 0); shallower, ``WAITING``;
   - no receipt, the nonce still free: ``WAITING`` while the node holds the transaction, ``LOST`` when it does not
     (a restarted node's empty pool, a block reorganised away): send the same bytes again;
   - no receipt and the nonce used by another transaction: ``REPLACED``, our transaction can never be mined. The
     receipt is looked up once more before saying so, in case ours was mined between the two reads, and a
     replacement stands only when a look half a second later finds it too (a node may count a block's nonces
     before it serves the block's receipts).

   A caller whose effect can land through another transaction (an anchor's root, anchored by an earlier attempt)
   passes ``elsewhere``; what it finds counts like our own receipt, at the same depth.

What a caller does with each outcome is its own: the worker re-anchors a ``REVERTED`` or ``REPLACED`` batch under a
new transaction (the contract refuses a root twice), while a write intent is marked failed (nothing was written).
Neither ever completes against a receipt that a reorganisation can still take away.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from hexbytes import HexBytes
from web3.exceptions import TransactionNotFound
from web3.providers.base import JSONBaseProvider
from web3.types import TxReceipt

from .chain import BroadcastRefusal, broadcast_refusal, is_revert, rpc_fault
from .client import PIPELINE_BATCH, PreparedTx, Transactor, _mapped
from .errors import ContractRevert


@dataclass(frozen=True)
class RecordedTx:
    """What step 1 committed: enough to send the same bytes again and to settle them by hash."""

    sender: str
    nonce: int
    tx_hash: bytes
    raw: bytes

    @classmethod
    def of(cls, prepared: PreparedTx) -> RecordedTx:
        return cls(prepared.sender, prepared.nonce, prepared.tx_hash, prepared.raw)


class Sent(enum.Enum):
    """What one broadcast did."""

    ACCEPTED = "accepted"
    KNOWN = "already known"  # the same bytes are in the node's pool or mined: the send happened
    NONCE_USED = "nonce too low"  # a mined transaction holds the nonce: ours (check by hash) or another
    NONCE_CONTESTED = "replacement transaction underpriced"  # another pending transaction holds the nonce
    REVERTED = "reverted"  # the node ran it on arrival and it reverted: nothing happened on-chain
    REFUSED = "refused"  # refused for a reason that says nothing of the nonce (funds, gas, a node rule)


@dataclass(frozen=True)
class Broadcast:
    sent: Sent
    error: Exception | None = None  # the node's refusal (a ContractRevert for REVERTED), when there was one


class Outcome(enum.Enum):
    """Where a recorded transaction stands (see the module docstring)."""

    CONFIRMED = "confirmed"
    REVERTED = "reverted"
    WAITING = "waiting"
    LOST = "lost"
    REPLACED = "replaced"


@dataclass(frozen=True)
class Settlement:
    outcome: Outcome
    tx_hash: bytes | None = None  # the transaction that carries the effect (ours, or the one `elsewhere` found)
    block_number: int | None = None
    receipt: TxReceipt | None = None  # our own receipt, when the outcome rests on it
    error: Exception | None = None  # the refusal of a re-send that reverted on arrival

    @property
    def final(self) -> bool:
        """Whether the outcome stands for good (a reorganisation can no longer change it)."""
        return self.outcome in (Outcome.CONFIRMED, Outcome.REVERTED, Outcome.REPLACED)


REPLACED_SETTLE_S = 0.5  # how long a replacement must stand before settle() says so
FULL_LOOK_EVERY_S = 0.5  # how often wait() asks whether a transaction without a receipt was lost or replaced

# (tx hash, block number) of a transaction other than ours that carried the same effect, on the canonical chain.
Elsewhere = Callable[[], tuple[bytes, int] | None]
_SENT_BY_REFUSAL = {
    BroadcastRefusal.KNOWN: Sent.KNOWN,
    BroadcastRefusal.NONCE_USED: Sent.NONCE_USED,
    BroadcastRefusal.NONCE_CONTESTED: Sent.NONCE_CONTESTED,
}


class DurableTransactions:
    """Steps 2 and 3 of the protocol over one :class:`Transactor`, with the configured confirmation depth."""

    def __init__(self, tx: Transactor, confirmations: int = 0) -> None:
        self.tx = tx
        self.web3 = tx.web3
        self.confirmations = confirmations
        self._replaced_since: dict[bytes, float] = {}  # tx hash → when a look first found it replaced

    # -- step 2 -------------------------------------------------------------------------------------------------
    def broadcast(self, raw: bytes, sender: str) -> Broadcast:
        """Send recorded bytes; a transient fault raises (see the module docstring), every other answer is returned.
        The nonce stays allocated to the bytes on a transient fault; a refusal drops `sender`'s nonce cache."""
        try:
            self.web3.eth.send_raw_transaction(raw)
        except Exception as exc:
            if rpc_fault(exc) is not None:
                raise
            refusal = broadcast_refusal(exc)
            if refusal is BroadcastRefusal.KNOWN:  # e.g. a retried send whose first answer was lost
                return Broadcast(Sent.KNOWN)
            self.tx.forget_nonce(sender)  # the node holds another count for us than our cache: re-read it
            if refusal is not None:
                return Broadcast(_SENT_BY_REFUSAL[refusal], exc)
            if is_revert(exc):
                return Broadcast(Sent.REVERTED, _mapped(exc))
            return Broadcast(Sent.REFUSED, exc)
        return Broadcast(Sent.ACCEPTED)

    def broadcast_many(self, raws: Sequence[bytes], sender: str) -> tuple[int, Broadcast] | None:
        """Send one sender's recorded transactions in order, in JSON-RPC batches where the node takes them; stop at
        the first the node refuses and return its index and what the refusal says (as :meth:`broadcast` reads one).
        What comes after a refusal is not sent: the caller settles it by hash. A transient fault raises."""
        refused = self.tx.broadcast_many(raws)
        if refused is None:
            return None
        index, error = refused
        cause = error.__cause__ if isinstance(error.__cause__, Exception) else error
        if rpc_fault(cause) is not None:
            raise error
        self.tx.forget_nonce(sender)
        refusal = broadcast_refusal(error)
        if refusal is not None:
            return index, Broadcast(_SENT_BY_REFUSAL[refusal], error)
        if isinstance(error, ContractRevert):
            return index, Broadcast(Sent.REVERTED, error)
        return index, Broadcast(Sent.REFUSED, error)

    # -- step 3 -------------------------------------------------------------------------------------------------
    def settle(
        self, recorded: RecordedTx, *, elsewhere: Elsewhere | None = None, receipt_only: bool = False
    ) -> Settlement:
        """Where `recorded` stands now, by its hash (one look; :meth:`wait` looks until it is final). With
        `receipt_only`, a transaction without a receipt is ``WAITING`` without asking whether it was lost or
        replaced: the cheap look :meth:`wait` takes between full ones.

        ``REPLACED`` is said only when looks at least ``REPLACED_SETTLE_S`` apart both found it (the first says
        ``WAITING``): a node may count a block's nonces before it serves the block's transactions, receipts and logs
        (Anvil under load does, for milliseconds), and a replacement taken from that moment would re-send an anchor
        or fail a write that is in fact mined."""
        settlement = self._look(recorded, elsewhere, receipt_only)
        if settlement.outcome is not Outcome.REPLACED:
            if not receipt_only:
                self._replaced_since.pop(recorded.tx_hash, None)
            return settlement
        first = self._replaced_since.setdefault(recorded.tx_hash, time.monotonic())
        if time.monotonic() - first < REPLACED_SETTLE_S:
            return Settlement(Outcome.WAITING)
        self._replaced_since.pop(recorded.tx_hash, None)
        return settlement

    def _mined(self, recorded: RecordedTx, elsewhere: Elsewhere | None) -> Settlement | None:
        """The settlement when the transaction (or, through `elsewhere`, its effect) is in a block; else None."""
        receipt = self.canonical_receipt(recorded.tx_hash)
        if receipt is not None and receipt["status"] == 1:
            return self._at_depth(Outcome.CONFIRMED, receipt)
        found = elsewhere() if elsewhere is not None else None
        if found is not None:
            return self._deep_enough(Outcome.CONFIRMED, found[0], found[1], None)
        if receipt is not None:
            return self._at_depth(Outcome.REVERTED, receipt)
        return None

    def _look(self, recorded: RecordedTx, elsewhere: Elsewhere | None, receipt_only: bool) -> Settlement:
        mined = self._mined(recorded, elsewhere)
        if mined is not None:
            return mined
        if receipt_only:
            return Settlement(Outcome.WAITING)
        if recorded.nonce >= self.tx.mined_count(recorded.sender):
            return Settlement(Outcome.WAITING if self.is_known(recorded.tx_hash) else Outcome.LOST)
        # The nonce is used. Look again before saying ours is replaced: it may have been mined between the receipt
        # lookup above and the count.
        mined = self._mined(recorded, elsewhere)
        if mined is not None:
            return mined
        if self._in_a_block(recorded.tx_hash):  # mined, its receipt not served yet
            return Settlement(Outcome.WAITING)
        return Settlement(Outcome.REPLACED)

    def wait(self, recorded: RecordedTx, *, timeout_s: float, elsewhere: Elsewhere | None = None) -> Settlement:
        """Settle `recorded` until its outcome is final or `timeout_s` has passed (then ``WAITING``). A ``LOST``
        transaction is sent again, same bytes; a re-send that reverts on arrival is final (``REVERTED`` with the
        error); one refused for any other reason raises that refusal."""
        deadline = time.monotonic() + timeout_s
        full_look_at = 0.0  # the first look is a full one; then one every FULL_LOOK_EVERY_S, receipts only between
        while True:
            full = time.monotonic() >= full_look_at
            if full:
                full_look_at = time.monotonic() + FULL_LOOK_EVERY_S
            settlement = self.settle(recorded, elsewhere=elsewhere, receipt_only=not full)
            if settlement.outcome is Outcome.LOST:
                sent = self.broadcast(recorded.raw, recorded.sender)
                if sent.sent is Sent.REVERTED:
                    return Settlement(Outcome.REVERTED, error=sent.error)
                if sent.sent is Sent.REFUSED:
                    assert sent.error is not None
                    raise sent.error
            elif settlement.final:
                return settlement
            if time.monotonic() > deadline:
                return Settlement(Outcome.WAITING, settlement.tx_hash, settlement.block_number, settlement.receipt)
            time.sleep(self.poll_s)

    def wait_many(self, recorded: Sequence[RecordedTx], *, timeout_s: float) -> list[Settlement]:
        """:meth:`wait` for a pipeline's transactions at once: their receipts read in JSON-RPC batches, each block
        they name checked once for being canonical, the head read once for their depth. Whatever that does not
        settle (a receipt missing after the timeout, off the canonical chain, not deep enough) is waited for one by
        one in the time left."""
        if not recorded:
            return []
        deadline = time.monotonic() + timeout_s
        settled: list[Settlement | None] = [None] * len(recorded)
        try:
            receipts = self.tx.receipts([r.tx_hash for r in recorded])  # waits for the last (nonce order)
        except Exception as exc:
            if rpc_fault(exc) is not None:
                raise
            receipts = []  # not all mined in time: each is settled by hash below
        if receipts:
            canonical = self._block_hashes({int(r["blockNumber"]) for r in receipts})
            head = self.web3.eth.block_number if self.confirmations else 0
            for index, receipt in enumerate(receipts):
                if canonical.get(int(receipt["blockNumber"])) == receipt["blockHash"]:
                    outcome = Outcome.CONFIRMED if receipt["status"] == 1 else Outcome.REVERTED
                    settled[index] = self._deep_enough(
                        outcome, bytes(receipt["transactionHash"]), int(receipt["blockNumber"]), receipt, head
                    )
        return [
            done if done is not None and done.final
            else self.wait(rec, timeout_s=max(0.0, deadline - time.monotonic()))
            for done, rec in zip(settled, recorded, strict=True)
        ]

    def _block_hashes(self, numbers: set[int]) -> dict[int, bytes]:
        """The canonical chain's block hash at each height, read in JSON-RPC batches where the node takes them."""
        ordered = sorted(numbers)
        if not isinstance(self.web3.provider, JSONBaseProvider):  # the in-process chain: nothing to batch
            return {n: bytes(self.web3.eth.get_block(n)["hash"]) for n in ordered}
        hashes: dict[int, bytes] = {}
        for start in range(0, len(ordered), PIPELINE_BATCH):
            part = ordered[start : start + PIPELINE_BATCH]
            with self.web3.batch_requests() as batch:
                for number in part:
                    batch.add(self.web3.eth.get_block(number))
                blocks = cast(list[Any], batch.execute())
            hashes.update((number, bytes(block["hash"])) for number, block in zip(part, blocks, strict=True))
        return hashes

    @property
    def poll_s(self) -> float:
        """How often :meth:`wait` looks: a receipt is due at once on an automining node, a confirmation a block
        later."""
        return 0.25 if self.confirmations else 0.05

    # -- lookups ------------------------------------------------------------------------------------------------
    def canonical_receipt(self, tx_hash: bytes) -> TxReceipt | None:
        """The receipt of `tx_hash` if its block is the canonical chain's block at its height, else None."""
        try:
            receipt = self.web3.eth.get_transaction_receipt(HexBytes(tx_hash))
        except TransactionNotFound:
            return None
        block = self.web3.eth.get_block(receipt["blockNumber"])
        return receipt if block["hash"] == receipt["blockHash"] else None

    def _in_a_block(self, tx_hash: bytes) -> bool:
        """Whether the node has `tx_hash` in a block (not only in its pool)."""
        try:
            found = self.web3.eth.get_transaction(HexBytes(tx_hash))
        except TransactionNotFound:
            return False
        return found.get("blockNumber") is not None

    def is_known(self, tx_hash: bytes) -> bool:
        """Whether the node has the transaction (mined or in its pool)."""
        return self.tx.is_known(tx_hash)

    def _at_depth(self, outcome: Outcome, receipt: TxReceipt) -> Settlement:
        return self._deep_enough(outcome, bytes(receipt["transactionHash"]), int(receipt["blockNumber"]), receipt)

    def _deep_enough(
        self, outcome: Outcome, tx_hash: bytes, block_number: int, receipt: Any, head: int | None = None
    ) -> Settlement:
        if self.confirmations and (head or self.web3.eth.block_number) - block_number < self.confirmations:
            return Settlement(Outcome.WAITING, tx_hash, block_number, receipt)
        return Settlement(outcome, tx_hash, block_number, receipt)


__all__ = [
    "REPLACED_SETTLE_S",
    "Broadcast",
    "DurableTransactions",
    "Elsewhere",
    "Outcome",
    "RecordedTx",
    "Sent",
    "Settlement",
]
