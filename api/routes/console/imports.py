"""CSV import of lots and of items: upload, preview with a per-row error report, then import.

The rule, shown on the page: **the whole file is checked before anything is written, and nothing is written unless
every row passes.** Each row is read into the write API's own input (``LotCreate``; items grouped into runs of one
composition, ``RunCreate``) and put through the same checks the write API makes before its transaction
(:func:`api.services.lots.check_lot`, :func:`api.services.items.check_run`), plus the grams each lot has left for
the whole file. Only then are the rows written, in file order, each with the write API's own function.

Each lot (and each run) is a transaction of its own, so a file cannot be one transaction: if the ledger refuses a
write after the checks (a lot drawn from by someone else meanwhile, a node that went away), the rows before it stay
written, the report names the row that failed, and importing the same file again skips what is already written
(the same lot numbers with the same data, the same serials with the same composition) and goes on from there.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from ...deps import SessionDep, StateDep
from ...models import Actor, Item, Lot
from ...problems import Problem
from ...schemas import ItemCreate, LotCreate, Part, RunCreate
from ...services import items as item_services
from ...services import lots as lot_services
from ...state import AppState
from . import queries
from .forms import parse
from .lots import LOT_FIELDS, lot_body
from .web import (
    SECURITY_HEADERS,
    Console,
    ConsoleDep,
    FormConsole,
    Refused,
    once,
    refusal,
    render,
    require_role,
    submission_key,
)

router = APIRouter()

MAX_ROWS = 10_000
COLUMNS: dict[str, dict[str, Any]] = {
    "lots": {
        "required": ("lot_number", "material_code", "mass_grams"),
        "optional": ("recycled_share", "gtin", "origin", "certificates"),
        "example": [
            ("lot_number", "material_code", "mass_grams", "recycled_share", "gtin", "origin", "certificates"),
            ("CO-2026-001", "CO", "250000", "0", "", "Gujarat, India", "https://example.org/gots/123"),
            ("PES-2026-014", "PES", "80000", "30", "", "", ""),
        ],
    },
    "items": {
        "required": ("gtin", "serial", "lot", "grams"),
        "optional": (),
        "example": [
            ("gtin", "serial", "lot", "grams"),
            ("09506000134352", "TS-00001", "CO-2026-001", "150"),
            ("09506000134352", "TS-00001", "PES-2026-014", "30"),
            ("09506000134352", "TS-00002", "CO-2026-001", "150"),
            ("09506000134352", "TS-00002", "PES-2026-014", "30"),
        ],
    },
}
HEADER_NAMES = {"recycled_share_percent": "recycled_share", "recycled_share_bps": "recycled_share_bps",
                "lot_id": "lot", "lot_number_or_id": "lot", "material": "material_code", "mass": "mass_grams"}


@dataclass
class RowError:
    row: int
    column: str | None
    message: str


@dataclass
class Write:
    """One write of the import: a lot, or a run (an item alone when it is one), and the rows it comes from."""

    rows: list[int]
    body: LotCreate | RunCreate | ItemCreate
    done: bool = False  # written before (by an earlier import of the same file)

    @property
    def label(self) -> str:
        body = self.body
        if isinstance(body, LotCreate):
            return f"lot {body.lot_number}"
        if isinstance(body, RunCreate):
            return f"{len(body.serials):,} items of {body.gtin}"
        return f"item {body.serial} of {body.gtin}"


@dataclass
class Checked:
    kind: str
    writes: list[Write] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    row_count: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors and self.row_count > 0


def _header(name: str) -> str:
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name.strip().lstrip("\ufeff")).lower()
    snake = re.sub(r"[\s\-]+", "_", snake)
    return HEADER_NAMES.get(snake, snake)


def read_rows(text: str, kind: str) -> tuple[list[tuple[int, dict[str, str]]], list[RowError]]:
    """The file's data rows with their row numbers (the header is row 1), or what is wrong with the file itself."""
    spec = COLUMNS[kind]
    text = text.lstrip("\ufeff")
    if not text.strip():
        return [], [RowError(1, None, "The file is empty.")]
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        header = [_header(h) for h in next(reader)]
    except (StopIteration, csv.Error):
        return [], [RowError(1, None, "The first row must name the columns.")]
    known = set(spec["required"]) | set(spec["optional"])
    errors = [RowError(1, name, f"Unknown column “{name}”: the columns are {', '.join(sorted(known))}.")
              for name in header if name and name not in known]
    missing = [name for name in spec["required"] if name not in header]
    if missing:
        errors.append(RowError(1, None, f"Missing column{'s' if len(missing) > 1 else ''}: {', '.join(missing)}."))
    if errors:
        return [], errors
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue
            if len(rows) >= MAX_ROWS:
                return [], [RowError(reader.line_num, None, f"At most {MAX_ROWS:,} rows per file: split the file.")]
            if len(record) > len(header):
                errors.append(RowError(reader.line_num, None, f"{len(record)} cells, but {len(header)} columns."))
                continue
            cells = {h: c.replace("\x00", "").strip() for h, c in zip(header, record, strict=False)}
            rows.append((reader.line_num, cells))
    except csv.Error as exc:
        return [], [RowError(reader.line_num, None, f"The file is not valid CSV: {exc}.")]
    if not rows and not errors:
        errors.append(RowError(1, None, "The file has no data rows."))
    return rows, errors


