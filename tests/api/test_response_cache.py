"""Fast reads: an item's passport from its stored versions, other resources from the response cache; never stale.

A new event, an anchored batch, or a version written by another process (here: another engine) must show on the next
read, and an answer given before routing must be the routed one, headers included.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, select
from sqlalchemy.orm import sessionmaker

from api import versions
from api.models import Item
from api.reads import PassportReads
from api.response_cache import ChangeMarker, ResponseCache
from api.routes.passport import reads

from .conftest import GTIN_A, World


def _reads(world: World) -> PassportReads:
    return reads(world.client.app.state.circular)  # type: ignore[attr-defined]


def _passport(world: World, item: dict[str, Any]) -> dict[str, Any]:
    response = world.client.get(f"/01/{GTIN_A}/21/{item['serial']}/passport.jsonld")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_new_event_shows_on_the_next_read(world: World) -> None:
    item = world.item([(world.lot()["lotId"], 200)])
    before = _passport(world, item)
    hits = _reads(world).renderings.hits
    again = _passport(world, item)  # the same stored version: its rendering is reused
    assert again == before and _reads(world).renderings.hits == hits + 1
    assert world.act(item, "sold", "retailer").status_code == 201
    after = _passport(world, item)  # the write's answer came after its version: no delay, no "updating"
    assert before["circ:state"] == "manufactured" and after["circ:state"] == "sold"
    assert after["circ:version"]["circ:number"] == before["circ:version"]["circ:number"] + 1
    assert after["circ:version"]["circ:previous"] == before["circ:version"]["circ:sha256"]
    assert len(after["circ:lifecycle"]) == len(before["circ:lifecycle"]) + 1
    assert {e["circ:anchoring"] for e in after["circ:lifecycle"]} != {"anchored"}
    assert after["circ:verification"]["circ:status"] == "pending"
    world.drain()  # the anchoring makes the next version (the timeline shows it), anchored in turn by the drain
    anchored = _passport(world, item)
    assert {e["circ:anchoring"] for e in anchored["circ:lifecycle"]} == {"anchored"}
    assert anchored["circ:version"]["circ:reason"] == "anchoring"
    assert anchored["circ:verification"]["circ:status"] == "verified"


def test_another_process_write_shows_on_the_next_read(world: World) -> None:
    item = world.item([(world.lot()["lotId"], 200)])
    for _ in range(3):  # built once, then rendered from memory
        assert _passport(world, item)["circ:state"] == "manufactured"
    other = create_engine(world.service.settings.database_url)  # not the app's engine: as another process would
    try:
        with sessionmaker(other).begin() as session:  # another process's write: the row and its passport version
            row = session.scalar(select(Item).where(Item.serial == item["serial"]))
            assert row is not None
            row.state = 2
            versions.build(session, world.client.app.state.circular, [row], "event")  # type: ignore[attr-defined]
        assert _passport(world, item)["circ:state"] == "sold"  # at once, not after some interval
    finally:
        other.dispose()


def test_an_answer_built_during_a_write_is_not_kept(world: World) -> None:
    cache = ResponseCache(ChangeMarker(world.service.engine), 1_000_000, 60)
    before = cache.marker.read()
    world.item([(world.lot()["lotId"], 200)])  # a commit while the answer was being built
    cache.put("key", before, 200, b"old", [])
    assert cache.get("key", cache.marker.read()) is None
    now = cache.marker.read()
    cache.put("key", now, 200, b"new", [])
    assert cache.get("key", cache.marker.read()) is not None  # nothing committed since


def test_a_read_is_answered_before_routing_with_the_same_headers(world: World, monkeypatch: Any) -> None:
    from api.routes import resolver

    item = world.item([(world.lot()["lotId"], 200)])
    cors = {"Origin": "https://scanner.example"}
    for resource in ("qr.svg", "passport", "passport.jsonld", "passport/versions"):
        path = f"/01/{GTIN_A}/21/{item['serial']}/{resource}"
        with monkeypatch.context() as routed_only:  # the route's answer first
            routed_only.setattr(resolver, "_item_read", lambda *args: None)
            built = world.client.get(path, headers=cors)
        assert built.status_code == 200, built.text

        async def routed(*args: Any) -> None:
            raise AssertionError("a fast read went through the router")

        with monkeypatch.context() as fast_only:  # from now on the route must not run
            fast_only.setattr(resolver, "_dispatch", routed)
            fast = world.client.get(path, headers=cors)
        assert fast.status_code == 200 and fast.content == built.content, resource
        assert fast.headers["access-control-allow-origin"] == "*"
        assert {k: v for k, v in fast.headers.items() if k != "content-length"} == {
            k: v for k, v in built.headers.items() if k != "content-length"
        }, resource
