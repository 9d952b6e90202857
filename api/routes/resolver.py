"""The GS1-conformant resolver: ``/01/<gtin>[/22/..][/10/<lot>][/21/<serial>]`` and compressed Digital Links.

Resolution is one indexed query (the product joined with the item or lot) and no chain call. A plain request is
redirected (307) to the default link; ``?linkType=gs1:<type>`` to that type's link, or 404; ``?linkType=linkset``
(or ``all``) and ``Accept: application/linkset+json`` get the linkset; ``Accept: application/ld+json`` is redirected to
the JSON-LD passport. Every answer about a registered GTIN carries ``Link: <..?linkType=linkset>; rel="linkset"``;
answers to compressed URIs also ``rel="owl:sameAs"`` with the uncompressed URI. Key qualifiers unknown under a
known GTIN walk up to the product's links; scans of unknown and of registered serials are recorded for the audit.
"""

from __future__ import annotations

import hashlib
import json
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import and_, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import QueuePool
from starlette.types import ASGIApp, Receive, Scope, Send

from ledger.errors import InvalidIdentifier

from ..access import Tier
from ..deps import ApiSettingsDep, StateDep
from ..gs1.digital_link import DigitalLink, MalformedLink, NotADigitalLink, UnsupportedKey, parse_path
from ..gs1.linktypes import GS1_NS, OWN_NS, expand, gs1
from ..health import monitor_of
from ..links import (
    HTML,
    JSONLD,
    LINKSET,
    Link,
    gtin_links,
    item_links,
    item_path,
    linkset,
    lot_links,
    unknown_item_links,
    unknown_lot_links,
)
from ..models import Item, Lot, Product
from ..problems import problem_response
from ..response_cache import ChangeMarker, ResponseCache
from ..scans import record_item_scan, record_unknown_scan
from ..state import AppState
from ..uris import item_uri
from . import passport as resources

router = APIRouter(tags=["resolver"])

RESOLVER_METHODS = ["GET", "HEAD", "OPTIONS", "POST"]


def request_base(request: Request) -> str:
    """The base of every link an answer holds: the configured resolver base URL (``CIRCULAR_RESOLVER_BASE_URL``).

    Never the request's ``Host`` or ``X-Forwarded-Proto``: a link built from them is the client's own (``Host:
    evil.example`` put ``https://evil.example/...`` into redirects, linksets and forms, and a shared cache that keys
    without the Host served it to everyone), and a crafted Host injected link-values into the ``Link`` header."""
    state: AppState = request.app.state.circular
    return state.settings.resolver_base_url.rstrip("/")


def raw_request_path(request: Request) -> str:
    raw = request.scope.get("raw_path") or request.url.path.encode()
    try:
        path = bytes(raw).decode("ascii")
    except UnicodeDecodeError:
        path = bytes(raw).decode("utf-8", errors="strict")
    root = request.scope.get("root_path") or ""
    if root and path.startswith(root):
        path = path[len(root) :]
    return path


def _accept(header: str | None) -> tuple[tuple[str, float], ...]:
    # A phone's browser sends one of a few Accept headers: each is parsed once (short ones only: the cache's memory
    # stays bounded whatever clients send).
    if header is not None and len(header) > 256:
        return _parse_accept(header)
    return _parse_accept_cached(header)


@lru_cache(maxsize=512)
def _parse_accept_cached(header: str | None) -> tuple[tuple[str, float], ...]:
    return _parse_accept(header)


def _parse_accept(header: str | None) -> tuple[tuple[str, float], ...]:
    out = []
    for part in (header or "*/*").split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        if not media:
            continue
        q = 1.0
        for param in fields[1:]:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        out.append((media, q))
    return tuple(out)


def preferred_type(header: str | None, offered: list[str]) -> tuple[str | None, bool]:
    """The offered media type the Accept header prefers, and whether the client named it explicitly."""
    ranges = _accept(header)
    best: tuple[float, int, int, str] | None = None
    for order, media in enumerate(offered):
        major = media.split("/")[0]
        for candidate, q in ranges:
            if candidate == media:
                score = (q, 2)
            elif candidate == f"{major}/*":
                score = (q, 1)
            elif candidate == "*/*":
                score = (q, 0)
            else:
                continue
            key = (score[0], score[1], -order, media)
            if score[0] > 0 and (best is None or key > best):
                best = key
    if best is None:
        return None, False
    return best[3], best[1] == 2


