"""GS1 Digital Link request paths: parsing and syntactic validation (GS1 Digital Link URI syntax 1.4, sections 2 and 4).

We resolve one primary key, the GTIN (AI 01), with its key qualifiers consumer product variant (22), batch/lot (10)
and serial (21), in that order. Paths are parsed from the request's raw (still percent-encoded) path so that a serial
holding ``/`` (``%2F``, allowed by GS1 character set 82) stays one segment. A trailing slash is tolerated. A compressed
URI (one URI-safe base64 segment), and a partially compressed one (``/01/<gtin>/<compressed rest>``), are decompressed.
After the key, one more segment may name a resource of ours (``passport``, ``qr.svg`` ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote

from ledger.errors import InvalidIdentifier
from ledger.ids import check_serial, normalize_gtin

from .compression import CompressionError, Decompressed, decompress_segment, is_compressed_segment

GTIN_AI = "01"
QUALIFIER_ORDER = ("22", "10", "21")
QUALIFIER_NAMES = {"22": "consumer product variant", "10": "batch/lot", "21": "serial"}
# Primary keys a Digital Link may carry (GS1 resolver description file); we resolve only GTINs.
PRIMARY_KEYS = frozenset(
    {
        "00",
        "01",
        "253",
        "255",
        "401",
        "402",
        "414",
        "415",
        "417",
        "8003",
        "8004",
        "8006",
        "8010",
        "8013",
        "8017",
        "8018",
    }
)
RESOURCES = frozenset(
    {
        "passport",
        "passport.jsonld",
        "passport/versions",
        "credential",
        "catenax",
        "qr.svg",
        "qr.png",
        "evidence",
        "verification",
        "return-requests",
        "product",
    }
)


class MalformedLink(ValueError):
    """The path claims to be a GS1 Digital Link but breaks its syntax (HTTP 400)."""


class NotADigitalLink(LookupError):
    """The path is not a GS1 Digital Link at all (HTTP 404)."""


class UnsupportedKey(LookupError):
    """A GS1 primary key other than the GTIN (HTTP 404: this resolver holds none)."""


@dataclass(frozen=True)
class DigitalLink:
    """A parsed Digital Link: the GTIN as written, its key qualifiers, and what a compressed form also carried."""

    gtin: str
    qualifiers: tuple[tuple[str, str], ...] = ()
    attributes: tuple[tuple[str, str], ...] = ()  # data attributes (AIs) found in a compressed form
    other: tuple[tuple[str, str], ...] = ()  # non-GS1 key=value pairs found in a compressed form
    resource: str | None = None
    compressed: bool = False

    @property
    def gtin14(self) -> str:
        return normalize_gtin(self.gtin)

    def qualifier(self, ai: str) -> str | None:
        return next((value for key, value in self.qualifiers if key == ai), None)

    @property
    def serial(self) -> str | None:
        return self.qualifier("21")

    @property
    def lot(self) -> str | None:
        return self.qualifier("10")

    @property
    def path(self) -> str:
        """The uncompressed path: ``/01/<gtin>[/22/..][/10/..][/21/..]``, values percent-encoded."""
        parts = [f"/{GTIN_AI}/{self.gtin}"]
        parts += [f"/{ai}/{quote(value, safe='')}" for ai, value in self.qualifiers]
        return "".join(parts)

    def embedded_query(self) -> list[tuple[str, str]]:
        """The key=value pairs a compressed form carried besides the path (data attributes first)."""
        return [*self.attributes, *self.other]

    def uri(self, base: str) -> str:
        """The uncompressed Digital Link at `base`, with the data attributes a compressed form carried."""
        uri = base.rstrip("/") + self.path
        pairs = self.embedded_query()
        if pairs:
            uri += "?" + "&".join(f"{key}={quote(value, safe='')}" for key, value in pairs)
        return uri

    def without_resource(self) -> DigitalLink:
        return DigitalLink(self.gtin, self.qualifiers, self.attributes, self.other, None, self.compressed)


def _decode(segment: str) -> str:
    try:
        return unquote(segment, errors="strict")
    except UnicodeDecodeError:
        raise MalformedLink("a path segment is not valid percent-encoded UTF-8") from None


def _check_gtin(value: str) -> str:
    try:
        normalize_gtin(value)
    except InvalidIdentifier as exc:
        raise MalformedLink(str(exc)) from None
    return value


def _check_qualifier(ai: str, value: str) -> str:
    try:
        return check_serial(value, QUALIFIER_NAMES[ai])
    except InvalidIdentifier as exc:
        raise MalformedLink(str(exc)) from None


def _ordered(qualifiers: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple((ai, qualifiers[ai]) for ai in QUALIFIER_ORDER if ai in qualifiers)


def parse_path(raw_path: str) -> DigitalLink:
    """Parse a request path (raw, percent-encoded, with its leading slash) as a GS1 Digital Link."""
    segments = raw_path.split("/")
    if segments and segments[0] == "":
        segments = segments[1:]
    while segments and segments[-1] == "":  # trailing slashes are tolerated
        segments.pop()
    if not segments:
        raise NotADigitalLink("empty path")
    if "" in segments:
        raise MalformedLink("empty path segment")
    first = segments[0]
    if first.isdigit():
        return _parse_uncompressed(segments)
    if len(segments) == 1 and is_compressed_segment(first):
        return _from_compressed(first)
    raise NotADigitalLink("not a GS1 Digital Link path")


def _parse_uncompressed(segments: list[str]) -> DigitalLink:
    primary = segments[0]
    if primary != GTIN_AI:
        if primary in PRIMARY_KEYS:
            raise UnsupportedKey(f"this resolver resolves GTINs (01), not AI ({primary})")
        raise MalformedLink(f"({primary}) is not a GS1 primary key")
    if len(segments) < 2:
        raise MalformedLink("the GTIN is missing")
    gtin = _check_gtin(_decode(segments[1]))
    qualifiers: dict[str, str] = {}
    rest = segments[2:]
    position = -1
    resource: str | None = None
    compressed: Decompressed | None = None
    while rest:
        key = rest[0]
        if key.isdigit():
            if key not in QUALIFIER_ORDER:
                raise MalformedLink(f"({key}) is not a key qualifier of a GTIN (22, 10, 21)")
            if QUALIFIER_ORDER.index(key) <= position:
                raise MalformedLink("key qualifiers must appear once each, in the order 22, 10, 21")
            if len(rest) < 2:
                raise MalformedLink(f"the value of ({key}) is missing")
            position = QUALIFIER_ORDER.index(key)
            qualifiers[key] = _check_qualifier(key, _decode(rest[1]))
            rest = rest[2:]
            continue
        if rest == ["passport", "versions"]:  # the passport's version list: the one resource two segments long
            resource, rest = "passport/versions", []
            continue
        if len(rest) != 1:
            raise MalformedLink(f"unexpected path segment {key!r}")
        if key in RESOURCES:
            resource = key
        elif is_compressed_segment(key) and not qualifiers:
            try:
                compressed = decompress_segment(key)
            except CompressionError as exc:
                raise MalformedLink(f"cannot decompress {key!r}: {exc}") from None
        else:
            raise MalformedLink(f"unexpected path segment {key!r}")
        rest = []
    if compressed is not None:
        if GTIN_AI in compressed.ais:
            raise MalformedLink("a partially compressed link repeats its primary key")
        link = _assemble(gtin, compressed)
        return DigitalLink(link.gtin, link.qualifiers, link.attributes, link.other, None, True)
    return DigitalLink(gtin, _ordered(qualifiers), resource=resource)


def _from_compressed(segment: str) -> DigitalLink:
    try:
        decoded = decompress_segment(segment)
    except CompressionError as exc:
        raise NotADigitalLink(f"not a compressed GS1 Digital Link: {exc}") from None
    gtin = decoded.ais.get(GTIN_AI)
    if gtin is None:
        primaries = [ai for ai in decoded.ais if ai in PRIMARY_KEYS]
        if primaries:
            raise UnsupportedKey(f"this resolver resolves GTINs (01), not AI ({primaries[0]})")
        raise NotADigitalLink("the compressed link holds no primary key")
    return _assemble(_check_gtin(gtin), decoded)


def _assemble(gtin: str, decoded: Decompressed) -> DigitalLink:
    qualifiers = {ai: _check_qualifier(ai, value) for ai, value in decoded.ais.items() if ai in QUALIFIER_ORDER}
    attributes = tuple(
        (ai, value) for ai, value in sorted(decoded.ais.items()) if ai != GTIN_AI and ai not in QUALIFIER_ORDER
    )
    return DigitalLink(gtin, _ordered(qualifiers), attributes, tuple(decoded.other.items()), None, True)


__all__ = [
    "QUALIFIER_ORDER",
    "RESOURCES",
    "DigitalLink",
    "MalformedLink",
    "NotADigitalLink",
    "UnsupportedKey",
    "parse_path",
]
