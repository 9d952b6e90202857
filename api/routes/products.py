"""Products: a brand's master data per GTIN (name, description, care, repair, end of life, how to return)."""

from __future__ import annotations

from fastapi import APIRouter

from ledger.ids import normalize_gtin

from ..deps import BrandActor, SessionDep, SettingsDep, StateDep
from ..models import Product, utcnow
from ..problems import Problem
from ..recovery import product_masterdata
from ..schemas import ProductCreate, ProductPublic
from ..writes import check_gtin_owner, ensure_product

router = APIRouter(prefix="/products", tags=["products"])


def _public(product: Product, resolver: str) -> ProductPublic:
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
    )


@router.put("/{gtin}", response_model=ProductPublic, summary="Create or update a product (its brand)")
def put_product(
    gtin: str, body: ProductCreate, actor: BrandActor, session: SessionDep, state: StateDep, settings: SettingsDep
) -> ProductPublic:
    gtin14 = normalize_gtin(gtin)
    if session.get(Product, gtin14) is None:
        check_gtin_owner(state, actor, gtin14)
    product = ensure_product(session, gtin14, actor)
    for field, value in body.model_dump(exclude_unset=False).items():
        if field == "brand_name":
            value = value or product.brand_name or actor.name
        setattr(product, field, value)
    product.updated_at = utcnow()
    session.commit()
    archive = state.service.archive
    if archive is not None:  # signed by the brand, so that `circular rebuild` can bring it back and trust it
        archive.publish_masterdata("product", gtin14, product_masterdata(product), state.keys.account(actor))
    return _public(product, settings.resolver_base_url)


@router.get("/{gtin}", response_model=ProductPublic, summary="A product's master data")
def get_product(gtin: str, session: SessionDep, settings: SettingsDep) -> ProductPublic:
    product = session.get(Product, normalize_gtin(gtin))
    if product is None:
        raise Problem(404, "Unknown GTIN", f"GTIN {gtin} is not registered")
    return _public(product, settings.resolver_base_url)
