"""GS1 keys and the ids the contracts derive from them. GTINs are parsed and checked by biip."""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import quote, unquote, urlsplit

from biip import ParseError
from biip.gtin import Gtin
from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_canonical_address
from eth_utils.crypto import keccak

from .errors import InvalidIdentifier

# GS1 General Specifications 7.11, character set 82: what AI (21) serials and AI (10) lots may hold.
_CSET82 = re.compile(r"^[!\"%&'()*+,\-./0-9:;<=>?A-Z_a-z]{1,20}$")


@lru_cache(maxsize=8192)
def normalize_gtin(gtin: str) -> str:
    """The GTIN-14 form of `gtin` (GTIN-8/12/13/14), with its check digit verified.

    Kept per distinct GTIN (a refused one raises again each time): a resolver asks it for every scan, and biip's
    parse was a third of a scan's work."""
    # isascii: str.isdigit() also accepts Arabic-Indic, fullwidth and other Unicode digits (look-alike GTINs).
    if not (gtin.isascii() and gtin.isdigit()) or len(gtin) not in (8, 12, 13, 14):
        raise InvalidIdentifier(f"GTIN must be 8, 12, 13 or 14 digits: {gtin!r}")
    try:
        return Gtin.parse(gtin).as_gtin_14()
    except ParseError as exc:
        raise InvalidIdentifier(f"invalid GTIN {gtin!r}: {exc}") from None


def check_serial(value: str, what: str = "serial") -> str:
    """A GS1 serial (AI 21) or batch/lot (AI 10): 1 to 20 characters of character set 82."""
    if not _CSET82.fullmatch(value):  # not match(): its "$" also matches before a trailing newline
        raise InvalidIdentifier(f"{what} must be 1 to 20 characters of GS1 character set 82: {value!r}")
    return value


def item_id(gtin: str, serial: str) -> bytes:
    """The contracts' item id: ``keccak256(abi.encode(gtin14, serial))``."""
    return keccak(abi_encode(["string", "string"], [normalize_gtin(gtin), check_serial(serial)]))


def gtin_lot_id(gtin: str, lot_number: str) -> bytes:
    """The id of a lot keyed by GTIN plus batch/lot: ``keccak256(abi.encode(gtin14, lot))``."""
    return keccak(abi_encode(["string", "string"], [normalize_gtin(gtin), check_serial(lot_number, "lot")]))


def material_lot_id(owner: str, material_code: bytes, lot_number: str) -> bytes:
    """The id of a lot keyed by material code and lot, in its owner's namespace."""
    return keccak(
        abi_encode(["address", "bytes32", "string"], [to_canonical_address(owner), material_code, lot_number])
    )


def digital_link(base_url: str, gtin: str, serial: str | None = None, lot: str | None = None) -> str:
    """The uncompressed GS1 Digital Link URI of an item (AI 21) or a lot (AI 10) at `base_url`."""
    uri = f"{base_url.rstrip('/')}/01/{normalize_gtin(gtin)}"
    if serial is not None:
        uri += f"/21/{quote(check_serial(serial), safe='')}"
    if lot is not None:
        uri += f"/10/{quote(check_serial(lot, 'lot'), safe='')}"
    return uri


def at_resolver(base_url: str, link: str) -> str:
    """The Digital Link of the item or lot that `link` names, at the resolver `base_url`: events name items and lots
    by the configured resolver's host, while a person may hold the link from any host of it (the one a browser
    showed, a staging host, a QR code printed for another domain). Query and fragment are dropped, the GTIN
    normalised to 14 digits, qualifiers other than lot (10) and serial (21) left out; a link that names no GTIN
    raises :class:`InvalidIdentifier`."""
    path = urlsplit(link.strip()).path if "://" in link else link.strip()
    segments = [unquote(part) for part in path.split("/") if part]
    keys: dict[str, str] = {}
    for index in range(len(segments) - 1):
        if segments[index] in ("01", "10", "21", "22") and segments[index] not in keys:
            keys[segments[index]] = segments[index + 1]
    if "01" not in keys:
        raise InvalidIdentifier(f"not a GS1 Digital Link of an item or a lot (no /01/<GTIN>): {link!r}")
    return digital_link(base_url, keys["01"], serial=keys.get("21"), lot=None if "21" in keys else keys.get("10"))


def lot_uri(base_url: str, lot_id: bytes) -> str:
    """The URI of a lot with no GS1 key (a recovered lot keyed by material code), at the resolver."""
    return f"{base_url.rstrip('/')}/lots/0x{lot_id.hex()}"


__all__ = [
    "at_resolver",
    "check_serial",
    "digital_link",
    "gtin_lot_id",
    "item_id",
    "lot_uri",
    "material_lot_id",
    "normalize_gtin",
]
