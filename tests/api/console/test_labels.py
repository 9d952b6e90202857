"""A brand makes a run of 100 in the console and downloads its label sheets: rendered to PNG by pdftoppm, every
label decodes with zxing-cpp to its item's Digital Link, on A4 and on US Letter; pdftotext finds each label's GTIN
and serial in text inside the label's own edges."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from PIL import Image

from api.routes.console.labels import SHEETS, Label, label_sheet
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


_WORD = re.compile(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>')
_PAGE = re.compile(r"<page [^>]*>(.*?)</page>", re.S)
POINT = 25.4 / 72


def label_texts(pdf: bytes, sheet_code: str, tmp: Path) -> list[str]:
    """Every label's words, in reading order, as pdftotext finds them; a word that does not lie wholly inside one
    label's edges fails the test (it would print on the next label, or off it)."""
    pdftotext = shutil.which("pdftotext")
    if pdftotext is None:
        pytest.fail("pdftotext is not installed (make setup installs poppler-utils)")
    (tmp / "text.pdf").write_bytes(pdf)
    boxes = subprocess.run([pdftotext, "-bbox", str(tmp / "text.pdf"), "-"], check=True, capture_output=True,
                           text=True).stdout
    sheet = SHEETS[sheet_code]
    texts: dict[int, list[tuple[float, float, str]]] = {}
    for page, body in enumerate(_PAGE.findall(boxes)):
        for x0, y0, x1, y1, word in _WORD.findall(body):
            left, top, right, bottom = (float(v) * POINT for v in (x0, y0, x1, y1))
            inside = [
                index for index in range(page * sheet.per_page, (page + 1) * sheet.per_page)
                if (cell := sheet.cell(index))[1] <= left and right <= cell[1] + sheet.label[0]
                and cell[2] <= top and bottom <= cell[2] + sheet.label[1]
            ]
            assert len(inside) == 1, (sheet_code, page, html.unescape(word), (left, top, right, bottom))
            texts.setdefault(inside[0], []).append((round(top, 1), left, html.unescape(word)))
    return [" ".join(w for _, _, w in sorted(texts.get(i, []))) for i in range(max(texts, default=-1) + 1)]


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
        texts = label_texts(answer.content, paper, out)
        assert len(texts) == 100
        for n, text in enumerate(texts, start=1):
            assert text.endswith(f"GTIN {GTIN_A} SN {prefix}{n:05d}"), (paper, text)


@pytest.mark.parametrize("paper", ["a4", "letter"])
def test_the_longest_serials_and_names_stay_inside_their_labels_and_decode(paper: str, tmp_path: Path) -> None:
    gtin = "09506000134352"
    serials = ["ABCDEFGHIJKLMNOPQRST", "W" * 20, "B-1", "0" * 20]  # a serial has at most 20 characters
    name = "Organic cotton T-shirt, navy, short sleeves, size M"
    labels = [Label(f"https://id.example.org/01/{gtin}/21/{s}", gtin, s, name) for s in serials]
    pdf = label_sheet(labels, SHEETS[paper])
    assert decode_sheet(pdf, paper, tmp_path) == [label.uri for label in labels]
    texts = label_texts(pdf, paper, tmp_path)
    assert len(texts) == len(serials)
    for serial, text in zip(serials, texts, strict=True):
        # The name cut at a word; each identifier on one line when it fits, else its caption above it.
        assert text == f"Organic cotton T-shirt, navy... GTIN {gtin} SN {serial}", (paper, text)


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
    unknown = client.get(f"/console/runs/{run_id}/labels.pdf?paper=a5")
    assert unknown.status_code == 422 and "There is no paper “a5”: choose a4 (A4, 21 labels" in unknown.text


def test_a_run_form_sent_twice_makes_one_run(sqlite_world: Any) -> None:
    import threading

    from sqlalchemy import func, select

    from api.models import Item

    world = sqlite_world
    client = sign_in(world, "brand")
    lot = world.lot(grams=100_000)
    prefix = world.unique("T") + "-"
    form = {**form_fields(client.get("/console/items").text), "run_gtin": GTIN_A, "run_count": "20",
            "run_prefix": prefix, "run_first": "1", "run_digits": "5", "run_lot_0": lot["lotId"],
            "run_grams_0": "180"}
    answers: list[Any] = []
    clicks = [threading.Thread(target=lambda: answers.append(client.post("/console/runs", data=form)))
              for _ in range(2)]
    for click in clicks:
        click.start()
    for click in clicks:
        click.join()
    assert [a.status_code for a in answers] == [303, 303], [a.text[:300] for a in answers]
    assert answers[0].headers["location"] == answers[1].headers["location"]  # the second got the first's run
    later = client.post("/console/runs", data=form)  # the back button, then the form again
    assert later.status_code == 303 and later.headers["location"] == answers[0].headers["location"]
    with world.service.sessions() as session:
        mine = Item.serial.startswith(prefix)
        assert session.scalar(select(func.count()).where(mine)) == 20
        assert session.scalar(select(func.count(func.distinct(Item.run_id))).where(mine)) == 1
    # The lot gave its grams once: 20 x 180 g.
    assert '<dd id="left">96,400&nbsp;g</dd>' in client.get(f"/console/lots/{lot['lotId']}").text


def test_a_brand_makes_one_item_and_a_serial_used_before_is_refused_next_to_its_field(sqlite_world: Any) -> None:
    world = sqlite_world
    client = sign_in(world, "brand")
    lot = world.lot(grams=10_000)
    serial = world.unique("ONE")
    form = {**form_fields(client.get("/console/items").text), "gtin": GTIN_A, "serial": serial,
            "lot_0": lot["lotId"], "grams_0": "250"}
    answer = client.post("/console/items", data=form)
    assert answer.status_code == 303 and answer.headers["location"] == "/console/items?ok=made"
    made = world.client.get(f"/api/v1/items/{GTIN_A}/{serial}", headers=world.auth("admin"))
    assert made.status_code == 200 and made.json()["state"] == "manufactured"
    assert re.search(rf">{serial}</a></td>\s*<td>made</td>\s*<td class=\"num\">250&nbsp;g</td>",
                     client.get(f"/console/lots/{lot['lotId']}").text)
    again = client.post("/console/items", data={**form, **form_fields(client.get("/console/items").text)})
    assert again.status_code == 422
    assert re.search(rf'id="e-serial">serial {serial} of GTIN {GTIN_A} exists already<', again.text)
    assert f'value="{serial}"' in again.text  # nothing typed is lost
    assert '<dd id="left">9,750&nbsp;g</dd>' in client.get(f"/console/lots/{lot['lotId']}").text
