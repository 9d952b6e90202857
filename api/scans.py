"""Recording resolver scans of registered items, for the audit's clone rules (``api/audit.py``).

Where a scan came from is kept coarse, a country: from the edge's geolocation header when the resolver sits behind
a CDN that sets one (Cloudflare's ``CF-IPCountry``, CloudFront's ``CloudFront-Viewer-Country``), else from a
``?loc=<country>`` parameter that a scanning app may add. The client is a truncated hash of its address and user
agent: enough to count distinct clients, useless to identify anyone.
"""

from __future__ import annotations

import hashlib
import re

from fastapi import Request
from sqlalchemy.orm import Session

from .models import Scan, utcnow

REGION_HEADERS = ("cf-ipcountry", "cloudfront-viewer-country")
_COUNTRY = re.compile(r"[A-Z]{2}")
NOT_A_COUNTRY = frozenset({"XX", "T1", "ZZ"})  # Cloudflare's "unknown" and "Tor"; ZZ: unknown in CLDR


def scan_region(request: Request) -> str | None:
    """The scan's country (ISO 3166-1 alpha-2), or None when nothing trustworthy says."""
    candidates = [request.headers.get(name) for name in REGION_HEADERS] + [request.query_params.get("loc")]
    for value in candidates:
        code = (value or "").strip().upper()
        if _COUNTRY.fullmatch(code) and code not in NOT_A_COUNTRY:
            return code
    return None


def client_fingerprint(request: Request) -> str:
    address = request.client.host if request.client else ""
    agent = request.headers.get("user-agent", "")
    return hashlib.sha256(f"{address}\n{agent}".encode()).hexdigest()[:16]


def record_item_scan(session: Session, request: Request, gtin: str, serial: str) -> None:
    session.add(
        Scan(
            gtin=gtin,
            serial=serial,
            region=scan_region(request),
            client=client_fingerprint(request),
            scanned_at=utcnow(),
        )
    )
    session.commit()


__all__ = ["client_fingerprint", "record_item_scan", "scan_region"]
