"""A stored passport version as a UN Transparency Protocol (UNTP 0.7.0) Digital Product Passport credential.

:func:`render` takes a version's document (``ledger/versions.py``'s envelope) and makes the W3C Verifiable
Credential 2.0 whose ``credentialSubject`` is the UNTP ``Product``, and its VC-JOSE-COSE form: a compact JWS
(``application/vc+jwt``) signed by the item's brand (``api/credentials.py``). The credential says only what the
version holds, and only what a passport shows the public: the product, its category, facility and country of
production, its materials by type and country of origin (mass fractions, recycled shares), its recycled content,
and links to the page and the evidence bundle. Lots, their numbers and masses, suppliers, certificates and signer
accounts stay out of it.

Every URL in it is under the configured resolver base URL (not the request's host), and Ed25519 signatures are
deterministic: a version renders to the same bytes from the resolver and from the command line, until its brand's
key rotates.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.settings import Settings
from materials import UnknownMaterial
from materials import material as catalogue_material

from .credentials import (
    VC_CONTEXT,
    CredentialError,
    StatusPublisher,
    brand_did,
    countries,
    sign,
    status_entry,
    status_index,
)
from .gs1.linktypes import GS1_NS, VOC_NS
from .links import HTML, JSON, JSONLD, item_path
from .models import Actor, Product

UNTP_CONTEXT = "https://vocabulary.uncefact.org/untp/0.7.0/context/"
CPC_SCHEME = {
    "schemeId": "https://unstats.un.org/unsd/classifications/Econ/cpc",
    "schemeName": "UN Central Product Classification (CPC) Ver. 2.1",
}
GTIN_SCHEME = {"type": ["IdentifierScheme"], "id": "https://id.gs1.org/01/", "name": "GS1 Global Trade Item Number"}
GLN_BASE = "https://id.gs1.org/414/"  # a GS1 Digital Link of a physical location's GLN
FIBRE_SCHEME = {
    "schemeId": "http://data.europa.eu/eli/reg/2011/1007/oj",
    "schemeName": "Regulation (EU) No 1007/2011, Annex I (textile fibre names)",
}
PLASTIC_SCHEME = {"schemeId": "urn:iso:std:iso:1043:-1", "schemeName": "ISO 1043-1 (plastics symbols)"}
RESOURCE = "credential"  # /01/<gtin>/21/<serial>/credential: the item's passport credential


@dataclass(frozen=True)
class UntpCredential:
    """A passport version as a UNTP credential: the credential (unsigned) and its signed ``vc+jwt`` form."""

    subject: str
    version: int
    credential: dict[str, Any]
    jwt: str


def credential_url(resolver_base_url: str, gtin: str, serial: str, version: int | None = None) -> str:
    url = f"{resolver_base_url.rstrip('/')}{item_path(gtin, serial)}/{RESOURCE}"
    return url if version is None else f"{url}?version={version}"


def _material_type(code: str) -> dict[str, Any] | None:
    """A material's UNTP ``materialType``: its entry in the classification its catalogue entry cites (the EU
    textile fibre names, or ISO 1043-1's plastics symbols); None for a code outside the catalogue."""
    try:
        found = catalogue_material(code)
    except UnknownMaterial:
        return None
    standard = found.standard
    if standard.startswith("EU 1007/2011 Annex I no. "):
        number = standard.removeprefix("EU 1007/2011 Annex I no. ").split(" ")[0]
        fibre = found.name.removeprefix("Recycled ").capitalize() if found.is_recovered else found.name
        return {"code": number, "name": fibre, **FIBRE_SCHEME}
    if standard.startswith("ISO 1043-1"):
        return {"code": found.code.removeprefix("r"), "name": found.name.removeprefix("Recycled "), **PLASTIC_SCHEME}
    return None


def _country(code: object) -> dict[str, str] | None:
    if not isinstance(code, str) or code.upper() != code or code not in countries():
        return None
    return {"countryCode": code, "countryName": countries()[code]}


