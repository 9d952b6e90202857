"""The GS1-conformant resolver: one test (at least) per statement of GS1-Conformant Resolver Standard 1.2
(``api/standards/gs1-resolver/conformance-statements.txt``), plus walk-up, content negotiation and the description file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from api.gs1.linktypes import GS1_NS, OWN_LINK_TYPES, OWN_NS, gs1_link_types
from api.models import UnknownScan
from api.reads import VersionStore
from api.scans import scans_for
from tests.conftest import standards_dir

from .conftest import GTIN_A, GTIN_A_LOTS, GTIN_UNKNOWN, RESOLVER, World

ROOT = Path(__file__).resolve().parents[2]
RESOLVER_STANDARDS = standards_dir() / "gs1-resolver"
HOST = RESOLVER  # every link is built from the configured base, whatever Host the client sent


def _schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((RESOLVER_STANDARDS / name).read_text())
    return schema


def assert_valid_linkset(body: dict[str, Any]) -> None:
    jsonschema.Draft7Validator(_schema("gs1-linkset-schema.json")).validate(body)


@pytest.fixture(scope="module")
def catalog(world: World) -> dict[str, Any]:
    """A product with master data, a lot (with a certificate) and an item made from it."""
    response = world.client.put(
        f"/api/v1/products/{GTIN_A}",
        json={
            "name": "Organic T-shirt",
            "description": "A plain T-shirt.",
            "care": "Wash at 30 °C.",
            "repair": "Darn small holes.",
            "endOfLife": "Return it for recycling.",
            "returnInfo": "Drop it at any collection point.",
        },
        headers=world.auth("brand"),
    )
    assert response.status_code == 200, response.text
    lot = world.lot(certificates=["https://certs.example/gots/123"], origin="Turkey")
    item = world.item([(lot["lotId"], 180)])
    return {"lot": lot, "item": item, "path": f"/01/{GTIN_A}/21/{item['serial']}"}


def get(world: World, path: str, **headers: str) -> Any:
    return world.client.get(path, headers=headers, follow_redirects=False)


# -- SHALL support HTTP 1.1 (or higher) GET, HEAD and OPTIONS requests. -------------------------------------------
def test_get_head_and_options_are_supported(world: World, catalog: dict[str, Any]) -> None:
    assert get(world, catalog["path"]).status_code == 307
    head = world.client.head(catalog["path"], follow_redirects=False)
    assert head.status_code == 307 and head.headers["location"].endswith("/passport")
    options = world.client.options(catalog["path"])
    assert options.status_code == 204
    assert set(options.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "OPTIONS"}


# -- SHALL support HTTP Over TLS (HTTPS) ---------------------------------------------------------------------------
def test_links_name_the_configured_base_behind_a_tls_proxy_too(world: World, catalog: dict[str, Any]) -> None:
    # A TLS-terminating proxy forwards plain http with the public host: the links are the configured https base's.
    proxied = {"X-Forwarded-Proto": "http", "Host": "localhost:8000"}
    response = get(world, catalog["path"] + "?linkType=linkset", **proxied)
    anchor = response.json()["linkset"][0]["anchor"]
    assert anchor == f"{RESOLVER}{catalog['path']}"
    redirect = get(world, catalog["path"], **proxied)
    assert redirect.headers["location"].startswith(f"{RESOLVER}/")
    assert f"<{RESOLVER}/" in redirect.headers["link"]


# -- SHALL support CORS ------------------------------------------------------------------------------------------------
def test_cors(world: World, catalog: dict[str, Any]) -> None:
    response = get(world, catalog["path"], Origin="https://shop.example")
    assert response.headers["access-control-allow-origin"] == "*"
    assert "link" in response.headers["access-control-expose-headers"].lower()
    preflight = world.client.options(
        catalog["path"], headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "GET"}
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"


# -- SHALL be able to decompress a URI (GS1 Digital Link: Compression) ---------------------------------------------
def _compressed(uri: str) -> str:
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "digital-link.js").exists():
        pytest.skip("node and node_modules/digital-link.js make the compressed vectors")
    out = subprocess.run(
        [node, str(Path(__file__).with_name("dl_vectors.js"))],
        input=json.dumps([uri]),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    compressed: str = json.loads(out.stdout)[0]["compressed"]
    return compressed[len(RESOLVER) :]


def test_compressed_links_are_decompressed(world: World, catalog: dict[str, Any]) -> None:
    path = _compressed(RESOLVER + catalog["path"])
    plain, compressed = get(world, catalog["path"]), get(world, path)
    assert compressed.status_code == 307
    assert compressed.headers["location"] == plain.headers["location"]


# -- If handling a compressed request URI, it SHALL expose the uncompressed URI as Link rel=owl:sameAs ----------------
def test_compressed_links_expose_the_uncompressed_uri(world: World, catalog: dict[str, Any]) -> None:
    path = _compressed(RESOLVER + catalog["path"])
    response = get(world, path)
    assert f'<{HOST}{catalog["path"]}>; rel="owl:sameAs"' in response.headers["link"]
    linkset = get(world, path + "?linkType=linkset").json()
    assert linkset["linkset"][0]["anchor"] == HOST + catalog["path"]  # the uncompressed URI is the subject


# -- SHALL extract and syntactically validate the URI and report errors with 400 ---------------------------------------
@pytest.mark.parametrize(
    "path",
    [
        "/01/09506000134353/21/S1",  # check digit
        "/01/950600013435/21/S1",  # 12 digits, bad check digit
        "/01/ABCDEFGHIJKLMN",  # not digits
        "/01/09506000134352/21/" + "X" * 21,  # serial too long
        "/01/09506000134352/21/a%20b",  # space is not in character set 82
        "/01/09506000134352/99/x",  # not a key qualifier of a GTIN
        "/01/09506000134352/21/S1/10/L1",  # qualifiers out of order
        "/01/09506000134352/21",  # value missing
        "/01",  # GTIN missing
        "/42/123",  # not a primary key
    ],
)
def test_syntax_errors_are_400(world: World, path: str) -> None:
    response = get(world, path)
    assert response.status_code == 400, path
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 400


# -- SHALL NOT use a 200 OK response code with a resource that indicates an error condition ----------------------------
def test_errors_are_never_200(world: World, catalog: dict[str, Any]) -> None:
    cases = {
        f"/01/{GTIN_UNKNOWN}": 404,
        f"/01/{GTIN_UNKNOWN}/21/S1": 404,
        f"/01/{GTIN_UNKNOWN}/21/S1?linkType=linkset": 404,
        catalog["path"] + "?linkType=gs1:recipeInfo": 404,
        catalog["path"] + "?linkType=gs1:noSuchType": 404,
        "/00/106141412345678908": 404,
        "/01/09506000134353": 400,
    }
    for path, status in cases.items():
        response = get(world, path, Accept="application/linkset+json")
        assert response.status_code == status, path
        assert response.headers["content-type"] == "application/problem+json", path


# -- SHALL respond to linkType=all with the links available (linkset), up to the primary key, uncompressed subject -----
@pytest.mark.parametrize("ask", ["?linkType=all", "?linkType=linkset", "accept"])
def test_linkset(world: World, catalog: dict[str, Any], ask: str) -> None:
    if ask == "accept":
        response = get(world, catalog["path"], Accept="application/linkset+json")
    else:
        response = get(world, catalog["path"] + ask)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/linkset+json")
    body = response.json()
    assert_valid_linkset(body)
    entry = body["linkset"][0]
    assert entry["anchor"] == HOST + catalog["path"]
    assert "Organic T-shirt" in entry["itemDescription"]
    assert GS1_NS + "pip" in entry  # the GTIN's own links are included (each level up to the primary key)
    assert GS1_NS + "dpp" in entry
    # certificates are an authority's (api/access.py): the public linkset says that more exists instead
    assert GS1_NS + "certificationInfo" not in entry and OWN_NS + "authorisedAccess" in entry
    # our own link types are in it too: their namespace's URIs are keys the GS1 linkset schema admits
    assert OWN_NS + "evidenceBundle" in entry and OWN_NS + "qrCode" in entry
    assert entry[OWN_NS + "evidenceBundle"][0]["href"] == HOST + catalog["path"] + "/evidence"


# -- SHOULD: the linkset names its JSON-LD context in a Link header (JSON-LD 1.1, 6.1) --------------------------------
def test_linkset_names_its_json_ld_context(world: World, catalog: dict[str, Any]) -> None:
    response = get(world, catalog["path"] + "?linkType=linkset")
    context_link = f'<{HOST}/contexts/linkset.jsonld>; rel="http://www.w3.org/ns/json-ld#context"; ' \
        'type="application/ld+json"'
    assert context_link in response.headers["link"]
    assert f'<{HOST}{catalog["path"]}?linkType=linkset>; rel="linkset"' in response.headers["link"]
    context = world.client.get("/contexts/linkset.jsonld")
    assert context.status_code == 200 and context.headers["content-type"].startswith("application/ld+json")
    terms = context.json()["@context"]
    vendored = json.loads((RESOLVER_STANDARDS / "linksetContext.jsonld").read_text())["@context"]
    assert {k: v for k, v in terms.items() if k != "circ"} == vendored  # GS1's context, and our link types' prefix
    assert terms["circ"] == OWN_NS
    # a redirect carries no context: only the linkset is a JSON-LD document
    assert "json-ld#context" not in get(world, catalog["path"]).headers["link"]


def test_linkset_of_a_gtin_and_of_a_lot(world: World, catalog: dict[str, Any]) -> None:
    for path in (f"/01/{GTIN_A}", f"/01/{GTIN_A_LOTS}/10/{catalog['lot']['lotNumber']}"):
        body = get(world, path + "?linkType=linkset").json()
        assert_valid_linkset(body)
        assert body["linkset"][0]["anchor"] == HOST + path


# -- SHOULD expose the linkset in an HTTP Link header, even when redirecting -------------------------------------------
def test_link_header_on_every_answer(world: World, catalog: dict[str, Any]) -> None:
    expected = f'<{HOST}{catalog["path"]}?linkType=linkset>; rel="linkset"'
    answers = [
        get(world, catalog["path"]),
        get(world, catalog["path"] + "?linkType=gs1:pip"),
        get(world, catalog["path"] + "?linkType=linkset"),
        get(world, catalog["path"] + "?linkType=gs1:recipeInfo"),
        world.client.options(catalog["path"]),
        world.client.head(catalog["path"], follow_redirects=False),
    ]
    for response in answers:
        assert expected in response.headers["link"], response.status_code


# -- SHALL recognise one available link as the default -----------------------------------------------------------------
def test_exactly_one_default_link(world: World, catalog: dict[str, Any]) -> None:
    entry = get(world, catalog["path"] + "?linkType=all").json()["linkset"][0]
    assert len(entry[GS1_NS + "defaultLink"]) == 1
    default = entry[GS1_NS + "defaultLink"][0]["href"]
    assert get(world, catalog["path"]).headers["location"] == default


# -- All links SHALL include the target URL, the link type and a human-readable title ----------------------------------
def test_links_have_target_type_and_title(world: World, catalog: dict[str, Any]) -> None:
    entry = get(world, catalog["path"] + "?linkType=all").json()["linkset"][0]
    for rel, links in entry.items():
        if rel in ("anchor", "itemDescription"):
            continue
        assert rel.startswith((GS1_NS, OWN_NS))
        for link in links:
            assert link["href"].startswith("http") and link["title"].strip()


# -- SHALL redirect to the default link unless the request can be better matched ---------------------------------------
def test_default_redirect_and_better_matches(world: World, catalog: dict[str, Any]) -> None:
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    assert get(world, catalog["path"], Accept=browser).headers["location"].endswith("/passport")
    assert get(world, catalog["path"]).headers["location"].endswith("/passport")
    jsonld = get(world, catalog["path"], Accept="application/ld+json")
    assert jsonld.status_code == 307 and jsonld.headers["location"].endswith("/passport.jsonld")
    followed = world.client.get(catalog["path"], headers={"Accept": "application/ld+json"})
    assert followed.headers["content-type"].startswith("application/ld+json")
    assert followed.json()["@id"] == f"{RESOLVER}{catalog['path']}"
    # gs1:dpp has an HTML and a JSON-LD link: Accept picks one
    dpp = get(world, catalog["path"] + "?linkType=gs1:dpp", Accept="application/ld+json")
    assert dpp.headers["location"].endswith("/passport.jsonld")


# -- SHALL redirect to the requested linkType if available -------------------------------------------------------------
@pytest.mark.parametrize(
    ("link_type", "ending"),
    [
        ("gs1:dpp", "/passport"),
        ("gs1:pip", "/product"),
        ("gs1:sustainabilityInfo", "/passport#composition"),
        ("gs1:instructions", "/passport#care"),
        ("gs1:serviceInfo", "/passport#return"),
        ("gs1:traceability", "/passport#provenance"),
        ("gs1:verificationService", "/verification"),
        ("circ:authorisedAccess", "/passport"),
        ("https://gs1.org/voc/pip", "/product"),
        ("circ:evidenceBundle", "/evidence"),
        ("circ:qrCode", "/qr.svg"),
    ],
)
def test_redirect_to_the_requested_link_type(
    world: World, catalog: dict[str, Any], link_type: str, ending: str
) -> None:
    response = get(world, f"{catalog['path']}?linkType={link_type}")
    assert response.status_code == 307
    assert response.headers["location"].endswith(ending)


def test_epcis_link_type(world: World, catalog: dict[str, Any]) -> None:
    location = get(world, catalog["path"] + "?linkType=gs1:epcis").headers["location"]
    assert "/epcis/events?MATCH_anyEPC=" in location
    assert world.client.get(location).status_code == 401  # the query interface answers actors only
    body = world.client.get(location, headers=world.auth("brand")).json()  # the item's brand
    events = body["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert any(f"{RESOLVER}{catalog['path']}" in e.get("outputEPCList", []) for e in events)


def test_unavailable_link_type_is_404(world: World, catalog: dict[str, Any]) -> None:
    response = get(world, catalog["path"] + "?linkType=gs1:recipeInfo")
    assert response.status_code == 404
    assert "gs1:dpp" in response.json()["availableLinkTypes"]


# -- SHALL pass on all key=value pairs of the query string when redirecting --------------------------------------------
def test_query_string_is_passed_on(world: World, catalog: dict[str, Any]) -> None:
    location = get(world, catalog["path"] + "?utm_source=label&17=261231").headers["location"]
    assert location.endswith("/passport?utm_source=label&17=261231")
    typed = get(world, catalog["path"] + "?linkType=gs1:instructions&utm_source=label").headers["location"]
    assert typed.endswith("/passport?utm_source=label#care")


# -- SHALL provide a resolver description file at /.well-known/gs1resolver ---------------------------------------------
def test_description_file(world: World) -> None:
    response = world.client.get("/.well-known/gs1resolver")
    assert response.status_code == 200
    body = response.json()
    jsonschema.Draft7Validator(
        _schema("description-file-schema.json"), format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    ).validate(body)
    assert body["supportedPrimaryKeys"] == ["01"]
    assert {"namespace": OWN_NS, "prefix": "circ:"} in body["supportedLinkType"]


# -- SHALL recognise the GS1 Web vocabulary; other namespaces SHALL NOT duplicate GS1 link types -----------------------
def test_link_types_come_from_the_gs1_vocabulary(world: World, catalog: dict[str, Any]) -> None:
    vocabulary = json.loads((RESOLVER_STANDARDS / "linktypes.json").read_text())
    assert set(gs1_link_types()) == set(vocabulary)
    entry = get(world, catalog["path"] + "?linkType=all").json()["linkset"][0]
    for rel in entry:
        if rel not in ("anchor", "itemDescription") and not rel.startswith(OWN_NS):
            assert rel.removeprefix(GS1_NS) in vocabulary
    assert not set(OWN_LINK_TYPES) & set(vocabulary)
    assert "recyclingInfo" not in vocabulary  # no made-up GS1 types


# -- Redirections based on a company prefix SHALL be annotated gs1:handledBy -------------------------------------------
def test_no_unannotated_prefix_redirects(world: World) -> None:
    """We never hand a GTIN on to another resolver by its company prefix: an unregistered GTIN under a known prefix
    is a 404 here, not a redirect (so no gs1:handledBy annotation is ever due)."""
    response = get(world, f"/01/{GTIN_UNKNOWN}")
    assert response.status_code == 404 and "location" not in response.headers


# -- SHOULD tolerate trailing slashes ----------------------------------------------------------------------------------
def test_trailing_slash_is_tolerated(world: World, catalog: dict[str, Any]) -> None:
    assert get(world, catalog["path"] + "/").headers["location"] == get(world, catalog["path"]).headers["location"]
    assert get(world, f"/01/{GTIN_A}/").status_code == 307


# -- walk-up -----------------------------------------------------------------------------------------------------------
def test_unknown_serial_walks_up_and_is_recorded(world: World, catalog: dict[str, Any]) -> None:
    serial = world.unique("FAKE")
    path = f"/01/{GTIN_A}/21/{serial}"
    response = get(world, path, **{"User-Agent": "scanner/1.0"})
    assert response.status_code == 307
    page = world.client.get(response.headers["location"])
    assert page.status_code == 404 and "text/html" in page.headers["content-type"]
    assert "not registered" in page.text and "counterfeit" in page.text and "Organic T-shirt" in page.text
    linkset = get(world, path + "?linkType=linkset").json()
    assert_valid_linkset(linkset)
    assert GS1_NS + "pip" in linkset["linkset"][0] and GS1_NS + "dpp" not in linkset["linkset"][0]
    scans_for(world.client.app.state.circular).flush()  # scans are written in batches (api/scans.py)
    with world.service.sessions() as session:
        scans = list(session.scalars(select(UnknownScan).where(UnknownScan.value == serial)))
    assert len(scans) == 2 and scans[0].gtin == GTIN_A and scans[0].ai == "21"
    assert scans[0].user_agent == "scanner/1.0"


def test_unknown_lot_walks_up(world: World, catalog: dict[str, Any]) -> None:
    response = get(world, f"/01/{GTIN_A_LOTS}/10/NOPE")
    assert response.status_code == 307
    assert world.client.get(response.headers["location"]).status_code == 404


def test_a_serial_holding_a_slash_resolves(world: World, catalog: dict[str, Any]) -> None:
    response = world.post(
        "/api/v1/items",
        "brand",
        {"gtin": GTIN_A, "serial": "A/B%1", "composition": [{"lotId": catalog["lot"]["lotId"], "grams": 10}]},
    )
    assert response.status_code in (201, 409), response.text
    redirect = get(world, f"/01/{GTIN_A}/21/A%2FB%251")
    assert redirect.headers["location"] == f"{HOST}/01/{GTIN_A}/21/A%2FB%251/passport"
    assert world.client.get(redirect.headers["location"]).status_code == 200


def test_resolution_is_one_query_and_no_chain_call(
    world: World, catalog: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import event

    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    def no_chain(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("resolution called the chain")

    monkeypatch.setattr(world.service.backend.web3.provider, "make_request", no_chain)
    # The scan's fast path (api/routes/resolver.py) asks the passport store, on its own connection, not the engine.
    original = VersionStore._fetch

    def fetch(store: VersionStore, sql: str, *args: Any, **kwargs: Any) -> Any:
        statements.append(sql)
        return original(store, sql, *args, **kwargs)

    monkeypatch.setattr(VersionStore, "_fetch", fetch)
    event.listen(world.service.engine, "before_cursor_execute", count)
    try:
        assert get(world, catalog["path"]).status_code == 307
    finally:
        event.remove(world.service.engine, "before_cursor_execute", count)
    # One query at most: a scan of an item already known to be registered is answered from memory.
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) <= 1
    assert not [s for s in statements if not s.lstrip().upper().startswith("SELECT")]  # and nothing written


# -- robustness --------------------------------------------------------------------------------------------------------
_SEGMENT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=24).map(
    lambda s: quote(s, safe="")
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    segments=st.lists(st.one_of(_SEGMENT, st.sampled_from(["01", "21", "10", "22", GTIN_A, "passport"])), max_size=7),
    query=st.sampled_from(["", "?linkType=all", "?linkType=gs1:pip", "?linkType=%ZZ", "?a=1&&b"]),
)
def test_no_path_is_a_server_error(sqlite_world: World, segments: list[str], query: str) -> None:
    response = sqlite_world.client.get("/" + "/".join(segments) + query, follow_redirects=False)
    assert response.status_code < 500, (segments, query, response.text)
    if response.status_code >= 400:
        assert response.headers["content-type"] in ("application/problem+json", "text/html; charset=utf-8")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    segment=st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=40
    )
)
def test_no_compressed_segment_is_a_server_error(sqlite_world: World, segment: str) -> None:
    response = sqlite_world.client.get("/" + segment, follow_redirects=False)
    assert response.status_code in (307, 400, 404), (segment, response.text)
