"""CBV 2.0 EPCIS Event Hash IDs (``ni:///sha-256;<hex>?ver=CBV2.0``) for EPCIS 2.0 JSON-LD events.

Why this module exists: an event's hash ID is what the ledger signs, stores as ``eventID`` and anchors in Merkle
roots, so every party must derive the *same* ID from the *same* event however it was serialised (key order,
whitespace, time zone, URN vs. GS1 Digital Link, CURIE vs. full URI, bare CBV terms vs. web URIs), and any change of
content must change the ID. The canonicalisation follows the EPCIS Event Hash ID algorithm of CBV 2.0 as published
with its reference implementation (vendored in ``api/standards/epcis-event-hash/ALGORITHM.md``); the test vectors
next to it are the arbiter wherever the prose and the reference implementation disagree:

* Property order is the reference implementation's: ``certificationInfo`` follows ``eventTimeZoneOffset`` and
  ``parentID`` precedes ``epcList`` (the prose table lists ``epcList`` first; no vector has both).
* ``bizTransactionList``, ``sourceList``, ``destinationList``, ``ilmd``, user extensions and any other unknown
  top-level fields are emitted after ``sensorElementList`` as one lexically sorted group (the vectors show
  ``destinationList`` before ``sourceList`` and extensions after both).
* ``gs1:`` is ``https://gs1.org/voc/`` (as in the EPCIS 2.0 JSON-LD context and the vectors).
* Ignored: ``eventID``, ``recordTime``, ``errorDeclaration`` (so an error declaration still matches its original
  event), ``rdfs:comment``, and extension fields a document lists under ``<any prefix>:ignoreFields``.

Where the vectors are silent we pick the behaviour that keeps the ID collision-free rather than copy quirks of the
reference code: numeric canonicalisation (no trailing zeros) applies to JSON numbers and to the quantitative fields
(``quantity``, ``value``, ``minValue`` ...), not to every numeric-looking string (so hexBinary ``"0012"`` and
``"12"`` hash differently); it never loses precision; JSON booleans are ``true``/``false`` as in XML; milliseconds
are rounded half-up on the 4th fractional digit as the prose says; a timestamp without offset is taken as UTC.

No network and no JSON-LD processor: the term tables of the EPCIS 2.0 context that matter for hashing (bare CBV
terms, standard prefixes) are embedded below, and user prefixes are read from the document's ``@context``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Final, TypeAlias
from urllib.parse import quote, unquote_to_bytes

__all__ = [
    "HASH_ID_PREFIX",
    "HASH_ID_SUFFIX",
    "EventHashContext",
    "EventHashError",
    "InvalidEventError",
    "MalformedEventHashIdError",
    "canonical_identifier",
    "document_event_hash_ids",
    "document_event_prehashes",
    "document_events",
    "event_hash_id",
    "event_prehash",
    "hash_digest",
]

HASH_ID_PREFIX: Final = "ni:///sha-256;"
HASH_ID_SUFFIX: Final = "?ver=CBV2.0"

JsonLdContext: TypeAlias = str | Mapping[str, Any] | Sequence[Any] | None
"""A JSON-LD ``@context`` value as found in an EPCIS document or event (URL, term map, or a list of them)."""


class EventHashError(ValueError):
    """Base class of this module's errors; a ValueError so callers that validate input can catch one type."""


class MalformedEventHashIdError(EventHashError):
    """The string is not an EPCIS Event Hash ID of the form ``ni:///sha-256;<64 hex>?ver=CBV<major>.<minor>``."""


class InvalidEventError(EventHashError):
    """The event (or document) cannot be hashed: not a JSON object, no event type, no event list."""


# ---------------------------------------------------------------------------------------------------------------------
# Vocabulary of the EPCIS 2.0 JSON-LD context (https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld).
# Embedded, not loaded, so hashing never depends on a file or URL being reachable.

_CBV: Final = "https://ref.gs1.org/cbv/"
_GS1_VOC: Final = "https://gs1.org/voc/"
_GS1_DL: Final = "https://id.gs1.org/"

_STANDARD_PREFIXES: Final[Mapping[str, str]] = {
    "epcis": "https://ref.gs1.org/epcis/",
    "cbv": _CBV,
    "cbvmda": "urn:epcglobal:cbv:mda:",
    "gs1": _GS1_VOC,
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "dcterms": "http://purl.org/dc/terms/",
}
_STANDARD_CONTEXT_URLS: Final = frozenset(
    {
        "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
        "https://ref.gs1.org/standards/epcis/epcis-context.jsonld",
        "https://gs1.github.io/EPCIS/epcis-context.jsonld",
    }
)


def _terms(prefix: str, names: str) -> dict[str, str]:
    return {name: prefix + name for name in names.split()}


# Bare strings the context maps to CBV / GS1 web vocabulary, per field (JSON-LD "@type": "@vocab" with scoped terms).
_BIZSTEP: Final = _terms(
    _CBV + "BizStep-",
    "accepting arriving assembling collecting commissioning consigning creating_class_instance cycle_counting "
    "decommissioning departing destroying disassembling dispensing encoding entering_exiting holding inspecting "
    "installing killing loading other packing picking receiving removing repackaging repairing replacing reserving "
    "retail_selling sampling sensor_reporting shipping staging_outbound stock_taking stocking storing transporting "
    "unloading unpacking void_shipping",
)
_DISP: Final = _terms(
    _CBV + "Disp-",
    "active available completeness_inferred completeness_verified conformant container_closed container_open damaged "
    "destroyed dispensed disposed encoded expired in_progress in_transit inactive mismatch_class mismatch_instance "
    "mismatch_quantity needs_replacement no_pedigree_match non_conformant non_sellable_other partially_dispensed "
    "recalled reserved retail_sold returned sellable_accessible sellable_not_accessible stolen unavailable unknown",
)
_BTT: Final = _terms(_CBV + "BTT-", "bol cert desadv inv pedigree po poc prodorder recadv rma testprd testres upevt")
_SDT: Final = _terms(_CBV + "SDT-", "location owning_party possessing_party")
_MEASUREMENT: Final = _terms(
    _GS1_VOC,
    "AbsoluteHumidity AbsorbedDose AbsorbedDoseRate Acceleration Altitude AmountOfSubstance "
    "AmountOfSubstancePerUnitVolume Angle AngularAcceleration AngularMomentum AngularVelocity Area Capacitance "
    "Conductance Conductivity Count Density Dimensionless DoseEquivalent DoseEquivalentRate DynamicViscosity "
    "ElectricCharge ElectricCurrent ElectricCurrentDensity ElectricFieldStrength Energy Exposure Force Frequency "
    "Illuminance Inductance Irradiance KinematicViscosity Length LinearMomentum Luminance LuminousFlux "
    "LuminousIntensity MagneticFlux MagneticFluxDensity MagneticVectorPotential Mass MassConcentration MassFlowRate "
    "MassPerAreaTime MemoryCapacity MolalityOfSolute MolarEnergy MolarMass MolarVolume Power Pressure RadiantFlux "
    "RadiantIntensity Radioactivity RelativeHumidity Resistance Resistivity SolidAngle SpecificVolume Speed "
    "SurfaceDensity SurfaceTension Temperature Time Torque Voltage Volume VolumeFlowRate VolumeFraction "
    "VolumetricFlux Wavenumber",
)
_EXCEPTION: Final = _terms(_GS1_VOC, "ALARM_CONDITION ERROR_CONDITION")
_COMPONENT: Final = _terms(
    _CBV + "Comp-",
    "x y z axial_distance azimuth height spherical_radius polar_angle elevation_angle easting northing latitude "
    "longitude altitude",
)