def material_provenance(content: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The item's materials by material and country of origin (``origin_country``: a lot's origin when it is an
    ISO 3166-1 alpha-2 code): mass fraction, and the recycled share of that mass. A material whose lots name no
    country is left out (UNTP requires the country): the fractions listed then add up to less than one. Versions
    made before materials carried their country have none."""
    groups: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for part in content.get("materials") or []:
        country = _country(part.get("origin_country"))
        if country is None:
            continue
        groups.setdefault((str(part["material"]), str(part["material_code"]), country["countryCode"]), []).append(part)
    out = []
    for (name, code, country_code), parts in sorted(groups.items()):
        kind = _material_type(code)
        if kind is None:
            continue
        grams = sum(int(p["grams"]) for p in parts)
        share = sum(float(p["share"]) for p in parts)
        recycled = sum(int(p["grams"]) * float(p["recycled_share"]) for p in parts) / grams if grams else 0.0
        out.append(
            {
                "type": ["Material"],
                "name": name,
                "originCountry": _country(country_code),
                "materialType": kind,
                "massFraction": round(share, 4),
                "recycledMassFraction": round(recycled, 4),
            }
        )
    return out


def _require(content: Mapping[str, Any], number: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    product = content.get("product") or {}
    missing = [
        what
        for what, value in (
            ("a UN CPC category (categoryCode, categoryName)", product.get("category")),
            ("a facility (facilityGln, facilityName)", product.get("facility")),
            ("a country of production (productionCountry)", _country(product.get("production_country"))),
        )
        if not value
    ]
    if missing:
        raise CredentialError(
            f"version {number} of this passport has no {', no '.join(missing)}: UNTP requires them; the brand sets "
            "them in the product's master data, which makes a new version"
        )
    country = _country(product.get("production_country"))
    assert country is not None
    return dict(product["category"]), dict(product["facility"]), country


def unsigned(
    settings: Settings, envelope: Mapping[str, Any], brand: Actor, index: int
) -> dict[str, Any]:
    """The credential of a version (`envelope`), issued by `brand`, its status at `index` of the brand's list."""
    content = envelope.get("content") or {}
    number = int(envelope["number"])
    category, facility, country = _require(content, number)
    product = content["product"]
    item = content["item"]
    gtin, serial = str(item["gtin"]), str(item["serial"])
    root = settings.resolver_base_url.rstrip("/")
    path = f"{root}{item_path(gtin, serial)}"
    page = f"{path}/passport?version={number}"
    evidence = f"{path}/evidence"
    credential_id = credential_url(settings.resolver_base_url, gtin, serial, number)
    created = str(envelope["createdAt"])
    subject: dict[str, Any] = {
        "type": ["Product"],
        "id": str(content["uri"]),
        "name": str(product["name"]),
        **({"description": str(product["description"])} if product.get("description") else {}),
        "idScheme": GTIN_SCHEME,
        "idGranularity": "item",
        "itemNumber": serial,
        **(
            {"productImage": {"linkURL": product["image_url"], "linkName": f"{product['name']}: image"}}
            if product.get("image_url")
            else {}
        ),
        "productCategory": [{"code": category["code"], "name": category["name"], **CPC_SCHEME}],
        "relatedDocument": [
            {"linkURL": page, "linkName": "Product passport (this version)", "mediaType": HTML,
             "linkType": f"{GS1_NS}dpp"},
            {"linkURL": f"{path}/passport.jsonld?version={number}", "linkName": "Product passport (JSON-LD)",
             "mediaType": JSONLD, "linkType": f"{GS1_NS}dpp"},
            {"linkURL": evidence, "linkName": "Evidence bundle: signed events, Merkle proofs, on-chain anchors",
             "mediaType": JSON, "linkType": f"{VOC_NS}evidenceBundle"},
        ],
        "producedAtFacility": {
            "type": ["Facility"],
            "id": f"{GLN_BASE}{facility['gln']}",
            "name": facility["name"],
            "registeredId": facility["gln"],
        },
        "countryOfProduction": country,
        "dimensions": {"weight": {"value": int(item["mass_grams"]), "unit": "GRM"}},
    }
    materials = material_provenance(content)
    if materials:
        subject["materialProvenance"] = materials
    subject["performanceClaim"] = [
        {
            "type": ["Claim"],
            "id": f"{credential_id}#recycled-content",
            "name": "Recycled content",
            "description": "Share of the item's mass that is recycled material, from the mass balance of its lots "
            "and their recycling, generation by generation, as recorded in anchored events.",
            "referenceCriteria": [
                {"type": ["Criterion"], "id": f"{VOC_NS}recycledContent", "name": "Recycled content by mass"}
            ],
            "claimDate": created[:10],
            "claimedPerformance": [
                {
                    "metric": {
                        "type": ["PerformanceMetric"],
                        "id": f"{VOC_NS}recycledContent",
                        "name": "recycled content (share of mass)",
                    },
                    "measure": {"value": round(float(content.get("recycled") or 0.0) * 100, 2), "unit": "P1"},
                }
            ],
            "evidence": [{"linkURL": evidence, "linkName": "Evidence bundle", "mediaType": JSON}],
            "conformityTopic": [
                {"type": ["ConformityTopic"], "id": f"{VOC_NS}circularity", "name": "Circularity: recycled content"}
            ],
        }
    ]
    return {
        "@context": [VC_CONTEXT, UNTP_CONTEXT],
        "type": ["DigitalProductPassport", "VerifiableCredential"],
        "id": credential_id,
        "issuer": {"type": ["CredentialIssuer"], "id": brand_did(settings.resolver_base_url, brand.id),
                   "name": brand.name},
        "validFrom": created,
        "name": f"Digital product passport: {product['name']}, serial {serial} (version {number})",
        "credentialStatus": status_entry(settings, brand.id, index),
        "credentialSubject": subject,
    }


