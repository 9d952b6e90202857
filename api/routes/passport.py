"""The public resources of an item, a lot and a product, below their Digital Link.

``passport`` (HTML, mobile-first), ``passport.jsonld``, ``qr.svg`` / ``qr.png``, ``evidence`` (the evidence bundle),
``verification`` (the cached verdict on it) and ``return-requests`` (POST: a drop-off code, rate-limited). They are
reached through the resolver's dispatcher (``routes/resolver.py``), which parses the raw path so that any serial of
GS1 character set 82, ``/`` included, works.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from pathlib import Path
from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy.orm import Session

from ledger.client import ItemState

from .. import passport as pp
from ..gs1.digital_link import DigitalLink
from ..links import JSONLD, item_path, lot_path
from ..models import Item, Lot, Product, ReturnRequest, utcnow
from ..problems import problem_response
from ..qr import qr_png, qr_svg
from ..schemas import CollectionPointPublic, ReturnRequestCreate, ReturnRequestPublic
from ..state import AppState
from ..uris import item_uri

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parents[1] / "templates"))
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed at a counter
CLOSED_STATES = (ItemState.RECYCLED, ItemState.DISPOSED)


def _base(request: Request) -> str:
    from .resolver import request_base

    return request_base(request)


def handle(request: Request, session: Session, state: AppState, link: DigitalLink) -> Response:
    from .resolver import lookup

    resource = link.resource
    allowed = ("POST", "OPTIONS") if resource == "return-requests" else ("GET", "HEAD", "OPTIONS")
    if request.method == "OPTIONS":
        return Response(status_code=204, headers={"Allow": ", ".join(allowed)})
    if request.method not in allowed:
        return problem_response(request, 405, headers={"Allow": ", ".join(allowed)})
    product, record = lookup(session, link.without_resource())
    if product is None:
        return problem_response(request, 404, "Unknown GTIN", f"GTIN {link.gtin} is not registered")
    if resource == "product":
        if link.qualifiers:
            return problem_response(request, 404)
        return product_page(request, session, state, product)
    if link.serial is not None:
        item = record if isinstance(record, Item) else None
        if resource == "passport":
            if item is None:
                return unregistered_page(request, product, "serial", link.serial)
            return item_passport(request, session, state, product, item)
        if item is None:
            return problem_response(
                request, 404, "Unknown serial", f"serial {link.serial} of GTIN {product.gtin} is not registered"
            )
        if resource == "passport.jsonld":
            return item_jsonld(request, session, state, product, item)
        if resource in ("qr.svg", "qr.png"):
            return qr(resource, item_uri(state.settings.resolver_base_url, product.gtin, item.serial))
        if resource == "evidence":
            return evidence(request, session, state, product, item)
        if resource == "verification":
            return verification(request, session, state, product, item)
        if resource == "return-requests":
            return return_request(request, session, state, product, item)
    elif link.lot is not None:
        lot = record if isinstance(record, Lot) else None
        if resource == "passport":
            if lot is None:
                return unregistered_page(request, product, "lot", link.lot)
            return lot_passport(request, session, state, product, lot)
        if lot is None:
            return problem_response(
                request, 404, "Unknown lot", f"lot {link.lot} of GTIN {product.gtin} is not registered"
            )
        if resource == "passport.jsonld":
            return JSONResponse(lot_jsonld(session, state, product, lot), media_type=JSONLD)
        if resource in ("qr.svg", "qr.png"):
            return qr(resource, lot.uri)
    return problem_response(request, 404)


# -- pages ----------------------------------------------------------------------------------------------------------
def product_page(request: Request, session: Session, state: AppState, product: Product) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(
        request, "product.html", {"product": product, "title": product.name, "warning": None}
    )


def unregistered_page(request: Request, product: Product, kind: str, value: str) -> HTMLResponse:
    """Walk-up: the product's page, with a warning that this serial or lot is not registered (HTTP 404)."""
    warning = (
        f"The {kind} {value} is not registered for this product. The label may be a counterfeit, or the item "
        "was never registered: please contact the brand. This scan was recorded."
    )
    return TEMPLATES.TemplateResponse(
        request,
        "product.html",
        {"product": product, "title": f"{product.name}: {kind} not registered", "warning": warning},
        status_code=404,
        headers={"Cache-Control": "no-store"},
    )


