"""Who sees which field of a passport: the one place that decides, for every format (page, JSON-LD, Catena-X, UNTP).

The EU rules give passport data three audiences (ESPR Art 11, Battery Regulation Art 77(2)): the public; persons
with a legitimate interest (repairers, remanufacturers, recyclers); and authorities. Each field of a stored passport
version (:func:`api.passport.passport_content`) has one audience in :data:`FIELDS`, with the reason for each
restricted one (``docs/passport-data.md`` is the same table, for people). A reader's tier is decided by
:func:`tier_for` from the actor holding the API key (none: the public).

:func:`restrict` keeps of a version's content what a tier may see. It fails closed: a field the table does not name
is an authority's only, and a string that is an account address (a signer's) is an authority's only wherever it
appears. Every rendering is made from the restricted content, so one rule holds in every format.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .models import Actor, ActorRole


class Tier(enum.StrEnum):
    """An audience of passport data, from the widest to the narrowest."""

    PUBLIC = "public"
    LEGITIMATE_INTEREST = "legitimate-interest"
    AUTHORITY = "authority"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def sees(self, audience: Tier) -> bool:
        """Whether readers of this tier see data meant for `audience`."""
        return self.rank >= audience.rank


_RANK = {Tier.PUBLIC: 0, Tier.LEGITIMATE_INTEREST: 1, Tier.AUTHORITY: 2}
PUBLIC, LEGITIMATE, AUTHORITY = Tier.PUBLIC, Tier.LEGITIMATE_INTEREST, Tier.AUTHORITY

# Roles whose key shows legitimate-interest data: those who repair, remanufacture or recycle the product.
LEGITIMATE_ROLES = frozenset({ActorRole.RECYCLER.value, ActorRole.REPAIRER.value})


def tier_for(actor: Actor | None, owner_id: int | None = None) -> Tier:
    """The tier of a reader: the public without a key; a recycler's or repairer's key: legitimate interest; an
    authority's key, the operator's (admin) and the owner of the data (an item's brand, a lot's owner): everything.
    A retailer, another brand: the public's view."""
    if actor is None or actor.revoked:
        return PUBLIC
    if actor.role in (ActorRole.AUTHORITY.value, ActorRole.ADMIN.value):
        return AUTHORITY
    if owner_id is not None and actor.id == owner_id:
        return AUTHORITY
    if actor.role in LEGITIMATE_ROLES:
        return LEGITIMATE
    return PUBLIC


def parse_tier(value: str) -> Tier:
    """A tier by its name (``public``, ``legitimate-interest``, ``authority``); ValueError naming the choices."""
    try:
        return Tier(value)
    except ValueError:
        raise ValueError(f"a tier is one of {', '.join(t.value for t in Tier)}, not {value!r}") from None


@dataclass(frozen=True)
class Field:
    """One field of a passport's content: where it sits (a group of :data:`SHAPE`), who sees it, and why."""

    group: str
    name: str
    audience: Tier
    reason: str = ""


_SUPPLIER = "names the supplier's lot: who supplied whom, which a competitor must not read off a label"
_LOT_MASS = "a whole lot's mass is a supplier's production volume, commercially confidential"
_CERTS = "certificates are a supplier's audit documents (and name its facilities): for market surveillance"
_ORIGIN = "free text that can name a supplier's facility, not only a country"
_RECYCLER = "names the recycler that recovered a lot: a business relationship"
_GRAMS = "how much of a lot went where: per-lot masses that add up to a supplier's volumes"
_SERIALS = "the serial numbers of other people's items"
_ACTOR = "names the business that recorded a step (a retailer, a repairer): a relationship of the brand's"

