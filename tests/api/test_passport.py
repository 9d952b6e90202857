"""The passport: HTML and JSON-LD, composition and recycled content, provenance across generations, lifecycle, the
verification badge, QR codes (decoded as a phone would) and return requests."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
import zxingcpp
from PIL import Image, ImageDraw

from api.qr import qr_svg

from .conftest import GTIN_A, GTIN_B, RESOLVER, World


@pytest.fixture(scope="module")
def loop(world: World) -> dict[str, Any]:
    """Generation 1: an item of virgin cotton and polyester, sold, used, collected and recycled into a recovered lot;
    generation 2: brand B's item made of 120 g of the recovered lot and 80 g of its own cotton."""
    world.client.put(
        f"/api/v1/products/{GTIN_A}",
        json={
            "name": "Organic T-shirt",
            "care": "Wash at 30 °C.",
            "repair": "Darn small holes.",
            "endOfLife": "Return it for recycling.",
        },
        headers=world.auth("brand"),
    )
    world.client.put(f"/api/v1/products/{GTIN_B}", json={"name": "Second-life hoodie"}, headers=world.auth("brand_b"))
    cotton = world.lot(code="CO", origin="Turkey")
    polyester = world.lot(code="PES")
    first = world.item([(cotton["lotId"], 150), (polyester["lotId"], 50)])
    for action, role in [("sold", "retailer"), ("in_use", "retailer"), ("collected", "recycler")]:
        assert world.act(first, action, role).status_code == 201
    recycled = world.post(
        "/api/v1/recycling",
        "recycler",
        {
            "items": [{"gtin": GTIN_A, "serial": first["serial"]}],
            "materialCode": "rCO",
            "lotNumber": world.unique("R"),
            "massGrams": 140,
        },
    )
    assert recycled.status_code == 201, recycled.text
    recovered = recycled.json()["lot"]
    approval = world.post(
        f"/api/v1/lots/{recovered['lotId']}/approvals",
        "recycler",
        {"operatorId": world.actor_ids["brand_b"], "grams": 120},
    )
    assert approval.status_code == 201, approval.text
    virgin_b = world.lot(role="brand_b", gtin=None, code="CO")
    second = world.item([(recovered["lotId"], 120), (virgin_b["lotId"], 80)], role="brand_b", gtin=GTIN_B)
    return {
        "first": first,
        "second": second,
        "recovered": recovered,
        "path": f"/01/{GTIN_B}/21/{second['serial']}",
        "first_path": f"/01/{GTIN_A}/21/{first['serial']}",
    }


def test_passport_page(world: World, loop: dict[str, Any]) -> None:
    response = world.client.get(loop["path"] + "/passport")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "Second-life hoodie" in page and "Brand B" in page
    assert '<meta name="viewport"' in page and "/static/passport.css" in page
    assert 'id="composition"' in page and "<svg" in page and "stroke-dasharray" in page
    assert "Recycled cotton" in page and "120" in page and "80" in page
    assert "60.0%" in page  # 120 g at 100% recycled of 200 g
    assert 'id="provenance"' in page and "Generation 2" in page and "1 &times; Organic T-shirt" in page
    assert 'id="lifecycle"' in page and "Made" in page
    assert 'id="care"' in page and 'id="return"' in page
    assert "Evidence bundle" in page and "https://" not in re.findall(r"<link[^>]+stylesheet[^>]+>", page)[0]


def test_first_generation_lifecycle_on_its_page(world: World, loop: dict[str, Any]) -> None:
    page = world.client.get(loop["first_path"] + "/passport").text
    for label in ("Made", "Sold", "In use", "Collected for recycling", "Recycled"):
        assert label in page
    assert "Wash at 30 °C." in page and "Darn small holes." in page
    assert "cannot be returned" in page


def test_static_css_is_served_offline(world: World) -> None:
    css = world.client.get("/static/passport.css")
    assert css.status_code == 200 and "http" not in css.text


