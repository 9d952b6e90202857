"""The response cache of passports and QR codes: answers from memory, never a stale passport.

A new event, an anchored batch, or a row changed by another process (here: another engine) must show on the next read.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, text

from api.response_cache import ChangeMarker, ResponseCache

from .conftest import GTIN_A, World


def _cache(world: World) -> ResponseCache:
    cache = world.client.app.state.circular.extra["response_cache"]  # type: ignore[attr-defined]
    assert isinstance(cache, ResponseCache)
    return cache


def _passport(world: World, item: dict[str, Any]) -> dict[str, Any]:
    response = world.client.get(f"/01/{GTIN_A}/21/{item['serial']}/passport.jsonld")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_new_event_shows_on_the_next_read(world: World) -> None:
    item = world.item([(world.lot()["lotId"], 200)])
    before = _passport(world, item)
    # The first reads may themselves commit (the chain projection catching up on other tests' blocks), which empties
    # the cache: a read soon comes from memory all the same.
    for _ in range(5):
        hits = _cache(world).hits
        again = _passport(world, item)
        if _cache(world).hits == hits + 1:
            break
    else:
        raise AssertionError("a repeated read is never answered from memory")
    assert again == before
    assert world.act(item, "sold", "retailer").status_code == 201
    after = _passport(world, item)
    assert before["circ:state"] == "manufactured" and after["circ:state"] == "sold"
    assert len(after["circ:lifecycle"]) == len(before["circ:lifecycle"]) + 1
    assert {e["circ:anchoring"] for e in after["circ:lifecycle"]} != {"anchored"}
    world.drain()  # the anchoring worker's commit changes every entry's anchoring status
    anchored = _passport(world, item)
    assert {e["circ:anchoring"] for e in anchored["circ:lifecycle"]} == {"anchored"}


def test_another_process_write_shows_on_the_next_read(world: World) -> None:
    item = world.item([(world.lot()["lotId"], 200)])
    for _ in range(3):  # built, then answered from memory
        assert _passport(world, item)["circ:state"] == "manufactured"
    other = create_engine(world.service.settings.database_url)  # not the app's engine: as another process would
    try:
        with other.begin() as conn:
            conn.execute(text("UPDATE api_items SET state = 2 WHERE serial = :s"), {"s": item["serial"]})
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


def test_a_hit_is_answered_before_routing_with_the_same_headers(world: World, monkeypatch: Any) -> None:
    from api.routes import resolver

    item = world.item([(world.lot()["lotId"], 200)])
    path = f"/01/{GTIN_A}/21/{item['serial']}/qr.svg"
    cors = {"Origin": "https://scanner.example"}
    for _ in range(5):  # until an answer is in the cache (see the first test)
        built = world.client.get(path, headers=cors)
        hits = _cache(world).hits
        assert world.client.get(path, headers=cors).status_code == 200
        if _cache(world).hits == hits + 1:
            break
    # From now on the route must not run: a hit is the middleware's.
    async def routed(*args: Any) -> None:
        raise AssertionError("a cache hit went through the router")

    monkeypatch.setattr(resolver, "_dispatch", routed)
    hit = world.client.get(path, headers=cors)
    assert hit.status_code == 200 and hit.content == built.content
    assert hit.headers["access-control-allow-origin"] == "*"
    assert {k: v for k, v in hit.headers.items() if k != "content-length"} == {
        k: v for k, v in built.headers.items() if k != "content-length"
    }
