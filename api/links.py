"""The links the resolver offers for a GTIN, an item or a lot, and their linkset (RFC 9264, GS1 linkset schema).

Every link has a target, a link type and a human-readable title; exactly one is the default (``gs1:defaultLink``).
Link types come from the GS1 Web Vocabulary; those of our own (``circ:evidenceBundle``, ``circ:qrCode``,
``circ:authorisedAccess``) live in our
link-type namespace (``api.gs1.linktypes.OWN_NS``), whose URIs the GS1 linkset schema admits as relation keys, so
they are in the linkset too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from .gs1.linktypes import gs1, own
from .models import Item, Lot, Product

HTML = "text/html"
JSONLD = "application/ld+json"
JSON = "application/json"
LINKSET = "application/linkset+json"
VC_JWT = "application/vc+jwt"  # a W3C Verifiable Credential secured as a compact JWS (the UNTP passport)


@dataclass(frozen=True)
class Link:
    rel: str  # the link type's full URI
    href: str
    title: str
    type: str | None = None
    hreflang: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"href": self.href, "title": self.title}
        if self.type:
            out["type"] = self.type
        if self.hreflang:
            out["hreflang"] = list(self.hreflang)
        return out


def _lang(product: Product) -> tuple[str, ...]:
    return (product.language,) if product.language else ()


def gtin_path(gtin14: str) -> str:
    return f"/01/{gtin14}"


def item_path(gtin14: str, serial: str) -> str:
    return f"/01/{gtin14}/21/{quote(serial, safe='')}"


def lot_path(gtin14: str, lot_number: str) -> str:
    return f"/01/{gtin14}/10/{quote(lot_number, safe='')}"


def product_links(base: str, product: Product) -> list[Link]:
    page = f"{base}{gtin_path(product.gtin)}/product"
    return [Link(gs1("pip"), page, f"{product.name} by {product.brand_name}", HTML, _lang(product))]


def gtin_links(base: str, product: Product) -> list[Link]:
    page = f"{base}{gtin_path(product.gtin)}/product"
    default = Link(gs1("defaultLink"), page, f"{product.name} by {product.brand_name}", HTML, _lang(product))
    return [default, *product_links(base, product)]


def item_links(base: str, product: Product, item: Item, canonical_uri: str) -> list[Link]:
    """The links of a registered item (and, walking up, of its product). `canonical_uri` names it in events."""
    path = item_path(product.gtin, item.serial)
    passport = f"{base}{path}/passport"
    lang = _lang(product)
    links = [
        Link(gs1("defaultLink"), passport, f"Product passport: {product.name}", HTML, lang),
        Link(gs1("dpp"), passport, f"Digital product passport: {product.name}", HTML, lang),
        Link(gs1("dpp"), passport + ".jsonld", f"Digital product passport (JSON-LD): {product.name}", JSONLD, lang),
        Link(
            gs1("dpp"),
            f"{base}{path}/credential",
            f"Digital product passport (UNTP verifiable credential, signed by the brand): {product.name}",
            VC_JWT,
            lang,
        ),
        Link(
            gs1("dpp"),
            f"{base}{path}/catenax",
            f"Digital product passport (Catena-X Generic Digital Product Passport 7.0.0): {product.name}",
            JSON,
            lang,
        ),
        Link(gs1("sustainabilityInfo"), passport + "#composition", "Materials and recycled content", HTML, lang),
        Link(
            gs1("traceability"),
            passport + "#provenance",
            "Provenance, lot by lot and generation by generation",
            HTML,
            lang,
        ),
        Link(gs1("instructions"), passport + "#care", "Care, repair and end-of-life instructions", HTML, lang),
        Link(gs1("serviceInfo"), passport + "#return", "How to return this item", HTML, lang),
        Link(
            gs1("epcis"),
            f"{base}/epcis/events?MATCH_anyEPC={quote(canonical_uri, safe='')}",
            "EPCIS events of this item",
            JSON,
        ),
        Link(
            gs1("verificationService"), f"{base}{path}/verification", "Verification of this item's ledger records", JSON
        ),
    ]
    # Certificates are an authority's data (``api/access.py``): the public linkset says that more exists instead.
    links += [
        Link(
            own("authorisedAccess"),
            passport,
            "More of this passport (supplier lots, per-lot masses, certificates) for repairers, recyclers and "
            "authorities: read it with their API key",
            HTML,
            lang,
        ),
        Link(
            own("evidenceBundle"),
            f"{base}{path}/evidence",
            "Evidence bundle (events, signatures, proofs): for authorities",
            JSON,
        ),
        Link(own("qrCode"), f"{base}{path}/qr.svg", "QR code of this item's Digital Link", "image/svg+xml"),
    ]
    return links + product_links(base, product)


def unknown_item_links(base: str, product: Product, serial: str) -> list[Link]:
    """Walk-up: an unregistered serial of a registered GTIN gets its product's links, and a page that says so."""
    page = f"{base}{item_path(product.gtin, serial)}/passport"
    title = f"Serial {serial} is not registered: {product.name}"
    return [Link(gs1("defaultLink"), page, title, HTML, _lang(product)), *product_links(base, product)]


def lot_links(base: str, product: Product, lot: Lot) -> list[Link]:
    path = lot_path(product.gtin, lot.lot_number)
    page = f"{base}{path}/passport"
    lang = _lang(product)
    links = [
        Link(gs1("defaultLink"), page, f"Material lot {lot.lot_number}", HTML, lang),
        Link(gs1("dpp"), page, f"Material lot passport: {lot.lot_number}", HTML, lang),
        Link(gs1("dpp"), page + ".jsonld", f"Material lot passport (JSON-LD): {lot.lot_number}", JSONLD, lang),
        Link(gs1("traceability"), page + "#provenance", "Provenance of this lot", HTML, lang),
        Link(
            gs1("epcis"),
            f"{base}/epcis/events?MATCH_anyEPCClass={quote(lot.uri, safe='')}",
            "EPCIS events of this lot",
            JSON,
        ),
    ]
    links.append(
        Link(
            own("authorisedAccess"),
            page,
            "More of this lot's passport (masses, origin, certificates) for repairers, recyclers and authorities",
            HTML,
            lang,
        )
    )
    return links + product_links(base, product)


def unknown_lot_links(base: str, product: Product, lot_number: str) -> list[Link]:
    page = f"{base}{lot_path(product.gtin, lot_number)}/passport"
    title = f"Lot {lot_number} is not registered: {product.name}"
    return [Link(gs1("defaultLink"), page, title, HTML, _lang(product)), *product_links(base, product)]


def linkset(anchor: str, description: str, links: list[Link]) -> dict[str, Any]:
    """The linkset document: one context object whose anchor is the request's uncompressed Digital Link."""
    entry: dict[str, Any] = {"anchor": anchor, "itemDescription": description}
    for link in links:
        entry.setdefault(link.rel, []).append(link.as_json())
    return {"linkset": [entry]}


__all__ = [
    "HTML",
    "JSON",
    "JSONLD",
    "LINKSET",
    "VC_JWT",
    "Link",
    "gtin_links",
    "item_links",
    "item_path",
    "linkset",
    "lot_links",
    "lot_path",
    "unknown_item_links",
    "unknown_lot_links",
]
