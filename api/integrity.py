"""The database's claims about an item, for ``circular verify`` to hold against the chain (see ``ledger.integrity``)."""

from __future__ import annotations

import urllib.parse

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from ledger.integrity import ItemClaim

from .gs1.digital_link import parse_path
from .models import Item
from .passport import item_claim


def claim_for_link(session: Session, digital_link: str) -> ItemClaim | None:
    """What the database says the item of `digital_link` is made of; None when it is not an item the database holds,
    or when the database is the ledger's alone (``circular verify`` then checks the events and proofs only)."""
    try:
        link = parse_path(urllib.parse.urlsplit(digital_link).path)
    except (ValueError, LookupError):
        return None
    if link.serial is None or not inspect(session.connection()).has_table(Item.__tablename__):
        return None
    item = session.scalar(select(Item).where(Item.gtin == link.gtin14, Item.serial == link.serial))
    return item_claim(session, item) if item is not None else None


__all__ = ["claim_for_link"]
