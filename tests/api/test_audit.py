"""`circular audit`: a clean world reports nothing (no false positives); then one anomaly is seeded for each check
of the four rules, and the audit reports exactly those, each with the right serial, event or actor.

The world is the API's (eth-tester, SQLite and PostgreSQL), built for this module alone: other tests' worlds hold
anomalies of their own on purpose (unknown serials, refused writes).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from api import cli as api_cli
from api.audit import Anomaly, AuditReport, Thresholds, country_distance_km, run_audit
from api.models import Actor, Scan
from api.scans import scans_for
from circular import cli
from ledger.audit import RoleChange, RoleHistory, anchored_roots, role_changes
from ledger.client import Role
from ledger.epcis import events as ev
from ledger.outbox import Batch, EventEpc, OutboxEvent
from materials.accounting import recovery_excess

from .conftest import GTIN_A, World, _make_world


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def audit_world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from _make_world(request.param, tmp_path_factory.mktemp(f"api-audit-{request.param}"))


def _audit(world: World) -> AuditReport:
    scans_for(world.client.app.state.circular).flush()  # the resolver's scans are written in batches
    roles = RoleHistory(role_changes(world.service.ledger))
    with world.service.sessions() as session:
        return run_audit(session, roles)


class _Borrowed:
    """The world's service, lent to the CLI: the command's `close()` must not close the world."""

    def __init__(self, service: Any) -> None:
        self._service = service

    def __getattr__(self, name: str) -> Any:
        return getattr(self._service, name)

    def close(self) -> None:
        pass


def _cli(world: World, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    monkeypatch.setattr(api_cli, "open_service", lambda *_: _Borrowed(world.service))
    return CliRunner().invoke(cli.app, ["audit", *args])


def _record(world: World, role: str, event: dict[str, Any]) -> str:
    """An event signed with `role`'s key and stored as it is: what EPCIS capture now refuses (api/authority.py) but
    could have taken before, or what was signed and submitted elsewhere. The audit must find it either way."""
    keys = world.client.app.state.circular.keys  # type: ignore[attr-defined]
    with world.service.sessions() as session:
        account = keys.account(session.get_one(Actor, world.actor_ids[role]))
    [stored] = world.service.record(account, [event])
    return stored.event_id


def _scan(world: World, item: dict[str, Any], **headers: str) -> None:
    response = world.client.get(f"/01/{item['gtin']}/21/{item['serial']}", headers=headers, follow_redirects=False)
    assert response.status_code == 307, response.text


def _seed_scans(world: World, item: dict[str, Any], scans: list[tuple[str | None, str, timedelta]]) -> None:
    """Scans in the past (region, client, how long ago): history the resolver recorded earlier."""
    now = datetime.now(UTC)
    with world.service.sessions() as session:
        for region, client, ago in scans:
            session.add(
                Scan(gtin=item["gtin"], serial=item["serial"], region=region, client=client, scanned_at=now - ago)
            )
        session.commit()


def _act(world: World, item: dict[str, Any], *steps: tuple[str, str]) -> None:
    for action, role in steps:
        response = world.act(item, action, role)
        assert response.status_code == 201, (action, response.text)


def _recycle(world: World, items: list[dict[str, Any]], grams: int) -> tuple[dict[str, Any], str]:
    """The recovered lot, and the recycling event's id."""
    response = world.post(
        "/api/v1/recycling",
        "recycler",
        {
            "items": [{"gtin": i["gtin"], "serial": i["serial"]} for i in items],
            "materialCode": "rCO",
            "lotNumber": world.unique("R"),
            "massGrams": grams,
        },
    )
    assert response.status_code == 201, response.text
    lot: dict[str, Any] = response.json()["lot"]
    return lot, str(response.json()["event"]["eventId"])


def _address(world: World, role: str) -> str:
    with world.service.sessions() as session:
        actor = session.get_one(Actor, world.actor_ids[role])
        return actor.address.lower()


def test_the_rules_building_blocks() -> None:
    assert recovery_excess(150, [100, 100]) == 0 and recovery_excess(250, [100, 100]) == 50
    de_au, de_fr = country_distance_km("DE", "AU"), country_distance_km("DE", "FR")
    assert de_au is not None and de_fr is not None and de_au > 10 * de_fr > 1_000
    assert country_distance_km("DE", "QQ") is None
    with pytest.raises(ValueError):
        Thresholds(max_travel_kmh=0)
    # role history: a grant holds from the start of time; a revocation from its block's timestamp
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    history = RoleHistory(
        [
            RoleChange("0xaa", Role.RETAILER, True, 10, t0),
            RoleChange("0xaa", Role.RETAILER, False, 20, t0 + timedelta(hours=1)),
        ]
    )
    assert history.held("0xAA", Role.RETAILER, t0 - timedelta(days=1))
    assert history.held("0xaa", Role.RETAILER, t0 + timedelta(minutes=59))
    assert not history.held("0xaa", Role.RETAILER, t0 + timedelta(hours=2))
    assert not history.held("0xaa", Role.RECYCLER, t0)
    assert history.revoked_at("0xaa", [Role.RETAILER], t0 + timedelta(hours=2)) == t0 + timedelta(hours=1)