# Legacy CBV 1.x URNs and their CBV 2.0 web URI equivalents (rule 14).
_CBV_URNS: Final = (
    ("urn:epcglobal:cbv:bizstep:", _CBV + "BizStep-"),
    ("urn:epcglobal:cbv:disp:", _CBV + "Disp-"),
    ("urn:epcglobal:cbv:btt:", _CBV + "BTT-"),
    ("urn:epcglobal:cbv:sdt:", _CBV + "SDT-"),
    ("urn:epcglobal:cbv:er:", _CBV + "ER-"),
)

# ---------------------------------------------------------------------------------------------------------------------
# Value canonicalisation

_PLAIN, _TIME, _QUANT = 0, 1, 2  # how a field's value is canonicalised

_NUMBER_RE: Final = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_TIMESTAMP_RE: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?\s*(?:[Zz]|([+-])(\d{2})(?::?(\d{2}))?)?",
    re.ASCII,
)


def _float_text(number: float) -> str:
    """A JSON number as the reference implementation writes it: integral values without ``.0``, else shortest repr."""
    if number != number or number in (float("inf"), float("-inf")):
        # JSON has no such number: an event holding one would be stored as non-standard JSON that strict readers
        # (every answer of the API) refuse, and once anchored it could never be taken back.
        raise InvalidEventError(f"{number!r} is not a finite number: JSON numbers are finite")
    return str(int(number)) if number.is_integer() else repr(number)


def _numeric_text(text: str) -> str:
    """Canonical text of a quantitative string value (rule 6: no trailing zeros), never losing precision.

    Matches the reference (``float`` round trip, so ``"452.0"`` -> ``452`` and ``"0.00001"`` -> ``1e-05``, the same
    as the JSON numbers) whenever that is exact; otherwise (more than 17 significant digits) falls back to the exact
    decimal, so two different quantities can never collide.
    """
    if _NUMBER_RE.fullmatch(text) is None:
        return text
    try:
        exact = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid decimals
        return text
    if abs(exact.adjusted()) > 400:  # absurd exponents: keep the literal rather than expand it
        return text
    number = float(text)
    if number not in (float("inf"), float("-inf")):  # a text past a float's range keeps its exact decimal
        candidate = _float_text(number)
        if Decimal(candidate) == exact:
            return candidate
    return format(exact.normalize(), "f")


@lru_cache(maxsize=4096)
def _timestamp(text: str) -> str:
    """Rules 8/9: UTC, ``Z``, exactly three fractional digits, rounded half-up on the fourth digit.

    Unparseable values are returned unchanged (as the reference does) so that hashing stays total.
    Hot spot: every eventTime and sensor time. Memoised (events of one batch often share a time); UTC stamps that
    need no carry skip the datetime arithmetic and only construct a datetime to validate the calendar date.
    """
    match = _TIMESTAMP_RE.fullmatch(text)
    if match is None:
        return text
    year, month, day, hour, minute, second, fraction, sign, off_h, off_m = match.groups()
    millis = 0
    if fraction:
        millis = int(fraction[:3].ljust(3, "0"))
        if len(fraction) > 3 and fraction[3] >= "5":
            millis += 1
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0))
        utc = not sign or (off_h == "00" and (off_m or "00") == "00")
        if utc and millis < 1000:
            return f"{year}-{month}-{day}T{hour}:{minute}:{second or '00'}.{millis:03d}Z"
        if not utc:
            offset = timedelta(hours=int(off_h), minutes=int(off_m or 0))
            moment = moment - offset if sign == "+" else moment + offset
        if millis:
            moment += timedelta(milliseconds=millis)  # may carry .9995 into the next second
    except (ValueError, OverflowError):
        return text
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:{moment.minute:02d}:"
        f"{moment.second:02d}.{moment.microsecond // 1000:03d}Z"
    )


# --- GS1 identifiers: EPC URNs and GS1 Digital Link URIs -> constrained canonical GS1 Digital Link (rules 17/18) ---

_URN_COMPONENT_RE: Final = re.compile(r"(?:[A-Za-z0-9!'()*+,\-.:;=_]|%[0-9A-Fa-f]{2})*")
_CPI_REF_RE: Final = re.compile(r"(?:[0-9A-Z\-]|%2[3DFdf])+")
_DL_PLAIN_RE: Final = re.compile(r"[A-Za-z0-9\-._~';=]*")


@lru_cache(maxsize=4096)
def _dl_encode(component: str) -> str:
    """Canonical percent-encoding of an identifier component inside a GS1 Digital Link URI.

    Decode whatever escaping the source used (EPC URN escapes, lower-case hex, raw ``!()*+,:``) and re-encode every
    character outside ``A-Z a-z 0-9 - . _ ~ ' ; =`` with upper-case hex: identical to the reference output for
    valid EPC URNs (``98%22`` stays, ``!`` -> ``%21``, ``'`` stays) and independent of the input's own escaping.
    """
    if _DL_PLAIN_RE.fullmatch(component) is not None:
        return component
    return quote(unquote_to_bytes(component), safe="';=")


