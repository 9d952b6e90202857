"""CSV import: a preview with a per-row error report, nothing written unless every row passes, and the per-row
commit rule when the ledger refuses a write after the checks (what is written stays; importing again goes on)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import func, select

from api.models import Item, Lot
from api.problems import Problem
from api.routes.console import imports

from ..conftest import GTIN_A, GTIN_B
from .helpers import csrf_of, form_fields, sign_in


def _preview(client: Any, kind: str, text: str, as_file: bool = True) -> Any:
    data = {"csrf": csrf_of(client, "/console/import"), "kind": kind}
    if as_file:
        files = {"file": ("rows.csv", text.encode(), "text/csv")}
        return client.post("/console/import/preview", data=data, files=files)
    return client.post("/console/import/preview", data={**data, "csv": text})


def _commit(client: Any, preview: Any) -> Any:
    fields = form_fields(preview.text)
    csv_text = re.search(r'<textarea name="csv" hidden aria-hidden="true">(.*?)</textarea>', preview.text, re.S)
    assert csv_text is not None, preview.text
    import html

    return client.post("/console/import/commit", data={**fields, "kind": re.search(
        r'name="kind" value="(\w+)"', preview.text).group(1), "csv": html.unescape(csv_text.group(1))})


def _lot_count(world: Any, *numbers: str) -> int:
    with world.service.sessions() as session:
        return int(session.scalar(select(func.count()).where(Lot.lot_number.in_(numbers))) or 0)


def test_a_csv_of_lots_is_previewed_then_imported_once(world: Any) -> None:
    client = sign_in(world, "brand")
    a, b, c = (world.unique("IL") for _ in range(3))
    text = ("lot_number;material_code;mass_grams;recycled_share;origin\n"
            f"{a};CO;250000;0;Gujarat\n{b};PES;80000;30;\n{c};CO;1000;12.5;\n")
    preview = _preview(client, "lots", text)
    assert preview.status_code == 200 and "Every row passed" in preview.text
    assert _lot_count(world, a, b, c) == 0  # a preview writes nothing
    done = _commit(client, preview)
    assert done.status_code == 200 and "3 written" in done.text
    assert _lot_count(world, a, b, c) == 3
    again = _commit(client, preview)  # the same form again (a second click): the first one's answer
    assert again.status_code == 200 and "3 written" in again.text
    reimport = _preview(client, "lots", text)
    assert "already written by an earlier import" in reimport.text
    assert "0 written, 3 already there" in _commit(client, reimport).text
    assert _lot_count(world, a, b, c) == 3


def test_a_bad_csv_names_each_row_and_column_and_writes_nothing(world: Any) -> None:
    client = sign_in(world, "brand")
    good, dup = world.unique("IL"), world.unique("IL")
    text = ("lot_number,material_code,mass_grams,recycled_share,gtin\n"
            f"{good},CO,1000,0,\n"
            f"{dup},CO,lots,0,\n"
            f"{dup},CO,1000,150,\n"
            f"{world.unique('IL')},CO,1000,0,{GTIN_B}\n"
            f"{good},CO,1000,0,\n"
            ",CO,1000,0,\n")
    preview = _preview(client, "lots", text, as_file=False)
    assert preview.status_code == 422 and "nothing was written" in preview.text
    rows = re.findall(r'<tr><td class="num">(\d+)</td><td><code>([^<]*)</code></td><td>([^<]*)</td></tr>',
                      preview.text)
    found = {(int(row), column) for row, column, _ in rows}
    assert {(3, "mass_grams"), (4, "recycled_share"), (5, "gtin"), (6, "lot_number"), (7, "lot_number")} <= found
    assert not any(row == 2 for row, _ in found)
    assert "import/commit" not in preview.text  # no import button while a row fails
    assert _lot_count(world, good, dup) == 0
    assert good in preview.text  # the file comes back, to be corrected on the page


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "The file is empty."),
        ("lot_number,material,mass_grams,colour\nX,CO,1,red\n", "Unknown column “colour”"),
        ("lot_number,mass_grams\nX,1\n", "Missing column: material_code."),
        ("lot_number,material_code,mass_grams\n", "The file has no data rows."),
    ],
)
def test_a_file_that_is_not_a_table_of_lots_says_why(sqlite_world: Any, text: str, says: str) -> None:
    client = sign_in(sqlite_world, "brand")
    preview = _preview(client, "lots", text, as_file=False)
    assert preview.status_code == 422 and says in preview.text


def test_a_csv_of_items_becomes_runs_of_one_composition(world: Any) -> None:
    client = sign_in(world, "brand")
    cotton, polyester = world.lot(grams=100_000, gtin=None), world.lot(grams=100_000, gtin=None, code="PES")
    s1, s2, s3 = (world.unique("IS") for _ in range(3))
    text = ("gtin,serial,lot,grams\n"
            f"{GTIN_A},{s1},{cotton['lotNumber']},150\n{GTIN_A},{s1},{polyester['lotNumber']},30\n"
            f"{GTIN_A},{s2},{cotton['lotNumber']},150\n{GTIN_A},{s2},{polyester['lotId']},30\n"
            f"{GTIN_A},{s3},{cotton['lotNumber']},200\n")
    preview = _preview(client, "items", text)
    assert "Every row passed" in preview.text, preview.text
    assert "2 items of" in preview.text and f"item {s3}" in preview.text
    assert "2 written" in _commit(client, preview).text
    with world.service.sessions() as session:
        made = {i.serial: i for i in session.scalars(select(Item).where(Item.serial.in_([s1, s2, s3])))}
    assert made[s1].run_id == made[s2].run_id is not None and made[s1].mass_grams == 180
    assert made[s3].mass_grams == 200


def test_items_needing_more_grams_than_a_lot_has_are_refused_before_anything_is_written(world: Any) -> None:
    client = sign_in(world, "brand")
    small = world.lot(grams=500, gtin=None)
    text = "gtin,serial,lot,grams\n" + "".join(f"{GTIN_A},{world.unique('IS')},{small['lotNumber']},200\n"
                                                for _ in range(3))
    preview = _preview(client, "items", text)
    assert preview.status_code == 422
    assert f"Lot {small['lotNumber']} has 500 g left; the file needs 600 g of it." in preview.text
    unknown = _preview(client, "items", f"gtin,serial,lot,grams\n{GTIN_A},{world.unique('IS')},NO-SUCH-LOT,1\n")
    assert "No lot “NO-SUCH-LOT” of yours" in unknown.text


def test_a_refusal_after_the_checks_keeps_what_was_written_and_a_second_import_goes_on(
    sqlite_world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = sqlite_world
    client = sign_in(world, "brand")
    numbers = [world.unique("IL") for _ in range(3)]
    text = "lot_number,material_code,mass_grams\n" + "".join(f"{n},CO,1000\n" for n in numbers)
    preview = _preview(client, "lots", text)
    real = imports.lot_services.register_lot
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise Problem(503, "Ledger unavailable", "the node went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(imports.lot_services, "register_lot", flaky)
    stopped = _commit(client, preview)
    assert stopped.status_code == 422 and "The import stopped at row 3" in stopped.text
    assert "1 written, 0 already there, 2 not written" in stopped.text
    assert _lot_count(world, *numbers) == 1
    resumed = _preview(client, "lots", text)
    assert "already written by an earlier import" in resumed.text
    assert "2 written, 1 already there" in _commit(client, resumed).text
    assert _lot_count(world, *numbers) == 3
