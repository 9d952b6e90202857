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
import threading
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ledger.client import ItemState
from ledger.errors import ChainUnavailable
from materials import bps_to_fraction

from .. import passport as pp
from .. import versions
from ..access import Tier, restrict_group, tier_for
from ..actors import authenticate
from ..edge import client_address
from ..gs1.digital_link import DigitalLink
from ..links import JSONLD, item_path, lot_path
from ..models import Item, Lot, Product, ReturnRequest, utcnow
from ..problems import problem_response
from ..qr import qr_png, qr_svg
from ..reads import PassportReads
from ..schemas import CollectionPointPublic, ReturnRequestCreate, ReturnRequestPublic
from ..services.returns import aware
from ..state import AppState
from ..uris import item_uri

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parents[1] / "templates"))
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed at a counter
CLOSED_STATES = pp.CLOSED_STATES


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
        if resource == "passport" and item is None:
            return unregistered_page(request, product, "serial", link.serial)
        if item is None:
            return problem_response(
                request, 404, "Unknown serial", f"serial {link.serial} of GTIN {product.gtin} is not registered"
            )
        if resource in VERSIONED:
            return versioned(request, session, state, product, item, resource)
        if resource == "credential":
            return formatted(request, session, state, product, item, "untp")
        if resource == "catenax":
            return formatted(request, session, state, product, item, "catenax")
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
            tier = reader_tier(request, session, lot.owner_id)
            if isinstance(tier, Response):
                return tier
            body = lot_jsonld(session, state, product, lot, tier)
            return JSONResponse(body, media_type=JSONLD, headers=lot_headers(tier))
        if resource in ("qr.svg", "qr.png"):
            return qr(resource, lot.uri)
    return problem_response(request, 404)


