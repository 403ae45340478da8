"""The photo and scan scenes: each kind makes a decodable, seeded, non-blank image of a plausible size."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.conftest import TEST_DATA
from training.scenes import SCENES

# (kind, smallest side, largest side) in pixels: photos are phone-sized, scans and drawings smaller.
SIZES = [
    ("paper_on_desk", 400, 1600),
    ("sticky_note", 400, 1600),
    ("whiteboard_glare", 400, 1600),
    ("ruled_paper", 400, 1600),
    ("faint_pencil", 400, 1600),
    ("stray_marks", 150, 800),
    ("graph_paper", 400, 1600),
    ("salt_pepper_scan", 150, 900),
    ("thick_marker", 250, 1600),
    ("tiny_image", 12, 256),
    ("form_box", 60, 800),
    ("mid_grey_background", 100, 800),
    ("white_side_bars", 100, 800),
]


@pytest.fixture(scope="module")
def digit() -> np.ndarray:
    """The test-data digit as MNIST stores one: 28x28, white on black."""
    drawn = np.asarray(Image.open(TEST_DATA / "digit.png").convert("L"))
    return cv2.resize(255 - drawn, (28, 28), interpolation=cv2.INTER_AREA)


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_every_kind_has_a_size_row():
    assert [kind for kind, _, _ in SIZES] == list(SCENES)


@pytest.mark.parametrize(("kind", "smallest", "largest"), SIZES)
def test_scene_is_a_decodable_seeded_image_with_contrast(digit, kind, smallest, largest):
    scene = SCENES[kind]
    first, again, other = (scene(digit, np.random.default_rng(seed)) for seed in (0, 0, 1))
    assert first == again, "the same seed must give the same bytes"
    assert first != other, "another seed must give another image"
    for data in (first, other):
        image = decode(data)
        assert image.format in ("PNG", "JPEG")
        assert smallest <= min(image.size) and max(image.size) <= largest, image.size
        grey = np.asarray(image.convert("L"), dtype=np.float32)
        low, high = np.percentile(grey, [1, 99])
        assert high - low >= 12, f"{kind} is nearly blank: levels {low:.0f}-{high:.0f}"
