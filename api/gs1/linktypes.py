"""Link types: the GS1 Web Vocabulary's (a snapshot of ref.gs1.org/voc/data/linktypes) and our own.

Our own link types live in our own namespace and never duplicate a GS1 one (GS1-Conformant Resolver Standard).
That namespace, ``OWN_NS``, is not the vocabulary of our passports' and events' terms (``VOC_NS``, prefix ``circ``
in JSON-LD and EPCIS, which is part of every anchored event hash and stays as it is): the GS1 linkset schema admits a
relation key only when it matches ``^https?://[a-zA-z0-9./]+$``, so a link type's URI may hold no hyphen, and the
vocabulary's host has one.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

GS1_NS = "https://gs1.org/voc/"
OWN_NS = "https://ns.circularledger.org/linktype/"  # link types: no hyphen, see above
VOC_NS = "https://ns.circular-ledger.org/voc/"  # the terms of passports and events
PREFIXES = {"gs1": GS1_NS, "circ": OWN_NS}

# Our own link types: what GS1's vocabulary has no type for.
OWN_LINK_TYPES: dict[str, dict[str, str]] = {
    "evidenceBundle": {
        "title": "Evidence bundle",
        "description": "The item's events with their signatures, Merkle proofs and on-chain anchors, verifiable "
        "offline.",
    },
    "qrCode": {
        "title": "QR code",
        "description": "The QR code carrying the item's GS1 Digital Link.",
    },
    "authorisedAccess": {
        "title": "More for authorised parties",
        "description": "The passport holds data for repairers and recyclers (legitimate interest) and authorities "
        "beyond the public's: the same resources, read with their API key.",
    },
}


@cache
def gs1_link_types() -> dict[str, dict[str, object]]:
    path = Path(__file__).resolve().parents[1] / "standards" / "gs1-resolver" / "linktypes.json"
    data: dict[str, dict[str, object]] = json.loads(path.read_text())
    return data


def _check_own_types() -> None:
    clash = set(OWN_LINK_TYPES) & set(gs1_link_types())
    if clash:  # pragma: no cover - a guard for whoever adds a type
        raise RuntimeError(f"own link types duplicate GS1 ones: {sorted(clash)}")


def expand(link_type: str) -> str | None:
    """The full URI of a link type given as a CURIE (``gs1:dpp``) or a URI; None when no vocabulary defines it."""
    for prefix, namespace in PREFIXES.items():
        if link_type.startswith(prefix + ":"):
            link_type = namespace + link_type[len(prefix) + 1 :]
            break
    if link_type.startswith(GS1_NS):
        return link_type if link_type[len(GS1_NS) :] in gs1_link_types() else None
    if link_type.startswith(OWN_NS):
        return link_type if link_type[len(OWN_NS) :] in OWN_LINK_TYPES else None
    return None


def gs1(name: str) -> str:
    """The URI of GS1 link type `name`; raises KeyError for a type the GS1 vocabulary lacks."""
    if name not in gs1_link_types():
        raise KeyError(f"gs1:{name} is not in the GS1 Web Vocabulary")
    return GS1_NS + name


def own(name: str) -> str:
    if name not in OWN_LINK_TYPES:
        raise KeyError(f"circ:{name} is not one of our link types")
    return OWN_NS + name


def curie(uri: str) -> str:
    for prefix, namespace in PREFIXES.items():
        if uri.startswith(namespace):
            return f"{prefix}:{uri[len(namespace) :]}"
    return uri


_check_own_types()

__all__ = [
    "GS1_NS",
    "OWN_LINK_TYPES",
    "OWN_NS",
    "PREFIXES",
    "VOC_NS",
    "curie",
    "expand",
    "gs1",
    "gs1_link_types",
    "own",
]