def test_jsonld_passport(world: World, loop: dict[str, Any]) -> None:
    response = world.client.get(loop["path"] + "/passport.jsonld")
    assert response.headers["content-type"].startswith("application/ld+json")
    body = response.json()
    assert body["@id"] == f"{RESOLVER}{loop['path']}"
    assert body["gtin"] == GTIN_B and body["serialNumber"] == loop["second"]["serial"]
    assert body["circ:recycledContent"] == 0.6
    grams = {m["circ:materialCode"]: m["circ:grams"] for m in body["circ:composition"]}
    assert grams == {"rCO": 120, "CO": 80}
    generations = body["circ:provenance"]
    assert [g["circ:generation"] for g in generations] == [1, 2]  # from the oldest to the item itself
    assert generations[0]["circ:sourceItems"][0]["count"] == 1 and generations[1]["circ:thisItem"]
    assert {lot["materialCode"] for lot in generations[0]["circ:lots"]} == {"CO", "PES"}
    assert body["circ:lifecycle"][0]["circ:label"] == "Made"
    assert body["circ:verification"]["circ:evidenceBundle"]["@id"].endswith("/evidence")


def test_the_passport_says_it_right(world: World, loop: dict[str, Any]) -> None:
    """Recovered and virgin material named and coloured apart; generations from the oldest; the recycler of each
    recovered lot; and what a recycled item became (an authority reads it all: ``api/access.py``)."""
    sees_all = world.auth("authority")
    body = world.client.get(loop["path"] + "/passport.jsonld", headers=sees_all).json()
    names = {m["circ:materialCode"]: m["circ:material"] for m in body["circ:composition"]}
    assert names == {"rCO": "Recycled cotton", "CO": "Cotton"}
    first, this = body["circ:provenance"]
    assert (first["circ:generation"], first["circ:thisItem"], this["circ:thisItem"]) == (1, False, True)
    assert first["circ:sourceItems"][0]["product"] == "Organic T-shirt"
    recovered = [lot for lot in this["circ:lots"] if lot["recovered"]]
    assert [lot["recycler"] for lot in recovered] == ["Recycler"]
    assert [lot["lotNumber"] for lot in first["circ:recycledInto"]] == [recovered[0]["lotNumber"]]
    page = world.client.get(loop["path"] + "/passport", headers=sees_all).text
    assert "Generation 2 &middot; this item" in page and "recovered by Recycler" in page
    assert page.index('id="generation-1"') < page.index('id="generation-2"')
    swatches = dict(re.findall(r'background: (#[0-9a-f]{6})"></span>([^<]+)<', page))
    assert set(swatches.values()) == {"Recycled cotton", "Cotton"} and len(swatches) == 2  # two colours
    # The recycled T-shirt says what it became.
    shirt = world.client.get(loop["first_path"] + "/passport.jsonld", headers=sees_all).json()
    assert [(lot["material"], lot["recycler"]) for lot in shirt["circ:became"]] == [("Recycled cotton", "Recycler")]
    shirt_page = world.client.get(loop["first_path"] + "/passport").text
    assert 'id="became"' in shirt_page and "This item was recycled into" in shirt_page


def test_verification_badge_follows_anchoring(world: World) -> None:
    lot = world.lot()
    item = world.item([(lot["lotId"], 100)])
    path = f"/01/{GTIN_A}/21/{item['serial']}"
    before = world.client.get(path + "/verification").json()
    assert before["status"] == "pending" and before["verified"] is False
    assert "Pending anchoring" in world.client.get(path + "/passport").text
    world.drain()
    after = world.client.get(path + "/verification").json()
    assert after["status"] == "verified" and after["verified"] is True and after["events"] == 2
    assert "badge-verified" in world.client.get(path + "/passport").text
    bundle = world.client.get(path + "/evidence", headers=world.auth("authority")).json()
    assert bundle["item"] == f"{RESOLVER}{path}" and len(bundle["events"]) == 2
    assert all(entry["anchor"] for entry in bundle["events"])