def _refused(row: int, exc: BaseException, columns: dict[str, str] | None = None) -> RowError:
    words = refusal(exc)
    column = (columns or {}).get(words.field or "", words.field)
    return RowError(row, column, words.message)


# -- lots -------------------------------------------------------------------------------------------------------------
def check_lots(state: AppState, session: Session, actor: Actor, rows: list[tuple[int, dict[str, str]]]) -> Checked:
    checked = Checked("lots", row_count=len(rows))
    seen: dict[str, int] = {}
    names = {v: k for k, v in LOT_FIELDS.items()}
    for number, row in rows:
        body, errors = parse(LotCreate, lot_body(row))
        if body is None:
            checked.errors.extend(RowError(number, LOT_FIELDS.get(k, k), v) for k, v in errors.items())
            continue
        lot_id = lot_services.lot_id_for(actor, body)
        if lot_id in seen:
            checked.errors.append(RowError(number, "lot_number", f"The same lot as row {seen[lot_id]}."))
            continue
        seen[lot_id] = number
        write = Write([number], body)
        try:
            lot_services.check_lot(state, session, actor, body)
        except Problem as exc:
            existing = session.get(Lot, lot_id) if exc.title == "LotAlreadyRegistered" else None
            if existing is not None and _same_lot(existing, body, actor):
                write.done = True
            elif existing is not None:
                checked.errors.append(RowError(number, "lot_number", "A different lot with this number is "
                                               "registered already."))
                continue
            else:
                checked.errors.append(_refused(number, exc, names))
                continue
        checked.writes.append(write)
    return checked


def _same_lot(lot: Lot, body: LotCreate, actor: Actor) -> bool:
    return (
        lot.owner_id == actor.id
        and lot.material_code == body.material_code
        and lot.mass_grams == body.mass_grams
        and lot.recycled_share_bps == body.recycled_share_bps
        and (lot.gtin or None) == body.gtin
    )


# -- items ------------------------------------------------------------------------------------------------------------
def _lot_named(session: Session, actor: Actor, name: str) -> list[Lot]:
    ids = queries.lots_named(session, actor, name)
    return list(session.scalars(select(Lot).where(Lot.lot_id.in_(ids)))) if ids else []