def _check_digit(digits: str) -> str:
    """GS1 mod-10 check digit (weights 3,1,3,... from the right)."""
    total = 0
    weight = 3
    for char in reversed(digits):
        total += (ord(char) - 48) * weight
        weight = 4 - weight
    return str(-total % 10)


def _digits(value: str, low: int = 1, high: int = 99) -> bool:
    return value.isascii() and value.isdigit() and low <= len(value) <= high


def _company(cp: str, ref: str, total: int) -> bool:
    """A GS1 company prefix (6-12 digits) and a numeric reference that together have ``total`` digits."""
    return _digits(cp, 6, 12) and (ref == "" or _digits(ref)) and len(cp) + len(ref) == total


def _urn_text(value: str, minimum: int = 1) -> bool:
    return len(value) >= minimum and _URN_COMPONENT_RE.fullmatch(value) is not None


def _gtin(cp: str, item_ref: str) -> str:
    raw = item_ref[:1] + cp + item_ref[1:]
    return raw + _check_digit(raw)


def _with_check(raw: str) -> str:
    return raw + _check_digit(raw)


def _epc_id(scheme: str, body: str) -> str | None:
    """``urn:epc:id:<scheme>:<body>`` -> canonical DL, or None if not a well-formed GS1 EPC."""
    if scheme == "sgtin":
        parts = body.split(".", 2)
        if len(parts) == 3 and _company(parts[0], parts[1], 13) and _urn_text(parts[2]):
            return f"{_GS1_DL}01/{_gtin(parts[0], parts[1])}/21/{_dl_encode(parts[2])}"
    elif scheme == "sscc":
        parts = body.split(".")
        if len(parts) == 2 and _company(parts[0], parts[1], 17) and parts[1]:
            return f"{_GS1_DL}00/{_with_check(parts[1][0] + parts[0] + parts[1][1:])}"
    elif scheme == "sgln":
        parts = body.split(".", 2)
        if len(parts) == 3 and _company(parts[0], parts[1], 12) and _urn_text(parts[2]):
            gln = _with_check(parts[0] + parts[1])
            return f"{_GS1_DL}414/{gln}" if parts[2] == "0" else f"{_GS1_DL}414/{gln}/254/{_dl_encode(parts[2])}"
    elif scheme == "grai":
        parts = body.split(".", 2)
        if len(parts) == 3 and _company(parts[0], parts[1], 12) and _urn_text(parts[2]):
            return f"{_GS1_DL}8003/{_with_check('0' + parts[0] + parts[1])}{_dl_encode(parts[2])}"
    elif scheme in ("giai", "ginc"):
        cp, _, ref = body.partition(".")
        if _digits(cp, 6, 12) and _urn_text(ref):
            return f"{_GS1_DL}{'8004' if scheme == 'giai' else '401'}/{cp}{_dl_encode(ref)}"
    elif scheme in ("gsrn", "gsrnp"):
        parts = body.split(".")
        if len(parts) == 2 and _company(parts[0], parts[1], 17):
            return f"{_GS1_DL}{'8018' if scheme == 'gsrn' else '8017'}/{_with_check(parts[0] + parts[1])}"
    elif scheme == "gdti":
        parts = body.split(".", 2)
        if len(parts) == 3 and _company(parts[0], parts[1], 12) and _urn_text(parts[2], 0):
            return f"{_GS1_DL}253/{_with_check(parts[0] + parts[1])}{_dl_encode(parts[2])}"
    elif scheme == "cpi":
        cp, _, rest = body.partition(".")
        ref, _, serial = rest.rpartition(".")
        if _digits(cp, 6, 12) and _CPI_REF_RE.fullmatch(ref) and _digits(serial, 1, 12):
            return f"{_GS1_DL}8010/{_dl_encode(cp + ref)}/8011/{serial}"
    elif scheme == "sgcn":
        parts = body.split(".")
        if len(parts) == 3 and _company(parts[0], parts[1], 12) and _digits(parts[2], 1, 12):
            return f"{_GS1_DL}255/{_with_check(parts[0] + parts[1])}{parts[2]}"
    elif scheme == "gsin":
        parts = body.split(".")
        if len(parts) == 2 and _company(parts[0], parts[1], 16):
            return f"{_GS1_DL}402/{_with_check(parts[0] + parts[1])}"
    elif scheme == "itip":
        parts = body.split(".", 4)
        if (
            len(parts) == 5
            and _company(parts[0], parts[1], 13)
            and _digits(parts[2], 2, 2)
            and _digits(parts[3], 2, 2)
            and _urn_text(parts[4])
        ):
            gtin = _gtin(parts[0], parts[1])
            return f"{_GS1_DL}8006/{gtin}{parts[2]}{parts[3]}/21/{_dl_encode(parts[4])}"
    elif scheme == "upui":
        parts = body.split(".", 2)
        if len(parts) == 3 and _company(parts[0], parts[1], 13) and _urn_text(parts[2]):
            return f"{_GS1_DL}01/{_gtin(parts[0], parts[1])}/235/{_dl_encode(parts[2])}"
    elif scheme == "pgln":
        parts = body.split(".")
        if len(parts) == 2 and _company(parts[0], parts[1], 12):
            return f"{_GS1_DL}417/{_with_check(parts[0] + parts[1])}"
    return None


def _epc_pattern(scheme: str, body: str) -> str | None:
    """``urn:epc:idpat:<scheme>:<body>`` (class-level patterns ending in ``.*``) -> canonical DL."""
    if not body.endswith(".*"):
        return None
    parts = body[:-2].split(".")
    if scheme in ("sgtin", "upui") and len(parts) == 2 and _company(parts[0], parts[1], 13):
        return f"{_GS1_DL}01/{_gtin(parts[0], parts[1])}"
    if scheme in ("grai", "gdti", "sgcn") and len(parts) == 2 and _company(parts[0], parts[1], 12):
        if scheme == "grai":
            return f"{_GS1_DL}8003/{_with_check('0' + parts[0] + parts[1])}"
        return f"{_GS1_DL}{'253' if scheme == 'gdti' else '255'}/{_with_check(parts[0] + parts[1])}"
    if scheme == "cpi" and len(parts) == 2 and _digits(parts[0], 6, 12) and _CPI_REF_RE.fullmatch(parts[1]):
        return f"{_GS1_DL}8010/{_dl_encode(parts[0] + parts[1])}"
    if (
        scheme == "itip"
        and len(parts) == 4
        and _company(parts[0], parts[1], 13)
        and _digits(parts[2], 2, 2)
        and _digits(parts[3], 2, 2)
    ):
        return f"{_GS1_DL}8006/{_gtin(parts[0], parts[1])}{parts[2]}{parts[3]}"
    return None


