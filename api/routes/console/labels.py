"""Label sheets: a printable PDF of QR labels for a run, on a common sheet of die-cut labels.

Each label holds the item's QR code (its GS1 Digital Link, error correction Q, with its 4-module quiet zone) drawn as
vector squares, and the product's name, GTIN and serial in human-readable text. Two sheets, the most common for
small product labels:

- ``a4``: A4, 3 x 7 labels of 63.5 x 38.1 mm (Avery L7160 and its equivalents), QR code 32 mm;
- ``letter``: US Letter, 3 x 10 labels of 2-5/8 x 1 in (Avery 5160), QR code 22 mm.

The text stays inside its label: the name is cut at a word after 36 characters, and a GTIN or serial too wide for
the column beside the code (A4's) goes below its caption, in a smaller size if need be (5 pt at the least, a
20-character serial).

A sheet of 5,000 labels takes about 8 s on a 2-core machine. Measured: every label of a 100-item run decodes with
zxing-cpp from the PDF rendered at 200 dpi by pdftoppm, and pdftotext finds each label's GTIN and serial inside its
edges (``tests/api/console/test_labels.py``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import zxingcpp
from fpdf import FPDF


@dataclass(frozen=True)
class Sheet:
    """A sheet of labels, in millimetres: page size, grid, label size, first label's corner, pitch."""

    code: str
    title: str
    page: tuple[float, float]
    columns: int
    rows: int
    label: tuple[float, float]
    origin: tuple[float, float]
    pitch: tuple[float, float]
    padding: float

    @property
    def per_page(self) -> int:
        return self.columns * self.rows

    def cell(self, index: int) -> tuple[int, float, float]:
        """(page number from 0, x, y) of the label at `index`."""
        page, slot = divmod(index, self.per_page)
        row, column = divmod(slot, self.columns)
        return page, self.origin[0] + column * self.pitch[0], self.origin[1] + row * self.pitch[1]


SHEETS = {
    "a4": Sheet("a4", "A4, 21 labels of 63.5 x 38.1 mm (L7160)", (210.0, 297.0), 3, 7, (63.5, 38.1),
                (7.21, 15.15), (66.04, 38.1), 3.0),
    "letter": Sheet("letter", "US Letter, 30 labels of 2-5/8 x 1 in (5160)", (215.9, 279.4), 3, 10, (66.675, 25.4),
                    (4.7625, 12.7), (69.85, 25.4), 1.8),
}


@dataclass(frozen=True)
class Label:
    uri: str
    gtin: str
    serial: str
    name: str


def _short(name: str, limit: int = 36) -> str:
    """At most `limit` characters, cut at a word where there is one (Latin-1, the core fonts', has no ellipsis)."""
    if len(name) <= limit:
        return name
    cut = name[: limit - 3]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip(" ,;:-") + "..."


def _latin1(text: str) -> str:
    """The PDF's core fonts hold Latin-1 only: anything else is replaced (names are for people; the code holds the
    identifiers)."""
    return text.encode("latin-1", "replace").decode("latin-1")


_DARK_RUN = re.compile(rb"\x00+")


def qr_rows(uri: str) -> list[bytes]:
    """The QR code of `uri` (error correction Q, the best mask), without quiet zone: one byte per module, 0 for dark.

    zxing-cpp's encoder (C++): about 1 ms a code, where segno's pure-Python mask search took 30 ms on this machine,
    which made a label sheet of 1,000 items take half a minute."""
    image = zxingcpp.create_barcode(uri, zxingcpp.BarcodeFormat.QRCode, ec_level="Q").to_image(
        scale=1, add_quiet_zones=False
    )
    view = memoryview(image)  # type: ignore[arg-type]  # zxingcpp.Image has the buffer protocol, untyped
    size, raw = (view.shape or (0,))[0], view.tobytes()
    return [raw[r * size : (r + 1) * size] for r in range(size)]


