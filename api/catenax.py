"""A stored passport version as the Catena-X aspect ``urn:samm:io.catenax.generic.digital_product_passport:7.0.0``.

Rendered from a version's content as the reader's tier sees it (``api/access.py``), like every other format, and valid
against the vendored JSON Schema (``api/standards/catenax-dpp``, draft-04). Every required field carries what the data
says: the GTIN and the Digital Link among the identification codes, the serial, the materials with their recycled
share (from the lots' mass balance) and, to readers who may see them, their lots' certificates; the economic operator
and manufacturer from the brand's operator data; the dimensions and expected lifetime from the product's master
data. Where the model asks whether something applies that the data does not hold (imports, spare parts, substances of
concern, a recall) it says ``applicable: false`` and nothing more; lists the data has nothing for are empty. A version
whose product or brand lacks the master data the model requires has no Catena-X passport: :class:`CatenaxError`
names what to set.

Identifiers: ``passportIdentifier`` is a name-based UUID (RFC 9562 version 5) of the item's Digital Link, the same for
every version; ``metadata.version`` is the version's number; ``issueDate`` its date; ``expirationDate`` that date plus
the product's expected lifetime (the passport stays available as long as the product may be used);
``backupReference`` the version's anchored JSON-LD at the resolver.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from materials import UnknownMaterial
from materials import material as catalogue_material

from .access import Tier, restrict_envelope
from .links import item_path

ASPECT = "urn:samm:io.catenax.generic.digital_product_passport:7.0.0#DigitalProductPassport"
SPEC_VERSION = "urn:io.catenax.generic.digital_product_passport:7.0.0"
SCHEMA = Path(__file__).resolve().parent / "standards" / "catenax-dpp" / "DigitalProductPassport-schema.json"
NOT_APPLICABLE = {"applicable": False}


class CatenaxError(ValueError):
    """The version lacks master data the Catena-X model requires (the message names it)."""


@cache
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA.read_text())
    return loaded


def schema_errors(passport: Mapping[str, Any]) -> list[str]:
    """Where `passport` breaks the vendored schema (empty: valid)."""
    from jsonschema import Draft4Validator

    validator = Draft4Validator(schema())
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(passport)]


def passport_identifier(subject: str) -> str:
    """The passport's identifier: the name-based UUID of the item's Digital Link (every version shares it)."""
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, subject)}"


def _years_later(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February into a year without one
        return day.replace(year=day.year + years, day=28)


def _address(operator: Mapping[str, Any]) -> dict[str, Any]:
    thoroughfare: dict[str, Any] = {"value": operator["street"], "technicalKey": "STREET"}
    if operator.get("house_number"):
        thoroughfare["number"] = operator["house_number"]
    return {
        "thoroughfare": thoroughfare,
        "locality": {"value": operator["city"], "technicalKey": "CITY"},
        "country": {"shortName": operator["country"]},
        # the model's post codes are lower case (its pattern); post codes are read without regard to case
        "postCode": {"value": str(operator["post_code"]).lower(), "technicalKey": "REGULAR"},
    }


def _contact(operator: Mapping[str, Any]) -> dict[str, Any]:
    contact: dict[str, Any] = {"email": operator["email"]}
    if operator.get("phone"):
        contact["phoneNumber"] = operator["phone"]
    if operator.get("website"):
        contact["website"] = operator["website"]
    return contact


def _require(content: Mapping[str, Any], number: int) -> tuple[dict[str, Any], dict[str, Any]]:
    product = dict(content.get("product") or {})
    operator = content.get("operator")
    missing = [
        what
        for what, value in (
            ("the brand's operator data (PUT /api/v1/operator)", operator),
            ("an expected lifetime (lifespanYears)", product.get("lifespan_years")),
            ("a volume (volumeCm3)", product.get("volume_cm3")),
            ("a gross weight (grossWeightGrams)", product.get("gross_weight_grams")),
            ("a gross volume (grossVolumeCm3)", product.get("gross_volume_cm3")),
        )
        if not value
    ]
    if missing:
        raise CatenaxError(
            f"version {number} of this passport has no {', no '.join(missing)}: the Catena-X model requires them; "
            "the brand sets them in its master data, which makes a new version"
        )
    assert isinstance(operator, Mapping)
    return product, dict(operator)


def _materials(content: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The item's materials by material (code): share of its mass, recycled share of that material, identification
    (a CAS number where the catalogue has one), country of origin when one country, certificates when shown."""
    certificates: dict[str, list[str]] = {}
    for generation in content.get("generations") or []:
        if generation.get("current"):
            for lot in generation.get("lots") or []:
                if lot.get("lotId") and lot.get("certificates"):
                    certificates[str(lot["lotId"])] = [str(c) for c in lot["certificates"]]
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for part in content.get("materials") or []:
        groups.setdefault(str(part["material_code"]), []).append(part)
    out = []
    for code, parts in sorted(groups.items()):
        grams = sum(int(p["grams"]) for p in parts)
        share = sum(float(p["share"]) for p in parts)
        recycled = sum(int(p["grams"]) * float(p["recycled_share"]) for p in parts) / grams if grams else 0.0
        name = str(parts[0]["material"])
        try:
            found = catalogue_material(code)
            cas, family = found.cas, found.family
        except UnknownMaterial:
            cas, family = None, None
        entry: dict[str, Any] = {
            "materialIdentifications": (
                [{"materialName": name, "materialId": cas, "materialListTypeId": "CAS"}] if cas else []
            ),
            "recycled": round(recycled * 100, 2),
            "concentrationInformation": {
                "concentration": {"concentrationValue": round(share * 100, 2), "concentrationUnit": "unit:percent"}
            },
            "materialDocuments": [
                {"contentType": "URL", "header": f"Certificate of a lot of {name}", "content": certificate}
                for part in parts
                for certificate in certificates.get(str(part.get("lot_id")), [])
            ],
            "substancesOfConcernInformation": NOT_APPLICABLE,
            "declarableIngredient": NOT_APPLICABLE,
        }
        if family:
            entry["materialType"] = family
        countries = {p.get("origin_country") for p in parts}
        if len(countries) == 1 and None not in countries:
            entry["materialOrigin"] = countries.pop()
        out.append(entry)
    return out