def _epc_urn(uri: str) -> str | None:
    if uri.startswith("urn:epc:id:"):
        scheme, _, body = uri[11:].partition(":")
        return _epc_id(scheme, body)
    if uri.startswith("urn:epc:class:lgtin:"):
        parts = uri[20:].split(".", 2)
        if len(parts) == 3 and _company(parts[0], parts[1], 13) and _urn_text(parts[2]):
            return f"{_GS1_DL}01/{_gtin(parts[0], parts[1])}/10/{_dl_encode(parts[2])}"
        return None
    if uri.startswith("urn:epc:idpat:"):
        scheme, _, body = uri[14:].partition(":")
        return _epc_pattern(scheme, body)
    return None


# GS1 Digital Link: primary keys, the key qualifiers kept in the constrained form, and legacy short names.
_DL_ALIASES: Final[Mapping[str, str]] = {
    "gtin": "01", "itip": "8006", "cpid": "8010", "gln": "414", "party": "417", "gsrnp": "8017", "gsrn": "8018",
    "gcn": "255", "sscc": "00", "gdti": "253", "ginc": "401", "gsin": "402", "grai": "8003", "giai": "8004",
    "cpv": "22", "lot": "10", "ser": "21", "glnx": "254", "cpsn": "8011",
}  # fmt: skip
_DL_KEY_RE: Final[Mapping[str, re.Pattern[str]]] = {
    "00": re.compile(r"\d{18}", re.ASCII),
    "01": re.compile(r"\d{14}|\d{13}|\d{12}|\d{8}", re.ASCII),
    "253": re.compile(r"\d{13}.{0,17}", re.S | re.ASCII),
    "255": re.compile(r"\d{13}\d{0,12}", re.ASCII),
    "401": re.compile(r"\d{4}.{0,26}", re.S | re.ASCII),
    "402": re.compile(r"\d{17}", re.ASCII),
    "414": re.compile(r"\d{13}", re.ASCII),
    "417": re.compile(r"\d{13}", re.ASCII),
    "8003": re.compile(r"\d{14}.{0,16}", re.S | re.ASCII),
    "8004": re.compile(r"\d{4}.{0,26}", re.S | re.ASCII),
    "8006": re.compile(r"\d{18}", re.ASCII),
    "8010": re.compile(r"\d{4}.{0,26}", re.S | re.ASCII),
    "8017": re.compile(r"\d{18}", re.ASCII),
    "8018": re.compile(r"\d{18}", re.ASCII),
}
# Qualifiers allowed per key, most fine-grained first: only the first one present is kept (rule 18 III).
_DL_QUALIFIERS: Final[Mapping[str, tuple[str, ...]]] = {
    "01": ("21", "235", "10", "22"),
    "8006": ("21", "10", "22"),
    "414": ("254",),
    "8010": ("8011",),
}
_DL_DROPPED: Final = frozenset({"22"})  # CPV never identifies an instance: always stripped
_DL_URI_RE: Final = re.compile(r"[Hh][Tt][Tt][Pp][Ss]?://[^/?#]+(/[^?#]*)")


def _dl_from_key(key: str, raw_value: str, qualifier_segments: list[str]) -> str | None:
    value = unquote_to_bytes(raw_value).decode("utf-8", "surrogateescape") if "%" in raw_value else raw_value
    if _DL_KEY_RE[key].fullmatch(value) is None:
        return None
    allowed = _DL_QUALIFIERS.get(key, ())
    qualifiers: dict[str, str] = {}
    for index in range(0, len(qualifier_segments), 2):
        name = _DL_ALIASES.get(qualifier_segments[index], qualifier_segments[index])
        if name not in allowed or name in qualifiers or not qualifier_segments[index + 1]:
            return None
        qualifiers[name] = qualifier_segments[index + 1]
    key_text = value.zfill(14) if key == "01" else _dl_encode(raw_value)
    uri = f"{_GS1_DL}{key}/{key_text}"
    for name in allowed:
        if name in qualifiers and name not in _DL_DROPPED:
            if name == "8011" and not _digits(qualifiers[name], 1, 12):
                return None
            return f"{uri}/{name}/{_dl_encode(qualifiers[name])}"
    return uri


def _digital_link(uri: str) -> str | None:
    """Any-domain GS1 Digital Link URI -> ``https://id.gs1.org`` form without query, CPV or coarser qualifiers.

    A URI counts as a Digital Link only if its path ends in a primary key followed solely by valid qualifiers, so
    ordinary URLs (certificates, CRS definitions, taxonomy links) pass through unchanged.
    """
    match = _DL_URI_RE.match(uri)
    if match is None:
        return None
    segments = match.group(1).split("/")[1:]
    if segments and segments[-1] == "":
        segments.pop()
    count = len(segments)
    for index in range(count - 1):
        key = _DL_ALIASES.get(segments[index], segments[index])
        if key in _DL_KEY_RE and (count - index) % 2 == 0:
            result = _dl_from_key(key, segments[index + 1], segments[index + 2 :])
            if result is not None:
                return result
    return None


def canonical_identifier(text: str) -> str:
    """An identifier as the event hash sees it: an EPC URN or a Digital Link of any domain as the canonical
    ``https://id.gs1.org/...`` Digital Link; anything else unchanged. Two spellings of one item are one identifier."""
    return _canonical_uri(text)


@lru_cache(maxsize=65536)
def _canonical_uri(text: str) -> str:
    """CBV URNs -> web URIs, EPC URNs and Digital Links -> canonical DL; anything else unchanged.

    Hot spot: every identifier of every event passes here; memoised because read points, locations, classes and
    vocabulary repeat across events (a cache hit is one dict lookup instead of a regex-driven conversion).
    """
    if text.startswith("urn:"):
        if text.startswith("urn:epcglobal:cbv:"):
            for urn, web in _CBV_URNS:
                if text.startswith(urn):
                    return web + text[len(urn) :]
            return text
        return _epc_urn(text) or text
    return _digital_link(text) or text