def _query_pairs(request: Request) -> list[str]:
    """The request's raw key=value pairs, to pass on when redirecting (``linkType`` is addressed to us)."""
    return _pairs_of(request.url.query)


def _pairs_of(query: str) -> list[str]:
    pairs = []
    for part in query.split("&"):
        if not part:
            continue
        if unquote(part.split("=", 1)[0]) == "linkType":
            continue
        pairs.append(part)
    return pairs


def _with_query(href: str, pairs: list[str]) -> str:
    if not pairs:
        return href
    fragment = ""
    if "#" in href:
        href, fragment = href.split("#", 1)
        fragment = "#" + fragment
    return href + ("&" if "?" in href else "?") + "&".join(pairs) + fragment


def resolver_headers(base: str, link: DigitalLink, cache: str = "public, max-age=300") -> dict[str, str]:
    links = [f'<{base}{link.path}?linkType=linkset>; rel="linkset"; type="{LINKSET}"']
    if link.compressed:
        links.append(f'<{link.uri(base)}>; rel="owl:sameAs"')
    return {"Link": ", ".join(links), "Vary": "Accept", "Cache-Control": cache}


def lookup(session: Session, link: DigitalLink) -> tuple[Product | None, Item | Lot | None]:
    """The one indexed query of a resolution: the product, with the item or lot the link names (or None)."""
    gtin14 = link.gtin14
    row: Any
    if link.serial is not None:
        row = session.execute(
            select(Product, Item)
            .outerjoin(Item, and_(Item.gtin == Product.gtin, Item.serial == link.serial))
            .where(Product.gtin == gtin14)
        ).first()
    elif link.lot is not None:
        row = session.execute(
            select(Product, Lot)
            .outerjoin(Lot, and_(Lot.gtin == Product.gtin, Lot.lot_number == link.lot))
            .where(Product.gtin == gtin14)
        ).first()
    else:
        product = session.get(Product, gtin14)
        return product, None
    if row is None:
        return None, None
    return row[0], row[1]


def links_for(
    state: AppState, base: str, link: DigitalLink, product: Product, record: Item | Lot | None
) -> tuple[list[Link], str, bool]:
    """The links, the item description, and whether the request walked up to the product."""
    if link.serial is not None:
        if isinstance(record, Item):
            canonical = item_uri(state.settings.resolver_base_url, product.gtin, record.serial)
            description = f"{product.name} ({product.brand_name}), serial {record.serial}"
            return item_links(base, product, record, canonical), description, False
        description = f"{product.name} ({product.brand_name}): serial {link.serial} is not registered"
        return unknown_item_links(base, product, link.serial), description, True
    if link.lot is not None:
        if isinstance(record, Lot):
            description = f"Material lot {record.lot_number} of {product.name} ({product.brand_name})"
            return lot_links(base, product, record), description, False
        description = f"{product.name} ({product.brand_name}): lot {link.lot} is not registered"
        return unknown_lot_links(base, product, link.lot), description, True
    return gtin_links(base, product), f"{product.name} ({product.brand_name})", link.qualifiers != ()


