"""An edit made directly in the database (an event, its time or a quantity; an item's composition, a lot's
recycled share) fails `circular verify` with a one-line reason and turns the passport's badge red, in HTML and
JSON-LD, on the next read, and restoring the rows turns it green again (nothing kept in memory hides an edit).

A passport is read from its stored version (``api/reads.py``), so an edit that changes what a passport shows edits
that version's document as well as the row behind it: the first fails the read's check of the stored bytes against
their anchored hash, the second `circular verify`'s check of the events and of the composition against the chain."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from circular.cli import app
from tests.conftest import AnvilNode
from tests.reliability.recovery_world import (
    GTIN,
    GTIN_LOTS,
    RESOLVER,
    ApiWorld,
    cli_args,
    open_world,
    passport_path,
    settings_for,
)

pytestmark = pytest.mark.anvil
runner = CliRunner()


@dataclass
class Tampered:
    world: ApiWorld
    database: Path
    lots: dict[str, str]  # name → lot id


@pytest.fixture(scope="module")
def tampered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tampered]:
    node = AnvilNode()
    settings = settings_for(tmp_path_factory.mktemp("tamper") / "data", node.url)
    try:
        with open_world(settings, deploy=True) as world:
            lots = {}
            for name, code, share in (("A", "CO", 2_500), ("B", "PES", 0), ("C", "CO", 2_500)):
                body = {"lotNumber": f"T-{name}", "materialCode": code, "massGrams": 100_000, "recycledShareBps": share}
                lots[name] = world.call("POST", "/api/v1/lots", "brand", {**body, "gtin": GTIN_LOTS})["lot"]["lotId"]
            composition = [{"lotId": lots["A"], "grams": 300}, {"lotId": lots["B"], "grams": 100}]
            world.call(
                "POST", "/api/v1/runs", "brand", {"gtin": GTIN, "serials": ["R0", "R1"], "composition": composition}
            )
            single = {"gtin": GTIN, "serial": "S1", "composition": [{"lotId": lots["A"], "grams": 200}]}
            world.call("POST", "/api/v1/items", "brand", single)
            world.call("POST", "/api/v1/lifecycle-events", "retailer", {"gtin": GTIN, "serial": "R1", "action": "sold"})
            world.drain()
            yield Tampered(world, settings.data_dir / "circular.sqlite", lots)
    finally:
        node.stop()


def _verdicts(t: Tampered, serial: str) -> tuple[int, str, str, str]:
    """(`circular verify` exit code, its last line, the JSON-LD badge, the HTML badge) of item `serial`."""
    result = runner.invoke(app, ["verify", f"{RESOLVER}/01/{GTIN}/21/{serial}", *cli_args(t.world.settings)])
    lines = result.output.strip().splitlines()
    document = t.world.client.get(passport_path(GTIN, serial)).json()
    html = t.world.client.get(passport_path(GTIN, serial, "passport")).text
    badge = "failed" if 'badge badge-failed"' in html else "verified" if 'badge badge-verified"' in html else "other"
    return result.exit_code, lines[-1] if lines else "", document["circ:verification"]["circ:status"], badge


def _sql(t: Tampered, statement: str, *params: object) -> None:
    with sqlite3.connect(t.database) as conn:
        assert conn.execute(statement, params).rowcount == 1


def _event_of(t: Tampered, serial: str, biz_step: str) -> tuple[int, str]:
    """(row id, JSON) of the outbox event naming item `serial` with `biz_step`."""
    uri = f"{RESOLVER}/01/{GTIN}/21/{serial}"
    with sqlite3.connect(t.database) as conn:
        rows = conn.execute(
            "SELECT e.id, e.event FROM ledger_events e JOIN ledger_event_epcs x ON x.event_pk = e.id WHERE x.epc = ?",
            (uri,),
        ).fetchall()
    matches = [(pk, text) for pk, text in rows if json.loads(text).get("bizStep") == biz_step]
    assert len(matches) == 1
    return matches[0]


def _row(t: Tampered, table: str, column: str, key: str, value: str) -> str:
    with sqlite3.connect(t.database) as conn:
        found = conn.execute(f"SELECT {column} FROM {table} WHERE {key} = ?", (value,)).fetchone()
    assert found is not None
    return str(found[0])


Restore = tuple[str, tuple[object, ...]]


def _edit_event(t: Tampered, serial: str, biz_step: str, path: str, value: object) -> Restore:
    pk, original = _event_of(t, serial, biz_step)
    _sql(t, "UPDATE ledger_events SET event = json_set(event, ?, json(?)) WHERE id = ?", path, json.dumps(value), pk)
    return "UPDATE ledger_events SET event = ? WHERE id = ?", (original, pk)


def _edit_item(t: Tampered, serial: str, composition: list[list[object]]) -> Restore:
    original = _row(t, "api_items", "composition", "serial", serial)
    _sql(t, "UPDATE api_items SET composition = ? WHERE serial = ?", json.dumps(composition), serial)
    return "UPDATE api_items SET composition = ? WHERE serial = ?", (original, serial)


def _edit_lot_share(t: Tampered, lot_id: str, bps: int) -> Restore:
    original = _row(t, "api_lots", "recycled_share_bps", "lot_id", lot_id)
    _sql(t, "UPDATE api_lots SET recycled_share_bps = ? WHERE lot_id = ?", bps, lot_id)
    return "UPDATE api_lots SET recycled_share_bps = ? WHERE lot_id = ?", (int(original), lot_id)


def _edit_passport(t: Tampered, serial: str, edit: Callable[[dict[str, Any]], None]) -> Restore:
    """The same edit in what the passport shows: the content of the item's current (anchored) version."""
    subject = f"{RESOLVER}/01/{GTIN}/21/{serial}"
    with sqlite3.connect(t.database) as conn:
        pk, original = conn.execute(
            "SELECT id, document FROM ledger_versions WHERE subject = ? ORDER BY number DESC LIMIT 1", (subject,)
        ).fetchone()
    document = json.loads(original)
    edit(document["content"])
    _sql(t, "UPDATE ledger_versions SET document = ? WHERE id = ?", json.dumps(document), pk)
    return "UPDATE ledger_versions SET document = ? WHERE id = ?", (original, pk)