def test_audit_finds_each_seeded_anomaly_and_nothing_else(audit_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world = audit_world
    lot = world.lot(grams=100_000)
    made = {name: world.item([(lot["lotId"], 200)]) for name in "ABCDEFGH"}
    a, b, c, d, e, f, g, h = (made[name] for name in "ABCDEFGH")

    # -- a clean world: full lifecycles, second returns after a repair and use, plausible travel, scans from a few
    _act(world, a, ("sold", "retailer"), ("in_use", "retailer"), ("returned", "retailer"), ("collected", "recycler"))
    _act(
        world,
        b,
        ("sold", "retailer"),
        ("returned", "retailer"),
        ("refurbished", "repairer"),
        ("in_use", "repairer"),
        ("returned", "retailer"),
        ("collected", "recycler"),
    )
    _act(world, e, ("sold", "retailer"), ("returned", "retailer"))
    _act(world, g, ("sold", "retailer"), ("in_use", "retailer"), ("collected", "recycler"))
    _act(world, h, ("sold", "brand"))
    _seed_scans(world, a, [("DE", "c1", timedelta(hours=9)), ("FR", "c1", timedelta(hours=6))])  # 600 km in 3 h
    _seed_scans(world, c, [("DE", "c2", timedelta(hours=30)), ("US", "c3", timedelta(hours=14))])  # flights
    _seed_scans(world, f, [(None, f"c{i % 4}", timedelta(minutes=i)) for i in range(9)])  # 9 scans: below a burst
    _scan(world, b, **{"CF-IPCountry": "NL"})
    recovered, recycling = _recycle(world, [a], 150)
    scans_for(world.client.app.state.circular).flush()
    with world.service.sessions() as session:
        assert session.scalar(select(Scan.region).where(Scan.serial == b["serial"])) == "NL"

    clean = _audit(world)
    assert clean.anomalies == [], clean.anomalies
    assert clean.checked["events"] > 15 and clean.checked["scans"] == 14
    result = _cli(world, monkeypatch)
    assert result.exit_code == 0, result.output
    assert "clean" in result.output

    # -- one anomaly per check
    _scan(world, c, **{"CF-IPCountry": "DE"})
    _scan(world, c, **{"CF-IPCountry": "AU"})  # DE → AU in seconds
    _scan(world, a)  # a was recycled into `recovered`
    returned_unsold = _record(world, "retailer", ev.lifecycle(ev.Lifecycle.RETURNED, [d["digitalLink"]]))
    second_return = _record(world, "retailer", ev.lifecycle(ev.Lifecycle.RETURNED, [e["digitalLink"]]))
    for i in range(12):  # 12 scans from 6 clients within a minute
        _scan(world, f, **{"X-Forwarded-For": f"192.0.2.{i % 6 + 1}"})
    assert world.client.get(f"/01/{GTIN_A}/21/NOPE123", follow_redirects=False).status_code == 307
    ghost = f"{world.settings.resolver_base_url}/01/{GTIN_A}/21/GHOST1"
    ghost_sale = _record(world, "retailer", ev.lifecycle(ev.Lifecycle.SOLD, [ghost]))
    # g (200 g) reported as yielding 500 g more of the recovered lot
    excess = _record(world, "recycler", ev.items_recycled([g["digitalLink"]], recovered["uri"], 500, "rCO"))
    # a brand reports recycling h (plausible mass, but a brand is no recycler)
    brand_recycling = _record(world, "brand", ev.items_recycled([h["digitalLink"]], recovered["uri"], 100, "rCO"))
    # the repairer's API key is revoked; the key still signs, and the submit path takes what the chain allows
    assert world.post(f"/api/v1/actors/{world.actor_ids['repairer']}/revoke", "admin", {}).status_code == 200
    with world.service.sessions() as session:
        repairer = session.get_one(Actor, world.actor_ids["repairer"])
        account = world.client.app.state.circular.keys.account(repairer)  # type: ignore[attr-defined]
    late = world.service.sign(account, ev.lifecycle(ev.Lifecycle.REPAIRED, [b["digitalLink"]]))
    world.service.submit([late])

    report = _audit(world)
    brand, retailer, recycler, repairer_address = (
        _address(world, role) for role in ("brand", "retailer", "recycler", "repairer")
    )

    def signer(anomaly: Anomaly) -> str | None:
        return anomaly.actor.split("(")[-1].rstrip(")").lower() if anomaly.actor else None

    found = {(x.rule, x.subject, x.event_id, signer(x)) for x in report.anomalies}

    def serial(item: dict[str, Any]) -> str:
        return f"{item['gtin']}/{item['serial']}"

    expected = {
        ("impossible-travel", serial(c), None, None),
        ("scan-after-end-of-life", serial(a), recycling, None),
        ("return-without-sale", serial(d), returned_unsold, retailer),
        ("double-return", serial(e), second_return, retailer),
        ("scan-burst", serial(f), None, None),
        ("unknown-serial", f"{GTIN_A}/NOPE123", None, None),
        ("unknown-epc", f"{GTIN_A}/GHOST1", ghost_sale, retailer),
        ("recovery-excess", recovered["uri"], excess, recycler),
        ("signer-role", brand_recycling, brand_recycling, brand),
        ("not-a-party", brand_recycling, brand_recycling, brand),  # into the recycler's lot, too
        ("revoked-signer", late.event_id, late.event_id, repairer_address),
    }
    assert found == expected, sorted(found ^ expected)
    travel = next(x for x in report.anomalies if x.rule == "impossible-travel")
    assert "DE" in travel.detail and "AU" in travel.detail

    result = _cli(world, monkeypatch, "--json")
    assert result.exit_code == 1, result.output
    body = json.loads(result.output)
    assert body["clean"] is False and len(body["anomalies"]) == len(expected)
    assert {x["ruleNumber"] for x in body["anomalies"]} == {1, 2, 3, 4}
    table = _cli(world, monkeypatch)
    assert table.exit_code == 1 and "revoked-signer" in table.output
    rules = len({x.rule_number for x in report.anomalies})
    print(
        f"FIGURE audit: {rules} rules, {len(found & expected)} seeded anomalies found, "
        f"{len(found - expected)} false positives"
    )


def test_an_anchored_event_deleted_from_the_database_is_found(
    audit_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule 5: deleting an anchored event's row leaves every remaining event verifiable, so only the chain's count
    of the root shows it; the archive names the event and its item. Without the archive, the root is named."""
    world = audit_world
    lot = world.lot(grams=10_000)
    item = world.item([(lot["lotId"], 200)])
    _act(world, item, ("sold", "retailer"), ("in_use", "retailer"))
    world.drain()

    def missing(report: AuditReport) -> set[tuple[str, str | None]]:
        return {(x.subject, x.event_id) for x in report.anomalies if x.rule == "anchored-event-missing"}

    roles = RoleHistory(role_changes(world.service.ledger))
    anchored = anchored_roots(world.service.ledger)
    assert anchored and all(count > 0 for count in anchored.values())
    with world.service.sessions() as session:
        assert missing(run_audit(session, roles, anchored=anchored, archive=world.service.archive)) == set()

    link = item["digitalLink"]
    with world.service.sessions() as session:
        sale = session.scalars(
            select(OutboxEvent).join(EventEpc).where(EventEpc.epc == link).order_by(OutboxEvent.id)
        ).all()[1]
        sale_id, root = sale.event_id, bytes(session.get_one(Batch, sale.batch_id).root)
        session.delete(sale)  # what an intruder with the database's password could do
        session.commit()
        report = run_audit(session, roles, anchored=anchored, archive=world.service.archive)
        assert missing(report) == {(f"{item['gtin']}/{item['serial']}", sale_id)}
        [anomaly] = [x for x in report.anomalies if x.rule == "anchored-event-missing"]
        assert anomaly.rule_number == 5 and _address(world, "retailer") in (anomaly.actor or "").lower()
        without_archive = run_audit(session, roles, anchored=anchored, archive=None)
        assert missing(without_archive) == {("0x" + root.hex(), None)}
    result = _cli(world, monkeypatch, "--json")
    assert result.exit_code == 1, result.output
    assert sale_id in {x["event_id"] for x in json.loads(result.output)["anomalies"]}
    print(f"FIGURE audit-deleted-event: 1 of {sum(anchored.values())} anchored events deleted, 1 found by rule 5")


def test_bad_thresholds_are_one_line_errors(audit_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _cli(audit_world, monkeypatch, "--max-travel-kmh", "0")
    assert result.exit_code == 2
    assert "error:" in result.output and "Traceback" not in result.output
