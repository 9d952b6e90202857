"""A brand's items and runs: the list (filtered by state or run), making one item or a run of N, a run's page and
its label sheets (PDF, A4 or US Letter)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.client import ItemState
from ledger.ids import check_serial

from ...deps import SessionDep, StateDep
from ...models import Product
from ...schemas import ItemCreate, RunCreate
from ...services import items
from ...state import AppState
from ...uris import item_uri
from . import queries
from .forms import parse, text_fields
from .labels import SHEETS, Label, label_sheet
from .web import (
    SECURITY_HEADERS,
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
PARTS = 3  # composition rows in the forms (empty ones are left out)
FLASH = {"made": "Item made.", "run": "Run made."}


def composition(form: dict[str, str], prefix: str) -> list[dict[str, str]]:
    parts = []
    for i in range(PARTS):
        lot, grams = form.get(f"{prefix}lot_{i}", ""), form.get(f"{prefix}grams_{i}", "")
        if lot or grams:
            parts.append({"lot_id": lot, "grams": grams})
    return parts


def _composition_error(errors: dict[str, str]) -> dict[str, str]:
    """Errors of `composition.<n>.<field>` onto the composition as a whole."""
    out: dict[str, str] = {}
    for key, value in errors.items():
        out.setdefault("composition" if key.startswith("composition") else key, value)
    return out


def serials_for(prefix: str, first: str, count: str, digits: str = "5") -> list[str] | str:
    """A run's serials: prefix + a number counted from `first`, zero-padded; or what is wrong with the fields."""
    try:
        start, n, width = int(first or "1"), int(count), int(digits or "5")
    except ValueError:
        return "Whole numbers, please."
    if n < 1:
        return "At least 1 item."
    if start < 0 or not 1 <= width <= 12:
        return "The first number is 0 or more, with 1 to 12 digits."
    serials = [f"{prefix}{start + i:0{width}d}" for i in range(n)]
    try:
        check_serial(serials[-1])
        check_serial(serials[0])
    except ValueError as exc:
        return f"The serials would not be valid ({exc}): use a shorter prefix or fewer digits."
    return serials


