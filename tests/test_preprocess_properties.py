"""Property tests: any bytes give a 28x28 float32 digit in [0, 1] or one of the module's own errors."""

from __future__ import annotations

import io

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from app import preprocess as pp


def check(data: bytes) -> None:
    try:
        digit = pp.preprocess(data, max_pixels=4_000_000)
    except pp.PreprocessError:
        return
    assert digit.shape == (28, 28) and digit.dtype == np.float32
    assert np.isfinite(digit).all() and digit.min() >= 0.0 and digit.max() <= 1.0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_any_bytes(data):
    check(data)


@st.composite
def images(draw):
    width = draw(st.integers(1, 64))
    height = draw(st.integers(1, 64))
    mode = draw(st.sampled_from(["L", "RGB", "RGBA", "LA", "P", "1", "I;16", "CMYK"]))
    fmt = draw(st.sampled_from(["PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
    if draw(st.booleans()):
        pixels[:] = pixels[0, 0]  # flat images are common: blank canvases
    image = Image.fromarray(pixels, "RGBA").convert(mode if mode != "I;16" else "L")
    if mode == "I;16":
        image = Image.fromarray(np.asarray(image, dtype=np.uint16) * 257)
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=fmt)
    except (OSError, ValueError, KeyError):
        image.convert("RGB").save(buffer, format="PNG")
    data = buffer.getvalue()
    cut = draw(st.one_of(st.none(), st.integers(0, len(data))))
    flip = draw(st.one_of(st.none(), st.integers(0, max(len(data) - 1, 0))))
    if flip is not None and data:
        data = data[:flip] + bytes([data[flip] ^ 0xFF]) + data[flip + 1 :]
    return data if cut is None else data[:cut]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(images())
def test_real_images_truncated_or_flipped(data):
    check(data)