def _item_context(request: Request, session: Session, state: AppState, product: Product, item: Item) -> dict[str, Any]:
    base = _base(request)
    path = item_path(product.gtin, item.serial)
    uri = item_uri(state.settings.resolver_base_url, product.gtin, item.serial)
    materials, recycled, lots = pp.composition(session, item)
    start = [(lots[str(lot_id)], int(grams)) for lot_id, grams in item.composition if str(lot_id) in lots]
    generations = pp.provenance(session, start, state.api_settings.provenance_max_generations)
    entries = pp.timeline(state, session, uri)
    verdict, _ = pp.verify(state, uri, [m.lot_uri for m in materials if m.lot_uri], pp.item_claim(session, item))
    links = {
        "passport": f"{base}{path}/passport",
        "jsonld": f"{base}{path}/passport.jsonld",
        "evidence": f"{base}{path}/evidence",
        "verification": f"{base}{path}/verification",
        "returns": f"{base}{path}/return-requests",
        "qr": f"{base}{path}/qr.svg",
        "product": f"{base}/01/{product.gtin}/product",
        "epcis": f"{base}/epcis/events?MATCH_anyEPC={uri}",
    }
    return {
        "uri": uri,
        "product": product,
        "item": item,
        "state": pp.STATE_LABELS[ItemState(item.state)],
        "closed": ItemState(item.state) in CLOSED_STATES,
        "received": pp.intake(item, entries),
        "materials": materials,
        "recycled": recycled,
        "generations": generations,
        "timeline": entries,
        "verdict": verdict,
        "links": links,
        "collection_points": state.api_settings.collection_points,
    }


def item_passport(request: Request, session: Session, state: AppState, product: Product, item: Item) -> HTMLResponse:
    context = _item_context(request, session, state, product, item)
    context["title"] = f"{product.name}: product passport"
    return TEMPLATES.TemplateResponse(request, "passport.html", context, headers={"Cache-Control": "no-cache"})


def item_jsonld(request: Request, session: Session, state: AppState, product: Product, item: Item) -> JSONResponse:
    c = _item_context(request, session, state, product, item)
    body = pp.jsonld(
        uri=c["uri"],
        product=product,
        item=item,
        materials=c["materials"],
        recycled=c["recycled"],
        generations=c["generations"],
        entries=c["timeline"],
        verdict=c["verdict"],
        links=c["links"],
    )
    return JSONResponse(body, media_type=JSONLD, headers={"Cache-Control": "no-cache"})


def lot_passport(request: Request, session: Session, state: AppState, product: Product, lot: Lot) -> HTMLResponse:
    base = _base(request)
    generations = pp.provenance(session, [(lot, None)], state.api_settings.provenance_max_generations)
    entries = pp.timeline(state, session, lot.uri)
    context = {
        "title": f"Material lot {lot.lot_number}",
        "product": product,
        "lot": lot,
        "material": pp.material_name(lot.material_code),
        "generations": generations,
        "timeline": entries,
        "links": {
            "jsonld": f"{base}{lot_path(product.gtin, lot.lot_number)}/passport.jsonld",
            "product": f"{base}/01/{product.gtin}/product",
        },
    }
    return TEMPLATES.TemplateResponse(request, "lot.html", context, headers={"Cache-Control": "no-cache"})


def lot_jsonld(session: Session, state: AppState, product: Product | None, lot: Lot) -> dict[str, Any]:
    generations = pp.provenance(session, [(lot, None)], state.api_settings.provenance_max_generations)
    body: dict[str, Any] = {
        "@context": [
            "https://schema.org/",
            {"gs1": "https://gs1.org/voc/", "circ": "https://ns.circular-ledger.org/voc/"},
        ],
        "@id": lot.uri,
        "@type": ["circ:MaterialLot"],
        "gs1:hasBatchLot": lot.lot_number,
        "circ:material": pp.material_name(lot.material_code),
        "circ:materialCode": lot.material_code,
        "circ:massGrams": lot.mass_grams,
        "circ:recycledShare": lot.recycled_share_bps / 10_000,
        "circ:recovered": lot.recovered,
        "circ:origin": lot.origin,
        "gs1:certificationInfo": list(lot.certificates or []),
        "circ:provenance": [
            {"circ:generation": g.index, "circ:lots": g.lots, "circ:sourceItems": g.source_items} for g in generations
        ],
    }
    if product is not None:
        body["gtin"] = product.gtin
    return body