# ---------------------------------------------------------------------------------------------------------------------
# Context: prefixes for CURIEs and extension keys, ignore-fields


def _freeze(value: Any) -> Any:
    """A hashable copy of a JSON value, to memoise compiled contexts."""
    if type(value) is str:
        return value
    if isinstance(value, Mapping):
        return tuple((k, _freeze(v)) for k, v in value.items())
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def _split_iri(iri: str) -> str:
    """``https://ns/x/local`` -> ``{https://ns/x/}local`` (the XML-style name the algorithm uses for extensions)."""
    cut = max(iri.rfind("/"), iri.rfind("#"))
    if cut < 0 or cut == len(iri) - 1:
        return iri
    return "{" + iri[: cut + 1] + "}" + iri[cut + 1 :]


_GEN_DELIMS: Final = tuple(":/?#[]@")


class EventHashContext:
    """What hashing needs from a JSON-LD ``@context``: CURIE prefixes, term aliases and fields to ignore.

    Compile once per document (``EventHashContext.from_document``) and pass it to :func:`event_hash_id` for each event:
    that avoids re-reading the context per event, which matters at tens of thousands of events per second.
    """

    __slots__ = ("_aliases", "_children", "_ignore", "_keys", "_prefixes")

    def __init__(self, prefixes: Mapping[str, str], aliases: Mapping[str, str], ignore: Iterable[str] = ()) -> None:
        self._prefixes = dict(prefixes)
        self._aliases = dict(aliases)
        self._keys: dict[str, str] = {}
        self._children: dict[Any, EventHashContext] = {}
        self._ignore = frozenset(self.expand_key(name) for name in ignore) - _STANDARD_KEYS

    @classmethod
    def from_jsonld(cls, context: JsonLdContext = None, *, ignore_fields: Iterable[str] = ()) -> EventHashContext:
        """Compile a document's or event's ``@context`` (the EPCIS context is always implied)."""
        prefixes = dict(_STANDARD_PREFIXES)
        aliases: dict[str, str] = {}
        _read_context(context, prefixes, aliases)
        return cls(prefixes, aliases, ignore_fields)

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> EventHashContext:
        """The context of an EPCIS (query) document, including its ``ignoreFields`` declarations."""
        if not _is_mapping(document):
            raise InvalidEventError(f"an EPCIS document must be a JSON object, not {type(document).__name__}")
        return cls.from_jsonld(document.get("@context"), ignore_fields=_ignore_fields(document))

    @property
    def ignore_fields(self) -> frozenset[str]:
        """Expanded names (``{namespace}local``) of the extension fields left out of the hash."""
        return self._ignore

    def extended(self, context: JsonLdContext) -> EventHashContext:
        """This context with an event's own ``@context`` applied on top (memoised per distinct context)."""
        if context is None:
            return self
        frozen = _freeze(context)
        child = self._children.get(frozen)
        if child is None:
            prefixes = dict(self._prefixes)
            aliases = dict(self._aliases)
            _read_context(context, prefixes, aliases)
            child = EventHashContext(prefixes, aliases)
            child._ignore = self._ignore
            if len(self._children) < 256:
                self._children[frozen] = child
        return child

    def expand_key(self, key: str) -> str:
        """A JSON key as the algorithm names it: ``example:f`` -> ``{https://ns.example.com/epcis/}f``.

        Memoised per context (keys repeat in every event). Unknown prefixes are kept as written.
        """
        expanded = self._keys.get(key)
        if expanded is not None:
            return expanded
        colon = key.find(":")
        if colon > 0:
            rest = key[colon + 1 :]
            namespace = self._prefixes.get(key[:colon])
            if rest.startswith("//"):
                expanded = _split_iri(key)
            elif namespace is not None:
                expanded = "{" + namespace + "}" + rest
            else:
                expanded = key
        else:
            alias = self._aliases.get(key)
            expanded = key if alias is None else _split_iri(alias)
        if len(self._keys) < 4096:
            self._keys[key] = expanded
        return expanded

    def expand_value(self, text: str) -> str:
        """Rule 15: a CURIE value with a known prefix becomes its full URI (``gs1:Angle``, ``cbv:Comp-x``)."""
        colon = text.find(":")
        if colon <= 0:
            return text
        namespace = self._prefixes.get(text[:colon])
        if namespace is None or text.startswith("//", colon + 1):
            return text
        return namespace + text[colon + 1 :]


def _read_context(context: JsonLdContext, prefixes: dict[str, str], aliases: dict[str, str]) -> None:
    """Collect prefix and term definitions from a JSON-LD context without fetching anything.

    Remote contexts other than the EPCIS one cannot be read offline and are skipped: extension keys using their
    prefixes are then hashed as written (``prefix:name``), which is still deterministic.
    """
    if context is None or isinstance(context, str):
        return
    if isinstance(context, Mapping):
        for term, definition in context.items():
            if not isinstance(term, str) or term.startswith("@"):
                continue
            iri = definition.get("@id") if isinstance(definition, Mapping) else definition
            if definition is None:
                prefixes.pop(term, None)
                aliases.pop(term, None)
            elif isinstance(iri, str) and not iri.startswith("@"):
                prefixes[term] = iri
                if not iri.endswith(_GEN_DELIMS):
                    aliases[term] = iri
        return
    if isinstance(context, Sequence):
        for item in context:
            _read_context(item, prefixes, aliases)


def _is_ignore_key(key: str) -> bool:
    return key == "ignoreFields" or key.endswith((":ignoreFields", "/ignoreFields", "#ignoreFields"))


def _ignore_fields(document: Mapping[str, Any]) -> list[str]:
    """Field names a repository declared with ``<prefix>:ignoreFields`` at document, body or query-result level."""
    names: list[str] = []
    body = document.get("epcisBody")
    results = body.get("queryResults") if isinstance(body, Mapping) else None
    results_body = results.get("resultsBody") if isinstance(results, Mapping) else None
    for holder in (document, body, results, results_body):
        if not isinstance(holder, Mapping):
            continue
        for key, value in holder.items():
            if isinstance(key, str) and _is_ignore_key(key):
                values = [value] if isinstance(value, str) else value if isinstance(value, list | tuple) else []
                names.extend(v for v in values if isinstance(v, str))
    return names


