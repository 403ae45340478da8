"""Bad input, in one table: each request's exact status and message, never a 500, and memory back to
normal after the hostile-file corpus (tests/data/hostile/, made by tests/data/make_hostile.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import TEST_DATA
from tests.messages import BLANK, CORRUPT, EMPTY, NOISE, NOT_IMAGE, ONE_IMAGE, TOO_BIG, TOO_NARROW
from tests.messages import OVER_PIXEL_LIMIT as OVER_LIMIT

CORPUS = Path(__file__).parent / "data" / "hostile"
MB = 1024 * 1024
ONE = 1  # every decodable file in the corpus shows a '1'
DIGIT = (TEST_DATA / "digit.png").read_bytes()
UPLOAD_HINT = "send the image as multipart/form-data field 'file' (curl -F file=@digit.png) or as a raw body with an image/* Content-Type."

# Each file of the corpus, uploaded as multipart field 'file': (status, digit or detail).
FILES = {
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

# Requests whose form, type or size is wrong, whatever image they carry: (id, request, status, detail).
REQUESTS = [
    ("empty-raw-body", {"content": b"", "headers": {"Content-Type": "image/png"}}, 400, EMPTY),
    (
        "wrong-field",
        {"files": {"image": ("a.png", DIGIT, "image/png")}},
        422,
        "The form has no field 'file' (fields sent: image): send the image as multipart field 'file'.",
    ),
    ("text-field-not-file", {"files": {"file": (None, b"hello")}}, 422, "The field 'file' holds text, not a file: attach the image as a file."),
    ("two-files", {"files": [("file", (f"{name}.png", DIGIT, "image/png")) for name in "ab"]}, 422, ONE_IMAGE),
    ("three-files", {"files": [("file", (f"{name}.png", DIGIT, "image/png")) for name in "abc"]}, 422, ONE_IMAGE),
    ("files-in-two-fields", {"files": [("file", ("a.png", DIGIT, "image/png")), ("other", ("b.png", DIGIT, "image/png"))]}, 422, ONE_IMAGE),
    ("over-size-limit", {"files": {"file": ("big.png", b"\x89PNG" + b"\x00" * (5 * MB + 1), "image/png")}}, 413, TOO_BIG),
    ("raw-over-size-limit", {"content": b"\x00" * (5 * MB + 70 * 1024), "headers": {"Content-Type": "image/png"}}, 413, TOO_BIG),
    ("no-content-type", {"content": DIGIT, "headers": {"Content-Type": ""}}, 415, f"The request has no Content-Type: {UPLOAD_HINT}"),
    (
        "json-content-type",
        {"content": b"{}", "headers": {"Content-Type": "application/json"}},
        415,
        f"Content-Type application/json is not accepted: {UPLOAD_HINT}",
    ),
    ("missing-boundary", {"content": b"--x\r\n", "headers": {"Content-Type": "multipart/form-data"}}, 400, "Missing boundary in multipart."),
]


def file_upload(name: str) -> dict:
    return {"files": {"file": (name, (CORPUS / name).read_bytes(), "application/octet-stream")}}


TABLE = [(name, file_upload(name), status, expected) for name, (status, expected) in sorted(FILES.items())] + REQUESTS


def test_corpus_is_complete():
    assert sorted(path.name for path in CORPUS.iterdir()) == sorted(FILES)


@pytest.mark.parametrize("request_kwargs, status, expected", [row[1:] for row in TABLE], ids=[row[0] for row in TABLE])
def test_bad_input(client, request_kwargs, status, expected):
    response = client.post("/predict", **request_kwargs)
    assert response.status_code == status, response.text
    if status == 200:
        assert response.json()["digit"] == expected
    else:
        body = response.json()
        # An image that is not one digit also says what was seen; the sentence is the same either way.
        assert body.pop("detail") == expected and body in ({}, {"reason": "blank"}, {"reason": "not_a_digit"})


def test_declared_content_length_over_limit_is_refused_before_reading(client):
    response = client.post("/predict", content=b"x" * 10, headers={"Content-Type": "image/png", "Content-Length": str(50 * MB)})
    assert response.status_code == 413
    assert response.json() == {"detail": TOO_BIG}


def resident_megabytes() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


def test_memory_returns_to_normal_after_the_corpus(client):
    uploads = [file_upload(name) for name in FILES]
    for upload in uploads:  # the first pass warms caches and allocator pools
        client.post("/predict", **upload)
    settled = resident_megabytes()
    for _ in range(3):
        for upload in uploads:
            assert client.post("/predict", **upload).status_code < 500
    assert resident_megabytes() - settled < 50, f"RSS grew from {settled:.0f} MB to {resident_megabytes():.0f} MB"