# -- machine resources ------------------------------------------------------------------------------------------------
def qr(resource: str, uri: str) -> Response:
    content = qr_svg(uri) if resource == "qr.svg" else qr_png(uri)
    media = "image/svg+xml" if resource == "qr.svg" else "image/png"
    etag = '"' + hashlib.sha256(content).hexdigest()[:32] + '"'
    return Response(content, media_type=media, headers={"Cache-Control": "public, max-age=86400", "ETag": etag})


def _lot_uris(session: Session, item: Item) -> list[str]:
    _, _, lots = pp.composition(session, item)
    return [lot.uri for lot in lots.values()]


def evidence(request: Request, session: Session, state: AppState, product: Product, item: Item) -> JSONResponse:
    uri = item_uri(state.settings.resolver_base_url, product.gtin, item.serial)
    _, bundle = pp.verify(state, uri, _lot_uris(session, item), pp.item_claim(session, item))
    filename = f"evidence-{product.gtin}-{hashlib.sha256(item.serial.encode()).hexdigest()[:8]}.json"
    return JSONResponse(
        bundle, headers={"Content-Disposition": f'inline; filename="{filename}"', "Cache-Control": "no-cache"}
    )


def verification(request: Request, session: Session, state: AppState, product: Product, item: Item) -> JSONResponse:
    uri = item_uri(state.settings.resolver_base_url, product.gtin, item.serial)
    verdict, _ = pp.verify(state, uri, _lot_uris(session, item), pp.item_claim(session, item))
    base = _base(request)
    body = {
        "item": uri,
        "status": verdict.status,
        "verified": verdict.verified,
        "events": verdict.events,
        "checkedAt": verdict.checked_at,
        "problems": verdict.problems,
        "evidenceBundle": f"{base}{item_path(product.gtin, item.serial)}/evidence",
    }
    return JSONResponse(body, headers={"Cache-Control": "no-cache"})


def _client_key(request: Request) -> str:
    forwarded = request.headers.get("x-forwarded-for", "").split(",")[0].strip()
    return forwarded or (request.client.host if request.client else "unknown")


def _distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 6371.0 * 2 * math.asin(math.sqrt(a))


def nearest_points(state: AppState, latitude: float | None, longitude: float | None) -> list[CollectionPointPublic]:
    points = [CollectionPointPublic(**p.model_dump()) for p in state.api_settings.collection_points]
    if latitude is not None and longitude is not None:
        for point in points:
            if point.latitude is not None and point.longitude is not None:
                point.distance_km = round(_distance_km(latitude, longitude, point.latitude, point.longitude), 1)
        points.sort(key=lambda p: (p.distance_km is None, p.distance_km or 0.0))
    return points[: state.api_settings.nearest_points]


def return_request(request: Request, session: Session, state: AppState, product: Product, item: Item) -> Response:
    retry = state.return_limiter.hit(_client_key(request))
    if retry is not None:
        seconds = str(max(1, math.ceil(retry)))
        return problem_response(
            request,
            429,
            "Too many requests",
            "too many return requests; try again later",
            headers={"Retry-After": seconds},
        )
    try:
        raw = request.scope.get("circular.body", b"") or b"{}"
        body = ReturnRequestCreate.model_validate_json(raw)
    except ValidationError as exc:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return problem_response(
            request, 422, "Invalid request", "the body does not match a return request", extra={"errors": errors}
        )
    if ItemState(item.state) in CLOSED_STATES:
        return problem_response(
            request,
            409,
            "Item already recycled or disposed of",
            f"this item is {ItemState(item.state).name.lower()}: it cannot be returned",
        )
    code = "-".join("".join(secrets.choice(CODE_ALPHABET) for _ in range(4)) for _ in range(2))
    record = ReturnRequest(code=code, item_pk=item.id, status="open", created_at=utcnow())
    session.add(record)
    session.commit()
    uri = item_uri(state.settings.resolver_base_url, product.gtin, item.serial)
    answer = ReturnRequestPublic(
        drop_off_code=code,
        item=uri,
        collection_points=nearest_points(state, body.latitude, body.longitude),
        instructions=product.return_info
        or "Bring the item and this code to a collection point. The code holds no personal data.",
        created_at=record.created_at,
    )
    return JSONResponse(
        answer.model_dump(mode="json", by_alias=True), status_code=201, headers={"Cache-Control": "no-store"}
    )


__all__ = ["handle", "nearest_points"]
