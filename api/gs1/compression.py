"""Decompression of compressed GS1 Digital Link URIs (GS1 Digital Link: Compression).

A compressed URI carries, after the domain, one URI-safe base64 segment of a bit string. The bit string is a sequence
of entries; each starts with two hex nibbles that are either the first digits of a GS1 Application Identifier
(completed from ``tableP``), an optimisation code naming a fixed sequence of AIs (``tableOpt``), or ``F`` flagging a
non-GS1 key=value pair. Each AI value is then read per its format (``tableF``): fixed-length numerics as one binary
number, variable-length values with a length prefix and a 3-bit encoding (numeric, lower/upper hex, URI-safe base64
or 7-bit ASCII).

We decompress ourselves rather than use PyPI ``gs1-compression`` 0.1.3: against vectors made by the npm reference
(``digital-link.js`` ``compressWebUri``) it dropped the leading zeros of numeric serials and left characters such
as ``"`` unescaped in about 5% of cases (see ``tests/api/test_compression.py``). The tables are those of the GS1
toolkit that ``digital-link.js`` ships (Apache-2.0), in ``compression_tables.json``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

SAFE_BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
HEX = "0123456789ABCDEF"
_SAFE64_RE = re.compile(r"^[A-Za-z0-9_-]+$")


class CompressionError(ValueError):
    """A segment is not a valid compressed GS1 Digital Link."""


@dataclass(frozen=True)
class Tables:
    p: dict[str, int]
    f: dict[str, list[dict[str, Any]]]
    opt: dict[str, list[str]]


@cache
def tables() -> Tables:
    raw = json.loads((Path(__file__).with_name("compression_tables.json")).read_text())
    return Tables(p=raw["tableP"], f=raw["tableF"], opt=raw["tableOpt"])


@dataclass
class Decompressed:
    """The AIs (in encoding order) and the non-GS1 key=value pairs of a compressed segment."""

    ais: dict[str, str] = field(default_factory=dict)
    other: dict[str, str] = field(default_factory=dict)


def length_bits(max_length: int) -> int:
    """Bits of a length indicator for values of at most `max_length` characters (as the GS1 toolkit computes it)."""
    return math.ceil(math.log(max_length) / math.log(2) + 0.01)


def value_bits(digits: int) -> int:
    """Bits of a binary number with `digits` decimal digits."""
    return math.ceil(digits * math.log(10) / math.log(2) + 0.01)


def is_compressed_segment(segment: str) -> bool:
    return bool(_SAFE64_RE.match(segment))


class _Reader:
    def __init__(self, bits: str) -> None:
        self.bits = bits
        self.cursor = 0

    def take(self, n: int) -> str:
        if n < 0 or self.cursor + n > len(self.bits):
            raise CompressionError("compressed value ends early")
        chunk = self.bits[self.cursor : self.cursor + n]
        self.cursor += n
        return chunk

    def number(self, n: int) -> int:
        return int(self.take(n), 2) if n else 0

    def remaining(self) -> int:
        return len(self.bits) - self.cursor


def _to_bits(segment: str) -> str:
    if not is_compressed_segment(segment):
        raise CompressionError("not a URI-safe base64 segment")
    return "".join(f"{SAFE_BASE64.index(ch):06b}" for ch in segment)


def _string(reader: _Reader, encoding: int, chars: int) -> str:
    if encoding == 0:  # digits, as one binary number; the length keeps the leading zeros
        value = reader.number(value_bits(chars))
        text = str(value)
        if len(text) > chars:
            raise CompressionError("numeric value longer than its length")
        return text.zfill(chars) if chars else ""
    if encoding in (1, 2):  # lower / upper case hexadecimal, 4 bits per character
        text = "".join(HEX[reader.number(4)] for _ in range(chars))
        return text.lower() if encoding == 1 else text
    if encoding == 3:  # URI-safe base64 alphabet, 6 bits per character
        return "".join(SAFE_BASE64[reader.number(6)] for _ in range(chars))
    if encoding == 4:  # 7-bit ASCII
        return "".join(chr(reader.number(7)) for _ in range(chars))
    raise CompressionError(f"unknown value encoding {encoding}")


def _value(reader: _Reader, ai: str) -> str:
    formats = tables().f.get(ai)
    if formats is None:
        raise CompressionError(f"no format known for AI ({ai})")
    value = ""
    for part in formats:
        kind = part["E"]
        if "L" in part and kind == "N":
            size = int(part["L"])
            number = str(reader.number(value_bits(size)))
            if len(number) > size:
                raise CompressionError(f"value of AI ({ai}) too long")
            value += number.zfill(size)
        elif "M" in part and kind == "N":
            digits = reader.number(length_bits(int(part["M"])))
            value += str(reader.number(value_bits(digits))).zfill(digits) if digits else ""
        elif "L" in part and kind == "X":
            encoding = reader.number(3)
            value += _string(reader, encoding, int(part["L"]))
        elif "M" in part and kind == "X":
            encoding = reader.number(3)
            chars = reader.number(length_bits(int(part["M"])))
            value += _string(reader, encoding, chars)
    return value


def decompress_segment(segment: str) -> Decompressed:
    """The AIs and other key=value pairs encoded in one compressed path segment."""
    reader = _Reader(_to_bits(segment))
    out = Decompressed()
    table = tables()
    while reader.remaining() > 8:
        h1, h2 = reader.number(4), reader.number(4)
        if h1 <= 9 and h2 <= 9:
            ai = f"{h1}{h2}"
            size = table.p.get(ai)
            if size is None:
                raise CompressionError(f"reserved AI range {ai}")
            for _ in range(size - 2):
                digit = reader.number(4)
                if digit > 9:
                    raise CompressionError("AI keys are all-numeric")
                ai += str(digit)
            _put(out.ais, ai, _value(reader, ai))
        elif f"{HEX[h1]}{HEX[h2]}" in table.opt:
            for ai in table.opt[f"{HEX[h1]}{HEX[h2]}"]:
                _put(out.ais, ai, _value(reader, ai))
        elif h1 == 15:  # a non-GS1 key=value pair: 7-bit key length (its first 4 bits are h2)
            key_length = (h2 << 3) | reader.number(3)
            key = "".join(SAFE_BASE64[reader.number(6)] for _ in range(key_length))
            encoding = reader.number(3)
            chars = reader.number(7)
            out.other[key] = _string(reader, encoding, chars)
        else:
            raise CompressionError(f"no optimisation defined for {HEX[h1]}{HEX[h2]}")
    if not out.ais:
        raise CompressionError("no GS1 key in the compressed segment")
    return out


def _put(ais: dict[str, str], ai: str, value: str) -> None:
    if ai in ais:
        raise CompressionError(f"AI ({ai}) appears twice")
    ais[ai] = value


__all__ = ["CompressionError", "Decompressed", "decompress_segment", "is_compressed_segment"]
