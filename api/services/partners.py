"""Partners: the retailers, recyclers and repairers a brand works with. Only they move the brand's items on-chain
(``ItemRegistry.setPartner``); a retailer, recycler or repairer that the brand has not authorised is refused by the
contract (``NotBrandPartner``, a 403), whatever roles it holds.

A partner acts in its own role: a brand authorises a retailer as its retailer, a recycler as its recycler. The chain
holds the relation; the API keeps no copy of it, so the list is what the chain answers for the API's actors.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import intents
from ..models import Actor, ActorRole, Item, WriteIntent
from ..problems import Problem
from ..schemas import PartnerCreate, PartnerList, PartnerPublic
from ..state import AppState
from ..uris import hex32
from ..writes import authorize

PARTNER_ROLES = (ActorRole.RETAILER, ActorRole.RECYCLER, ActorRole.REPAIRER)


def _partner(session: Session, actor_id: int) -> Actor:
    partner = session.get(Actor, actor_id)
    if partner is None or partner.revoked:
        raise Problem(404, "Unknown actor", f"no actor {actor_id}")
    if partner.role not in {r.value for r in PARTNER_ROLES}:
        raise Problem(
            422,
            "Not a partner role",
            f"{partner.name} is a {partner.role}: a brand's partners are retailers, recyclers and repairers",
            role=partner.role,
            allowedRoles=sorted(r.value for r in PARTNER_ROLES),
        )
    return partner


class PartnerCheck:
    """Whether a brand has authorised an actor, asked of the chain once per brand: for writes the contract does not
    judge itself (a repair, which moves no state) and for bulk writes checked before anything is sent."""

    def __init__(self, state: AppState, session: Session, actor: Actor) -> None:
        self.state, self.session, self.actor = state, session, actor
        self._answers: dict[int, tuple[Actor | None, bool]] = {}

    def refusal(self, item: Item) -> Problem | None:
        """None when `actor` may act on `item` (it is the item's brand, or its brand's partner in its role); else
        the contract's own refusal, ``NotBrandPartner``, as problem details (403)."""
        actor = self.actor
        if actor.role == ActorRole.BRAND or actor.role not in {r.value for r in PARTNER_ROLES}:
            return None  # a brand's own items are checked elsewhere; other roles take no partner's step
        known = self._answers.get(item.brand_id)
        if known is None:
            brand = self.session.get(Actor, item.brand_id)
            ok = brand is not None and self.state.service.ledger.is_partner(brand.address, actor.address, actor.role)
            known = self._answers[item.brand_id] = (brand, ok)
        brand, ok = known
        if ok:
            return None
        name = brand.name if brand is not None else "the item's brand"
        return Problem(
            403,
            "NotBrandPartner",
            f"{name} has not authorised {actor.name} as its {actor.role}: only a brand's partners act on its items",
            error="NotBrandPartner",
            args={"itemId": item.item_id, "brand": brand.address if brand else None, "account": actor.address},
        )


def _public(partner: Actor, authorized: bool, tx_hash: str | None = None) -> PartnerPublic:
    return PartnerPublic(
        actor_id=partner.id,
        name=partner.name,
        role=partner.role,
        address=partner.address,
        authorized=authorized,
        tx_hash=tx_hash,
    )


def _set(state: AppState, session: Session, brand: Actor, actor_id: int, authorized: bool) -> PartnerPublic:
    authorize(brand, ActorRole.BRAND)
    partner = _partner(session, actor_id)
    relation = f"partner:{brand.address}:{partner.address}:{partner.role}".lower()
    subject = hex32(hashlib.sha256(relation.encode()).digest())  # one write at a time per brand, partner and role
    intents.reconcile(state, subject=subject)  # a retry after a crash: the first attempt may have been mined
    written = intents.write(
        state,
        brand,
        state.keys.account(brand),
        kind="partner",
        subject=subject,
        call=state.service.ledger.set_partner_call(partner.address, partner.role, authorized),
        events=[],
        effect={"partner_id": partner.id, "role": partner.role, "authorized": authorized},
    )
    return _public(partner, authorized, written.tx_hash)


def add_partner(state: AppState, session: Session, brand: Actor, body: PartnerCreate) -> PartnerPublic:
    """The brand authorises a retailer, recycler or repairer (in its own role) to move the brand's items."""
    return _set(state, session, brand, body.actor_id, True)


def remove_partner(state: AppState, session: Session, brand: Actor, actor_id: int) -> PartnerPublic:
    """The brand stops authorising a partner; from the next transaction on, the contract refuses its moves."""
    authorize(brand, ActorRole.BRAND)
    partner = _partner(session, actor_id)
    if not state.service.ledger.is_partner(brand.address, partner.address, partner.role):
        raise Problem(404, "Not a partner", f"{partner.name} is not a partner of {brand.name}")
    return _set(state, session, brand, actor_id, False)


def list_partners(state: AppState, session: Session, brand: Actor) -> PartnerList:
    """The brand's partners among the API's actors, as the chain says."""
    authorize(brand, ActorRole.BRAND)
    ledger = state.service.ledger
    candidates = session.scalars(
        select(Actor)
        .where(Actor.role.in_([r.value for r in PARTNER_ROLES]), Actor.revoked.is_(False))
        .order_by(Actor.id)
    )
    return PartnerList(
        partners=[
            _public(actor, True) for actor in candidates if ledger.is_partner(brand.address, actor.address, actor.role)
        ]
    )


def complete_partner(session: Session, intent: WriteIntent) -> None:
    """Nothing to write: the chain holds the relation (see the module docstring)."""


__all__ = ["PARTNER_ROLES", "PartnerCheck", "add_partner", "complete_partner", "list_partners", "remove_partner"]
