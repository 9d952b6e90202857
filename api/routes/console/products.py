"""A brand's products: the list, and a form to create or edit a product's master data.

The form is built from the write API's own input schema (:class:`api.schemas.ProductCreate`): a field added there
appears here. Text is a text box (a long one when it may hold more than 300 characters), a choice of fixed values
(a ``Literal`` or an ``Enum``) a list to pick from, a whole number a number box, a list of texts a box with one per
line. A field the form cannot show (an object, say) travels unchanged in a hidden field, so that saving the form
never resets it.
"""

from __future__ import annotations

import enum
import json
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import to_jsonable_python
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
    "category_code": "Category code (UN CPC)",
    "category_name": "Category",
    "facility_gln": "Facility's GLN",
    "facility_name": "Facility",
    "production_country": "Country of production",
}
HINTS = {
    "brand_name": "Shown on the passport; your actor's name when empty.",
    "language": "Of the texts above: a language code such as en, fr or de-CH.",
    "image_url": "The address of a picture of the product.",
    "category_code": "The UN CPC Ver. 2.1 code of its category (1 to 5 digits), with the category's name below.",
    "category_name": "The CPC title of that category, such as Knitted or crocheted garments.",
    "facility_gln": "The GS1 GLN (13 digits) of the facility it is made at, with the facility's name below.",
    "production_country": "Where it is made: a two-letter country code such as PT or IN.",
}


def _choices(annotation: Any) -> list[str] | None:
    """The values a Literal of strings or a string Enum allows; None for any other type."""
    if get_origin(annotation) is Literal and all(isinstance(a, str) for a in get_args(annotation)):
        return [str(a) for a in get_args(annotation)]
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        values = [member.value for member in annotation]
        return [str(v) for v in values] if all(isinstance(v, str) for v in values) else None
    return None


def _kind(info: FieldInfo) -> tuple[str, list[str]]:
    """How the form shows a field (text, textarea, select, number, lines, or hidden: anything else, kept as JSON),
    and the choices of a select."""
    annotation = info.annotation
    optional = set(get_args(annotation)) - {type(None)} if get_origin(annotation) in (Union, UnionType) else set()
    (only,) = optional if len(optional) == 1 else (annotation,)
    if _is_text(only):
        longest = max((getattr(m, "max_length", 0) or 0 for m in info.metadata), default=0)
        return ("textarea" if longest > 300 else "text"), []
    choices = _choices(only)
    if choices is not None:
        return "select", choices
    if only is int:
        return "number", []
    if get_origin(only) is list and get_args(only) and _is_text(get_args(only)[0]):
        return "lines", []
    return "hidden", []


def _is_text(annotation: Any) -> bool:
    """str, or an Annotated str (a Uri, say)."""
    return annotation is str or (getattr(annotation, "__origin__", None) is str)


def product_fields(model: type[BaseModel] = ProductCreate) -> list[dict[str, Any]]:
    fields = []
    for name, info in model.model_fields.items():
        kind, choices = _kind(info)
        if name == "image_url":
            kind = "url"
        required = info.is_required()
        # A select of an optional field starts with "none of them".
        options = ([] if required else [("", "None")]) + [(c, c.replace("_", " ").capitalize()) for c in choices]
        fields.append(
            {
                "name": name,
                "label": LABELS.get(name, name.replace("_", " ").capitalize()),
                "hint": HINTS.get(name) or (info.description if kind != "hidden" else None),
                "kind": kind,
                "required": required,
                "options": options,
            }
        )
    return fields


def form_data(fields: list[dict[str, Any]], form: dict[str, str]) -> dict[str, Any]:
    """The form's fields as the write API's input: empty optional fields left out (their defaults), hidden ones
    read back from JSON, one entry per line for a list."""
    data: dict[str, Any] = {}
    for field in fields:
        name, raw = field["name"], form.get(field["name"], "")
        if field["kind"] == "hidden":
            try:
                value = json.loads(raw) if raw else None
            except ValueError:
                value = None
            if value is not None:
                data[name] = value
        elif field["kind"] == "lines":
            entries = [line.strip() for line in raw.splitlines() if line.strip()]
            if entries or field["required"]:
                data[name] = entries
        elif raw or field["required"]:
            data[name] = raw
    return data


def form_values(fields: list[dict[str, Any]], product: Any) -> dict[str, Any]:
    """What the form shows of a saved product (of `product`'s attributes by the fields' names)."""
    values: dict[str, Any] = {}
    for field in fields:
        value = getattr(product, field["name"], None) if product is not None else None
        if field["kind"] == "hidden":
            values[field["name"]] = json.dumps(to_jsonable_python(value))
        elif value is None:
            values[field["name"]] = ""
        elif field["kind"] == "lines":
            values[field["name"]] = "\n".join(str(v) for v in value)
        elif isinstance(value, enum.Enum):
            values[field["name"]] = str(value.value)
        else:
            values[field["name"]] = value
    return values


def on_fields(errors: dict[str, str], fields: list[dict[str, Any]], model: type[BaseModel] = ProductCreate) -> None:
    """A rule of the whole model ("categoryCode and categoryName go together") next to the first field it names,
    the fields called by their labels."""
    message = errors.get("_form")
    if not message:
        return
    labels = {(model.model_fields[f["name"]].alias or f["name"]): f for f in fields if f["name"] in model.model_fields}
    named = sorted((message.find(alias), alias) for alias in labels if alias in message)
    if not named:
        return
    for _, alias in sorted(named, key=lambda n: -len(n[1])):
        message = message.replace(alias, f"“{labels[alias]['label']}”")
    del errors["_form"]
    errors[labels[named[0][1]]["name"]] = message[0].upper() + message[1:]


def _values(product: Product | None) -> dict[str, Any]:
    values = form_values(product_fields(), product)
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
    data = form_data(product_fields(), form)
    new = gtin is None
    target: str = form.get("gtin", "") if gtin is None else gtin
    errors: dict[str, str] = {}
    try:
        target = normalize_gtin(target or "")
    except ValueError as exc:
        errors["gtin"] = str(exc) if target else "Required."
    body, field_errors = parse(ProductCreate, data)
    on_fields(field_errors, product_fields())
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


__all__ = ["form_data", "form_values", "on_fields", "product_fields", "router"]