_CONTEXT_CACHE: dict[Any, EventHashContext] = {}


def _compile(context: JsonLdContext | EventHashContext) -> EventHashContext:
    if isinstance(context, EventHashContext):
        return context
    if context is None:
        return _DEFAULT_CONTEXT
    frozen = _freeze(context)
    compiled = _CONTEXT_CACHE.get(frozen)
    if compiled is None:
        compiled = EventHashContext.from_jsonld(context)
        if len(_CONTEXT_CACHE) >= 256:
            _CONTEXT_CACHE.clear()
        _CONTEXT_CACHE[frozen] = compiled
    return compiled


# ---------------------------------------------------------------------------------------------------------------------
# Pre-hash string
#
# Design for speed: instead of probing every field of the canonical order (23 for a sensor report), each structure
# walks only the keys it has, looks each up in a position table and sorts the resulting (position, text) pairs.
# Sorting the pairs orders fields canonically and, within a repeated field, sorts the values lexically (rule 11).
# Hot spots are marked; ``type(x) is dict``/``str``/``list`` checks come first because ABC ``isinstance`` checks
# against Mapping/Sequence cost several times more.

Vocab: TypeAlias = Mapping[str, str] | None
_Spec: TypeAlias = tuple[int, Vocab, int]  # (position in the canonical order, bare-term vocabulary, value kind)

_COMMENT_KEYS: Final = frozenset({"comment", "rdfs:comment", "{http://www.w3.org/2000/01/rdf-schema#}comment", "#text"})
_IGNORED_TOP: Final = frozenset({"type", "@type", "eventID", "@id", "recordTime", "errorDeclaration", "@context"})


def _positions(*fields: tuple[str, Vocab, int]) -> dict[str, _Spec]:
    return {name: (index, vocab, kind) for index, (name, vocab, kind) in enumerate(fields)}


_QUANTITY_FIELDS: Final = _positions(("epcClass", None, _PLAIN), ("quantity", None, _QUANT), ("uom", None, _PLAIN))
_LOCATION_FIELDS: Final = _positions(("id", None, _PLAIN))
_DISPOSITION_FIELDS: Final = _positions(("set", _DISP, _PLAIN), ("unset", _DISP, _PLAIN))
_METADATA_FIELDS: Final = _positions(
    ("time", None, _TIME),
    ("startTime", None, _TIME),
    ("endTime", None, _TIME),
    ("deviceID", None, _PLAIN),
    ("deviceMetadata", None, _PLAIN),
    ("rawData", None, _PLAIN),
    ("dataProcessingMethod", None, _PLAIN),
    ("bizRules", None, _PLAIN),
)
_REPORT_FIELDS: Final = _positions(
    ("type", _MEASUREMENT, _PLAIN),
    ("exception", _EXCEPTION, _PLAIN),
    ("deviceID", None, _PLAIN),
    ("deviceMetadata", None, _PLAIN),
    ("rawData", None, _PLAIN),
    ("dataProcessingMethod", None, _PLAIN),
    ("time", None, _TIME),
    ("microorganism", None, _PLAIN),
    ("chemicalSubstance", None, _PLAIN),
    ("value", None, _QUANT),
    ("component", _COMPONENT, _PLAIN),
    ("stringValue", None, _PLAIN),
    ("booleanValue", None, _PLAIN),
    ("hexBinaryValue", None, _PLAIN),
    ("uriValue", None, _PLAIN),
    ("minValue", None, _QUANT),
    ("maxValue", None, _QUANT),
    ("meanValue", None, _QUANT),
    ("sDev", None, _QUANT),
    ("percRank", None, _QUANT),
    ("percValue", None, _QUANT),
    ("uom", None, _PLAIN),
    ("coordinateReferenceSystem", None, _PLAIN),
)

# Top-level canonical order; the kind says how the field is serialised.
_SCALAR, _EPCS, _QUANTITIES, _DISPOSITIONS, _LOCATION, _SENSORS = range(6)
_TOP_FIELDS: Final[dict[str, tuple[int, int, Vocab, int]]] = {
    name: (index, kind, vocab, value_kind)
    for index, (name, kind, vocab, value_kind) in enumerate(
        (
            ("eventTime", _SCALAR, None, _TIME),
            ("eventTimeZoneOffset", _SCALAR, None, _PLAIN),
            ("certificationInfo", _SCALAR, None, _PLAIN),
            ("parentID", _SCALAR, None, _PLAIN),
            ("epcList", _EPCS, None, _PLAIN),
            ("inputEPCList", _EPCS, None, _PLAIN),
            ("childEPCs", _EPCS, None, _PLAIN),
            ("quantityList", _QUANTITIES, None, _PLAIN),
            ("childQuantityList", _QUANTITIES, None, _PLAIN),
            ("inputQuantityList", _QUANTITIES, None, _PLAIN),
            ("outputEPCList", _EPCS, None, _PLAIN),
            ("outputQuantityList", _QUANTITIES, None, _PLAIN),
            ("action", _SCALAR, None, _PLAIN),
            ("transformationID", _SCALAR, None, _PLAIN),
            ("bizStep", _SCALAR, _BIZSTEP, _PLAIN),
            ("disposition", _SCALAR, _DISP, _PLAIN),
            ("persistentDisposition", _DISPOSITIONS, None, _PLAIN),
            ("readPoint", _LOCATION, None, _PLAIN),
            ("bizLocation", _LOCATION, None, _PLAIN),
            ("sensorElementList", _SENSORS, None, _PLAIN),
        )
    )
}
_PARTY_LISTS: Final[Mapping[str, tuple[str, dict[str, _Spec]]]] = {
    "bizTransactionList": ("bizTransaction", _positions(("type", _BTT, _PLAIN), ("bizTransaction", None, _PLAIN))),
    "sourceList": ("source", _positions(("type", _SDT, _PLAIN), ("source", None, _PLAIN))),
    "destinationList": ("destination", _positions(("type", _SDT, _PLAIN), ("destination", None, _PLAIN))),
}
_STANDARD_KEYS: Final = _TOP_FIELDS.keys() | _PARTY_LISTS.keys() | _IGNORED_TOP | {"ilmd"}
_DEFAULT_CONTEXT: Final = EventHashContext.from_jsonld(None)


