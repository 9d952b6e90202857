"""An item's passport in each format, from a stored version, as a tier sees it: what the HTTP resources serve and
what ``circular passport`` prints, the same bytes for the same version and tier.

``html`` and ``jsonld`` are the page and the JSON-LD (``api/reads.py``: checked against the version's anchored hash,
rendered once per version and tier); ``untp`` the UNTP credential signed by the brand (``api/untp.py``, a compact JWS);
``catenax`` the Catena-X Generic Digital Product Passport 7.0.0 (``api/catenax.py``). Every one of them is rendered
from what the tier may see of the version's content (``api/access.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from ledger.versions import version as stored_version

from . import catenax
from .access import Tier, restrict_envelope
from .links import JSON, JSONLD
from .state import AppState
from .uris import item_uri
from .versions import KIND

if TYPE_CHECKING:
    from .credentials import StatusPublisher
    from .models import Actor

FORMATS = ("html", "jsonld", "untp", "catenax")
RESOURCES = {"html": "passport", "jsonld": "passport.jsonld", "untp": "credential", "catenax": "catenax"}


class NoRendering(ValueError):
    """The version exists but cannot be rendered in this format (the master data it requires is missing)."""


@dataclass(frozen=True)
class Rendered:
    body: bytes
    media_type: str
    version: int


def render(
    state: AppState, session: Session, fmt: str, gtin14: str, serial: str, number: int | None, tier: Tier
) -> Rendered | None:
    """Version `number` (the newest when None) of the item's passport in format `fmt`, as readers of `tier` see it;
    None when there is no such version. Raises :class:`NoRendering` when the format needs master data the version
    lacks, ValueError for an unknown format."""
    if fmt not in FORMATS:
        raise ValueError(f"a format is one of {', '.join(FORMATS)}, not {fmt!r}")
    resolver = state.settings.resolver_base_url.rstrip("/")
    subject = item_uri(state.settings.resolver_base_url, gtin14, serial)
    if fmt in ("html", "jsonld"):
        from .routes.passport import reads

        answer = reads(state).passport(RESOURCES[fmt], subject, gtin14, serial, resolver, number, tier)
        return Rendered(answer.body, answer.media_type, answer.version) if answer is not None else None
    found = stored_version(session, KIND, subject, number)
    if found is None:
        return None
    envelope = json.loads(found.document)
    if fmt == "catenax":
        try:
            body = catenax.render_bytes(envelope, resolver, tier)
        except catenax.CatenaxError as exc:
            raise NoRendering(str(exc)) from None
        return Rendered(body, JSON, found.number)
    from .credentials import VC_JWT, CredentialError
    from .untp import render as untp_render

    try:
        made = untp_render(session, state.settings, restrict_envelope(envelope, tier), status_publisher(state))
    except CredentialError as exc:
        raise NoRendering(str(exc)) from None
    return Rendered(made.jwt.encode(), VC_JWT, made.version)


def status_publisher(state: AppState) -> Callable[[Actor], StatusPublisher | None]:
    """Each brand's status records published to the archive, signed by the brand's own account."""
    from .credentials import archive_publisher

    def of(brand: Actor) -> StatusPublisher | None:
        return archive_publisher(
            state.service.archive, lambda: state.keys.account(brand), state.settings.resolver_base_url
        )

    return of


__all__ = ["FORMATS", "JSONLD", "RESOURCES", "NoRendering", "Rendered", "render", "status_publisher"]
