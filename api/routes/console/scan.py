"""Scanning: a recycler's intake and a retailer's sales. The camera (or a typed or pasted list) gives codes; each is
looked up at once (the item and its state); then one action records a lifecycle step for every item in the basket,
sent in chunks so the page shows progress and a result per item.

Each item's step is the write API's own (:func:`api.services.items.lifecycle`): the same roles, the same states, the
same contract. A chunk is sent with a random key, so a chunk sent twice (a retry after a lost answer, a second
click) records nothing twice.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.client import ItemState
from ledger.ids import normalize_gtin

from ...deps import SessionDep, StateDep
from ...gs1.digital_link import parse_path
from ...models import Actor, Item, Product
from ...problems import Problem
from ...schemas import ItemKey as BatchKey
from ...schemas import LifecycleAction, LifecycleBatchCreate, StepResult, StepStatus
from ...services import items as item_services
from ...services import returns
from ...state import AppState
from .web import (
    STATE_WORDS,
    Console,
    ConsoleDep,
    Refused,
    ScriptConsole,
    json_answer,
    once,
    refusal,
    render,
    require_role,
    submission_key,
)

router = APIRouter()

MAX_CHUNK = 100
PAGES: dict[str, dict[str, Any]] = {
    "intake": {
        "role": "recycler",
        "title": "Scan intake",
        "actions": [("collected", "Collect")],
        "intro": "Scan each returned item's QR code, or type or paste its serial, its link or the drop-off code the "
        "consumer got with a return request. Then collect them all in one go.",
        "next": ("/console/recycle", "Recycle collected items"),
    },
    "sales": {
        "role": "retailer",
        "title": "Record sales",
        "actions": [("sold", "Sale"), ("resold", "Resale"), ("returned", "Return")],
        "intro": "Scan each item you sell (or take back), or type or paste its serial or link. Then record them all "
        "in one go.",
        "next": None,
    },
}


def _page(request: Request, console: Console, which: str) -> Response:
    spec = PAGES[which]
    require_role(console, str(spec["role"]))
    return render(request, "console/scan.html", {"title": spec["title"], "spec": spec, "which": which},
                  console=console)


@router.get("/intake")
def intake(request: Request, console: ConsoleDep) -> Response:
    return _page(request, console, "intake")


@router.get("/sales")
def sales(request: Request, console: ConsoleDep) -> Response:
    return _page(request, console, "sales")


# -- looking up a scanned code ----------------------------------------------------------------------------------------
_GTIN_SERIAL = re.compile(r"^\(?01\)?\s*(\d{8,14})\s*\(?21\)?\s*(\S{1,20})$")


def parse_code(code: str) -> tuple[str | None, str]:
    """(GTIN or None, serial) from what was scanned or typed: a Digital Link (any host, compressed or not), a GTIN
    and a serial side by side, a GS1 element string ``(01)…(21)…``, or a serial alone."""
    code = code.strip()
    if "://" in code:
        link = parse_path(urlsplit(code).path)
        serial = link.serial
        if serial is None:
            raise ValueError("this link names no item (it has no serial)")
        return link.gtin14, serial
    match = _GTIN_SERIAL.match(code)
    if match:
        return normalize_gtin(match.group(1)), match.group(2)
    parts = re.split(r"[\s,;]+", code)
    if len(parts) == 2 and parts[0].isdigit() and 8 <= len(parts[0]) <= 14:
        return normalize_gtin(parts[0]), unquote(parts[1])
    if len(parts) == 1 and parts[0]:
        return None, parts[0]
    raise ValueError("not a serial, a GTIN and serial, or an item's link")


_DROP_OFF = re.compile(r"^[A-Za-z0-9]{4}(-?[A-Za-z0-9]{4})+$")


def find_scanned(session: Session, code: str) -> tuple[Item, str | None]:
    """The item a code names, and the drop-off code of its open return request when the code was one (a consumer's
    return request, read at intake: :mod:`api.services.returns`)."""
    code = code.strip()
    if _DROP_OFF.match(code):
        try:
            request, item = returns.find_request(session, code)
        except Problem:
            pass
        else:
            returns.check_open(session, request)
            return item, request.code
    gtin, serial = parse_code(code)
    query = select(Item).where(Item.serial == serial)
    if gtin is not None:
        query = query.where(Item.gtin == gtin)
    found = list(session.scalars(query.limit(2)))
    if not found:
        raise LookupError(f"No item with serial {serial}" + (f" of GTIN {gtin}" if gtin else "") + ".")
    if len(found) > 1:
        raise LookupError(f"Serial {serial} is used by several products: scan the QR code, or type the GTIN too.")
    return found[0], None


def item_view(session: Session, item: Item) -> dict[str, Any]:
    brand = session.get(Actor, item.brand_id)
    product = session.get(Product, item.gtin)
    return {
        "gtin": item.gtin,
        "serial": item.serial,
        "brand": brand.name if brand else "",
        "product": product.name if product else f"GTIN {item.gtin}",
        "state": ItemState(item.state).name.lower(),
        "stateWords": STATE_WORDS.get(ItemState(item.state), str(item.state)),
        "massGrams": int(item.mass_grams),
    }


class LookupBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=600)


@router.post("/api/lookup")
async def lookup(request: Request, console: ScriptConsole, session: SessionDep) -> Response:
    try:
        body = LookupBody.model_validate(await request.json())
    except (ValidationError, ValueError):
        return json_answer({"message": "Send {\"code\": \"…\"}."}, 422)
    return await run_in_threadpool(_lookup, session, body.code)


def _lookup(session: Session, code: str) -> Response:
    try:
        item, drop_off_code = find_scanned(session, code)
    except (LookupError, ValueError) as exc:
        return json_answer({"message": str(exc).rstrip(".") + ".", "code": code[:100]}, 404)
    except Problem as exc:  # a drop-off code used before
        return json_answer({"message": refusal(exc).message, "code": code[:100]}, exc.status)
    view = item_view(session, item)
    if drop_off_code is not None:
        view["dropOffCode"] = drop_off_code
    return json_answer({"item": view})


# -- one lifecycle step for a basket of items ---------------------------------------------------------------------
class ItemKey(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    gtin: str = Field(min_length=8, max_length=14)
    serial: str = Field(min_length=1, max_length=20)
    drop_off_code: str | None = Field(None, alias="dropOffCode", max_length=32)


class StepBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    action: LifecycleAction
    items: list[ItemKey] = Field(min_length=1, max_length=MAX_CHUNK)


def step_words(result: StepResult) -> str:
    """A refused, failed or pending step in plain words, with the steps the item may take next."""
    if result.status == StepStatus.PENDING:
        return "Sent; the ledger has not confirmed it yet. It completes on its own."
    problem = result.problem
    if problem is None:
        return "Not recorded."
    extra: dict[str, Any] = {"error": problem.error, "args": problem.args} if problem.error and problem.args else {}
    if problem.allowed_next is not None:
        extra["allowedNext"] = problem.allowed_next
    words = refusal(Problem(problem.status, problem.title, problem.detail, **extra)).message
    return words


def record_steps(state: AppState, session: Session, actor: Actor, action: LifecycleAction,
                 keys: list[ItemKey]) -> dict[str, Any]:
    """One lifecycle step for every item, as the write API's bulk write (one pipeline of transactions); a result
    per item, refusals in plain words."""
    batch = LifecycleBatchCreate(
        action=action,
        items=[
            BatchKey(drop_off_code=key.drop_off_code) if key.drop_off_code
            else BatchKey(gtin=key.gtin, serial=key.serial)
            for key in keys
        ],
    )
    recorded = item_services.lifecycle_many(state, session, actor, batch)
    results = []
    for key, result in zip(keys, sorted(recorded.results, key=lambda r: r.index), strict=True):
        ok = result.status in (StepStatus.RECORDED, StepStatus.UNCHANGED)
        entry: dict[str, Any] = {"gtin": key.gtin, "serial": key.serial, "ok": ok, "state": result.state}
        if result.state:
            entry["stateWords"] = STATE_WORDS.get(ItemState[result.state.upper()], result.state)
        if not ok:
            entry["message"] = step_words(result)
        results.append(entry)
    return {"results": results, "done": sum(1 for r in results if r["ok"])}


@router.post("/api/steps")
async def steps(request: Request, console: ScriptConsole, session: SessionDep, state: StateDep) -> Response:
    try:
        body = StepBody.model_validate(await request.json())
        key = submission_key(body.key)
    except (ValidationError, ValueError, Problem):
        return json_answer({"message": f"Send a key, an action and 1 to {MAX_CHUNK} items."}, 422)
    try:
        result = await run_in_threadpool(
            once, state, console.actor, key,
            lambda: record_steps(state, session, console.actor, body.action, body.items),
        )
    except Refused as refused:
        return json_answer(refused.words.as_json(), refused.words.status)
    return json_answer(result)


__all__ = ["find_scanned", "item_view", "parse_code", "record_steps", "router"]