def render(envelope: Mapping[str, Any], resolver_base_url: str, tier: Tier = Tier.PUBLIC) -> dict[str, Any]:
    """The Catena-X passport of a stored version (its envelope), as readers of `tier` see it. Raises
    :class:`CatenaxError` when the version lacks master data the model requires."""
    envelope = restrict_envelope(envelope, tier)
    content = envelope.get("content") or {}
    number = int(envelope["number"])
    product, operator = _require(content, number)
    item = content["item"]
    gtin, serial = str(item["gtin"]), str(item["serial"])
    subject = str(envelope.get("subject") or content["uri"])
    issued = date.fromisoformat(str(envelope["createdAt"])[:10])
    path = f"{resolver_base_url.rstrip('/')}{item_path(gtin, serial)}"
    names = [str(operator["name"])]
    category = product.get("category")
    return {
        "metadata": {
            "specVersion": SPEC_VERSION,
            "passportIdentifier": passport_identifier(subject),
            "version": str(number),
            "issueDate": issued.isoformat(),
            "lastModification": issued.isoformat(),
            "expirationDate": _years_later(issued, int(product["lifespan_years"])).isoformat(),
            "predecessor": NOT_APPLICABLE,
            "backupReference": f"{path}/passport.jsonld?version={number}",
            "registrationIdentifier": str(content["uri"]),
            "language": str(product.get("language") or "en"),
            "economicOperator": {
                "economicOperatorIdentification": operator["identifier"],
                "economicOperatorNames": names,
                "economicOperatorAddress": _address(operator),
                "economicOperatorContact": _contact(operator),
            },
        },
        "identification": {
            "codes": [
                {"key": "GTIN", "value": gtin, "description": "GS1 Global Trade Item Number"},
                {"key": "GS1 Digital Link", "value": str(content["uri"]), "description": "The item's GS1 Digital Link"},
            ],
            "serialInformation": [{"key": "partInstanceId", "value": serial}],
            "partTypeInformation": {"manufacturerPartId": gtin, "nameAtManufacturer": str(product["name"])},
            "partClassification": (
                [{"standard": "UN CPC Ver. 2.1", "id": str(category["code"]), "description": str(category["name"])}]
                if category
                else []
            ),
            "productImages": (
                [{"contentType": "URL", "header": str(product["name"]), "content": str(product["image_url"])}]
                if product.get("image_url")
                else []
            ),
            # the label's QR code carries the item's Digital Link; where on the product it sits is not recorded
            "dataCarriers": [{"carrierType": "QR", "carrierPositions": []}],
        },
        "operation": {
            "manufacturing": {
                "manufacturer": {
                    "manufacturerIdentification": operator["identifier"],
                    "manufacturerNames": names,
                    "manufacturerAddress": _address(operator),
                    "manufacturerContact": _contact(operator),
                },
                "facilities": [],
            },
            "import": NOT_APPLICABLE,
            "extendedProducerResponsibilityScheme": NOT_APPLICABLE,
        },
        "handling": NOT_APPLICABLE,
        "characteristics": {
            "physicalDimension": {
                "weight": {"value": float(item["mass_grams"]), "unit": "unit:gram"},
                "grossWeight": {"value": float(product["gross_weight_grams"]), "unit": "unit:gram"},
                "volume": {"value": float(product["volume_cm3"]), "unit": "unit:cubicCentimetre"},
                "grossVolume": {"value": float(product["gross_volume_cm3"]), "unit": "unit:cubicCentimetre"},
            },
            "lifespan": [
                {"lifeType": "technical lifetime", "lifeUnit": "unit:year", "lifeValue": int(product["lifespan_years"])}
            ],
        },
        "commercial": {"purpose": [], "recallInformation": NOT_APPLICABLE},
        "sustainability": {
            "productStatus": "waste" if content.get("closed") else "original",
            "productFootprint": {"carbon": []},
            "reusability": NOT_APPLICABLE,
            "recycleabilityPerformance": NOT_APPLICABLE,
        },
        "sources": [
            {
                "header": "Product passport, this version (JSON-LD, anchored on-chain)",
                "category": "Link to Databases or Systems",
                "contentType": "URL",
                "content": f"{path}/passport.jsonld?version={number}",
            },
            {
                "header": "Care, repair and end-of-life instructions",
                "category": "Instructions",
                "contentType": "URL",
                "content": f"{path}/passport?version={number}#care",
            },
        ],
        "compliances": [],
        "composition": {
            "componentInformation": NOT_APPLICABLE,
            "materialInformation": {"materials": _materials(content)},
        },
    }


def render_bytes(envelope: Mapping[str, Any], resolver_base_url: str, tier: Tier = Tier.PUBLIC) -> bytes:
    """:func:`render` as the bytes served and printed (compact JSON, UTF-8)."""
    body = render(envelope, resolver_base_url, tier)
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


__all__ = [
    "ASPECT",
    "SPEC_VERSION",
    "CatenaxError",
    "passport_identifier",
    "render",
    "render_bytes",
    "schema",
    "schema_errors",
]