# -- pages ----------------------------------------------------------------------------------------------------------
def product_page(request: Request, session: Session, state: AppState, product: Product) -> HTMLResponse:
    corrections = pp.master_data_changes(session, "product", product.gtin)
    return TEMPLATES.TemplateResponse(
        request,
        "product.html",
        {"product": product, "title": product.name, "warning": None, "corrections": corrections},
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


VERSIONED = ("passport", "passport.jsonld", "passport/versions")


def version_number(request: Request) -> int | Response | None:
    """The ``version`` query parameter (None: the current version), or the problem it makes."""
    raw = request.query_params.get("version")
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1 or len(raw) > 9:
        return problem_response(request, 400, "Invalid version", f"version must be a positive integer, not {raw!r}")
    return int(raw)


def reads(state: AppState) -> PassportReads:
    """The app's passport reads (one store connection, verifier and rendering cache per app)."""
    found = state.extra.get("passport_reads")
    if found is None:
        with _READS_LOCK:
            found = state.extra.get("passport_reads")
            if found is None:
                found = state.extra["passport_reads"] = PassportReads(state, TEMPLATES)
    assert isinstance(found, PassportReads)
    return found


_READS_LOCK = threading.Lock()


def subject_of(state: AppState, gtin14: str, serial: str) -> str:
    """The item's canonical Digital Link: the subject of its passport versions."""
    return _subject(state.settings.resolver_base_url, gtin14, serial)


@lru_cache(maxsize=65_536)
def _subject(resolver: str, gtin14: str, serial: str) -> str:
    return item_uri(resolver, gtin14, serial)  # quoting and checking per scan were a tenth of a read


def answer_item(
    state: AppState,
    resource: str,
    gtin14: str,
    serial: str,
    base: str,
    number: int | None,
    tier: Tier = Tier.PUBLIC,
) -> Response | None:
    """A stored version's page, JSON-LD or version list, or a QR code of a registered item, as readers of `tier` see
    it; None when the item has no passport version (yet). Used by the routes and, before routing (the public's reads,
    without a key), by ``CachedReadsMiddleware``."""
    subject = subject_of(state, gtin14, serial)
    passports = reads(state)
    if resource == "passport/versions":
        listing = passports.history(subject, gtin14, serial, base)
        if listing is None:
            return None
        return JSONResponse(listing, headers={"Cache-Control": "no-cache"})
    if resource in ("qr.svg", "qr.png"):
        return qr(resource, subject) if passports.store.exists(subject) else None
    found = passports.passport(resource, subject, gtin14, serial, base, number, tier)
    if found is None:
        return None
    headers = {"Cache-Control": "no-cache", "Passport-Version": str(found.version), "Vary": "Authorization"}
    if tier is not Tier.PUBLIC:  # never kept by a shared cache, never served to anyone else
        headers["Cache-Control"] = "private, no-store"
    headers["Passport-Access"] = tier.value
    return Response(found.body, media_type=found.media_type, headers=headers)


def reader_tier(request: Request, session: Session, owner_id: int | None = None) -> Tier | Response:
    """The tier of the request's reader (``api/access.py``): the public without ``Authorization``; the key's actor's
    tier with one (the data's owner, `owner_id`, sees all); a key that is unknown or revoked is refused (401), never
    taken for the public's."""
    header = request.headers.get("authorization")
    if header is None:
        return Tier.PUBLIC
    scheme, _, key = header.partition(" ")
    actor = authenticate(session, key.strip()) if scheme.lower() == "bearer" and key.strip() else None
    if actor is None:
        return problem_response(
            request,
            401,
            "Unauthorized",
            "unknown or revoked API key: read without a key for the public passport",
            headers={"WWW-Authenticate": 'Bearer realm="circular-ledger"'},
        )
    return tier_for(actor, owner_id)


def versioned(
    request: Request, session: Session, state: AppState, product: Product, item: Item, resource: str
) -> Response:
    """An item's passport (page, JSON-LD) or its version list, from its stored versions."""
    number = version_number(request)
    if isinstance(number, Response):
        return number
    tier = reader_tier(request, session, item.brand_id)
    if isinstance(tier, Response):
        return tier
    base = _base(request)
    found = answer_item(state, resource, product.gtin, item.serial, base, number, tier)
    if found is None and number is None and not versions.has_version(session, state, item):
        # An item registered before passports were versioned, not reached by the start-up backfill yet: its first
        # version is made now, once.
        with state.service.sessions.begin() as own:
            fresh = own.get(Item, item.id)
            if fresh is not None:
                versions.build(own, state, [fresh], "backfill")
        found = answer_item(state, resource, product.gtin, item.serial, base, number, tier)
    if found is None:
        what = f"version {number} of the passport" if number is not None else "a passport version"
        return problem_response(request, 404, "Unknown version", f"there is no {what} of this item")
    return found


def formatted(request: Request, session: Session, state: AppState, product: Product, item: Item, fmt: str) -> Response:
    """The item's passport (its current version, or ``?version=N``) as a UNTP credential (``credential``,
    ``application/vc+jwt``) or a Catena-X passport (``catenax``, ``application/json``), as the reader's tier sees it:
    the bytes ``circular passport --format untp|catenax`` prints (``api/formats.py``)."""
    from ..formats import NoRendering, render

    number = version_number(request)
    if isinstance(number, Response):
        return number
    tier = reader_tier(request, session, item.brand_id)
    if isinstance(tier, Response):
        return tier
    try:
        made = render(state, session, fmt, product.gtin, item.serial, number, tier)
        if made is None and number is None and not versions.has_version(session, state, item):
            versioned(request, session, state, product, item, "passport")  # makes the first version, as a read does
            made = render(state, session, fmt, product.gtin, item.serial, number, tier)
    except NoRendering as exc:
        title = "No credential for this version" if fmt == "untp" else "No Catena-X passport for this version"
        return problem_response(request, 409, title, str(exc))
    if made is None:
        what = f"version {number} of the passport" if number is not None else "a passport version"
        return problem_response(request, 404, "Unknown version", f"there is no {what} of this item")
    headers = {
        "Cache-Control": "no-cache" if tier is Tier.PUBLIC else "private, no-store",
        "Vary": "Authorization",
        "Passport-Version": str(made.version),
        "Passport-Access": tier.value,
    }
    return Response(made.body, media_type=made.media_type, headers=headers)


def lot_view(session: Session, state: AppState, lot: Lot, tier: Tier) -> dict[str, Any]:
    """What readers of `tier` see of a lot's passport (``api/access.py``): the lot, its provenance, its events."""
    generations = pp.provenance(session, [(lot, None)], state.api_settings.provenance_max_generations)
    entries = pp.timeline(state, session, lot.uri, lot.owner_id)
    owner = pp.owner_name(session, lot.owner_id) if lot.recovered else None
    whole = {
        "lot": {**pp._lot_view(lot), "recycler": owner},
        "generations": [dict(vars(g)) for g in generations],
        "timeline": [dict(vars(e)) for e in entries],
        "corrections": pp.master_data_changes(session, "lot", lot.lot_id),
    }
    seen = {
        "lot": restrict_group(whole["lot"], "lot", tier),
        "generations": restrict_group(whole["generations"], "generation", tier),
        "timeline": restrict_group(whole["timeline"], "event", tier),
        "corrections": restrict_group(whole["corrections"], "change", tier),
    }
    seen["withheld"] = seen != whole
    return seen


def lot_passport(
    request: Request, session: Session, state: AppState, product: Product, lot: Lot
) -> HTMLResponse | Response:
    tier = reader_tier(request, session, lot.owner_id)
    if isinstance(tier, Response):
        return tier
    base = _base(request)
    seen = lot_view(session, state, lot, tier)
    context = {
        "title": f"Material lot {lot.lot_number}",
        "product": product,
        "lot_number": lot.lot_number,
        "view": seen["lot"],
        "withheld": seen["withheld"],
        "material": pp.material_name(lot.material_code, lot.recovered),
        "generations": seen["generations"],
        "timeline": seen["timeline"],
        "corrections": seen["corrections"],
        "links": {
            "jsonld": f"{base}{lot_path(product.gtin, lot.lot_number)}/passport.jsonld",
            "product": f"{base}/01/{product.gtin}/product",
        },
    }
    return TEMPLATES.TemplateResponse(request, "lot.html", context, headers=lot_headers(tier))


def lot_jsonld(
    session: Session, state: AppState, product: Product | None, lot: Lot, tier: Tier = Tier.PUBLIC
) -> dict[str, Any]:
    """A lot's passport as JSON-LD, as readers of `tier` see it."""
    seen = lot_view(session, state, lot, tier)
    view = seen["lot"]
    body: dict[str, Any] = {
        "@context": [
            "https://schema.org/",
            {"gs1": "https://gs1.org/voc/", "circ": "https://ns.circular-ledger.org/voc/"},
        ],
        "@id": lot.uri,
        "@type": ["circ:MaterialLot"],
        "gs1:hasBatchLot": lot.lot_number,
        "circ:material": pp.material_name(lot.material_code, lot.recovered),
        "circ:materialCode": lot.material_code,
        **({"circ:massGrams": view["massGrams"]} if "massGrams" in view else {}),
        "circ:recycledShare": bps_to_fraction(lot.recycled_share_bps),
        "circ:recovered": lot.recovered,
        **({"circ:origin": view["origin"]} if "origin" in view else {}),
        **({"gs1:certificationInfo": view["certificates"]} if "certificates" in view else {}),
        "circ:provenance": [
            {
                "circ:generation": g["index"],
                "circ:thisLot": g["current"],
                "circ:lots": g["lots"],
                "circ:sourceItems": g["source_items"],
                "circ:recycledInto": g["recycled_into"],
            }
            for g in seen["generations"]
        ],
        "circ:access": {"circ:tier": tier.value, "circ:withheld": seen["withheld"]},
    }
    if lot.recovered and view.get("recycler"):
        body["circ:recycler"] = view["recycler"]
    if seen["corrections"]:
        body["circ:corrections"] = seen["corrections"]
    if product is not None:
        body["gtin"] = product.gtin
    return body


def lot_headers(tier: Tier) -> dict[str, str]:
    return {"Cache-Control": "no-cache" if tier is Tier.PUBLIC else "private, no-store", "Vary": "Authorization"}


# -- machine resources ------------------------------------------------------------------------------------------------
def qr(resource: str, uri: str) -> Response:
    content = qr_svg(uri) if resource == "qr.svg" else qr_png(uri)
    media = "image/svg+xml" if resource == "qr.svg" else "image/png"
    etag = '"' + hashlib.sha256(content).hexdigest()[:32] + '"'
    return Response(content, media_type=media, headers={"Cache-Control": "public, max-age=86400", "ETag": etag})


def evidence(request: Request, session: Session, state: AppState, product: Product, item: Item) -> Response:
    """The item's evidence bundle, byte for byte what ``circular export`` writes (``ledger.evidence.bundle_text``).
    It holds every event and version whole (lots, masses, signer addresses): an authority's, or the item's brand's."""
    from ledger.evidence import bundle_text

    tier = reader_tier(request, session, item.brand_id)
    if isinstance(tier, Response):
        return tier
    if tier is not Tier.AUTHORITY:
        keyed = "authorization" in request.headers
        status, title = (403, "Forbidden") if keyed else (401, "Unauthorized")
        return problem_response(
            request,
            status,
            title,
            "the evidence bundle holds every field of the passport: an authority's API key (or the brand's) reads it",
            headers={"WWW-Authenticate": 'Bearer realm="circular-ledger"'} if status == 401 else None,
        )

    uri = item_uri(state.settings.resolver_base_url, product.gtin, item.serial)
    _, bundle = pp.verify(state, uri, pp.item_claim(session, item))
    if "chainId" not in bundle:  # the node went away before the bundle could name its chain
        raise ChainUnavailable("the chain node does not answer right now")
    filename = f"evidence-{product.gtin}-{hashlib.sha256(item.serial.encode()).hexdigest()[:8]}.json"
    return Response(
        bundle_text(bundle),
        media_type="application/json",
        headers={"Content-Disposition": f'inline; filename="{filename}"', "Cache-Control": "no-cache"},
    )


def verification(request: Request, session: Session, state: AppState, product: Product, item: Item) -> Response:
    uri = item_uri(state.settings.resolver_base_url, product.gtin, item.serial)
    tier = reader_tier(request, session, item.brand_id)
    if isinstance(tier, Response):
        return tier
    verdict, _ = pp.verify(state, uri, pp.item_claim(session, item))
    base = _base(request)
    body = {
        "item": uri,
        "status": verdict.status,
        "verified": verdict.verified,
        "events": verdict.events,
        "checkedAt": verdict.checked_at,
        # What failed names lots, masses and signers: an authority reads it; others, how many problems there are.
        "problems": verdict.problems if tier is Tier.AUTHORITY else [],
        "problemCount": len(verdict.problems),
        "evidenceBundle": f"{base}{item_path(product.gtin, item.serial)}/evidence",
    }
    if verdict.status == "unavailable":  # the node is away or not ours (api/health.py): said to every reader
        request.scope["circular.uncacheable"] = True  # asked again next time, not kept for the cache's lifetime
        body["detail"] = "verification unavailable right now: the ledger cannot be asked; the data is shown as stored"
    headers = {"Cache-Control": "no-cache" if tier is Tier.PUBLIC else "private, no-store", "Vary": "Authorization"}
    return JSONResponse(body, headers=headers)


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


def _open_requests_refusal(
    request: Request, session: Session, state: AppState, item: Item, now: datetime
) -> Response | None:
    """A 429 when the item already has as many unexpired open drop-off codes as one item may (until one expires)."""
    cap = state.api_settings.return_requests_open_per_item
    expiries = session.scalars(
        select(ReturnRequest.expires_at)
        .where(ReturnRequest.item_pk == item.id, ReturnRequest.status == "open")
        .where(or_(ReturnRequest.expires_at.is_(None), ReturnRequest.expires_at > now))
        .order_by(ReturnRequest.expires_at)
        .limit(cap)
    ).all()
    if len(expiries) < cap:
        return None
    first = expiries[0]
    wait = (aware(first) - now).total_seconds() if first is not None else 86_400.0
    return problem_response(
        request,
        429,
        "Too many open return requests",
        f"this item already has {cap} open drop-off codes; bring it back with one of them, or ask again later",
        headers={"Retry-After": str(max(1, math.ceil(wait)))},
    )


def return_request(request: Request, session: Session, state: AppState, product: Product, item: Item) -> Response:
    # The real client: a new X-Forwarded-For per request is a new key only when a configured proxy sent it.
    retry = state.return_limiter.hit(client_address(request))
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
    now = utcnow()
    refusal = _open_requests_refusal(request, session, state, item, now)
    if refusal is not None:
        return refusal
    code = "-".join("".join(secrets.choice(CODE_ALPHABET) for _ in range(4)) for _ in range(2))
    expires = now + timedelta(days=state.api_settings.drop_off_code_days)
    record = ReturnRequest(code=code, item_pk=item.id, status="open", created_at=now, expires_at=expires)
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
        expires_at=expires,
    )
    return JSONResponse(
        answer.model_dump(mode="json", by_alias=True), status_code=201, headers={"Cache-Control": "no-store"}
    )


__all__ = [
    "VERSIONED",
    "answer_item",
    "handle",
    "lot_headers",
    "lot_jsonld",
    "nearest_points",
    "reader_tier",
    "reads",
    "subject_of",
    "version_number",
]
