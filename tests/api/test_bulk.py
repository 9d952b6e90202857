"""Bulk lifecycle writes: one request records a step for many items, pipelined on-chain, with a result per item;
a retried request records nothing twice; a revert or a lost receipt is said, item by item, never half-recorded."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select, update

from api.intents import DONE, PENDING
from api.models import Item, WriteIntent
from ledger.ids import item_id
from ledger.lifecycle import ItemState
from ledger.outbox import OutboxEvent

from .conftest import GTIN_A, World


def _run(world: World, count: int) -> list[str]:
    lot = world.lot(grams=100_000)
    serials = [world.unique("B") for _ in range(count)]
    body = {"gtin": GTIN_A, "serials": serials, "composition": [{"lotId": lot["lotId"], "grams": 100}]}
    assert world.post("/api/v1/runs", "brand", body).status_code == 201
    return serials


def _batch(world: World, role: str, action: str, keys: list[dict[str, Any]]) -> Any:
    return world.post("/api/v1/lifecycle-batches", role, {"action": action, "items": keys})


def _keys(serials: list[str]) -> list[dict[str, Any]]:
    return [{"gtin": GTIN_A, "serial": s} for s in serials]


def _chain_state(world: World, serial: str) -> ItemState:
    return ItemState(world.service.ledger.item(item_id(GTIN_A, serial))["state"])


def _events(world: World) -> int:
    with world.service.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(OutboxEvent)) or 0)


def test_a_bulk_collect_records_a_result_per_item(world: World) -> None:
    serials = _run(world, 24)
    sold = _batch(world, "retailer", "sold", _keys(serials))
    assert sold.status_code == 200, sold.text
    assert sold.json()["recorded"] == 24 and all(r["status"] == "recorded" for r in sold.json()["results"])
    assert _batch(world, "retailer", "in_use", _keys(serials[:20])).json()["recorded"] == 20

    # One of them is handed in with its drop-off code.
    ticket = world.client.post(
        f"/01/{GTIN_A}/21/{serials[0]}/return-requests", json={}, headers={"X-Forwarded-For": "10.55.0.1"}
    )
    code = ticket.json()["dropOffCode"]
    keys = [{"dropOffCode": code}, *_keys(serials[1:20])]
    disposed = world.item([(world.lot()["lotId"], 50)])
    assert world.act(disposed, "disposed", "brand").status_code == 201
    keys += [{"gtin": GTIN_A, "serial": "NO-SUCH-ITEM"}, {"gtin": GTIN_A, "serial": disposed["serial"]}]
    before = _events(world)
    answer = _batch(world, "recycler", "collected", keys)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["recorded"], body["refused"], body["failed"], body["pending"]) == (20, 2, 0, 0)
    results = body["results"]
    assert [r["index"] for r in results] == list(range(len(keys)))
    assert results[0]["serial"] == serials[0] and results[0]["dropOffCode"] == code
    for result in results[:20]:
        assert result["status"] == "recorded" and result["state"] == "collected"
        assert result["eventId"].startswith("ni:///") and result["txHash"].startswith("0x")
        assert _chain_state(world, result["serial"]) == ItemState.COLLECTED
    unknown, final = results[20], results[21]
    assert unknown["status"] == "refused" and unknown["problem"]["status"] == 404
    assert final["status"] == "refused" and final["problem"]["error"] == "IllegalTransition"
    assert final["state"] == "disposed" and final["problem"]["allowedNext"] == []
    assert _events(world) == before + 20  # one event per recorded step, none for a refusal
    status = world.client.get(f"/api/v1/return-requests/{code}", headers=world.auth("recycler")).json()
    assert status["status"] == "received"

    # The same request again: what was recorded is unchanged, nothing is written twice.
    again = _batch(world, "recycler", "collected", [*_keys(serials[:20]), keys[-1]]).json()
    assert again["unchanged"] == 20 and again["recorded"] == 0 and again["refused"] == 1
    assert _events(world) == before + 20


def test_a_revert_fails_its_own_item_only(world: World) -> None:
    serials = _run(world, 6)
    assert _batch(world, "retailer", "sold", _keys(serials)).json()["recorded"] == 6
    # The database says one item is in use, the chain that it is sold: the API lets it through, the contract refuses
    # (a refurbishment is a step from in use, not from sold).
    with world.service.sessions.begin() as session:
        session.execute(update(Item).where(Item.serial == serials[2]).values(state=int(ItemState.IN_USE)))
    answer = _batch(world, "repairer", "refurbished", _keys(serials[2:3]))
    body = answer.json()
    assert body["failed"] == 1 and body["results"][0]["status"] == "failed"
    assert body["results"][0]["problem"]["error"] == "IllegalTransition"
    with world.service.sessions.begin() as session:
        session.execute(update(Item).where(Item.serial == serials[2]).values(state=int(ItemState.SOLD)))
    # In a bulk with others: they are recorded, it is not.
    with world.service.sessions.begin() as session:
        session.execute(update(Item).where(Item.serial == serials[3]).values(state=int(ItemState.RETURNED)))
    mixed = _batch(world, "retailer", "resold", _keys(serials[3:4])).json()
    assert mixed["failed"] == 1 and mixed["results"][0]["problem"]["error"] == "IllegalTransition"
    used = _batch(world, "retailer", "in_use", _keys(serials)).json()
    statuses = {r["serial"]: r["status"] for r in used["results"]}
    assert statuses[serials[3]] == "refused"  # the database still says returned: in_use is no step from there
    assert [statuses[s] for s in serials if s != serials[3]] == ["recorded"] * 5
    with world.service.sessions() as session:
        failed = session.scalars(select(WriteIntent).where(WriteIntent.status == "failed")).all()
        assert failed and all("IllegalTransition" in (f.error or "") for f in failed[-2:])


def test_receipts_not_seen_leave_the_steps_pending_and_a_retry_finishes_them(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    serials = _run(world, 5)
    tx = world.service.ledger.tx

    def no_receipts(hashes: Any) -> Any:
        raise TimeoutError("the node did not answer in time")

    monkeypatch.setattr(tx, "receipts", no_receipts)
    answer = _batch(world, "retailer", "sold", _keys(serials)).json()
    assert answer["pending"] == 5 and all(r["txHash"] for r in answer["results"])
    with world.service.sessions() as session:
        pending = session.scalars(select(WriteIntent).where(WriteIntent.status == PENDING)).all()
        assert len(pending) == 5
    monkeypatch.undo()
    retry = _batch(world, "retailer", "sold", _keys(serials)).json()
    assert retry["unchanged"] == 5, retry
    with world.service.sessions() as session:
        statuses = {
            i.status for i in session.scalars(select(WriteIntent).where(WriteIntent.id.in_([p.id for p in pending])))
        }
        assert statuses == {DONE}
    assert all(_chain_state(world, s) == ItemState.SOLD for s in serials)


def test_what_a_bulk_refuses_outright(world: World) -> None:
    serials = _run(world, 2)
    repair = _batch(world, "repairer", "repaired", _keys(serials))
    assert repair.status_code == 422 and repair.json()["title"] == "Not a bulk step"
    assert _batch(world, "retailer", "collected", _keys(serials)).status_code == 403
    twice = _batch(world, "retailer", "sold", _keys(serials) + _keys(serials[:1]))
    assert twice.status_code == 422 and twice.json()["title"] == "Duplicate items"
    too_many = _batch(world, "retailer", "sold", [{"gtin": GTIN_A, "serial": f"X{i}"} for i in range(1001)])
    assert too_many.status_code == 422