def resolve(request: Request, session: Session, state: AppState, link: DigitalLink) -> Response:
    base = request_base(request)
    product, record = lookup(session, link)
    if product is None:
        return problem_response(request, 404, "Unknown GTIN", f"GTIN {link.gtin} is not registered with this resolver")
    links, description, walked_up = links_for(state, base, link, product, record)
    headers = resolver_headers(base, link, "no-cache" if walked_up else "public, max-age=300")
    if request.method == "OPTIONS":
        return Response(status_code=204, headers={**headers, "Allow": "GET, HEAD, OPTIONS"})
    if request.method not in ("GET", "HEAD"):
        return problem_response(request, 405, headers={**headers, "Allow": "GET, HEAD, OPTIONS"})
    if walked_up and (link.serial is not None or link.lot is not None):
        ai, value = ("21", link.serial) if link.serial is not None else ("10", link.lot)
        assert value is not None
        record_unknown_scan(state, request, product.gtin, ai, value)
    elif isinstance(record, Item):
        record_item_scan(state, request, record.gtin, record.serial)
    accept = request.headers.get("accept")
    requested = request.query_params.get("linkType")
    if requested in ("linkset", "all") or (
        requested is None and preferred_type(accept, [HTML, LINKSET, JSONLD]) == (LINKSET, True)
    ):
        body = linkset(link.uri(base), description, links)
        context = f'<{base}{LINKSET_CONTEXT_PATH}>; rel="{JSONLD_CONTEXT_REL}"; type="{JSONLD}"'
        return JSONResponse(body, media_type=LINKSET, headers={**headers, "Link": headers["Link"] + ", " + context})
    if requested is not None:
        rel = expand(requested)
        candidates = [candidate for candidate in links if candidate.rel == rel]
        if not candidates:
            return problem_response(
                request,
                404,
                "No such link",
                f"no link of type {requested!r} for {link.uri(base)}",
                headers=headers,
                extra={"availableLinkTypes": sorted({_curie(candidate.rel) for candidate in links})},
            )
    else:
        candidates = [candidate for candidate in links if candidate.rel == gs1("defaultLink")]
        media, explicit = preferred_type(accept, [HTML, JSONLD])
        if media == JSONLD and explicit:
            jsonld = [c for c in links if c.rel == gs1("dpp") and c.type == JSONLD]
            candidates = jsonld or candidates
    target = _choose(candidates, accept)
    pairs = _query_pairs(request) + [f"{key}={value}" for key, value in _quoted(link.embedded_query())]
    return Response(status_code=307, headers={**headers, "Location": _with_query(target.href, pairs)})


def _quoted(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(quote(key, safe=""), quote(value, safe="")) for key, value in pairs]


def _curie(uri: str) -> str:
    if uri.startswith(GS1_NS):
        return "gs1:" + uri[len(GS1_NS) :]
    if uri.startswith(OWN_NS):
        return "circ:" + uri[len(OWN_NS) :]
    return uri


def _choose(candidates: list[Link], accept: str | None) -> Link:
    """Among links of one type, the one whose media type the client prefers (the first one otherwise)."""
    types = [c.type for c in candidates if c.type]
    if len(candidates) > 1 and types:
        media, explicit = preferred_type(accept, list(dict.fromkeys(types)))
        if explicit:
            return next(c for c in candidates if c.type == media)
    return candidates[0]


def dispatch(request: Request, session: Session, state: AppState) -> Response:
    try:
        path = raw_request_path(request)
    except UnicodeDecodeError:
        return problem_response(request, 400, "Malformed Digital Link", "the path is not valid UTF-8")
    try:
        link = parse_path(path)
    except MalformedLink as exc:
        return problem_response(request, 400, "Malformed Digital Link", str(exc))
    except UnsupportedKey as exc:
        return problem_response(request, 404, "Unsupported GS1 key", str(exc))
    except NotADigitalLink:
        return problem_response(request, 404)
    if link.resource is not None:
        return resources.handle(request, session, state, link)
    return resolve(request, session, state, link)


@router.get("/.well-known/gs1resolver", summary="The resolver description file")
def description_file(request: Request, api_settings: ApiSettingsDep) -> JSONResponse:
    base = request_base(request)
    body: dict[str, Any] = {
        "name": api_settings.resolver_name,
        "resolverRoot": base,
        "supportedPrimaryKeys": ["01"],
        "supportedLinkType": [
            {"namespace": GS1_NS, "prefix": "gs1:"},
            {"namespace": OWN_NS, "prefix": "circ:"},
        ],
        "linkTypeDefaultCanBeLinkset": False,
        "supportedContextValuesEnumerated": [],
        "contact": {"fn": api_settings.operator_name},
    }
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=3600"})