def test_a_forged_record_is_not_verified(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import api.passport as passport

    lot = world.lot()
    item = world.item([(lot["lotId"], 100)])
    world.drain()
    original = passport.verify

    def tampered(state: Any, uri: str, lots: list[str], *claim: Any) -> Any:
        from ledger import evidence

        real = evidence.export_bundle

        def forged(*args: Any, **kwargs: Any) -> Any:
            bundle = real(*args, **kwargs)
            bundle["events"][0]["event"]["eventTime"] = "2020-01-01T00:00:00.000Z"
            return bundle

        monkeypatch.setattr(evidence, "export_bundle", forged)
        return original(state, uri, lots, *claim)

    monkeypatch.setattr(passport, "verify", tampered)
    verdict = world.client.get(f"/01/{GTIN_A}/21/{item['serial']}/verification", headers=world.auth("authority"))
    assert verdict.json()["status"] == "failed" and verdict.json()["problems"]
    public = world.client.get(f"/01/{GTIN_A}/21/{item['serial']}/verification").json()
    assert public["status"] == "failed" and public["problems"] == [] and public["problemCount"] > 0


def _rasterise_segno_svg(svg: bytes, scale: int = 8) -> Image.Image:
    """Draw segno's SVG (one background path, one path of horizontal module runs) as a phone would see it."""
    text = svg.decode()
    width = int(re.search(r'width="(\d+)"', text).group(1))  # type: ignore[union-attr]
    factor = float(re.search(r"scale\(([\d.]+)\)", text).group(1))  # type: ignore[union-attr]
    assert 'fill="#fff"' in text  # a white background: transparent SVGs decode to nothing
    path = re.search(r'class="qrline"[^>]* d="([^"]+)"', text).group(1)  # type: ignore[union-attr]
    modules = int(width / factor)
    image = Image.new("L", (modules * scale, modules * scale), 255)
    draw = ImageDraw.Draw(image)
    x = y = 0.0
    for command, a, b in re.findall(r"([MmHh])(-?[\d.]+)(?: (-?[\d.]+))?", path):
        if command == "M":
            x, y = float(a), float(b)
        elif command == "m":
            x, y = x + float(a), y + float(b)
        elif command == "h":
            length = float(a)
            top = (y - 0.5) * scale
            draw.rectangle([x * scale, top, (x + length) * scale - 1, top + scale - 1], fill=0)
            x += length
    return image


@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_qr_round_trip(world: World, loop: dict[str, Any], fmt: str) -> None:
    response = world.client.get(f"{loop['path']}/qr.{fmt}")
    assert response.status_code == 200
    assert response.headers["content-type"] == ("image/svg+xml" if fmt == "svg" else "image/png")
    assert "max-age" in response.headers["cache-control"] and response.headers["etag"]
    image = _rasterise_segno_svg(response.content) if fmt == "svg" else Image.open(io.BytesIO(response.content))
    results = zxingcpp.read_barcodes(image)
    assert len(results) == 1
    result = results[0]
    assert result.text == f"{RESOLVER}{loop['path']}"  # the configured resolver, not the request's host
    assert result.format == zxingcpp.BarcodeFormat.QRCode  # never Micro QR
    assert result.ec_level == "Q"


def test_qr_is_cached(world: World, loop: dict[str, Any]) -> None:
    first = world.client.get(f"{loop['path']}/qr.svg")
    made = qr_svg.cache_info().misses
    second = world.client.get(f"{loop['path']}/qr.svg")
    assert qr_svg.cache_info().misses == made  # not drawn again (answered by the response cache or qr_svg's own)
    assert first.headers["etag"] == second.headers["etag"]


def test_qr_of_an_unknown_item_is_404(world: World) -> None:
    assert world.client.get(f"/01/{GTIN_A}/21/NOPE-QR/qr.png").status_code == 404


def test_product_page(world: World, loop: dict[str, Any]) -> None:
    page = world.client.get(f"/01/{GTIN_A}/product")
    assert page.status_code == 200 and "Organic T-shirt" in page.text and "Wash at 30" in page.text


def test_lot_page_and_jsonld(world: World, loop: dict[str, Any]) -> None:
    lot = world.lot(code="WO", share=2500, origin="New Zealand")
    path = f"/01/09506000134369/10/{lot['lotNumber']}"
    page = world.client.get(path + "/passport")
    assert page.status_code == 200 and "Wool" in page.text and "25% recycled" in page.text
    body = world.client.get(path + "/passport.jsonld").json()
    assert body["@id"] == f"{RESOLVER}{path}" and body["circ:recycledShare"] == 0.25


# -- return requests ---------------------------------------------------------------------------------------------------
def _return(world: World, path: str, body: Any = None, client_ip: str = "198.51.100.1") -> Any:
    return world.client.post(
        path + "/return-requests", json=body if body is not None else {}, headers={"X-Forwarded-For": client_ip}
    )


def test_return_request(world: World) -> None:
    lot = world.lot()
    item = world.item([(lot["lotId"], 100)])
    response = _return(
        world, f"/01/{GTIN_A}/21/{item['serial']}", {"latitude": 52.0, "longitude": 4.5}, "198.51.100.10"
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}", body["dropOffCode"])
    assert [p["id"] for p in body["collectionPoints"]] == ["cp-2", "cp-1"]  # nearest first, two configured
    assert body["collectionPoints"][0]["distanceKm"] < body["collectionPoints"][1]["distanceKm"]
    assert "latitude" not in body and "personal" not in str(body).lower().replace("no personal data", "")


def test_return_request_refuses_personal_data_fields(world: World) -> None:
    lot = world.lot()
    item = world.item([(lot["lotId"], 100)])
    response = _return(world, f"/01/{GTIN_A}/21/{item['serial']}", {"email": "me@example.org"}, "198.51.100.11")
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


def test_return_requests_are_rate_limited(world: World) -> None:
    lot = world.lot()
    item = world.item([(lot["lotId"], 100)])
    path = f"/01/{GTIN_A}/21/{item['serial']}"
    statuses = [_return(world, path, client_ip="198.51.100.12").status_code for _ in range(4)]
    assert statuses == [201, 201, 201, 429]
    limited = _return(world, path, client_ip="198.51.100.12")
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert limited.headers["content-type"] == "application/problem+json"
    other = world.item([(lot["lotId"], 100)])  # this item has as many open codes as one may (3)
    assert _return(world, f"/01/{GTIN_A}/21/{other['serial']}", client_ip="198.51.100.13").status_code == 201


def test_recycled_items_cannot_be_returned(world: World, loop: dict[str, Any]) -> None:
    assert _return(world, loop["first_path"], client_ip="198.51.100.14").status_code == 409


def test_return_request_for_an_unknown_serial_is_404(world: World) -> None:
    assert _return(world, f"/01/{GTIN_A}/21/NOPE-RET", client_ip="198.51.100.15").status_code == 404


def test_resources_refuse_other_methods(world: World, loop: dict[str, Any]) -> None:
    assert world.client.post(loop["path"] + "/passport", json={}).status_code == 405
    assert world.client.get(loop["path"] + "/return-requests").status_code == 405


def test_lots_without_a_gs1_key_dereference(world: World, loop: dict[str, Any]) -> None:
    recovered = loop["recovered"]
    assert recovered["uri"].startswith(f"{RESOLVER}/lots/0x")
    response = world.client.get(recovered["uri"][len(RESOLVER) :])
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/ld+json")
    body = response.json()
    assert body["@id"] == recovered["uri"] and body["circ:recovered"] is True
    assert body["circ:provenance"][0]["circ:sourceItems"][0]["product"] == "Organic T-shirt"
    assert world.client.get("/lots/0x" + "00" * 32).status_code == 404