def _page(request: Request, console: Console, session: Session, state: AppState, *, page: int = 1,
          state_filter: str | None = None, run: str | None = None, values: dict[str, Any] | None = None,
          errors: dict[str, str] | None = None, flash: str | None = None, status_code: int = 200) -> Response:
    require_role(console, "brand")
    wanted: ItemState | None = None
    if state_filter:
        try:
            wanted = ItemState[state_filter.upper()]
        except KeyError:
            wanted = None
    rows, total = queries.items_of(session, console.actor, page=max(page, 1), state=wanted, run_id=run or None)
    lots = queries.lots_of(session, console.actor)
    return render(
        request,
        "console/items.html",
        {
            "title": "Items",
            "items": rows,
            "total": total,
            "page": page,
            "pages": max(1, -(-total // queries.PAGE_SIZE)),
            "state_filter": state_filter or "",
            "run": run or "",
            "states": [(s.name.lower(), s) for s in ItemState if s is not ItemState.NONE],
            "runs": queries.runs_of(session, console.actor),
            "lots": lots,
            "products": list(session.scalars(select(Product).where(Product.brand_id == console.actor.id))),
            "parts": PARTS,
            "values": values or {"run_digits": "5", "run_first": "1"},
            "errors": errors or {},
            "flash": flash,
            "max_run": state.api_settings.max_run_size,
        },
        console=console,
        status_code=status_code,
    )


@router.get("/items")
def item_list(request: Request, console: ConsoleDep, session: SessionDep, state: StateDep, page: int = 1,
              state_filter: str | None = None, run: str | None = None, ok: str | None = None) -> Response:
    return _page(request, console, session, state, page=page, state_filter=state_filter, run=run,
                 flash=FLASH.get(ok or ""))


def _make_item(request: Request, console: Console, session: Session, state: AppState,
               form: dict[str, str]) -> Response:
    require_role(console, "brand")
    body, errors = parse(ItemCreate, {"gtin": form.get("gtin", ""), "serial": form.get("serial", ""),
                                      "composition": composition(form, "")})
    errors = _composition_error(errors)
    if body is not None:
        valid = body

        def write() -> dict[str, Any]:
            made = items.make_item(state, session, console.actor, valid)
            return {"gtin": made.items[0].gtin, "serial": made.items[0].serial}

        try:
            once(state, console.actor, submission_key(form.get("submission")), write)
            return redirect("/console/items?ok=made")
        except Refused as refused:
            errors[refused.words.field or "_form"] = refused.words.message
    return _page(request, console, session, state, values=form, errors=errors, status_code=422)


@router.post("/items")
async def make_item(request: Request, console: FormConsole, session: SessionDep, state: StateDep) -> Response:
    form = text_fields(await request.form())
    return await run_in_threadpool(_make_item, request, console, session, state, form)


RUN_FIELDS = {"gtin": "run_gtin", "serials": "run_prefix", "composition": "run_composition", "count": "run_count",
              "serial": "run_prefix", "_form": "_run"}


def _make_run(request: Request, console: Console, session: Session, state: AppState,
              form: dict[str, str]) -> Response:
    require_role(console, "brand")
    serials = serials_for(form.get("run_prefix", ""), form.get("run_first", ""), form.get("run_count", ""),
                          form.get("run_digits", ""))
    errors: dict[str, str] = {}
    if isinstance(serials, str):
        errors["run_count"] = serials
        serials = []
    elif len(serials) > state.api_settings.max_run_size:
        errors["run_count"] = f"At most {state.api_settings.max_run_size:,} items per run."
    body, parse_errors = parse(RunCreate, {"gtin": form.get("run_gtin", ""), "serials": serials,
                                           "composition": composition(form, "run_")})
    for key, value in _composition_error(parse_errors).items():
        errors.setdefault(RUN_FIELDS.get(key.split(".")[0], key), value)
    if body is not None and not errors:
        valid = body

        def write() -> dict[str, Any]:
            made = items.make_run(state, session, console.actor, valid, state.api_settings)
            return {"runId": made.run_id}

        try:
            result = once(state, console.actor, submission_key(form.get("submission")), write)
            return redirect(f"/console/runs/{result['runId']}?ok=run")
        except Refused as refused:
            field = refused.words.field
            errors[RUN_FIELDS.get(field or "_form", f"run_{field}")] = refused.words.message
    return _page(request, console, session, state, values=form, errors=errors, status_code=422)


@router.post("/runs")
async def make_run(request: Request, console: FormConsole, session: SessionDep, state: StateDep) -> Response:
    form = text_fields(await request.form())
    return await run_in_threadpool(_make_run, request, console, session, state, form)


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: str, console: ConsoleDep, session: SessionDep, state: StateDep,
             ok: str | None = None) -> Response:
    require_role(console, "brand")
    rows = queries.run_items(session, console.actor, run_id)
    if not rows:
        raise PageNotFound(run_id)
    product = session.get(Product, rows[0].gtin)
    by_state: dict[int, int] = {}
    for item in rows:
        by_state[item.state] = by_state.get(item.state, 0) + 1
    return render(
        request,
        "console/run.html",
        {
            "title": f"Run of {len(rows):,}",
            "run_id": rows[0].run_id,
            "items": rows[:50],
            "count": len(rows),
            "product": product,
            "gtin": rows[0].gtin,
            "by_state": sorted(by_state.items()),
            "sheets": SHEETS.values(),
            "flash": FLASH.get(ok or ""),
        },
        console=console,
    )


@router.get("/runs/{run_id}/labels.pdf")
def run_labels(request: Request, run_id: str, console: ConsoleDep, session: SessionDep, state: StateDep,
               paper: str = "a4") -> Response:
    require_role(console, "brand")
    sheet = SHEETS.get(paper)
    rows = queries.run_items(session, console.actor, run_id)
    if not rows:
        raise PageNotFound(run_id)
    if sheet is None:
        papers = " or ".join(f"{code} ({known.title})" for code, known in SHEETS.items())
        return render(request, "console/error.html",
                      {"title": "Unknown paper", "message": f"There is no paper “{paper[:40]}”: choose {papers}."},
                      console=console, status_code=422)
    product = session.get(Product, rows[0].gtin)
    name = product.name if product is not None else f"GTIN {rows[0].gtin}"
    base = state.settings.resolver_base_url
    pdf = label_sheet(
        [Label(item_uri(base, item.gtin, item.serial), item.gtin, item.serial, name) for item in rows],
        sheet,
        title=f"{name}: {len(rows)} labels",
    )
    headers = {
        **SECURITY_HEADERS,
        "Content-Disposition": f'attachment; filename="labels-{rows[0].gtin}-{run_id[2:10]}-{sheet.code}.pdf"',
    }
    return Response(pdf, media_type="application/pdf", headers=headers)


__all__ = ["composition", "router", "serials_for"]