# The linkset's JSON-LD context, named by a Link header on every linkset answer (JSON-LD 1.1, 6.1: how a JSON document
# of another media type than application/ld+json is read as JSON-LD): the GS1 linkset context, served from here so that
# it resolves wherever the resolver runs, with our link types' prefix beside GS1's.
LINKSET_CONTEXT_PATH = "/contexts/linkset.jsonld"
JSONLD_CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"


@lru_cache(maxsize=1)
def _linkset_context() -> bytes:
    path = Path(__file__).resolve().parents[1] / "standards" / "gs1-resolver" / "linksetContext.jsonld"
    context = json.loads(path.read_text())
    context["@context"]["circ"] = OWN_NS
    return json.dumps(context, indent=2).encode()


@router.get(
    LINKSET_CONTEXT_PATH,
    summary="The JSON-LD context of the resolver's linksets",
    response_class=Response,
    responses={200: {"content": {JSONLD: {}}, "description": "The GS1 linkset context, with our own namespace."}},
)
def linkset_context() -> Response:
    return Response(_linkset_context(), media_type=JSONLD, headers={"Cache-Control": "public, max-age=86400"})


MAX_BODY = 16_384


async def _dispatch(request: Request, state: AppState) -> Response:
    if request.method == "POST":
        body = await request.body()
        if len(body) > MAX_BODY:
            return problem_response(request, 413, "Payload too large", f"at most {MAX_BODY} bytes")
        request.scope["circular.body"] = body
    cache, key = _cached_resource(request, state)
    marker = cache.marker.read() if key is not None else None
    if key is not None:
        hit = _cached_response(cache, key, marker)
        if hit is not None:  # CachedReadsMiddleware answers most hits; one put in meanwhile lands here
            return hit
    limiter = _db_requests(state)

    def run() -> Response:
        with limiter, state.service.sessions() as session:
            return dispatch(request, session, state)

    response = await run_in_threadpool(run)
    built = getattr(response, "body", None)
    keep = not request.scope.get(UNCACHEABLE)
    if key is not None and keep and response.status_code == 200 and isinstance(built, bytes):
        cache.put(key, marker, response.status_code, built, response.raw_headers)
    return response


PUBLIC_TIER = Tier.PUBLIC.value  # the tier of every cached public answer: part of its key
# An item's verdict and evidence bundle are kept like a passport: each was built afresh for every request (8 ms).
ITEM_CACHED = ("/verification", "/evidence")
CACHED_RESOURCES = ("/passport", "/passport.jsonld", "/qr.png", "/qr.svg", *ITEM_CACHED)
QUERY_READ = ("version",)  # the only query parameter a cached resource reads
UNCACHEABLE = "circular.uncacheable"  # set in a request's scope by a handler whose answer must not be kept


def _known_query(query: str) -> dict[str, str]:
    """The query parameters a cached resource reads (the last of each), unquoted; every other one is ignored."""
    found: dict[str, str] = {}
    for part in query.split("&"):
        name, _, value = part.partition("=")
        name = unquote(name)
        if name in QUERY_READ:
            found[name] = unquote(value)
    return found


def _cached_response(cache: ResponseCache, key: tuple[str, ...], marker: Any) -> Response | None:
    """The answer as it was built, if the database is unchanged since: no thread, no session."""
    entry = cache.get(key, marker)
    if entry is None:
        return None
    response = Response(entry.body, status_code=entry.status)
    response.raw_headers = list(entry.raw_headers)
    return response


