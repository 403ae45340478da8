"""The benchmark's uploads, made from the repository's sample digit (a 280x280 black-on-white 7)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

SAMPLE = Path(__file__).resolve().parent.parent / "tests" / "data" / "digit.png"


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_28() -> bytes:
    """MNIST size: 28x28 grayscale PNG."""
    return _encode(Image.open(SAMPLE).convert("L").resize((28, 28), Image.Resampling.BOX), "PNG")


def png_280() -> bytes:
    """A canvas drawing: 280x280 grayscale PNG."""
    return _encode(Image.open(SAMPLE).convert("L"), "PNG")


def jpeg_2000() -> bytes:
    """A phone photo: 2000x2000 RGB JPEG of the digit on slightly uneven, grainy paper."""
    ink = np.asarray(Image.open(SAMPLE).convert("L").resize((2000, 2000), Image.Resampling.BICUBIC).filter(ImageFilter.GaussianBlur(3)), np.float32)
    rows = np.linspace(0, 1, 2000, dtype=np.float32)[:, None]
    paper = 215 + 25 * rows + np.random.default_rng(0).normal(0, 4, (2000, 2000)).astype(np.float32)
    gray = paper * ink / 255.0 + 40 * (1 - ink / 255.0)
    rgb = np.stack([gray, gray * 0.97, gray * 0.92], axis=-1).clip(0, 255).astype(np.uint8)
    return _encode(Image.fromarray(rgb, "RGB"), "JPEG", quality=90)


IMAGES = {"28x28 PNG": (png_28, "image/png"), "280x280 PNG": (png_280, "image/png"), "2000x2000 JPEG": (jpeg_2000, "image/jpeg")}
