"""Products: a brand's master data per GTIN (name, description, care, repair, end of life, how to return)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ledger.ids import normalize_gtin

from .. import versions
from ..models import Actor, ActorRole, Product, utcnow
from ..recovery import product_masterdata
from ..schemas import ProductCreate, ProductPublic
from ..state import AppState
from ..writes import authorize, check_gtin_owner, ensure_product
from . import corrections

EDIT_ROLES = (ActorRole.BRAND,)


def product_public(product: Product, resolver: str) -> ProductPublic:
    return ProductPublic(
        gtin=product.gtin,
        digital_link=f"{resolver.rstrip('/')}/01/{product.gtin}",
        brand_name=product.brand_name,
        name=product.name,
        description=product.description,
        language=product.language,
        image_url=product.image_url,
        care=product.care,
        repair=product.repair,
        end_of_life=product.end_of_life,
        return_info=product.return_info,
        category_code=product.category_code,
        category_name=product.category_name,
        facility_gln=product.facility_gln,
        facility_name=product.facility_name,
        production_country=product.production_country,
        lifespan_years=product.lifespan_years,
        volume_cm3=product.volume_cm3,
        gross_weight_grams=product.gross_weight_grams,
        gross_volume_cm3=product.gross_volume_cm3,
    )


def put_product(state: AppState, session: Session, actor: Actor, gtin: str, body: ProductCreate) -> ProductPublic:
    """Create or update a product: its brand only (the owner of the GTIN's company prefix)."""
    authorize(actor, *EDIT_ROLES)
    gtin14 = normalize_gtin(gtin)
    if session.get(Product, gtin14) is None:
        check_gtin_owner(state, actor, gtin14)
    existing = session.get(Product, gtin14)
    before = corrections.product_fields(existing) if existing is not None else None
    product = ensure_product(session, gtin14, actor)
    for field, value in body.model_dump(exclude_unset=False).items():
        if field == "brand_name":
            value = value or product.brand_name or actor.name
        setattr(product, field, value)
    product.updated_at = utcnow()
    if before is not None:  # a change of what the product said: the previous values are kept in its history
        corrections.record_product_change(session, actor, product, before)
    versions.after_product(session, state, gtin14)  # the passports showing it, before the answer
    session.commit()
    archive = state.service.archive
    if archive is not None:  # signed by the brand, so that `circular rebuild` can bring it back and trust it
        archive.publish_masterdata("product", gtin14, product_masterdata(product), state.keys.account(actor))
    return product_public(product, state.settings.resolver_base_url)


__all__ = ["EDIT_ROLES", "product_public", "put_product"]
