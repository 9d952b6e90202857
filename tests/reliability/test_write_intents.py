"""The write intents of ``api/intents.py``, crash by crash: each test stops a write where a kill -9 could, then checks
what reconciliation makes of it (in-process chain and SQLite; the kill itself is in ``test_api_crash.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from api import intents
from api.models import Actor, WriteIntent
from api.state import AppState
from ledger.client import ItemState
from ledger.epcis import events as ev
from ledger.epcis.hashing import event_hash_id
from tests.api.conftest import World, _make_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from _make_world("sqlite", tmp_path_factory.mktemp("intents"))


def _item(world: World) -> dict[str, Any]:
    lot = world.lot()
    return world.item([(lot["lotId"], 100)])


def _record_sale(world: World, item: dict[str, Any]) -> tuple[AppState, WriteIntent, str]:
    """Step 1 of a sale, as the route makes it, and nothing after: the state a kill before sending leaves."""
    state: AppState = world.client.app.state.circular  # type: ignore[attr-defined]
    with world.service.sessions() as session:
        actor = session.get(Actor, world.actor_ids["brand"])
        assert actor is not None
        session.expunge(actor)
    account = state.keys.account(actor)
    event = ev.lifecycle(ev.Lifecycle.SOLD, [item["digitalLink"]])
    call = state.service.ledger.transition_call(bytes.fromhex(item["itemId"][2:]), ItemState.SOLD)
    signed = [state.service.sign(account, event)]
    effect = {"item_id": item["itemId"], "state": int(ItemState.SOLD)}
    intent_id, _, _ = intents._record(state, actor, account, "lifecycle", item["itemId"], call, signed, effect, None)
    return state, _intent(world, intent_id), event_hash_id(event)


def _intent(world: World, intent_id: int) -> WriteIntent:
    with world.service.sessions() as session:
        intent = session.get(WriteIntent, intent_id)
        assert intent is not None
        session.expunge(intent)
        return intent


def _state_of(world: World, item: dict[str, Any]) -> str:
    response = world.client.get(f"/api/v1/items/{item['gtin']}/{item['serial']}", headers=world.auth("admin"))
    assert response.status_code == 200
    return str(response.json()["state"])


def test_a_write_recorded_but_never_sent_is_sent_on_reconciliation(world: World) -> None:
    item = _item(world)
    state, intent, event_id = _record_sale(world, item)
    tx_hash = bytes.fromhex(intent.tx_hash[2:])
    assert world.service.ledger.tx.receipt_of(tx_hash) is None  # nothing on-chain yet
    assert _state_of(world, item) == "manufactured"

    assert intents.reconcile(state) == 1
    assert _intent(world, intent.id).status == intents.DONE
    receipt = world.service.ledger.tx.receipt_of(tx_hash)  # the recorded bytes, not a new transaction
    assert receipt is not None and receipt["status"] == 1
    assert _state_of(world, item) == "sold"
    assert world.service.outbox.get(event_id) is not None
    assert intents.reconcile(state) == 0  # nothing left to do, and done twice is not done again


def test_a_write_whose_nonce_another_transaction_took_fails_and_can_be_retried(world: World) -> None:
    item, other = _item(world), _item(world)
    state, intent, event_id = _record_sale(world, item)
    ledger = world.service.ledger
    account = state.keys.account(_actor(world))
    # Another sender of the same key that knows nothing of the intent (another tool, a process that lost its
    # database) takes the node's next nonce, which is the intent's.
    ledger.tx.forget_nonce(account.address)
    ledger.transition(account, bytes.fromhex(other["itemId"][2:]), ItemState.SOLD)
    assert ledger.tx.mined_count(account.address) > intent.nonce

    assert intents.reconcile(state) == 1
    failed = _intent(world, intent.id)
    assert failed.status == intents.FAILED and "nonce" in (failed.error or "")
    assert _state_of(world, item) == "manufactured"  # nothing half-written: no state change, no event
    assert world.service.outbox.get(event_id) is None
    response = world.act(item, "sold", "brand")
    assert response.status_code == 201, response.text
    assert _state_of(world, item) == "sold"


def test_a_write_mined_but_not_completed_is_completed_by_its_retry(world: World) -> None:
    item = _item(world)
    _, intent, event_id = _record_sale(world, item)
    tx = world.service.ledger.tx
    tx.broadcast(intent.raw_tx)
    assert tx.await_receipt(bytes.fromhex(intent.tx_hash[2:]))["status"] == 1
    assert _state_of(world, item) == "manufactured"  # the kill came before the completion

    response = world.act(item, "sold", "brand")  # the client's retry: settled first, then refused as done
    assert response.status_code == 409, response.text
    assert response.json()["error"] == "IllegalTransition"
    assert _intent(world, intent.id).status == intents.DONE
    assert _state_of(world, item) == "sold"
    assert world.service.outbox.get(event_id) is not None
    history = world.service.outbox.events_for(item["digitalLink"])
    assert [row.event["bizStep"].rsplit(":", 1)[-1] for row in history].count("retail_selling") == 1


def test_a_revert_seen_by_the_estimate_leaves_no_intent(world: World) -> None:
    item = _item(world)
    assert world.act(item, "sold", "brand").status_code == 201
    with world.service.sessions() as session:
        before = len(list(session.scalars(select(WriteIntent.id))))
    response = world.act(item, "sold", "brand")
    assert response.status_code == 409
    with world.service.sessions() as session:
        assert len(list(session.scalars(select(WriteIntent.id)))) == before


def _actor(world: World) -> Actor:
    with world.service.sessions() as session:
        actor = session.get(Actor, world.actor_ids["brand"])
        assert actor is not None
        session.expunge(actor)
        return actor
