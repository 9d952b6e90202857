"""Evidence that backs the claim: an item's bundle holds exactly the events its passport rests on, through every
generation of its recycled material, and nothing else; `circular verify` recomputes the recycled share from the
bundle alone (grams in, grams out, per material), and a bundle missing a recycling fails. The CLI and the API give
the same bytes, and a command takes the Digital Link from any host of the resolver."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from api import cli as api_cli
from circular import cli
from ledger import cli as ledger_cli
from ledger.evidence import verify_bundle
from ledger.lifecycle import Action, action_of_event

from .conftest import GTIN_A, GTIN_B, World


class _Borrowed:
    """The world's service, lent to the CLI: the command's `close()` must not close the world."""

    def __init__(self, service: Any) -> None:
        self._service = service

    def __getattr__(self, name: str) -> Any:
        return getattr(self._service, name)

    def close(self) -> None:
        pass


def _steps(world: World, items: list[dict[str, Any]], *steps: tuple[str, str]) -> None:
    for action, role in steps:
        body = {"action": action, "items": [{"gtin": i["gtin"], "serial": i["serial"]} for i in items]}
        answer = world.post("/api/v1/lifecycle-batches", role, body).json()
        assert answer["recorded"] == len(items), answer


def _recycle(world: World, items: list[dict[str, Any]], grams: int, to: str) -> dict[str, Any]:
    _steps(world, items, ("sold", "retailer"), ("in_use", "retailer"), ("collected", "recycler"))
    body = {
        "items": [{"gtin": i["gtin"], "serial": i["serial"]} for i in items],
        "materialCode": "rCO",
        "lotNumber": world.unique("RL"),
        "massGrams": grams,
    }
    response = world.post("/api/v1/recycling", "recycler", body)
    assert response.status_code == 201, response.text
    lot: dict[str, Any] = response.json()["lot"]
    approval = {"operatorId": world.actor_ids[to], "grams": grams}
    assert world.post(f"/api/v1/lots/{lot['lotId']}/approvals", "recycler", approval).status_code == 201
    return lot


@pytest.fixture(scope="module")
def generations(world: World) -> dict[str, Any]:
    """Three T-shirts (150 g cotton, 50 g polyester) → recycled cotton → two tote bags (120 g of it and 80 g of brand
    B's cotton) → recycled again → a third-generation T-shirt (100 g of that and 100 g of virgin cotton). Beside
    them, an unrelated T-shirt from the same virgin cotton, sold."""
    cotton, polyester = world.lot(code="CO"), world.lot(code="PES", gtin=None)
    shirts = [world.item([(cotton["lotId"], 150), (polyester["lotId"], 50)]) for _ in range(3)]
    unrelated = world.item([(cotton["lotId"], 150), (polyester["lotId"], 50)])
    assert world.act(unrelated, "sold", "retailer").status_code == 201
    first = _recycle(world, shirts, 400, "brand_b")
    cotton_b = world.lot(role="brand_b", gtin=None, code="CO")
    totes = [
        world.item([(first["lotId"], 120), (cotton_b["lotId"], 80)], role="brand_b", gtin=GTIN_B) for _ in range(2)
    ]
    second = _recycle(world, totes, 300, "brand")
    third = world.item([(second["lotId"], 100), (cotton["lotId"], 100)])
    world.drain()
    return {"shirts": shirts, "unrelated": unrelated, "first": first, "totes": totes, "second": second,
            "third": third, "cotton": cotton}


def _bundle(world: World, item: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    response = world.client.get(f"/01/{item['gtin']}/21/{item['serial']}/evidence", headers=world.auth("authority"))
    assert response.status_code == 200, response.text
    return response.text, response.json()


def _named(bundle: dict[str, Any]) -> dict[str, list[str]]:
    """What each of the bundle's events is (its action) → the items and lots it names."""
    named: dict[str, list[str]] = {}
    for entry in bundle["events"]:
        event = entry["event"]
        step = action_of_event(event)
        key = step.action.value if step is not None else "?"
        uris = [*(event.get(k) or [] for k in ("epcList", "inputEPCList", "outputEPCList"))]
        classes = [q["epcClass"] for k in ("quantityList", "inputQuantityList", "outputQuantityList")
                   for q in event.get(k) or []]
        named.setdefault(key, []).extend([u for group in uris for u in group] + classes)
    return named


def test_a_second_generation_bundle_holds_the_backing_events_and_nothing_else(
    world: World, generations: dict[str, Any]
) -> None:
    tote = generations["totes"][0]
    _, bundle = _bundle(world, tote)
    actions = [action_of_event(e["event"]) for e in bundle["events"]]
    kinds = sorted(step.action.value for step in actions if step is not None)
    # Its own: made, sold, in use, collected, recycled (into the second lot). Its lots: brand B's cotton registered,
    # the first recovered lot's recycling. That recycling's three T-shirts: made (one event each), collected.
    # Their lots: cotton and polyester registered.
    assert kinds.count("manufactured") == 1 + 3 and kinds.count("collected") == 1 + 3
    assert kinds.count("lot") == 3 and kinds.count("recycled") == 2
    everything = " ".join(json.dumps(e["event"]) for e in bundle["events"])
    assert generations["unrelated"]["serial"] not in everything  # shares a virgin lot, backs nothing
    # Its sibling, made from the same lot, is named by the tote's own recycling only (not its making or collection).
    sibling = generations["totes"][1]["digitalLink"]
    naming = [action_of_event(e["event"]) for e in bundle["events"] if sibling in json.dumps(e["event"])]
    assert [step.action for step in naming if step is not None] == [Action.RECYCLED]
    verdict = verify_bundle(bundle, world.service.backend.web3)
    assert verdict.ok, verdict.problems
    assert verdict.content is not None and verdict.content.share_bps == 6_000  # 120 of 200 g
    assert verdict.stated_share == 0.6


def test_a_third_generation_bundle_reaches_back_to_the_first(world: World, generations: dict[str, Any]) -> None:
    third = generations["third"]
    _, bundle = _bundle(world, third)
    named = _named(bundle)
    for shirt in generations["shirts"]:
        assert shirt["digitalLink"] in named["manufactured"] and shirt["digitalLink"] in named["collected"]
    for tote in generations["totes"]:
        assert tote["digitalLink"] in named["manufactured"] and tote["digitalLink"] in named["collected"]
    assert {generations["first"]["uri"], generations["second"]["uri"]} <= set(named["recycled"])
    everything = " ".join(json.dumps(e["event"]) for e in bundle["events"])
    assert generations["unrelated"]["serial"] not in everything
    # The brand's virgin cotton is registered once in the bundle, however many generations draw from it.
    assert named["lot"].count(generations["cotton"]["uri"]) == 1
    verdict = verify_bundle(bundle, world.service.backend.web3)
    assert verdict.ok, verdict.problems
    assert verdict.content is not None and verdict.content.share_bps == 5_000
    assert verdict.content.generations == 3 and verdict.content.recovered_lots == 2


def test_a_bundle_without_its_recycling_fails_verification(world: World, generations: dict[str, Any]) -> None:
    _, bundle = _bundle(world, generations["third"])
    for which in ("second", "first"):
        lot = generations[which]["uri"]
        forged = dict(bundle)
        forged["events"] = [
            e for e in bundle["events"]
            if not (action_of_event(e["event"]) is not None
                    and action_of_event(e["event"]).action is Action.RECYCLED  # type: ignore[union-attr]
                    and lot in json.dumps(e["event"].get("outputQuantityList")))
        ]
        assert len(forged["events"]) == len(bundle["events"]) - 1
        verdict = verify_bundle(forged, world.service.backend.web3)
        assert not verdict.ok
        assert any(lot in problem and "recycled content" in problem for problem in verdict.problems), verdict.problems
        assert any("the passport states 50.00%" in problem for problem in verdict.problems)
    # An item recycled without a collection event proves nothing either.
    shirt = generations["shirts"][0]["digitalLink"]
    forged = dict(bundle)
    forged["events"] = [
        e for e in bundle["events"]
        if not (action_of_event(e["event"]) is not None
                and action_of_event(e["event"]).action is Action.COLLECTED  # type: ignore[union-attr]
                and shirt in e["event"].get("epcList", []))
    ]
    verdict = verify_bundle(forged, world.service.backend.web3)
    assert any("never collected" in problem for problem in verdict.problems)


def test_the_cli_and_the_api_give_the_same_bytes_from_any_host(
    world: World, generations: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    third = generations["third"]
    text, _ = _bundle(world, third)
    monkeypatch.setattr(ledger_cli, "open_service", lambda *_: _Borrowed(world.service))
    monkeypatch.setattr(api_cli, "open_service", lambda *_: _Borrowed(world.service))
    browser = f"http://localhost:8000/01/{third['gtin'][1:]}/21/{third['serial']}?linkType=gs1:pip"
    out = tmp_path / "bundle.json"
    exported = CliRunner().invoke(cli.app, ["export", browser, "-o", str(out)])
    assert exported.exit_code == 0, exported.output
    assert out.read_text() == text
    verified = CliRunner().invoke(cli.app, ["verify", str(out)])
    assert verified.exit_code == 0, verified.output
    assert "recycled content 50.00% follows from the events" in verified.output
    forged = json.loads(text)
    forged["events"] = [e for e in forged["events"] if action_of_event(e["event"]) is None
                        or action_of_event(e["event"]).action is not Action.RECYCLED]  # type: ignore[union-attr]
    out.write_text(json.dumps(forged))
    failed = CliRunner().invoke(cli.app, ["verify", str(out)])
    assert failed.exit_code == 1 and "recycled content" in failed.output
    by_link = CliRunner().invoke(cli.app, ["verify", browser])
    assert by_link.exit_code == 0, by_link.output
    assert GTIN_A in third["digitalLink"]
