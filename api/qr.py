"""QR codes of Digital Links: always a full QR code (never Micro QR), error correction Q, a 4-module quiet zone."""

from __future__ import annotations

import io
from functools import lru_cache

import segno

QUIET_ZONE = 4


def _code(uri: str) -> segno.QRCode:
    # make_qr never yields a Micro QR (segno.make would, for short content); boost_error=False keeps level Q exactly.
    return segno.make_qr(uri, error="q", boost_error=False)


@lru_cache(maxsize=4096)
def qr_svg(uri: str) -> bytes:
    out = io.BytesIO()
    _code(uri).save(out, kind="svg", scale=4, border=QUIET_ZONE, dark="black", light="white", xmldecl=False, title=uri)
    return out.getvalue()


@lru_cache(maxsize=4096)
def qr_png(uri: str) -> bytes:
    out = io.BytesIO()
    _code(uri).save(out, kind="png", scale=8, border=QUIET_ZONE, dark="black", light="white")
    return out.getvalue()


__all__ = ["QUIET_ZONE", "qr_png", "qr_svg"]
