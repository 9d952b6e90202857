"""A brand's products: the list, and a form to create or edit a product's master data.

The form is built from the write API's own input schema (:class:`api.schemas.ProductCreate`): a field added there
appears here. A field the form cannot show as text travels unchanged in a hidden field, so that saving the form
never resets it.
"""

from __future__ import annotations

import json
from typing import Any, get_args

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic.fields import FieldInfo
from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.ids import normalize_gtin

from ...deps import SessionDep, StateDep
from ...models import Product
from ...schemas import ProductCreate
from ...services import products
from ...state import AppState
from .forms import parse, text_fields
from .web import (
    Console,
    ConsoleDep,
    FormConsole,
    PageNotFound,
    Refused,
    once,
    redirect,
    render,
    require_role,
    submission_key,
)

router = APIRouter()

LABELS = {
    "name": "Name",
    "brand_name": "Brand name",
    "description": "Description",
    "language": "Language",
    "image_url": "Image (https address)",
    "care": "Care",
    "repair": "Repair",
    "end_of_life": "End of life",
    "return_info": "How to return it",
}
HINTS = {
    "brand_name": "Shown on the passport; your actor's name when empty.",
    "language": "Of the texts above: a language code such as en, fr or de-CH.",
    "image_url": "The address of a picture of the product.",
}


def _kind(info: FieldInfo) -> str:
    """How the form shows a field: text, textarea, url, or hidden (anything else, kept as JSON)."""
    annotation = info.annotation
    types = set(get_args(annotation)) - {type(None)} or {annotation}
    if types <= {str}:
        longest = max((getattr(m, "max_length", 0) or 0 for m in info.metadata), default=0)
        return "textarea" if longest > 300 else "text"
    return "hidden"


def product_fields() -> list[dict[str, Any]]:
    fields = []
    for name, info in ProductCreate.model_fields.items():
        kind = _kind(info)
        if name == "image_url":
            kind = "url"
        fields.append(
            {
                "name": name,
                "label": LABELS.get(name, name.replace("_", " ").capitalize()),
                "hint": HINTS.get(name) or (info.description if kind != "hidden" else None),
                "kind": kind,
                "required": info.is_required(),
            }
        )
    return fields


def _values(product: Product | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for field in product_fields():
        value = getattr(product, field["name"], None) if product is not None else None
        if field["kind"] == "hidden":
            values[field["name"]] = json.dumps(value)
        else:
            values[field["name"]] = value if value is not None else ""
    if product is None:
        values["language"] = "en"
    return values


def _own_product(session: Session, console: Console, gtin: str) -> Product:
    try:
        gtin14 = normalize_gtin(gtin)
    except ValueError:
        raise PageNotFound(gtin) from None
    product = session.get(Product, gtin14)
    if product is None or product.brand_id != console.actor.id:
        raise PageNotFound(gtin)
    return product


@router.get("/products")
def product_list(request: Request, console: ConsoleDep, session: SessionDep, ok: str | None = None) -> Response:
    require_role(console, "brand")
    rows = list(session.scalars(select(Product).where(Product.brand_id == console.actor.id).order_by(Product.gtin)))
    return render(
        request,
        "console/products.html",
        {
            "title": "Products",
            "products": rows,
            "fields": product_fields(),
            "values": _values(None),
            "errors": {},
            "gtin": "",
            "flash": "Product saved." if ok else None,
        },
        console=console,
    )


@router.get("/products/{gtin}")
def product_page(request: Request, gtin: str, console: ConsoleDep, session: SessionDep,
                 ok: str | None = None) -> Response:
    require_role(console, "brand")
    product = _own_product(session, console, gtin)
    return render(
        request,
        "console/product.html",
        {
            "title": product.name,
            "product": product,
            "fields": product_fields(),
            "values": _values(product),
            "errors": {},
            "flash": "Product saved." if ok else None,
        },
        console=console,
    )


def _save(
    request: Request, console: Console, session: Session, state: AppState, form: dict[str, str], gtin: str | None
) -> Response:
    require_role(console, "brand")
    data: dict[str, Any] = {}
    for field in product_fields():
        raw = form.get(field["name"], "")
        if field["kind"] == "hidden":
            try:
                data[field["name"]] = json.loads(raw) if raw else None
            except ValueError:
                data[field["name"]] = None
            if data[field["name"]] is None:
                del data[field["name"]]
        elif raw or field["required"]:
            data[field["name"]] = raw
    new = gtin is None
    target: str = form.get("gtin", "") if gtin is None else gtin
    errors: dict[str, str] = {}
    try:
        target = normalize_gtin(target or "")
    except ValueError as exc:
        errors["gtin"] = str(exc) if target else "Required."
    body, field_errors = parse(ProductCreate, data)
    errors.update(field_errors)
    if body is not None and not errors:
        gtin14, valid = target, body

        def write() -> dict[str, Any]:
            saved = products.put_product(state, session, console.actor, gtin14, valid)
            return {"gtin": saved.gtin}

        try:
            once(state, console.actor, submission_key(form.get("submission")), write)
            return redirect(f"/console/products/{gtin14}?ok=saved")
        except Refused as refused:
            errors[refused.words.field or "_form"] = refused.words.message
    template = "console/products.html" if new else "console/product.html"
    context: dict[str, Any] = {
        "title": "Products" if new else data.get("name") or "Product",
        "fields": product_fields(),
        "values": {**_values(None), **form},
        "errors": errors,
        "gtin": form.get("gtin", ""),
    }
    if new:
        context["products"] = list(
            session.scalars(select(Product).where(Product.brand_id == console.actor.id).order_by(Product.gtin))
        )
    else:
        context["product"] = _own_product(session, console, gtin or "")
    return render(request, template, context, console=console, status_code=422)


@router.post("/products")
async def create_product(request: Request, console: FormConsole, session: SessionDep, state: StateDep) -> Response:
    form = text_fields(await request.form())
    return await run_in_threadpool(_save, request, console, session, state, form, None)


@router.post("/products/{gtin}")
async def edit_product(
    request: Request, gtin: str, console: FormConsole, session: SessionDep, state: StateDep
) -> Response:
    form = text_fields(await request.form())
    return await run_in_threadpool(_save, request, console, session, state, form, gtin)


__all__ = ["product_fields", "router"]