class CachedReadsMiddleware:
    """Answers the reads of a scan before routing: an item's Digital Link (the scan: recorded in the scan buffer,
    307 to the passport), its passport page, JSON-LD, version list and QR codes, from its stored passport version
    (``api/reads.py``); and response-cache hits of the other cached resources. None of them needs the router (the
    resolver's routes come after every other route: 28 patterns tried) or FastAPI's dependency resolution, which
    were a quarter of a cached read's cost (docs/performance.md). Everything else, and whatever the fast path does
    not take as it is (a compressed link, another query parameter, a linkset or JSON-LD request, an item without a
    passport version), goes on to the app, which answers it the same way. Installed inside the CORS and body-limit
    middlewares, so that a fast answer gets the same headers as a routed one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"].startswith("/01/"):
            state = getattr(scope["app"].state, "circular", None)
            if state is not None:
                fast = _item_read(Request(scope), state)
                if fast is not None:
                    await fast(scope, receive, send)
                    return
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"].endswith(CACHED_RESOURCES):
            state = getattr(scope["app"].state, "circular", None)
            if state is not None:
                cache, key = _cached_resource(Request(scope), state)
                if key is not None:
                    hit = _cached_response(cache, key, cache.marker.read())
                    if hit is not None:
                        await hit(scope, receive, send)
                        return
        await self.app(scope, receive, send)


FAST_RESOURCES = frozenset({None, "passport", "passport.jsonld", "passport/versions", "qr.png", "qr.svg"})


@lru_cache(maxsize=16_384)
def _parsed(path: str) -> DigitalLink:
    """A path parsed once (a scanned item's two paths come back with every scan); only short paths are kept."""
    return parse_path(path)


def _item_read(request: Request, state: AppState) -> Response | None:
    """The fast path of an item's reads (see :class:`CachedReadsMiddleware`); None: the app answers."""
    try:
        path = raw_request_path(request)
        link = _parsed(path) if len(path) <= 160 else parse_path(path)
    except (UnicodeDecodeError, MalformedLink, NotADigitalLink, UnsupportedKey):
        return None
    if link.serial is None or link.compressed or link.resource not in FAST_RESOURCES:
        return None
    if "authorization" in request.headers:  # a key's reader: the app decides its tier (api/access.py)
        return None
    query = bytes(request.scope.get("query_string") or b"").decode("latin-1")
    number: int | None = None
    if link.resource is not None and query:
        # A resource reads no query parameter but a passport's ``version``: the others are ignored here as they are
        # by the app, so that ``?v=<random>`` is no way around the stored versions (it made every read a rebuild).
        raw = _known_query(query).get("version")
        if raw is not None:
            if link.resource not in ("passport", "passport.jsonld"):
                return None
            if not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or int(raw) < 1:
                return None  # the app says what is wrong with it
            number = int(raw)
    base = request_base(request)
    try:
        gtin14 = link.gtin14
        if link.resource is not None:
            return resources.answer_item(state, link.resource, gtin14, link.serial, base, number)
        return _scan_redirect(request, state, link, gtin14, link.serial, base, query)
    except InvalidIdentifier:
        return None


def _scan_redirect(
    request: Request, state: AppState, link: DigitalLink, gtin14: str, serial: str, base: str, query: str
) -> Response | None:
    """A scan of a registered item: recorded (buffered), and sent to its passport page as :func:`resolve` would."""
    if "linkType" in unquote(query):
        return None  # the app answers it
    pairs = _pairs_of(query)
    accept = request.headers.get("accept")
    if preferred_type(accept, [HTML, LINKSET, JSONLD]) == (LINKSET, True):
        return None
    media, explicit = preferred_type(accept, [HTML, JSONLD])
    if media == JSONLD and explicit:
        return None
    if not resources.reads(state).registered(resources.subject_of(state, gtin14, serial)):
        return None  # not registered (walk-up) or not versioned yet: the app answers
    record_item_scan(state, request, gtin14, serial)
    headers = resolver_headers(base, link, "public, max-age=300")
    target = f"{base}{item_path(gtin14, serial)}/passport"
    return Response(status_code=307, headers={**headers, "Location": _with_query(target, pairs)})


def _cached_resource(request: Request, state: AppState) -> tuple[ResponseCache, tuple[str, ...] | None]:
    """The app's response cache, and the key of this request in it (None: not a cached resource).

    The answer of these resources depends on the path, the query, the scheme and host (its links), and the database
    (an entry is used only while the database is unchanged: ``api/response_cache.py``); not on any other header."""
    cache = state.extra.get("response_cache")
    if cache is None:
        with _SETUP_LOCK:
            cache = state.extra.get("response_cache")
            if cache is None:
                settings = state.api_settings
                marker = ChangeMarker(state.service.engine)
                cache = ResponseCache(marker, settings.response_cache_mb * 1_000_000, settings.verification_ttl_s)
                state.extra["response_cache"] = cache
    if request.method != "GET" or state.api_settings.response_cache_mb == 0:
        return cache, None
    try:
        path = raw_request_path(request)
    except UnicodeDecodeError:  # the dispatcher answers it (400)
        return cache, None
    if not path.endswith(CACHED_RESOURCES):
        return cache, None
    item_cached = path.endswith(ITEM_CACHED)
    if "/21/" in path and not item_cached:  # an item's passport and QR codes: read from its stored versions
        return cache, None
    if item_cached and monitor_of(state).degraded():  # the node is away: each verdict says so, none is kept
        return cache, None
    reader = PUBLIC_TIER
    authorization = request.headers.get("authorization")
    if authorization is not None:
        if not item_cached:  # a key's passport: the app decides its tier (api/access.py), and keeps nothing
            return cache, None
        # The verdict and the evidence as this key's reader sees them: kept for this key only. A key revoked, or a
        # tier changed, is a commit, which ends the entry (the change marker).
        reader = "key:" + hashlib.sha256(authorization.encode()).hexdigest()
    # Normalised: parameters no resource reads are left out of the key (a random ?v= made every request a miss), and
    # a Digital Link is keyed by its one canonical spelling (each percent-encoding of a lot number was a miss too).
    query = "&".join(f"{name}={value}" for name, value in sorted(_known_query(request.url.query).items()))
    return cache, (_canonical(path), query, request_base(request), reader)


def _canonical(path: str) -> str:
    """A Digital Link path as the resolver writes it (its resource after it); any other path as it is."""
    try:
        link = _parsed(path) if len(path) <= 160 else parse_path(path)
    except (MalformedLink, NotADigitalLink, UnsupportedKey):
        return path
    if link.compressed or link.resource is None:
        return path
    return f"{link.path}/{link.resource}"


_SETUP_LOCK = threading.Lock()


def _db_requests(state: AppState) -> threading.BoundedSemaphore:
    """How many resolver requests may use the database at once. A passport's request holds its session while the
    outbox and the evidence export open one more each, in turn: with every thread of the pool (40) in there at once,
    the connection pool (15 by default) ran dry and requests failed after 30 s. Half the pool never does."""
    limiter = state.extra.get("db_requests")
    if limiter is None:
        with _SETUP_LOCK:
            limiter = state.extra.get("db_requests")
            if limiter is None:
                pool = state.service.engine.pool
                size = pool.size() + int(getattr(pool, "_max_overflow", 0)) if isinstance(pool, QueuePool) else 16
                limiter = threading.BoundedSemaphore(max(1, size // 2))
                state.extra["db_requests"] = limiter
    assert isinstance(limiter, threading.BoundedSemaphore)
    return limiter


async def resolve_gtin(path: str, request: Request, state: StateDep) -> Response:
    return await _dispatch(request, state)


_DESCRIPTION = (
    "`/01/{gtin}[/22/{cpv}][/10/{lot}][/21/{serial}]` resolves (GET, HEAD, OPTIONS). After the key, "
    "`passport`, `passport.jsonld`, `qr.svg`, `qr.png`, `evidence`, `verification` (GET) and "
    "`return-requests` (POST) name the item's resources; `/01/{gtin}/product` the product page."
)
for _method in RESOLVER_METHODS:
    router.add_api_route(
        "/01/{path:path}",
        resolve_gtin,
        methods=[_method],
        operation_id=f"resolve_{_method.lower()}",
        summary="Resolve a GS1 Digital Link (GTIN), or one of its resources",
        description=_DESCRIPTION,
        response_model=None,
    )


def catch_all_router() -> APIRouter:
    """Compressed Digital Links (``/<base64>``) and every other unknown path: to be included last."""
    tail = APIRouter(tags=["resolver"])

    @tail.api_route("/{path:path}", methods=RESOLVER_METHODS, include_in_schema=False, response_model=None)
    async def resolve_compressed(path: str, request: Request, state: StateDep) -> Response:
        return await _dispatch(request, state)

    return tail


__all__ = [
    "CachedReadsMiddleware",
    "catch_all_router",
    "lookup",
    "preferred_type",
    "request_base",
    "resolver_headers",
    "router",
]