def _envelope(document: str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(document, str):
        try:
            parsed = json.loads(document)
        except ValueError:
            raise CredentialError("the stored passport version is not JSON") from None
        if not isinstance(parsed, dict):
            raise CredentialError("the stored passport version is not a JSON object")
        return parsed
    return document


def render(
    session: Session,
    settings: Settings,
    document: str | Mapping[str, Any],
    publisher: Callable[[Actor], StatusPublisher | None] | None = None,
) -> UntpCredential:
    """A stored passport version (its document: the envelope, as text or parsed) as a UNTP credential signed by
    the item's brand. The item's place in its brand's status list is allocated the first time, in a transaction of
    its own (committed whatever the caller's session does next), published first with `publisher`'s answer for the
    brand (the archive's status record, what a rebuild gives the item back). Raises :class:`CredentialError` when
    the version lacks what UNTP requires, or its brand has no key."""
    envelope = _envelope(document)
    content = envelope.get("content") or {}
    item = content.get("item") or {}
    gtin = str(item.get("gtin", ""))
    product = session.get(Product, gtin)
    brand = session.get(Actor, product.brand_id) if product is not None else None
    if brand is None:
        raise CredentialError(f"GTIN {gtin or '?'} has no brand: no credential can be issued")
    subject = str(envelope.get("subject", ""))
    with Session(session.get_bind()) as own, own.begin():
        index = status_index(own, subject, brand.id, publisher(brand) if publisher is not None else None)
    credential = unsigned(settings, envelope, brand, index)
    return UntpCredential(subject, int(envelope["number"]), credential, sign(settings, session, brand, credential))


def brand_of(session: Session, gtin: str) -> Actor | None:
    product = session.scalar(select(Product).where(Product.gtin == gtin))
    return session.get(Actor, product.brand_id) if product is not None else None


__all__ = [
    "RESOURCE",
    "UNTP_CONTEXT",
    "UntpCredential",
    "brand_of",
    "credential_url",
    "material_provenance",
    "render",
    "unsigned",
]
