"""What the audit reads from the chain itself: who held which actor role when (the grant and revocation history of
CircularAccess, from its logs), and which roots were anchored with how many events.

The ``chain_roles`` projection keeps only each role's current state (and is filled by ``circular rebuild``, not by
the live writers), so the audit reads ``RoleGranted``/``RoleRevoked`` from the chain itself, with the timestamp of
each log's block. That timestamp is the only clock a log has; it is compared with the outbox's record time.

A block's timestamp is never earlier than the moment it was mined, but it may be later: eth-tester gives each
block at least its parent's timestamp + 1 s, so a burst of blocks runs ahead of the wall clock. A grant is therefore
taken to hold from the start of time (a timestamp running ahead would make a legitimate event look unauthorised),
and a revocation from its block's timestamp (running ahead can only hide a late event, never invent one).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from .client import Ledger
from .projection import Projector

ROLE_EVENTS = ("RoleGranted", "RoleRevoked")


@dataclass(frozen=True)
class RoleChange:
    """One grant or revocation of `role` to `account`, at `block_number` (whose timestamp is `at`)."""

    account: str
    role: bytes
    granted: bool
    block_number: int
    at: datetime


def _block_ranges(ledger: Ledger, chunk: int) -> Iterator[tuple[int, int]]:
    """(from, to) block ranges of at most `chunk` blocks, from the deployment to the chain's head."""
    last = ledger.web3.eth.block_number
    for low in range(max(ledger.deployment.block_number - 10, 0), last + 1, chunk):
        yield low, min(low + chunk - 1, last)


def role_changes(ledger: Ledger, chunk: int = 5_000) -> list[RoleChange]:
    """Every actor-role grant and revocation of the deployment, in chain order."""
    web3 = ledger.web3
    projector = Projector(ledger)
    changes: list[RoleChange] = []
    block_times: dict[int, datetime] = {}
    for low, high in _block_ranges(ledger, chunk):
        logs = web3.eth.get_logs({"address": ledger.access.address, "fromBlock": low, "toBlock": high})
        ordered = sorted(logs, key=lambda log: (log["blockNumber"], log["logIndex"]))
        for event in projector.decode(ordered):
            if event["event"] not in ROLE_EVENTS:
                continue
            number = int(event["blockNumber"])
            if number not in block_times:
                stamp = int(web3.eth.get_block(number)["timestamp"])
                block_times[number] = datetime.fromtimestamp(stamp, UTC)
            changes.append(
                RoleChange(
                    account=str(event["args"]["account"]).lower(),
                    role=bytes(event["args"]["role"]),
                    granted=event["event"] == "RoleGranted",
                    block_number=number,
                    at=block_times[number],
                )
            )
    return changes


class RoleHistory:
    """Answers "did `account` hold one of `roles` at `moment`?" from a list of :class:`RoleChange`."""

    def __init__(self, changes: Iterable[RoleChange]) -> None:
        self._changes: dict[tuple[str, bytes], list[RoleChange]] = defaultdict(list)
        for change in changes:
            self._changes[(change.account.lower(), change.role)].append(change)

    def held(self, account: str, role: bytes, moment: datetime) -> bool:
        """Whether the last change of (`account`, `role`) before `moment` leaves it granted; a grant counts from
        the start of time (see the module's note on block timestamps)."""
        history = self._changes.get((account.lower(), role), [])
        if not any(change.granted for change in history):
            return False
        state = True
        for change in history:
            if change.granted:
                state = True
            elif change.at <= moment:
                state = False
        return state

    def revoked_at(self, account: str, roles: Sequence[bytes], moment: datetime) -> datetime | None:
        """When `account` lost the last of `roles` it had held, if that was at or before `moment`."""
        times = [
            change.at
            for role in roles
            for change in self._changes.get((account.lower(), role), [])
            if not change.granted and change.at <= moment
        ]
        return max(times) if times else None


def anchored_roots(ledger: Ledger, chunk: int = 5_000) -> dict[bytes, int]:
    """Every root the deployment's EventAnchor recorded, with the event count it was anchored with, from the chain's
    ``RootAnchored`` logs: what the database's batches are checked against, so never read from the database."""
    roots: dict[bytes, int] = {}
    for low, high in _block_ranges(ledger, chunk):
        for log in ledger.anchor.events.RootAnchored().get_logs(from_block=low, to_block=high):
            roots[bytes(log["args"]["root"])] = int(log["args"]["eventCount"])
    return roots


__all__ = ["RoleChange", "RoleHistory", "anchored_roots", "role_changes"]
