"""Items: made from lots one by one or in runs of thousands (one transaction), and their lifecycle.

Authorised twice: here (a brand acts only on its own items and lots; each action takes the roles that the lifecycle
table, ``ledger.lifecycle``, allows), and by the contract itself (roles, states).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from ledger.client import ContractCall, ItemState, RunCommitment, run_commitment
from ledger.epcis import events as ev
from ledger.errors import ContractRevert
from ledger.ids import item_id, normalize_gtin
from ledger.lifecycle import Action, Lifecycle, next_actions, step

from .. import intents
from ..config import ApiSettings
from ..models import Actor, ActorRole, Item, Lot, ReturnRequest, WriteIntent, utcnow
from ..problems import Problem, revert_problem
from ..schemas import (
    ItemCreate,
    ItemsMade,
    LifecycleBatchCreate,
    LifecycleBatchRecorded,
    LifecycleCreate,
    LifecycleRecorded,
    RunCreate,
    RunMade,
    StepProblem,
    StepResult,
    StepStatus,
)
from ..state import AppState
from ..uris import hex32, item_uri, unhex32
from ..writes import (
    authorize,
    check_gtin_owner,
    check_product,
    composition_of,
    draw,
    ensure_product,
    event_receipt,
    item_public,
    lot_numbers,
    record,
)
from . import returns
from .partners import PartnerCheck


def _roles(*actions: Action) -> tuple[ActorRole, ...]:
    """The API roles the lifecycle table lets take any of `actions`."""
    return tuple(sorted({ActorRole(party.value) for action in actions for party in step(action).parties}))


MAKE_ROLES = _roles(Action.MANUFACTURED)
LIFECYCLE_ROLES = _roles(*(Action(action.value) for action in Lifecycle))
CHUNK = 500


def _parts(composition: list[tuple[str, int]]) -> list[tuple[bytes, int]]:
    return [(unhex32(lot_id), grams) for lot_id, grams in composition]


def make_item(state: AppState, session: Session, actor: Actor, body: ItemCreate) -> ItemsMade:
    """A brand makes one item of its GTIN from its own (or approved) lots."""
    authorize(actor, *MAKE_ROLES)
    ident = hex32(item_id(body.gtin, body.serial))
    intents.reconcile(state, subject=ident)  # a retry after a crash: the first attempt may have been mined
    check_product(session, body.gtin, actor)
    check_gtin_owner(state, actor, body.gtin)
    if session.scalar(select(Item.id).where(Item.gtin == body.gtin, Item.serial == body.serial)) is not None:
        raise Problem(409, "ItemAlreadyRegistered", f"serial {body.serial} of GTIN {body.gtin} exists already")
    composition, lots = composition_of(session, actor, body.composition)
    account = state.keys.account(actor)
    uri = item_uri(state.settings.resolver_base_url, body.gtin, body.serial)
    manufactured = ev.items_manufactured(
        [uri], [(lots[lot_id].uri, grams) for lot_id, grams in composition], read_point=body.read_point
    )
    written = intents.write(
        state,
        actor,
        account,
        kind="item",
        subject=ident,
        call=state.service.ledger.register_item_call(body.gtin, body.serial, _parts(composition)),
        events=[manufactured],
        effect={
            "gtin": body.gtin,
            "serial": body.serial,
            "item_id": ident,
            "composition": [[lot_id, grams] for lot_id, grams in composition],
            "mass_grams": sum(grams for _, grams in composition),
            "certificates": sorted({c for lot in lots.values() for c in (lot.certificates or [])}),
        },
    )
    session.expire_all()
    item = session.scalar(select(Item).where(Item.item_id == ident))
    if item is None:  # pragma: no cover - the completion wrote it in the same transaction as the intent's status
        raise Problem(500, "Write incomplete", f"item {ident} was written on-chain but not recorded")
    return ItemsMade(
        items=[item_public(state, item, actor.name, lot_numbers(session, [item]))],
        event=event_receipt(written),
        tx_hash=written.tx_hash,
    )


def complete_item(session: Session, intent: WriteIntent) -> None:
    """The API rows of a made item: its product (on the GTIN's first use) and the item."""
    effect = intent.effect
    if session.scalar(select(Item.id).where(Item.item_id == effect["item_id"])) is not None:
        return
    actor = session.get(Actor, intent.actor_id)
    assert actor is not None
    ensure_product(session, effect["gtin"], actor)
    draw(session, effect["composition"], 1)
    now = utcnow()
    session.add(
        Item(
            gtin=effect["gtin"],
            serial=effect["serial"],
            item_id=effect["item_id"],
            brand_id=actor.id,
            composition=effect["composition"],
            mass_grams=effect["mass_grams"],
            certificates=effect["certificates"],
            state=int(ItemState.MANUFACTURED),
            materialized=True,
            created_at=now,
            updated_at=now,
        )
    )


def check_run(
    state: AppState, session: Session, actor: Actor, body: RunCreate, api_settings: ApiSettings
) -> dict[str, Lot]:
    """Everything :func:`make_run` checks before its transaction (nothing is written); the lots it draws from."""
    authorize(actor, *MAKE_ROLES)
    serials = body.serials
    if len(serials) > api_settings.max_run_size:
        raise Problem(422, "Run too large", f"at most {api_settings.max_run_size} items per run")
    if len(set(serials)) != len(serials):
        raise Problem(422, "Duplicate serials", "a run's serials must be distinct")
    check_product(session, body.gtin, actor)
    check_gtin_owner(state, actor, body.gtin)
    for start in range(0, len(serials), CHUNK):
        taken = session.scalars(
            select(Item.serial).where(Item.gtin == body.gtin, Item.serial.in_(serials[start : start + CHUNK]))
        ).first()
        if taken is not None:
            raise Problem(409, "ItemAlreadyRegistered", f"serial {taken} of GTIN {body.gtin} exists already")
    return composition_of(session, actor, body.composition)[1]


def make_run(state: AppState, session: Session, actor: Actor, body: RunCreate, api_settings: ApiSettings) -> RunMade:
    """A brand makes a run of items of one composition: one transaction, one Merkle root."""
    lots = check_run(state, session, actor, body, api_settings)
    composition, _ = composition_of(session, actor, body.composition)
    serials = body.serials
    account = state.keys.account(actor)
    call, run = state.service.ledger.register_run_call(body.gtin, serials, _parts(composition))
    run_hex = hex32(run.run_id)
    intents.reconcile(state, subject=run_hex)  # a retry after a crash: the first attempt may have been mined
    base = state.settings.resolver_base_url
    uris = [item_uri(base, body.gtin, serial) for serial in serials]
    count = len(serials)
    manufactured = ev.items_manufactured(
        uris, [(lots[lot_id].uri, grams * count) for lot_id, grams in composition], read_point=body.read_point
    )
    written = intents.write(
        state,
        actor,
        account,
        kind="run",
        subject=run_hex,
        call=call,
        events=[manufactured],
        effect={
            "gtin": body.gtin,
            "serials": serials,
            "composition": [[lot_id, grams] for lot_id, grams in composition],
            "certificates": sorted({c for lot in lots.values() for c in (lot.certificates or [])}),
        },
    )
    return RunMade(
        run_id=run_hex,
        items_root=hex32(run.items_root),
        gtin=body.gtin,
        count=count,
        first=uris[0],
        event=event_receipt(written),
        tx_hash=written.tx_hash,
    )


def complete_run(session: Session, intent: WriteIntent) -> None:
    """A run's item rows, each with its Merkle proof (recomputed from the serials: the intent keeps them only)."""
    effect = intent.effect
    run = run_commitment(effect["gtin"], effect["serials"])
    run_hex = hex32(run.run_id)
    if session.scalar(select(Item.id).where(Item.run_id == run_hex).limit(1)) is not None:
        return
    actor = session.get(Actor, intent.actor_id)
    assert actor is not None
    ensure_product(session, effect["gtin"], actor)
    session.flush()
    now = utcnow()
    composition = effect["composition"]
    draw(session, composition, len(run.serials))
    mass = sum(int(grams) for _, grams in composition)
    rows = [
        {
            "gtin": run.gtin,
            "serial": serial,
            "item_id": hex32(item_id(run.gtin, serial)),
            "brand_id": actor.id,
            "composition": composition,
            "mass_grams": mass,
            "certificates": effect["certificates"],
            "state": int(ItemState.MANUFACTURED),
            "run_id": run_hex,
            "items_root": hex32(run.items_root),
            "proof": [hex32(p) for p in run.proofs[serial]],
            "materialized": False,
            "created_at": now,
            "updated_at": now,
        }
        for serial in run.serials
    ]
    for start in range(0, len(rows), CHUNK):
        session.execute(insert(Item), rows[start : start + CHUNK])


def find_item(session: Session, gtin: str, serial: str) -> Item:
    """The item, or a 404."""
    item = session.scalar(select(Item).where(Item.gtin == normalize_gtin(gtin), Item.serial == serial))
    if item is None:
        raise Problem(404, "Unknown item", f"serial {serial} of GTIN {gtin} is not registered")
    return item


def refused_step(item: Item, action: Action | str, party: str) -> Problem | None:
    """Why `party` may not take `action` on `item` as it stands, naming its state and the steps allowed from there,
    in the shape of the contract's own refusal; None when the table allows it. For the steps the contract does not
    see (a repair) and those not worth a transaction (an item of a bulk write); the contract decides the others."""
    rule = step(action)
    current = ItemState(item.state)
    if rule.allows(party, current):
        return None
    anyone = [a.value for a in next_actions(current)]
    yours = [a.value for a in next_actions(current, party)]
    name = current.name.lower()
    allowed = ", ".join(anyone) or "nothing (it is final)"
    args = {"itemId": item.item_id, "current": name, "requested": rule.action.value}
    if current in rule.edges:
        return Problem(
            403,
            "UnauthorizedTransition",
            f"a {party} may not record {rule.action.value} for an item that is {name} "
            f"({', '.join(sorted(rule.edges[current]))} may); from {name} you may record "
            f"{', '.join(yours) or 'nothing'}",
            error="UnauthorizedTransition",
            args=args,
            allowedNext=anyone,
            allowedNextForYou=yours,
        )
    return Problem(
        409,
        "IllegalTransition",
        f"an item that is {name} cannot be {rule.action.value}: from {name} it can be {allowed}",
        error="IllegalTransition",
        args=args,
        allowedNext=anyone,
        allowedNextForYou=yours,
    )


def lifecycle(state: AppState, session: Session, actor: Actor, body: LifecycleCreate) -> LifecycleRecorded:
    """Record a sale, use, return, collection, repair, refurbishment, resale or disposal of one item, named by its
    GTIN and serial or, at intake, by the drop-off code of its return request (which the intake closes)."""
    authorize(actor, *LIFECYCLE_ROLES)
    rule = step(body.action)  # the lifecycle table: who may take the action, and what it moves the item to
    target, roles = rule.target, rule.parties
    if str(actor.role) not in roles:
        raise Problem(
            403,
            "Forbidden",
            f"a {actor.role} may not record {body.action.value}",
            allowedRoles=sorted(r.value for r in roles),
        )
    request: ReturnRequest | None = None
    if body.drop_off_code is not None:
        if target not in returns.INTAKE_STATES:
            raise Problem(
                422,
                "Not an intake",
                f"a drop-off code names an item at intake: record returned or collected, not {body.action.value}",
            )
        request, found = returns.find_request(session, body.drop_off_code)
        returns.check_open(session, request)
        gtin, serial = found.gtin, found.serial
    else:
        assert body.gtin is not None and body.serial is not None  # the schema asks for both, or for a code
        gtin, serial = body.gtin, body.serial
    # A write on this item left pending (a crash, a request still waiting for its receipt) is settled first: the
    # item's row below must be what the chain says, or the call chosen from it (materialize or not) would be wrong.
    intents.reconcile(state, subject=hex32(item_id(gtin, serial)))
    item = find_item(session, gtin, serial)
    if actor.role == ActorRole.BRAND and item.brand_id != actor.id:
        raise Problem(403, "Not your item", "a brand acts only on its own items")
    account = state.keys.account(actor)
    uri = item_uri(state.settings.resolver_base_url, item.gtin, item.serial)
    event = ev.lifecycle(ev.Lifecycle(body.action.value), [uri], read_point=body.read_point)
    if target is None:
        # No chain effect, so no contract to refuse it: the table decides, and the event alone is the write.
        refusal = refused_step(item, body.action, str(actor.role)) or PartnerCheck(state, session, actor).refusal(item)
        if refusal is not None:
            raise refusal
        receipt = record(state, account, [event])
        item.updated_at = utcnow()
        session.commit()
        brand = session.get(Actor, item.brand_id)
        return LifecycleRecorded(
            item=item_public(state, item, brand.name if brand else ""), event=receipt, tx_hash=None
        )
    written = intents.write(
        state,
        actor,
        account,
        kind="lifecycle",
        subject=item.item_id,
        call=transition_call(state, item, target),
        events=[event],
        effect={"item_id": item.item_id, "state": int(target)},
    )
    session.expire_all()
    item = find_item(session, gtin, serial)
    brand = session.get(Actor, item.brand_id)
    closed = None
    if request is not None:
        request, _ = returns.find_request(session, request.code)
        closed = returns.status_public(state, session, request, item)
    return LifecycleRecorded(
        item=item_public(state, item, brand.name if brand else ""),
        event=event_receipt(written),
        tx_hash=written.tx_hash,
        return_request=closed,
    )


def _problem_of(problem: Problem) -> StepProblem:
    extra = problem.extra
    return StepProblem(
        status=problem.status,
        title=problem.title,
        detail=problem.detail,
        error=extra.get("error"),
        args=extra.get("args"),
        allowed_next=extra.get("allowedNext"),
    )


def _failure_of(error: Exception | None) -> StepProblem:
    if isinstance(error, ContractRevert):
        return _problem_of(revert_problem(error))
    return StepProblem(status=502, title="Transaction failed", detail=str(error) if error else None)


def _items_by_id(session: Session, idents: Sequence[str]) -> dict[str, Item]:
    """The items of `idents`, as the database has them now (a few queries of bound ids)."""
    session.expire_all()
    items: dict[str, Item] = {}
    wanted = sorted(set(idents))
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        items.update((i.item_id, i) for i in session.scalars(select(Item).where(Item.item_id.in_(chunk))))
    return items


def lifecycle_many(
    state: AppState, session: Session, actor: Actor, body: LifecycleBatchCreate
) -> LifecycleBatchRecorded:
    """One lifecycle step for many items, each a write of its own sent in one pipeline; a result per item.

    Every item is checked before anything is sent (unknown, another brand's, a step its state or the actor's role
    does not allow: ``refused``, in the words of the single write's problem). An item already in the step's state is
    ``unchanged``: a retried request records nothing twice, and writes an earlier attempt left pending are settled
    first. What was sent ends ``recorded``, ``failed`` (reverted or refused by the node: nothing on-chain) or
    ``pending`` (it completes on its own)."""
    authorize(actor, *LIFECYCLE_ROLES)
    rule = step(body.action)
    target, roles = rule.target, rule.parties
    if target is None:
        raise Problem(
            422, "Not a bulk step", f"{body.action.value} changes no on-chain state: record it item by item"
        )
    if str(actor.role) not in roles:
        raise Problem(
            403,
            "Forbidden",
            f"a {actor.role} may not record {body.action.value}",
            allowedRoles=sorted(r.value for r in roles),
        )
    keys = [(k.gtin, k.serial) if k.drop_off_code is None else ("code", k.drop_off_code) for k in body.items]
    if len(set(keys)) != len(keys):
        raise Problem(422, "Duplicate items", "each item may be listed once")
    results: list[StepResult | None] = [None] * len(body.items)

    def refuse(index: int, problem: Problem, item: Item | None = None) -> None:
        key = body.items[index]
        results[index] = StepResult(
            index=index,
            gtin=item.gtin if item is not None else key.gtin,
            serial=item.serial if item is not None else key.serial,
            drop_off_code=key.drop_off_code,
            status=StepStatus.REFUSED,
            state=ItemState(item.state).name.lower() if item is not None else None,
            problem=_problem_of(problem),
        )

    # Which item each entry names.
    idents: dict[int, str] = {}
    requests: dict[int, ReturnRequest] = {}
    for index, key in enumerate(body.items):
        if key.drop_off_code is None:
            assert key.gtin is not None and key.serial is not None
            idents[index] = hex32(item_id(key.gtin, key.serial))
            continue
        if target not in returns.INTAKE_STATES:
            refuse(index, Problem(422, "Not an intake", "a drop-off code names an item at intake only"))
            continue
        try:
            request, found = returns.find_request(session, key.drop_off_code)
            returns.check_open(session, request)
        except Problem as problem:
            refuse(index, problem)
            continue
        idents[index], requests[index] = found.item_id, request
    if len(set(idents.values())) != len(idents):
        raise Problem(422, "Duplicate items", "each item may be listed once (by its key or by its code)")
    # Writes an earlier attempt left pending are settled first: an item's row must be what the chain says.
    wanted = sorted(set(idents.values()))
    for start in range(0, len(wanted), CHUNK):
        for subject in set(
            session.scalars(
                select(WriteIntent.subject).where(
                    WriteIntent.subject.in_(wanted[start : start + CHUNK]), WriteIntent.status == intents.PENDING
                )
            )
        ):
            intents.reconcile(state, subject=subject)
    items = _items_by_id(session, wanted)
    partners = PartnerCheck(state, session, actor)
    base = state.settings.resolver_base_url
    ledger = state.service.ledger
    planned: list[intents.Planned] = []
    planned_index: list[int] = []
    for index, ident in sorted(idents.items()):
        key = body.items[index]
        item = items.get(ident)
        if item is None:
            refuse(index, Problem(404, "Unknown item", f"serial {key.serial} of GTIN {key.gtin} is not registered"))
            continue
        if actor.role == ActorRole.BRAND and item.brand_id != actor.id:
            refuse(index, Problem(403, "Not your item", "a brand acts only on its own items"), item)
            continue
        not_partner = partners.refusal(item)  # what the contract would refuse, said before anything is sent
        if not_partner is not None:
            refuse(index, not_partner, item)
            continue
        if ItemState(item.state) == target and index not in requests:
            results[index] = StepResult(
                index=index,
                gtin=item.gtin,
                serial=item.serial,
                status=StepStatus.UNCHANGED,
                state=ItemState(item.state).name.lower(),
            )
            continue
        refusal = refused_step(item, body.action, str(actor.role))
        if refusal is not None:
            refuse(index, refusal, item)
            continue
        uri = item_uri(base, item.gtin, item.serial)
        proof_steps = None if item.materialized else len(item.proof or [])
        planned.append(
            intents.Planned(
                kind="lifecycle",
                subject=item.item_id,
                call=transition_call(state, item, target),
                gas=ledger.transition_gas(proof_steps),
                events=[ev.lifecycle(ev.Lifecycle(body.action.value), [uri], read_point=body.read_point)],
                effect={"item_id": item.item_id, "state": int(target)},
            )
        )
        planned_index.append(index)
    account = state.keys.account(actor) if planned else None
    outcomes = intents.write_many(state, actor, account, planned) if account is not None else []
    items = _items_by_id(session, [idents[index] for index in planned_index])
    for index, outcome in zip(planned_index, outcomes, strict=True):
        item = items[idents[index]]
        key = body.items[index]
        status = {intents.DONE: StepStatus.RECORDED, intents.FAILED: StepStatus.FAILED}.get(
            outcome.status, StepStatus.PENDING
        )
        results[index] = StepResult(
            index=index,
            gtin=item.gtin,
            serial=item.serial,
            drop_off_code=key.drop_off_code,
            status=status,
            state=ItemState(item.state).name.lower(),
            event_id=outcome.events[0].event_id if outcome.events else None,
            tx_hash=outcome.tx_hash,
            problem=_failure_of(outcome.error) if status == StepStatus.FAILED else None,
        )
    done = [r for r in results if r is not None]
    assert len(done) == len(body.items)
    count = {status: sum(1 for r in done if r.status == status) for status in StepStatus}
    return LifecycleBatchRecorded(
        action=body.action.value,
        results=done,
        recorded=count[StepStatus.RECORDED],
        unchanged=count[StepStatus.UNCHANGED],
        refused=count[StepStatus.REFUSED],
        failed=count[StepStatus.FAILED],
        pending=count[StepStatus.PENDING],
    )


def transition_call(state: AppState, item: Item, target: ItemState) -> ContractCall:
    """The contract call that moves `item` to `target`: a plain transition, or an item of a run's first move (with
    its Merkle proof)."""
    ledger = state.service.ledger
    if item.materialized:
        return ledger.transition_call(unhex32(item.item_id), target)
    assert item.run_id and item.items_root and item.proof is not None
    run = RunCommitment(
        unhex32(item.run_id),
        item.gtin,
        unhex32(item.items_root),
        (item.serial,),
        {item.serial: [unhex32(p) for p in item.proof]},
    )
    return ledger.transition_run_item_call(run, item.serial, target)


def complete_lifecycle(session: Session, intent: WriteIntent) -> None:
    """The item's new state; an item of a run is on-chain in its own right from its first move."""
    complete_lifecycles(session, [intent])


def complete_lifecycles(session: Session, done: Sequence[WriteIntent]) -> None:
    """:func:`complete_lifecycle` for many intents at once (a bulk write): the items read in one query, an intake's
    return requests closed in one statement per state."""
    by_item = {str(intent.effect["item_id"]): intent for intent in done}
    items = list(session.scalars(select(Item).where(Item.item_id.in_(sorted(by_item)))))
    assert len(items) == len(by_item)
    now = utcnow()
    intakes: dict[tuple[int, int], list[int]] = defaultdict(list)  # (actor, state) → item pks
    for item in items:
        intent = by_item[item.item_id]
        item.state = int(intent.effect["state"])
        item.materialized = True
        item.holder_id = intent.actor_id
        item.updated_at = now
        intakes[(intent.actor_id, item.state)].append(item.id)
    for (actor_id, new_state), pks in intakes.items():
        returns.close_requests(session, pks, actor_id, new_state)


__all__ = [
    "LIFECYCLE_ROLES",
    "MAKE_ROLES",
    "check_run",
    "complete_item",
    "complete_lifecycle",
    "complete_lifecycles",
    "complete_run",
    "find_item",
    "lifecycle",
    "lifecycle_many",
    "make_item",
    "make_run",
    "refused_step",
    "transition_call",
]