FIELDS: tuple[Field, ...] = (
    # the passport
    Field("", "uri", PUBLIC),
    Field("", "product", PUBLIC),
    Field("", "operator", PUBLIC),
    Field("", "item", PUBLIC),
    Field("", "state", PUBLIC),
    Field("", "closed", PUBLIC),
    Field("", "received", PUBLIC),
    Field("", "became", PUBLIC),
    Field("", "materials", PUBLIC),
    Field("", "recycled", PUBLIC),
    Field("", "generations", PUBLIC),
    Field("", "timeline", PUBLIC),
    # the product's master data: what the brand publishes
    *(
        Field("product", name, PUBLIC)
        for name in (
            "gtin", "name", "brand_name", "description", "language", "image_url", "care", "repair", "end_of_life",
            "return_info",
        )
    ),
    # what a UNTP credential needs of the product: its category, the brand's production facility (ESPR Annex III
    # lists a product's unique facility identifiers among its passport's information) and the country of production
    *(Field("product", name, PUBLIC) for name in ("category", "facility", "production_country")),
    *(
        Field("product", name, PUBLIC)
        for name in ("lifespan_years", "volume_cm3", "gross_weight_grams", "gross_volume_cm3")
    ),
    *(Field("category", name, PUBLIC) for name in ("code", "name")),
    # the brand as the economic operator placing the product on the market: who answers for it, as its label says
    *(
        Field("operator", name, PUBLIC)
        for name in (
            "identifier", "name", "street", "house_number", "post_code", "city", "country", "email", "phone", "website",
        )
    ),
    *(Field("facility", name, PUBLIC) for name in ("gln", "name")),
    # the item
    *(Field("item", name, PUBLIC) for name in ("gtin", "serial", "item_id", "mass_grams", "state")),
    # its materials, one entry per lot it is made of
    *(
        Field("material", name, PUBLIC)
        for name in (
            "material", "material_code", "grams", "share", "recycled_share", "recovered", "color", "dash", "offset",
        )
    ),
    Field("material", "origin_country", PUBLIC),  # a country, as a label's "made in" says; free text stays below
    Field("material", "lot_id", LEGITIMATE, _SUPPLIER),
    Field("material", "lot_uri", LEGITIMATE, _SUPPLIER),
    Field("material", "lot_number", LEGITIMATE, _SUPPLIER),
    # provenance, generation by generation
    *(Field("generation", name, PUBLIC) for name in ("index", "current", "lots", "source_items", "recycled_into")),
    *(Field("source", name, PUBLIC) for name in ("gtin", "product", "brand", "count")),
    Field("source", "serials", LEGITIMATE, _SERIALS),
    # a lot, wherever the passport shows one (provenance, what a recycled item became)
    *(Field("lot", name, PUBLIC) for name in ("material", "materialCode", "recycledShare", "recovered")),
    Field("lot", "lotId", LEGITIMATE, _SUPPLIER),
    Field("lot", "uri", LEGITIMATE, _SUPPLIER),
    Field("lot", "lotNumber", LEGITIMATE, _SUPPLIER),
    Field("lot", "gtin", LEGITIMATE, _SUPPLIER),
    Field("lot", "origin", LEGITIMATE, _ORIGIN),
    Field("lot", "recycler", LEGITIMATE, _RECYCLER),
    Field("lot", "grams", LEGITIMATE, _GRAMS),
    Field("lot", "fromItems", LEGITIMATE, "how many items a recycler recovered a lot from: its volumes"),
    Field("lot", "massGrams", AUTHORITY, _LOT_MASS),
    Field("lot", "certificates", AUTHORITY, _CERTS),
    # the lifecycle, step by step
    *(
        Field("event", name, PUBLIC)
        for name in (
            "event_id", "time", "label", "biz_step", "disposition", "anchoring", "tx_hash", "third_party",
            "correction", "corrective",
        )
    ),
    Field("event", "actor", LEGITIMATE, _ACTOR),
    # the step that took a returned item in, while that is where it stands: who received it is where the consumer
    # brought it (a collection point, published anyway), which the consumer's own page must say
    *(
        Field("intake", name, PUBLIC)
        for name in (
            "event_id", "time", "label", "biz_step", "disposition", "anchoring", "tx_hash", "third_party", "actor",
            "correction", "corrective",
        )
    ),
    # a correction of a lot's master data (on the lot's passport): what it said before and since are lot fields
    *(Field("change", name, PUBLIC) for name in ("changedAt", "reason", "declarationId", "previous", "current")),
    Field("change", "by", LEGITIMATE, _ACTOR),
    *(
        Field("correction", name, PUBLIC)
        for name in ("reason", "declared_at", "corrective_event_ids", "declaration_id")
    ),
    Field("correction", "by", LEGITIMATE, _ACTOR),
)

