"""The hostile-input corpus (tests/data/hostile/, made by tests/data/make_hostile.py): each file's
exact status and message, never a 500, and memory back to normal after the whole corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.messages import BLANK, CORRUPT, EMPTY, NOISE, NOT_IMAGE, TOO_NARROW
from tests.messages import OVER_PIXEL_LIMIT as OVER_LIMIT

CORPUS = Path(__file__).parent / "data" / "hostile"

ONE = 1  # every decodable file in the corpus shows a '1'

EXPECTED = {
    "1-bit.png": (200, ONE),
    "16-bit.png": (200, ONE),
    "all-black.png": (422, BLANK),
    "all-transparent.png": (422, BLANK),
    "all-white.png": (422, BLANK),
    "animated-1000-frames.gif": (200, ONE),
    "bad-crc-idat.png": (400, CORRUPT),
    "bad-crc-ihdr.png": (400, CORRUPT),
    "bmp.bmp": (200, ONE),
    "bomb-9000x9000.png": (
        413,
        "The image has too many pixels (the image has 81,000,000 pixels; the limit is 25,000,000): scale it down and retry.",
    ),
    "cmyk.jpg": (200, ONE),
    "elf-named.png": (415, NOT_IMAGE),
    "empty.png": (400, EMPTY),
    "eps-named.png": (415, NOT_IMAGE),
    "greyscale-alpha.png": (200, ONE),
    "header-100000x100000.png": (413, OVER_LIMIT),
    "header-30000x30000.png": (413, OVER_LIMIT),
    "html-named.png": (415, NOT_IMAGE),
    "huge-exif.jpg": (200, ONE),
    "huge-text-chunk.png": (200, ONE),
    "ico.ico": (415, NOT_IMAGE),
    "mid-grey.jpg": (422, BLANK),
    "multipage.tiff": (200, ONE),
    "one-byte.png": (415, NOT_IMAGE),
    "palette-transparent.png": (200, ONE),
    "pdf-named.png": (415, NOT_IMAGE),
    "png-signature-only.png": (400, CORRUPT),
    "polyglot-png-zip.png": (200, ONE),
    "progressive.jpg": (200, ONE),
    "psd-named.png": (415, NOT_IMAGE),
    "pure-noise.png": (422, NOISE),
    "svg-named.png": (415, NOT_IMAGE),
    "svg.svg": (415, NOT_IMAGE),
    "text.png": (415, NOT_IMAGE),
    "tiny-1x1.png": (422, TOO_NARROW),
    "truncated-half.png": (400, CORRUPT),
    "truncated-header.png": (400, CORRUPT),
    "truncated.gif": (400, CORRUPT),
    "truncated.jpg": (400, CORRUPT),
    "webp.webp": (200, ONE),
    "zero-width.png": (400, CORRUPT),
    "zip-named.png": (415, NOT_IMAGE),
}


def test_corpus_is_complete():
    assert sorted(path.name for path in CORPUS.iterdir()) == sorted(EXPECTED)
    assert len(EXPECTED) >= 40


def post(client, name: str):
    data = (CORPUS / name).read_bytes()
    return client.post("/predict", files={"file": (name, data, "application/octet-stream")})


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hostile_file(client, name):
    status, expected = EXPECTED[name]
    response = post(client, name)
    assert response.status_code == status, response.text
    if status == 200:
        assert response.json()["digit"] == expected
    else:
        assert response.json() == {"detail": expected}


def resident_megabytes() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


def test_memory_returns_to_normal_after_the_corpus(client):
    for name in EXPECTED:  # the first pass warms caches and allocator pools
        post(client, name)
    settled = resident_megabytes()
    for _ in range(3):
        for name in EXPECTED:
            assert post(client, name).status_code < 500
    assert resident_megabytes() - settled < 50, f"RSS grew from {settled:.0f} MB to {resident_megabytes():.0f} MB"
