"""`rebuild` reconstructs lots, runs, items and lifecycle states from contract logs alone, field by field."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from ledger.client import ItemState, Ledger, Transactor
from ledger.db import Base
from ledger.projection import PROJECTION_TABLES, ChainAnchor, ChainItem, ChainLot, Projector
from tests.contracts.conftest import GTIN_A, GTIN_B, World

COTTON = b"CO".ljust(32, b"\x00")


def _rows(session: Session) -> dict[str, list[dict[str, Any]]]:
    dump = {}
    for table in PROJECTION_TABLES:
        columns = [c.key for c in table.__table__.columns if c.key != "id"]
        rows = [{c: getattr(r, c) for c in columns} for r in session.scalars(select(table))]
        dump[table.__tablename__] = sorted(rows, key=repr)
    return dump


def test_rebuild_equals_the_live_projection(world: World) -> None:
    live = Session(create_engine("sqlite://"))
    Base.metadata.create_all(live.get_bind())
    ledger = Ledger(world.backend, world.ledger.deployment, Transactor(world.backend))
    projector = Projector(ledger)
    # The live projection follows every receipt we write, as the API does.
    projector.rebuild(live)  # the deployment and the fixture's roles and prefixes
    ledger.tx.listeners.append(lambda receipt: projector.apply_receipt(live, receipt))

    lot = ledger.register_lot(world.brand_a, GTIN_A, "L1", COTTON, 100_000, 1_000)
    single = ledger.register_item(world.brand_a, GTIN_A, "SINGLE", [(lot, 500)])
    run = ledger.register_run(world.brand_a, GTIN_A, [f"R{i}" for i in range(20)], [(lot, 200)])
    ledger.transition(world.retailer, single, ItemState.SOLD)
    ledger.transition_run_item(world.retailer, run, "R3", ItemState.SOLD)
    ledger.transition(world.retailer, single, ItemState.IN_USE)
    ledger.transition(world.recycler, single, ItemState.COLLECTED)
    recovered = ledger.recycle(world.recycler, [single], COTTON, "REC1", 450)
    ledger.approve_lot(world.recycler, recovered, world.brand_b.address, 450)
    ledger.register_item(world.brand_b, GTIN_B, "GEN2", [(recovered, 300)])
    ledger.grant_role(world.admin, "anchorer", world.anchorer.address)
    ledger.anchor_root(world.anchorer, b"\x01" * 32, 5)
    ledger.anchor_root(world.anchorer, b"\x02" * 32, 7, "https://batches.example/2")
    live.commit()

    rebuilt = Session(create_engine("sqlite://"))
    Base.metadata.create_all(rebuilt.get_bind())
    assert Projector(ledger).rebuild(rebuilt) > 0
    rebuilt.commit()

    assert _rows(rebuilt) == _rows(live)
    items = {i.serial: i for i in rebuilt.scalars(select(ChainItem))}
    assert len(items) == 22
    assert items["SINGLE"].state == ItemState.RECYCLED and items["SINGLE"].recovered_into == "0x" + recovered.hex()
    assert items["R3"].state == ItemState.SOLD and items["R3"].materialized
    assert items["R4"].state == ItemState.MANUFACTURED and not items["R4"].materialized
    assert rebuilt.get_one(ChainLot, "0x" + lot.hex()).allocated_grams == 500 + 20 * 200
    assert rebuilt.get_one(ChainLot, "0x" + recovered.hex()).source_items == ["0x" + single.hex()]
    assert rebuilt.get_one(ChainAnchor, "0x" + "02" * 32).uri == "https://batches.example/2"


def test_a_look_alike_deployment_is_never_ingested(world: World) -> None:
    """A second deployment of the same contracts emits byte-identical events (same ABI, same signatures, same
    actors); neither `apply_receipt` nor `rebuild` of ours takes a single one of its logs."""
    look_alike = Ledger(world.backend, Ledger.deploy(world.backend, world.admin).deployment, world.ledger.tx)
    look_alike.grant_role(world.admin, "brand", world.brand_a.address)
    look_alike.grant_role(world.admin, "anchorer", world.anchorer.address)
    look_alike.assign_prefix(world.admin, "9506000", world.brand_a.address)
    fake_lot = look_alike.register_lot(world.brand_a, GTIN_A, "FAKE", COTTON, 50_000)
    fake_receipts = [
        look_alike.tx.send(world.brand_a, look_alike.register_item_call(GTIN_A, "FAKE-ITEM", [(fake_lot, 100)])),
        look_alike.anchor_root(world.anchorer, b"\x0f" * 32, 3),
    ]
    # The forged logs really are identical in shape: our ABI decodes them once the address check is out of the way.
    ours = Projector(world.ledger)
    for receipt in fake_receipts:
        assert any(bytes(log["topics"][0]) in {topic for _, topic in ours._by_topic} for log in receipt["logs"])

    session = Session(create_engine("sqlite://"))
    Base.metadata.create_all(session.get_bind())
    ours.rebuild(session)
    for receipt in fake_receipts:
        ours.apply_receipt(session, receipt)
    session.commit()

    assert session.get(ChainLot, "0x" + fake_lot.hex()) is None
    assert session.scalars(select(ChainItem)).all() == []
    assert session.get(ChainAnchor, "0x" + "0f" * 32) is None
    assert [lot.lot_number for lot in session.scalars(select(ChainLot))] == []
    # and the look-alike's own projector does see them: the test would notice if nothing had been emitted at all
    theirs = Session(create_engine("sqlite://"))
    Base.metadata.create_all(theirs.get_bind())
    Projector(look_alike).rebuild(theirs)
    assert theirs.get(ChainLot, "0x" + fake_lot.hex()) is not None
    assert theirs.get(ChainAnchor, "0x" + "0f" * 32) is not None