# Which group the members of a group's field belong to (a list's elements, or an object).
SHAPE: dict[tuple[str, str], str] = {
    ("", "product"): "product",
    ("product", "category"): "category",
    ("product", "facility"): "facility",
    ("", "operator"): "operator",
    ("", "item"): "item",
    ("", "received"): "intake",
    ("", "became"): "lot",
    ("", "materials"): "material",
    ("", "generations"): "generation",
    ("", "timeline"): "event",
    ("generation", "lots"): "lot",
    ("generation", "source_items"): "source",
    ("generation", "recycled_into"): "lot",
    ("event", "correction"): "correction",
    ("change", "previous"): "lot",
    ("change", "current"): "lot",
}

ADDRESS_TIER = AUTHORITY  # a signer's account address, in whatever field it appears
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_AUDIENCE = {(f.group, f.name): f.audience for f in FIELDS}


def audience(group: str, name: str) -> Tier:
    """Who sees field `name` of `group`: an authority when the table does not name it (fail closed)."""
    return _AUDIENCE.get((group, name), AUTHORITY)


def _value(value: Any, group: str | None, tier: Tier) -> Any:
    if isinstance(value, str):
        return value if tier.sees(ADDRESS_TIER) or not _ADDRESS.fullmatch(value) else None
    if isinstance(value, Mapping):
        if group is None:  # a value the table does not describe: an authority's only
            return value if tier.sees(AUTHORITY) else None
        return _object(value, group, tier)
    if isinstance(value, list):
        return [v for v in (_value(member, group, tier) for member in value) if v is not None]
    return value


def _object(obj: Mapping[str, Any], group: str, tier: Tier) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in obj.items():
        if not tier.sees(audience(group, name)):
            continue
        kept = _value(value, SHAPE.get((group, name)), tier)
        if kept is None and value is not None:
            continue
        out[name] = kept
    return out


def restrict_group(value: Any, group: str, tier: Tier) -> Any:
    """What `tier` may see of `value`, an object (or a list of objects) of `group` (``"lot"``, ``"event"``,
    ``"generation"``...): for the renderings of other records than an item's passport (a lot's)."""
    if tier is AUTHORITY:
        return value
    return _value(value, group, tier)


def restrict(content: Mapping[str, Any], tier: Tier) -> dict[str, Any]:
    """What readers of `tier` may see of a passport version's content: the fields of their audience and wider."""
    if tier is AUTHORITY:
        return dict(content)
    return _object(content, "", tier)


def restrict_envelope(envelope: Mapping[str, Any], tier: Tier) -> dict[str, Any]:
    """A stored version's envelope with the content `tier` may see (its metadata as it is)."""
    content = envelope.get("content")
    if tier is AUTHORITY or not isinstance(content, Mapping):
        return dict(envelope)
    return {**envelope, "content": restrict(content, tier)}


def withheld(content: Mapping[str, Any], tier: Tier) -> bool:
    """Whether `tier` misses something of `content` (the version holds data for a narrower audience)."""
    return tier is not AUTHORITY and restrict(content, tier) != dict(content)


__all__ = [
    "FIELDS",
    "LEGITIMATE_ROLES",
    "SHAPE",
    "Field",
    "Tier",
    "audience",
    "parse_tier",
    "restrict",
    "restrict_envelope",
    "restrict_group",
    "tier_for",
    "withheld",
]
