"""Per-material mass balance: recovered lots never hold more of a material than the recycled items held of what
recycles into it, refused before any transaction with a clear error; and the audit finds a breach written around
the API (planted here with SQL), and lots of materials the catalogue does not know."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from api.audit import run_audit
from api.models import Lot
from api.scans import scans_for
from ledger.audit import RoleHistory, role_changes

from .conftest import World


def _shirts(world: World, count: int) -> list[dict[str, Any]]:
    """`count` T-shirts of 150 g cotton and 50 g polyester, sold, worn and collected."""
    cotton, polyester = world.lot(code="CO"), world.lot(code="PES", gtin=None)
    shirts = [world.item([(cotton["lotId"], 150), (polyester["lotId"], 50)]) for _ in range(count)]
    for shirt in shirts:
        for action, role in (("sold", "retailer"), ("in_use", "retailer"), ("collected", "recycler")):
            assert world.act(shirt, action, role).status_code == 201
    return shirts


def _recycle(world: World, shirts: list[dict[str, Any]], code: str, grams: int) -> Any:
    body = {
        "items": [{"gtin": s["gtin"], "serial": s["serial"]} for s in shirts],
        "materialCode": code,
        "lotNumber": world.unique("RL"),
        "massGrams": grams,
    }
    return world.post("/api/v1/recycling", "recycler", body)


def _audit(world: World) -> list[Any]:
    scans_for(world.client.app.state.circular).flush()
    with world.service.sessions() as session:
        return run_audit(session, RoleHistory(role_changes(world.service.ledger))).anomalies


def test_cotton_from_mixed_shirts_is_refused_beyond_their_cotton(world: World) -> None:
    shirts = _shirts(world, 10)  # 1,500 g cotton, 500 g polyester
    refused = _recycle(world, shirts, "CO", 1_800)
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["title"] == "Material mass exceeded"
    assert (problem["material"], problem["requestedGrams"], problem["availableGrams"]) == ("rCO", 1_800, 1_500)
    assert "1,800 g of Recycled cotton" in problem["detail"] and "1,500 g" in problem["detail"]
    assert problem["recoverable"] == {"rCO": 1_500, "rPES": 500}
    # Nothing was written: the items are still collected, on-chain too.
    admin = world.auth("admin")
    item = world.client.get(f"/api/v1/items/{shirts[0]['gtin']}/{shirts[0]['serial']}", headers=admin).json()
    assert item["state"] == "collected"
    assert _recycle(world, shirts, "EL", 10).json()["title"] == "Not a recovered material"
    assert _recycle(world, shirts, "UNOBTAINIUM", 10).json()["title"] == "Unknown material"
    accepted = _recycle(world, shirts, "rCO", 1_400)
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["lot"]["material"] == "Recycled cotton"


def test_the_audit_flags_a_breach_planted_in_the_records(world: World) -> None:
    shirts = _shirts(world, 2)  # 300 g cotton, 100 g polyester
    recovered = _recycle(world, shirts, "rCO", 250).json()["lot"]
    virgin = world.lot(code="WO")
    mine = {recovered["uri"], virgin["uri"]}
    assert not [a for a in _audit(world) if a.subject in mine]
    # Written around the API: 350 g of recycled cotton from 300 g of cotton (the total, 400 g, still fits), and a
    # lot of a material nobody knows.
    with world.service.sessions.begin() as session:
        session.execute(update(Lot).where(Lot.lot_id == recovered["lotId"]).values(mass_grams=350))
        session.execute(update(Lot).where(Lot.lot_id == virgin["lotId"]).values(material_code="UNOBTAINIUM"))
    found = {(a.rule, a.subject): a for a in _audit(world) if a.subject in mine}
    assert set(found) == {("material-excess", recovered["uri"]), ("unknown-material", virgin["uri"])}
    detail = found[("material-excess", recovered["uri"])].detail
    assert "350 g of rCO" in detail and "300 g" in detail and "50 g too many" in detail
    assert found[("material-excess", recovered["uri"])].actor == "Recycler"