def check_items(state: AppState, session: Session, actor: Actor, rows: list[tuple[int, dict[str, str]]]) -> Checked:
    checked = Checked("items", row_count=len(rows))
    lot_cache: dict[str, list[Lot]] = {}
    # (gtin, serial) -> rows and composition, in file order
    by_item: dict[tuple[str, str], tuple[list[int], dict[str, int]]] = {}
    for number, row in rows:
        lot_name = row.get("lot", "")
        item, errors = parse(ItemCreate, {"gtin": row.get("gtin", ""), "serial": row.get("serial", ""),
                                          "composition": [{"lot_id": "0x" + "0" * 64, "grams": row.get("grams", "")}]})
        if item is None:
            checked.errors.extend(RowError(number, "grams" if k.startswith("composition") else k, v)
                                  for k, v in errors.items())
            continue
        if not lot_name:
            checked.errors.append(RowError(number, "lot", "Required: the lot's number (or its 0x id)."))
            continue
        lots = lot_cache.setdefault(lot_name, _lot_named(session, actor, lot_name))
        if not lots:
            checked.errors.append(RowError(number, "lot", f"No lot “{lot_name}” of yours (or approved to you)."))
            continue
        if len(lots) > 1:
            checked.errors.append(RowError(number, "lot", f"{len(lots)} of your lots are numbered “{lot_name}”: "
                                           "name this one by its id (0x…)."))
            continue
        rows_of, drawn = by_item.setdefault((item.gtin, item.serial), ([], {}))
        if lots[0].lot_id in drawn:
            checked.errors.append(RowError(number, "lot", f"Serial {item.serial} lists lot {lot_name} twice."))
            continue
        rows_of.append(number)
        drawn[lots[0].lot_id] = item.composition[0].grams
    # Items of one GTIN and one composition go into one run (one transaction).
    groups: dict[tuple[str, tuple[tuple[str, int], ...]], list[tuple[str, list[int]]]] = {}
    for (gtin, serial), (rows_of, item_parts) in by_item.items():
        groups.setdefault((gtin, tuple(sorted(item_parts.items()))), []).append((serial, rows_of))
    needed: dict[str, int] = {}
    for (gtin, parts), members in groups.items():
        serials = [serial for serial, _ in members]
        numbers = sorted(n for _, rows_of in members for n in rows_of)
        composition = [Part(lot_id=lot_id, grams=grams) for lot_id, grams in parts]
        write = Write(numbers, RunCreate(gtin=gtin, serials=serials, composition=composition) if len(serials) > 1
                      else ItemCreate(gtin=gtin, serial=serials[0], composition=composition))
        existing = _existing(session, gtin, serials)
        if existing:
            if len(existing) == len(serials) and all(
                sorted((str(a), int(b)) for a, b in i.composition) == list(parts) for i in existing
            ):
                write.done = True
                checked.writes.append(write)
                continue
            taken = {i.serial for i in existing}
            checked.errors.extend(RowError(n, "serial", f"Serial {s} is registered already.")
                                  for s, rows_of in members if s in taken for n in rows_of[:1])
            continue
        run = write.body if isinstance(write.body, RunCreate) else RunCreate(
            gtin=gtin, serials=serials, composition=composition)
        try:
            item_services.check_run(state, session, actor, run, state.api_settings)
        except Problem as exc:
            checked.errors.append(_refused(numbers[0], exc, {"composition": "lot", "serials": "serial"}))
            continue
        for lot_id, grams in parts:
            needed[lot_id] = needed.get(lot_id, 0) + grams * len(serials)
        checked.writes.append(write)
    for lot_id, grams in needed.items():
        lot = session.get(Lot, lot_id)
        left = queries.left_grams(lot) if lot is not None else None
        if lot is not None and left is not None and grams > left:
            first = next(w.rows[0] for w in checked.writes if not w.done and any(
                p.lot_id == lot_id for p in w.body.composition))  # type: ignore[union-attr]
            checked.errors.append(RowError(first, "lot", f"Lot {lot.lot_number} has {left:,} g left; the file needs "
                                           f"{grams:,} g of it."))
    return checked


def _existing(session: Session, gtin: str, serials: list[str]) -> list[Item]:
    found: list[Item] = []
    for start in range(0, len(serials), 500):
        found.extend(session.scalars(select(Item).where(Item.gtin == gtin,
                                                        Item.serial.in_(serials[start : start + 500]))))
    return found


def check(state: AppState, session: Session, actor: Actor, kind: str, text: str) -> Checked:
    rows, errors = read_rows(text, kind)
    if errors:
        return Checked(kind, errors=errors, row_count=len(rows))
    checked = (check_lots if kind == "lots" else check_items)(state, session, actor, rows)
    checked.errors.sort(key=lambda e: (e.row, e.column or ""))
    return checked