def _is_mapping(value: Any) -> bool:
    kind = type(value)
    return kind is dict or (kind is not str and kind is not list and isinstance(value, Mapping))


def _items(value: Any) -> Sequence[Any]:
    """A JSON array, or a single value standing for an array of one."""
    return value if type(value) is list or isinstance(value, tuple) else (value,)


def _value(ctx: EventHashContext, raw: Any, vocab: Vocab, kind: int) -> str:
    """The canonical text of one scalar value ("" when there is nothing to hash).

    Hot spot: runs once per leaf value; a plain string costs a strip, a ``find(':')`` and a first-character test.
    """
    if type(raw) is str:
        text = raw.strip()
        if not text:
            return ""
        if kind == _TIME:
            return _timestamp(text)
        if vocab is not None:
            term = vocab.get(text)
            if term is not None:  # rule 16: bare CBV / GS1 term -> web URI
                return term
        colon = text.find(":")
        if colon > 0:  # rule 15, inlined EventHashContext.expand_value
            namespace = ctx._prefixes.get(text[:colon])
            if namespace is not None and not text.startswith("//", colon + 1):
                text = namespace + text[colon + 1 :]
        if kind == _QUANT:
            text = _numeric_text(text)
        return _canonical_uri(text) if text[0] in "uhH" else text
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, float):
        return _float_text(raw)
    if isinstance(raw, str):  # a str subclass (StrEnum ...): hash its characters, not its repr
        return _value(ctx, str.__str__(raw), vocab, kind)
    if isinstance(raw, Decimal):  # json.loads(..., parse_float=Decimal)
        return _numeric_text(str(raw)) if raw.is_finite() else str(raw)
    raise InvalidEventError(f"expected a JSON string, number or boolean, got {type(raw).__name__}")


def _skip(ctx: EventHashContext, expanded_key: str) -> bool:
    return expanded_key in ctx._ignore or expanded_key in _COMMENT_KEYS


def _generic(ctx: EventHashContext, key: str, value: Any, out: list[str]) -> None:
    """Rules 19/20: an extension (or unknown) field as ``{ns}name=value`` / ``{ns}name<sorted children>``."""
    if _is_mapping(value):
        children: list[str] = []
        for child_key, child_value in value.items():
            expanded = ctx.expand_key(child_key)
            if not _skip(ctx, expanded):
                _generic(ctx, expanded, child_value, children)
        children.sort()
        out.append(key + "".join(children))
    elif type(value) is list or isinstance(value, tuple):
        for item in value:
            _generic(ctx, key, item, out)
    elif value is not None:
        text = _value(ctx, value, None, _PLAIN)
        out.append(key + "=" + text if text else key)


def _structure(ctx: EventHashContext, node: Mapping[str, Any], fields: dict[str, _Spec]) -> str:
    """A standard structure: its fields in canonical order (repeated values sorted), then its extensions sorted
    (rule 21: extensions of readPoint, sensorElement, sensorMetadata, sensorReport ... go after the regular fields).

    Hot spot: quantity elements and sensor reports; walks only the keys present.
    """
    regular: list[tuple[int, str]] = []
    extensions: list[str] | None = None
    for key, raw in node.items():
        spec = fields.get(key)
        if spec is None:
            expanded = ctx.expand_key(key)
            if not _skip(ctx, expanded):
                if extensions is None:
                    extensions = []
                _generic(ctx, expanded, raw, extensions)
            continue
        position, vocab, kind = spec
        if type(raw) is list:
            regular.extend((position, key + "=" + text) for item in raw if (text := _value(ctx, item, vocab, kind)))
        elif text := _value(ctx, raw, vocab, kind):
            regular.append((position, key + "=" + text))
    if len(regular) > 1:
        regular.sort()
    body = "".join([text for _, text in regular])
    if extensions:
        extensions.sort()
        body += "".join(extensions)
    return body


def _top_field(ctx: EventHashContext, name: str, kind: int, vocab: Vocab, value_kind: int, raw: Any) -> list[str]:
    """One field of the canonical order, as sorted pre-hash fragments (several for a repeated scalar)."""
    if kind == _SCALAR:
        if _is_mapping(raw):
            out: list[str] = []
            _generic(ctx, name, raw, out)
            return out
        values = [name + "=" + text for item in _items(raw) if (text := _value(ctx, item, vocab, value_kind))]
        if len(values) > 1:
            values.sort()
        return values
    if kind == _EPCS:
        epcs = ["epc=" + text for item in _items(raw) if (text := _value(ctx, item, None, _PLAIN))]
        epcs.sort()
        return [name + "".join(epcs)] if epcs else []
    if kind == _QUANTITIES:
        elements = [
            "quantityElement" + body
            for element in _items(raw)
            if _is_mapping(element) and (body := _structure(ctx, element, _QUANTITY_FIELDS))
        ]
        elements.sort()
        return [name + "".join(elements)] if elements else []
    if kind == _LOCATION:
        # JSON-LD: "readPoint": "<iri>" is the same node as {"id": "<iri>"}.
        body = _structure(ctx, raw if _is_mapping(raw) else {"id": raw}, _LOCATION_FIELDS)
        return [name + body] if body else []
    if kind == _DISPOSITIONS:
        body = _structure(ctx, raw, _DISPOSITION_FIELDS) if _is_mapping(raw) else ""
        return [name + body] if body else []
    sensor_elements = [
        text for element in _items(raw) if _is_mapping(element) and (text := _sensor_element(ctx, element))
    ]
    sensor_elements.sort()
    return [name + "".join(sensor_elements)] if sensor_elements else []


def _sensor_element(ctx: EventHashContext, element: Mapping[str, Any]) -> str:
    """``sensorElement`` + metadata + reports (sorted) + the element's own extensions."""
    parts: list[str] = []
    extensions: list[str] = []
    reports: list[str] = []
    for key, raw in element.items():
        if key == "sensorMetadata":
            if _is_mapping(raw) and (body := _structure(ctx, raw, _METADATA_FIELDS)):
                parts.append("sensorMetadata" + body)
        elif key == "sensorReport":
            reports.extend(
                "sensorReport" + body
                for report in _items(raw)
                if _is_mapping(report) and (body := _structure(ctx, report, _REPORT_FIELDS))
            )
        else:
            expanded = ctx.expand_key(key)
            if not _skip(ctx, expanded):
                _generic(ctx, expanded, raw, extensions)
    reports.sort()
    extensions.sort()
    body = "".join(parts) + "".join(reports) + "".join(extensions)
    return "sensorElement" + body if body else ""


