"""Compressed GS1 Digital Links decompress exactly as the npm reference (digital-link.js ``compressWebUri``) compressed
them. The vectors are made at test time by ``dl_vectors.js`` from URIs generated here.

PyPI ``gs1-compression`` 0.1.3 was measured against the same kind of vectors and not trusted: it dropped the leading
zeros of numeric serials (``0471874633191284`` became ``471874633191284``) and left ``"`` unescaped, 16 wrong in 339.
"""

from __future__ import annotations

import json
import random
import shutil
import string
import subprocess
from pathlib import Path
from urllib.parse import quote, unquote

import pytest

from api.gs1.compression import SAFE_BASE64, CompressionError, decompress_segment, length_bits, value_bits
from api.gs1.digital_link import MalformedLink, NotADigitalLink, UnsupportedKey, parse_path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("dl_vectors.js")
BASE = "https://id.circular.example"
CSET82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"


def _gtin(rng: random.Random) -> str:
    body = "".join(rng.choice(string.digits) for _ in range(13))
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def _uris(count: int = 300) -> list[str]:
    rng = random.Random(20261123)
    alphabets = {
        "numeric": string.digits,
        "alnum": string.ascii_letters + string.digits,
        "upper-hex": "0123456789ABCDEF",
        "lower-hex": "0123456789abcdef",
        "base64": string.ascii_letters + string.digits + "-_",
        "cset82": CSET82,
    }
    uris = []
    for index in range(count):
        kind = list(alphabets)[index % len(alphabets)]
        # the npm compressor parses numbers as doubles: beyond 15 digits its own output is lossy
        length = rng.randint(1, 15 if kind == "numeric" else 20)
        value = "".join(rng.choice(alphabets[kind]) for _ in range(length))
        if index % 5 == 0:
            path = f"/01/{_gtin(rng)}/10/{quote(value, safe='')}"
        elif index % 7 == 0:
            lot = "".join(rng.choice(string.ascii_uppercase) for _ in range(4))
            path = f"/01/{_gtin(rng)}/10/{lot}/21/{quote(value, safe='')}"
        else:
            path = f"/01/{_gtin(rng)}/21/{quote(value, safe='')}"
        uris.append(BASE + path)
    uris += [
        f"{BASE}/01/09506000134352",
        f"{BASE}/01/09506000134352/21/0000123",
        f"{BASE}/01/09506000134352/21/S1?17=261231",
        f"{BASE}/01/09506000134352/10/LOT1/21/S1?17=261231",
        f"{BASE}/01/09506000134352/22/V1/10/L%2F1/21/S1",
        f"{BASE}/01/09506000134352/21/S1?17=261231&foo=bar",
    ]
    return uris


@pytest.fixture(scope="module")
def vectors() -> list[dict[str, str]]:
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "digital-link.js").exists():
        pytest.skip("node and node_modules/digital-link.js are needed to make the vectors (make setup)")
    result = subprocess.run(
        [node, str(SCRIPT)], input=json.dumps(_uris()), capture_output=True, text=True, check=True, timeout=60
    )
    made: list[dict[str, str]] = json.loads(result.stdout)
    return [v for v in made if "compressed" in v]


def test_enough_vectors_are_made(vectors: list[dict[str, str]]) -> None:
    assert len(vectors) > 250  # the npm toolkit refuses some CSET 82 characters (< ; = > ...): those are left out


def test_every_vector_decompresses_to_its_uri(vectors: list[dict[str, str]]) -> None:
    wrong = []
    for vector in vectors:
        path = vector["compressed"][len(BASE) :]
        link = parse_path(path)
        assert link.compressed
        if link.uri(BASE) != vector["uri"]:
            wrong.append((vector, link.uri(BASE)))
    assert wrong == []


def test_numeric_serials_keep_their_leading_zeros(vectors: list[dict[str, str]]) -> None:
    vector = next(v for v in vectors if v["uri"].endswith("/21/0000123"))
    assert parse_path(vector["compressed"][len(BASE) :]).serial == "0000123"


def test_data_attributes_and_other_pairs_are_kept(vectors: list[dict[str, str]]) -> None:
    vector = next(v for v in vectors if v["uri"].endswith("?17=261231&foo=bar"))
    link = parse_path(vector["compressed"][len(BASE) :])
    assert link.serial == "S1"
    assert link.attributes == (("17", "261231"),)
    assert link.other == (("foo", "bar"),)


def _segment(bits: str) -> str:
    bits += "0" * (-len(bits) % 6)
    return "".join(SAFE_BASE64[int(bits[i : i + 6], 2)] for i in range(0, len(bits), 6))


def test_partially_compressed_links_decompress() -> None:
    # AI 21 (nibbles 2, 1), encoding 3 (URI-safe base64), length 2 in 5 bits, then "S1" at 6 bits a character
    bits = "0010" + "0001" + "011" + f"{2:05b}" + f"{SAFE_BASE64.index('S'):06b}" + f"{SAFE_BASE64.index('1'):06b}"
    link = parse_path("/01/09506000134352/" + _segment(bits))
    assert link.compressed and link.serial == "S1"
    assert link.uri(BASE) == f"{BASE}/01/09506000134352/21/S1"


def test_bit_sizes_match_the_toolkit() -> None:
    assert [length_bits(n) for n in (20, 30, 70, 90)] == [5, 5, 7, 7]
    assert [value_bits(n) for n in (6, 14, 18)] == [20, 47, 60]


@pytest.mark.parametrize("segment", ["A", "____________", "ZZZZZZZZZZZZ"])
def test_garbage_is_not_a_link(segment: str) -> None:
    with pytest.raises((CompressionError, NotADigitalLink)):
        parse_path("/" + segment)
    with pytest.raises(CompressionError):
        decompress_segment(segment)


def test_other_primary_keys_are_unsupported() -> None:
    with pytest.raises(UnsupportedKey):
        parse_path("/ABeRcNWtKMQA")  # (00) SSCC 106141412345678908, compressed by digital-link.js
    with pytest.raises(UnsupportedKey):
        parse_path("/414/9520123456788")


def test_values_inside_a_compressed_link_are_validated() -> None:
    # /01/09506000134353 (bad check digit), compressed by digital-link.js with useOptimisations
    with pytest.raises(MalformedLink):
        parse_path("/01/09506000134353")


def test_uncompressed_percent_encoding_is_decoded_once() -> None:
    link = parse_path("/01/09506000134352/21/A%2FB%25C")
    assert link.serial == "A/B%C"
    assert unquote(link.path.rsplit("/", 1)[1]) == "A/B%C"
