"""The return loop: a consumer's drop-off code (from a return request on the passport page) is what a store or a
recycler scans or types at intake. It names the item and the request; the intake (``returned`` or ``collected``)
closes the request, and the passport then says the item was received.

A request is also closed when its item is taken in without the code: a collection is a collection.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ledger.lifecycle import ItemState

from ..models import Actor, Item, ReturnRequest, utcnow
from ..problems import Problem
from ..schemas import ReturnRequestStatusPublic
from ..state import AppState
from ..uris import item_uri
from ..writes import actor_name

OPEN, RECEIVED = "open", "received"
# The states an intake moves an item to: either closes the item's open return requests.
INTAKE_STATES = frozenset({ItemState.RETURNED, ItemState.COLLECTED})


def _spellings(code: str) -> list[str]:
    """The ways a typed code may be stored: as typed (upper case), without dashes, and in groups of four."""
    bare = code.strip().upper().replace("-", "").replace(" ", "")
    grouped = "-".join(bare[i : i + 4] for i in range(0, len(bare), 4))
    return sorted({code.strip().upper(), bare, grouped})


def find_request(session: Session, code: str) -> tuple[ReturnRequest, Item]:
    """The return request a drop-off code names, and its item; a 404 for a code nobody was given."""
    found = session.execute(
        select(ReturnRequest, Item)
        .join(Item, Item.id == ReturnRequest.item_pk)
        .where(ReturnRequest.code.in_(_spellings(code)))
    ).first()
    if found is None:
        raise Problem(404, "Unknown drop-off code", f"no return request has the code {code}", dropOffCode=code)
    return found[0], found[1]


def aware(moment: datetime) -> datetime:
    """`moment` with its UTC offset (SQLite gives back naive datetimes)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def check_open(session: Session, request: ReturnRequest) -> None:
    """A request already closed cannot be used for a second intake (409, saying when and by whom); an expired code
    cannot be used at all (410, saying since when): whoever brings the item asks for a new one on its passport."""
    if request.status != OPEN:
        by = actor_name(session, request.received_by_id) if request.received_by_id is not None else "someone"
        when = request.received_at.isoformat(timespec="seconds") if request.received_at else "earlier"
        raise Problem(
            409,
            "Drop-off code used",
            f"the item of code {request.code} was received by {by} ({when})",
            dropOffCode=request.code,
        )
    if request.expires_at is not None and aware(request.expires_at) <= utcnow():
        raise Problem(
            410,
            "Drop-off code expired",
            f"the drop-off code {request.code} expired on {aware(request.expires_at).isoformat(timespec='seconds')};"
            " a new one can be asked for on the item's passport",
            dropOffCode=request.code,
        )


def status_public(state: AppState, session: Session, request: ReturnRequest, item: Item) -> ReturnRequestStatusPublic:
    return ReturnRequestStatusPublic(
        drop_off_code=request.code,
        status=request.status,
        item=item_uri(state.settings.resolver_base_url, item.gtin, item.serial),
        gtin=item.gtin,
        serial=item.serial,
        created_at=request.created_at,
        expires_at=request.expires_at,
        received_at=request.received_at,
        received_by=actor_name(session, request.received_by_id) if request.received_by_id is not None else None,
    )


def lookup(state: AppState, session: Session, actor: Actor, code: str) -> ReturnRequestStatusPublic:
    """What a drop-off code is for, before the intake is recorded (a scan at the counter)."""
    request, item = find_request(session, code)
    return status_public(state, session, request, item)


def close_requests(session: Session, item_pks: Sequence[int], actor_id: int, new_state: int) -> int:
    """Mark the open return requests of the items `item_pks` received, when `new_state` is an intake; how many were
    closed. Runs inside the completion of the intake's write, so a request closes exactly when the step is
    recorded."""
    if ItemState(new_state) not in INTAKE_STATES or not item_pks:
        return 0
    closed = 0
    for start in range(0, len(item_pks), 500):
        result = session.execute(
            update(ReturnRequest)
            .where(ReturnRequest.item_pk.in_(list(item_pks[start : start + 500])), ReturnRequest.status == OPEN)
            .values(status=RECEIVED, received_at=utcnow(), received_by_id=actor_id)
            .execution_options(synchronize_session=False)
        )
        closed += int(getattr(result, "rowcount", 0) or 0)
    return closed


__all__ = [
    "INTAKE_STATES",
    "OPEN",
    "RECEIVED",
    "aware",
    "check_open",
    "close_requests",
    "find_request",
    "lookup",
    "status_public",
]
