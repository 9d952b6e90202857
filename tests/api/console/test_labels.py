"""A brand makes a run of 100 in the console and downloads its label sheets: rendered to PNG by pdftoppm, every
label decodes with zxing-cpp to its item's Digital Link, on A4 and on US Letter."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from PIL import Image

from api.routes.console.labels import SHEETS
from api.uris import item_uri

from ..conftest import GTIN_A
from .helpers import form_fields, sign_in

DPI = 200


def decode_sheet(pdf: bytes, sheet_code: str, tmp: Path) -> list[str]:
    """Every label of the sheet, in order: the text its QR code decodes to ('' when none)."""
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        pytest.fail("pdftoppm is not installed (make setup installs poppler-utils)")
    (tmp / "sheet.pdf").write_bytes(pdf)
    subprocess.run([pdftoppm, "-r", str(DPI), "-png", str(tmp / "sheet.pdf"), str(tmp / "page")], check=True)
    pages = [Image.open(p) for p in sorted(tmp.glob("page*.png"), key=lambda p: int(re.findall(r"\d+", p.name)[-1]))]
    sheet, scale = SHEETS[sheet_code], DPI / 25.4
    texts = []
    for index in range(len(pages) * sheet.per_page):
        page, x, y = sheet.cell(index)
        box = (round(x * scale), round(y * scale), round((x + sheet.label[0]) * scale),
               round((y + sheet.label[1]) * scale))
        found = zxingcpp.read_barcodes(pages[page].crop(box))
        texts.append(found[0].text if len(found) == 1 else "")
    while texts and not texts[-1]:
        texts.pop()
    return texts


def make_run(world: Any, client: Any, count: int, prefix: str) -> str:
    lot = world.lot(grams=1_000_000)
    fields = form_fields(client.get("/console/items").text)
    answer = client.post("/console/runs", data={**fields, "run_gtin": GTIN_A, "run_count": str(count),
                                                "run_prefix": prefix, "run_first": "1", "run_digits": "5",
                                                "run_lot_0": lot["lotId"], "run_grams_0": "180"})
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert location.startswith("/console/runs/0x") and location.endswith("?ok=run")
    return location.split("?")[0].rsplit("/", 1)[1]


def test_a_run_of_100_and_its_label_sheets_decode(world: Any, tmp_path: Path) -> None:
    client = sign_in(world, "brand")
    prefix = world.unique("R") + "-"
    run_id = make_run(world, client, 100, prefix)
    page = client.get(f"/console/runs/{run_id}?ok=run")
    assert "Run of 100" in page.text and "Run made." in page.text
    expected = [item_uri(world.settings.resolver_base_url, GTIN_A, f"{prefix}{n:05d}") for n in range(1, 101)]
    if world.db != "sqlite":
        return  # the database holds the run; the PDF is the same on both
    for paper in ("a4", "letter"):
        answer = client.get(f"/console/runs/{run_id}/labels.pdf?paper={paper}")
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/pdf"
        assert "attachment" in answer.headers["content-disposition"]
        out = tmp_path / paper
        out.mkdir()
        assert decode_sheet(answer.content, paper, out) == expected, paper


def test_a_run_form_with_mistakes_keeps_what_was_typed(sqlite_world: Any) -> None:
    world = sqlite_world
    client = sign_in(world, "brand")
    fields = form_fields(client.get("/console/items").text)
    answer = client.post("/console/runs", data={**fields, "run_gtin": GTIN_A, "run_count": "10",
                                                "run_prefix": "A-VERY-LONG-PREFIX-", "run_first": "1",
                                                "run_digits": "5", "run_lot_0": "", "run_grams_0": ""})
    assert answer.status_code == 422
    assert 'id="e-run_count"' in answer.text and "shorter prefix" in answer.text
    assert 'value="A-VERY-LONG-PREFIX-"' in answer.text
    lot = world.lot(grams=1_000)
    answer = client.post("/console/runs", data={**form_fields(client.get("/console/items").text),
                                                "run_gtin": GTIN_A, "run_count": "10", "run_prefix": "M",
                                                "run_first": "1", "run_digits": "5", "run_lot_0": lot["lotId"],
                                                "run_grams_0": "180"})
    assert answer.status_code == 422
    assert "Not enough material left in a lot: 1,800 g needed, 1,000 g left." in answer.text


def test_another_brands_run_is_not_found(sqlite_world: Any) -> None:
    world = sqlite_world
    client = sign_in(world, "brand")
    run_id = make_run(world, client, 3, world.unique("Q") + "-")
    other = sign_in(world, "brand_b")
    assert other.get(f"/console/runs/{run_id}").status_code == 404
    assert other.get(f"/console/runs/{run_id}/labels.pdf").status_code == 404