def write_all(state: AppState, session: Session, actor: Actor, checked: Checked) -> dict[str, Any]:
    """Write what the check found new, in file order; stop at the first refusal. A JSON-able report."""
    written, skipped = 0, sum(1 for w in checked.writes if w.done)
    for write in checked.writes:
        if write.done:
            continue
        try:
            body = write.body
            if isinstance(body, LotCreate):
                lot_services.register_lot(state, session, actor, body)
            elif isinstance(body, RunCreate):
                item_services.make_run(state, session, actor, body, state.api_settings)
            else:
                item_services.make_item(state, session, actor, body)
        except Exception as exc:  # the ledger refused after the checks: report it (what was written stays)
            try:
                words = refusal(exc)
            except Exception:
                raise exc from None
            session.rollback()
            return {"written": written, "skipped": skipped, "failedRow": write.rows[0], "failed": write.label,
                    "message": words.message, "notWritten": len(checked.writes) - written - skipped}
        written += 1
    return {"written": written, "skipped": skipped}


# -- pages ------------------------------------------------------------------------------------------------------------
def _kind(value: str | None) -> str:
    return value if value in COLUMNS else "lots"


@router.get("/import")
def import_page(request: Request, console: ConsoleDep, kind: str | None = None) -> Response:
    require_role(console, "brand")
    return render(request, "console/import.html", {"title": "Import CSV", "kind": _kind(kind), "columns": COLUMNS},
                  console=console)


@router.get("/import/example.csv")
def example(console: ConsoleDep, kind: str | None = None) -> Response:
    require_role(console, "brand")
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(COLUMNS[_kind(kind)]["example"])
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers={
        **SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{_kind(kind)}-example.csv"'})


async def _text_of(form: Any) -> str | None:
    upload = form.get("file")
    if isinstance(upload, UploadFile) and upload.filename:
        raw = await upload.read()
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                return raw.decode("cp1252")
            except UnicodeDecodeError:
                return None
    text = form.get("csv")
    return text if isinstance(text, str) else ""


def _preview(request: Request, console: Console, session: Session, state: AppState, kind: str, text: str | None,
             *, status_code: int = 200, report: dict[str, Any] | None = None) -> Response:
    require_role(console, "brand")
    if text is None:
        checked = Checked(kind, errors=[RowError(1, None, "The file is not UTF-8 (or Windows-1252) text.")])
        text = ""
    else:
        checked = check(state, session, console.actor, kind, text)
    return render(
        request,
        "console/import_preview.html",
        {"title": "Import preview", "kind": kind, "checked": checked, "text": text, "report": report,
         "columns": COLUMNS},
        console=console,
        status_code=status_code if checked.ok or report else 422,
    )


@router.post("/import/preview")
async def preview(request: Request, console: FormConsole, session: SessionDep, state: StateDep) -> Response:
    form = await request.form()
    kind = _kind(form.get("kind") if isinstance(form.get("kind"), str) else None)  # type: ignore[arg-type]
    text = await _text_of(form)
    return await run_in_threadpool(_preview, request, console, session, state, kind, text)


def _commit(request: Request, console: Console, session: Session, state: AppState, kind: str, text: str,
            key: str) -> Response:
    require_role(console, "brand")
    checked = check(state, session, console.actor, kind, text)  # never trust the preview: check it all again
    if not checked.ok:
        return _preview(request, console, session, state, kind, text)
    try:
        report = once(state, console.actor, key, lambda: write_all(state, session, console.actor, checked))
    except Refused as refused:
        report = {"written": 0, "skipped": 0, "failedRow": None, "message": refused.words.message}
    if "failedRow" in report:
        return _preview(request, console, session, state, kind, text, report=report, status_code=422)
    return render(request, "console/import_done.html", {"title": "Imported", "kind": kind, "report": report},
                  console=console)


@router.post("/import/commit")
async def commit(request: Request, console: FormConsole, session: SessionDep, state: StateDep) -> Response:
    form = await request.form()
    kind = _kind(form.get("kind") if isinstance(form.get("kind"), str) else None)  # type: ignore[arg-type]
    text = form.get("csv")
    key = submission_key(form.get("submission"))
    return await run_in_threadpool(_commit, request, console, session, state, kind,
                                   text if isinstance(text, str) else "", key)


__all__ = ["MAX_ROWS", "Checked", "RowError", "check", "read_rows", "router", "write_all"]