def _lifecycle(content: dict[str, Any], biz_step: str) -> dict[str, Any]:
    [entry] = [e for e in content["timeline"] if str(e["biz_step"]).endswith(biz_step)]
    return entry


def _material(content: dict[str, Any], lot_id: str) -> dict[str, Any]:
    [entry] = [m for m in content["materials"] if m["lot_id"] == lot_id]
    return entry


CASES: dict[str, tuple[str, Callable[[Tampered], list[Restore]], str]] = {
    "event JSON": (
        "R1",
        lambda t: [
            _edit_event(t, "R1", "retail_selling", "$.disposition", "disposed"),
            _edit_passport(t, "R1", lambda c: _lifecycle(c, "retail_selling").update(disposition="disposed")),
        ],
        "hashes to",
    ),
    "event time": (
        "R1",
        lambda t: [
            _edit_event(t, "R1", "retail_selling", "$.eventTime", "2020-01-01T00:00:00.000Z"),
            _edit_passport(
                t, "R1", lambda c: _lifecycle(c, "retail_selling").update(time="2020-01-01T00:00:00.000Z")
            ),
        ],
        "hashes to",
    ),
    "event quantity": (
        "R0",
        lambda t: [
            _edit_event(t, "R0", "commissioning", "$.inputQuantityList[0].quantity", 1),
            _edit_passport(t, "R0", lambda c: _material(c, t.lots["A"]).update(grams=1)),
        ],
        "hashes to",
    ),
    "composition grams": (
        "S1",
        lambda t: [
            _edit_item(t, "S1", [[t.lots["A"], 20]]),
            _edit_passport(t, "S1", lambda c: _material(c, t.lots["A"]).update(grams=20)),
        ],
        "composition differs",
    ),
    "composition lot swapped": (
        "R0",
        lambda t: [
            _edit_item(t, "R0", [[t.lots["C"], 300], [t.lots["B"], 100]]),
            _edit_passport(t, "R0", lambda c: _material(c, t.lots["A"]).update(lot_id=t.lots["C"], lot_number="T-C")),
        ],
        "composition differs",
    ),
    "lot recycled share": (
        "S1",
        lambda t: [
            _edit_lot_share(t, t.lots["A"], 9_000),
            _edit_passport(t, "S1", lambda c: _material(c, t.lots["A"]).update(recycled_share=0.9)),
        ],
        "recycled_share_bps 9000",
    ),
}


def test_untampered_items_verify(tampered: Tampered) -> None:
    for serial in ("R0", "R1", "S1"):
        code, line, jsonld, html = _verdicts(tampered, serial)
        assert (code, jsonld, html) == (0, "verified", "verified"), (serial, line)


@pytest.mark.parametrize("case", list(CASES))
def test_tampering_is_detected(tampered: Tampered, case: str) -> None:
    serial, tamper, reason = CASES[case]
    assert _verdicts(tampered, serial)[0] == 0  # and its verdict and renderings are now in memory
    restores = tamper(tampered)
    try:
        code, line, jsonld, html = _verdicts(tampered, serial)
        assert code == 1 and line.startswith("error: verification failed:") and reason in line, line
        assert (jsonld, html) == ("failed", "failed")
    finally:
        for restore, params in restores:
            _sql(tampered, restore, *params)
    code, line, jsonld, html = _verdicts(tampered, serial)
    assert (code, jsonld, html) == (0, "verified", "verified"), line