def _draw_qr(pdf: FPDF, uri: str, x: float, y: float, size: float) -> None:
    """The QR code of `uri`, quiet zone included, filling the square (x, y, size) in millimetres from the top left:
    one filled path of a rectangle per run of dark modules in a row, in module units under one transformation
    (whole numbers: short to write and to read), written as PDF operators in one go (fpdf2's ``rect`` per run cost
    20 ms a label)."""
    rows = qr_rows(uri)
    count = len(rows)
    unit = size / (count + 8) * pdf.k  # 4 modules of quiet zone on each side; points per module
    left, bottom = (x * pdf.k) + 4 * unit, (pdf.h - y) * pdf.k - (count + 4) * unit
    ops = [f"q 0 g {unit:.4f} 0 0 {unit:.4f} {left:.3f} {bottom:.3f} cm"]
    for r, row in enumerate(rows):
        up = count - 1 - r
        ops.extend(f"{run.start()} {up} {run.end() - run.start()} 1 re" for run in _DARK_RUN.finditer(row))
    ops.append("f Q")
    pdf._out(" ".join(ops))


MIN_TEXT_PT = 5.0
PT = 25.4 / 72  # millimetres in a point


def _line(pdf: FPDF, x: float, top: float, height: float, text: str) -> float:
    """`text` on a line of `height` mm from `top` (its baseline where fpdf2's ``cell`` puts it); the next top."""
    pdf.text(x, top + 0.5 * height + 0.3 * pdf.font_size, text)
    return top + height


def _identifier(pdf: FPDF, caption: str, value: str, x: float, top: float, width: float, size: float) -> float:
    """`caption value` on one line in Courier when it fits the label's text column; else the caption on a line of
    its own and the value below it, smaller if need be (down to 5 pt), so that no text runs off the label. The next
    line's top."""
    pdf.set_font("Courier", "", size)
    line = size * PT * 1.25
    text = f"{caption} {value}"
    if pdf.get_string_width(text) <= width:
        return _line(pdf, x, top, line, text)
    top = _line(pdf, x, top, line, caption)
    fitted = max(MIN_TEXT_PT, min(size, size * width / pdf.get_string_width(value)))
    pdf.set_font("Courier", "", fitted)
    return _line(pdf, x, top, fitted * PT * 1.25, value)


def label_sheet(labels: Sequence[Label], sheet: Sheet, title: str = "Labels") -> bytes:
    """The PDF of `labels`, in order, on as many sheets as they need."""
    pdf = FPDF(unit="mm", format=sheet.page)
    pdf.set_auto_page_break(False)
    pdf.set_margins(0, 0, 0)
    pdf.set_title(_latin1(title))
    pdf.set_creator("circular-ledger console")
    width, height = sheet.label
    qr_size = height - 2 * sheet.padding
    text_x_offset = sheet.padding + qr_size + 1.0
    text_width = width - text_x_offset - sheet.padding
    large = 8.0 if height > 30 else 7.0
    small = 7.0 if height > 30 else 6.0
    line = large * PT * 1.25  # with leading
    names: dict[str, list[str]] = {}  # a name's lines, wrapped once (a run's labels share one)
    for index, label in enumerate(labels):
        page, x, y = sheet.cell(index)
        if page >= pdf.page:
            pdf.add_page()
        _draw_qr(pdf, label.uri, x + sheet.padding, y + sheet.padding, qr_size)
        pdf.set_font("Helvetica", "B", large)
        if label.name not in names:
            wrapped = pdf.multi_cell(text_width, line, _latin1(_short(label.name)), align="L", dry_run=True,
                                     output="LINES")
            names[label.name] = [str(part) for part in wrapped] if isinstance(wrapped, list) else []
        text_x, top = x + text_x_offset, y + sheet.padding + 1.0
        for name_line in names[label.name]:
            top = _line(pdf, text_x, top, line, name_line)
        for caption, value in (("GTIN", label.gtin), ("SN", _latin1(label.serial))):
            top = _identifier(pdf, caption, value, text_x, top, text_width, small)
    if not labels:
        pdf.add_page()
    return bytes(pdf.output())


__all__ = ["SHEETS", "Label", "Sheet", "label_sheet", "qr_rows"]