def _party_list(ctx: EventHashContext, name: str, raw: Any) -> str:
    """bizTransactionList / sourceList / destinationList: ``type=<type><id field>=<id>`` per entry, sorted (rule 13)."""
    fields = _PARTY_LISTS[name][1]
    entries = [body for entry in _items(raw) if _is_mapping(entry) and (body := _structure(ctx, entry, fields))]
    if not entries:
        return ""
    entries.sort()
    return name + "".join(entries)


def _prehash(event: Mapping[str, Any], ctx: EventHashContext) -> str:
    """The pre-hash string: ``eventType=``, the canonical-order fields, then one sorted group of the rest.

    Hot spot: once per event. The rest group (party lists, ilmd, extensions, unknown fields) is sorted as a whole,
    as the vectors require (``destinationList`` before ``sourceList``, extensions last).
    """
    if not _is_mapping(event):
        raise InvalidEventError(f"an EPCIS event must be a JSON object, not {type(event).__name__}")
    event_type = event.get("type", event.get("@type"))
    if not isinstance(event_type, str) or not event_type.strip():
        raise InvalidEventError("the event has no type (ObjectEvent, AggregationEvent, ...)")
    own_context = event.get("@context")
    if own_context is not None:
        ctx = ctx.extended(own_context)
    ordered: list[tuple[int, list[str]]] = []
    rest: list[str] = []
    for key, value in event.items():
        top = _TOP_FIELDS.get(key)
        if top is not None:
            if value is not None and (texts := _top_field(ctx, key, top[1], top[2], top[3], value)):
                ordered.append((top[0], texts))
        elif key in _IGNORED_TOP:
            continue
        elif key in _PARTY_LISTS:
            if text := _party_list(ctx, key, value):
                rest.append(text)
        else:
            expanded = ctx.expand_key(key)
            if not _skip(ctx, expanded):
                _generic(ctx, expanded, value, rest)
    ordered.sort(key=_first)
    rest.sort()
    parts = ["eventType=", event_type.strip()]
    for _, texts in ordered:
        parts.extend(texts)
    parts.extend(rest)
    return "".join(parts)


def _first(pair: tuple[int, list[str]]) -> int:
    return pair[0]


# ---------------------------------------------------------------------------------------------------------------------
# Public API


def event_prehash(event: Mapping[str, Any], context: JsonLdContext | EventHashContext = None) -> str:
    """The canonical pre-hash string of one EPCIS 2.0 JSON-LD event.

    ``context`` is the enclosing document's ``@context`` (raw or compiled with :class:`EventHashContext`); the
    event's own ``@context``, if any, is applied on top. Without either, only the EPCIS context is assumed.
    """
    return _prehash(event, _compile(context))


def event_hash_id(event: Mapping[str, Any], context: JsonLdContext | EventHashContext = None) -> str:
    """The event's CBV 2.0 Event Hash ID, ``ni:///sha-256;<64 lower-case hex>?ver=CBV2.0``."""
    digest = hashlib.sha256(_prehash(event, _compile(context)).encode("utf-8")).hexdigest()
    return HASH_ID_PREFIX + digest + HASH_ID_SUFFIX


def document_events(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The events of an EPCISDocument / EPCISQueryDocument in document order (a bare event is its own list)."""
    if not isinstance(document, Mapping):
        raise InvalidEventError(f"an EPCIS document must be a JSON object, not {type(document).__name__}")
    body = document.get("epcisBody")
    if body is None:
        if isinstance(document.get("type"), str) and str(document["type"]).endswith("Event"):
            return [document]
        raise InvalidEventError("not an EPCIS document: no epcisBody")
    if not isinstance(body, Mapping):
        raise InvalidEventError("epcisBody must be a JSON object")
    if "eventList" in body:
        events = body["eventList"]
    elif "queryResults" in body:
        results = body["queryResults"]
        results_body = results.get("resultsBody") if isinstance(results, Mapping) else None
        events = results_body.get("eventList", []) if isinstance(results_body, Mapping) else []
    elif "event" in body:
        events = [body["event"]]
    else:
        events = []
    if not isinstance(events, list):
        raise InvalidEventError("eventList must be a JSON array")
    return events


def document_event_prehashes(document: Mapping[str, Any]) -> list[str]:
    """Pre-hash strings of all events of an EPCIS (query) document, in document order."""
    events = document_events(document)
    ctx = EventHashContext.from_document(document)
    return [_prehash(event, ctx) for event in events]


def document_event_hash_ids(document: Mapping[str, Any]) -> list[str]:
    """Event Hash IDs of all events of an EPCISDocument or EPCISQueryDocument, in document order.

    Honours the document's ``@context`` (custom namespaces, CURIEs) and its ``ignoreFields`` declarations.
    """
    events = document_events(document)
    ctx = EventHashContext.from_document(document)
    sha256 = hashlib.sha256
    return [
        HASH_ID_PREFIX + sha256(_prehash(event, ctx).encode("utf-8")).hexdigest() + HASH_ID_SUFFIX for event in events
    ]


_HASH_ID_RE: Final = re.compile(r"ni:///sha-256;([0-9a-fA-F]{64})\?ver=CBV\d+\.\d+(?:\.\d+)?", re.ASCII)


def hash_digest(event_hash_id: str) -> bytes:
    """The 32-byte SHA-256 digest inside an Event Hash ID (what gets signed and anchored).

    Raises :class:`MalformedEventHashIdError` for anything but ``ni:///sha-256;<64 hex>?ver=CBV<x>.<y>[.<z>]``
    (other digest algorithms included: the ledger anchors 32-byte SHA-256 digests only).
    """
    if not isinstance(event_hash_id, str):
        raise MalformedEventHashIdError(f"an event hash ID must be a string, not {type(event_hash_id).__name__}")
    match = _HASH_ID_RE.fullmatch(event_hash_id)
    if match is None:
        shown = event_hash_id if len(event_hash_id) <= 120 else event_hash_id[:117] + "..."
        raise MalformedEventHashIdError(f"not a CBV 2.0 SHA-256 event hash ID: {shown!r}")
    return bytes.fromhex(match.group(1))
