"""Products: a brand's master data per GTIN (name, description, care, repair, end of life, how to return)."""

from __future__ import annotations

from fastapi import APIRouter

from ledger.ids import normalize_gtin

from ..deps import BrandActor, CurrentActor, PageDep, SessionDep, SettingsDep, StateDep
from ..lists import list_products
from ..models import Product
from ..problems import Problem
from ..schemas import ProductCreate, ProductPublic, ProductsPublic
from ..services import products

router = APIRouter(prefix="/products", tags=["products"])


@router.get("", response_model=ProductsPublic, summary="Your products, a page at a time")
def get_products(actor: CurrentActor, session: SessionDep, state: StateDep, page: PageDep) -> ProductsPublic:
    """A brand's own products; for anyone else every product (master data is public). By GTIN."""
    return list_products(state, session, actor, page)


@router.put("/{gtin}", response_model=ProductPublic, summary="Create or update a product (its brand)")
def put_product(
    gtin: str, body: ProductCreate, actor: BrandActor, session: SessionDep, state: StateDep
) -> ProductPublic:
    return products.put_product(state, session, actor, gtin, body)


@router.get("/{gtin}", response_model=ProductPublic, summary="A product's master data")
def get_product(gtin: str, session: SessionDep, settings: SettingsDep) -> ProductPublic:
    product = session.get(Product, normalize_gtin(gtin))
    if product is None:
        raise Problem(404, "Unknown GTIN", f"GTIN {gtin} is not registered")
    return products.product_public(product, settings.resolver_base_url)
