"""training/negatives.py: uploads that are not one digit, seeded and drawn like the digit fixtures."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from training.negatives import DIGIT_LIKE_LETTERS, KINDS, LETTERS, PLAIN_STYLE, glyph, negative_uploads, render
from training.scenes import SCENES
from training.upload_styles import STYLES

# Upload styles whose canvas does not depend on the draw, and that are quick; a photo style of each surface kind.
FIXED_SIZE_STYLES = {
    "clean_png": (280, 280),
    "off_centre": (480, 320),
    "dark_mode": (280, 280),
    "palette_gif": (140, 140),
    "exif_rotated": (300, 300),
}
QUICK_STYLES = {
    "uploads": {name: STYLES[name] for name in FIXED_SIZE_STYLES},
    "photos": {name: SCENES[name] for name in ("sticky_note", "form_box", "tiny_image")},
}


@pytest.fixture(scope="module")
def fake_digits():
    """Ten synthetic 'digits' (a bar and a ring, drawn by OpenCV) with labels 0-9: quick stand-ins for MNIST's rows of digits."""
    images = np.zeros((10, 28, 28), dtype=np.uint8)
    for label, image in enumerate(images):
        if label % 2:
            cv2.line(image, (14, 5), (14 + label % 3, 23), 255, 3)
        else:
            cv2.ellipse(image, (14, 14), (6, 9), 0, 0, 360, 255, 3)
    return images, np.arange(10)


@pytest.fixture(scope="module")
def training_digits(mnist):
    """A few hundred MNIST training digits and labels (the kind's source: never the test set)."""
    return mnist.x_train[:200], mnist.y_train[:200]


def test_the_same_seed_draws_the_same_negatives_and_another_seed_others(fake_digits):
    first = negative_uploads(2, 5, *fake_digits, styles=QUICK_STYLES)
    assert [negative.data for negative in first] == [negative.data for negative in negative_uploads(2, 5, *fake_digits, styles=QUICK_STYLES)]
    assert [negative.data for negative in first] != [negative.data for negative in negative_uploads(2, 6, *fake_digits, styles=QUICK_STYLES)]


def test_every_kind_is_drawn_as_an_image_that_decodes_at_its_styles_size(fake_digits):
    negatives = negative_uploads(3, 0, *fake_digits, styles=QUICK_STYLES)
    assert [negative.kind for negative in negatives] == [kind for kind in KINDS for _ in range(3)]
    for negative in negatives:
        with Image.open(io.BytesIO(negative.data)) as image:
            image.load()
            assert min(image.size) >= 8, (negative.kind, negative.style)
            if negative.style in FIXED_SIZE_STYLES:
                assert image.size == FIXED_SIZE_STYLES[negative.style], (negative.kind, negative.style)


@pytest.mark.parametrize(
    "kind, groups",
    [
        ("blank", {"uploads"}),
        ("texture", {"photos", PLAIN_STYLE}),
        ("letter", {"uploads", "photos"}),
    ],
)
def test_blanks_are_canvases_and_textures_are_surfaces(kind, groups, fake_digits):
    group_of = {name: group for group, styles in QUICK_STYLES.items() for name in styles} | {PLAIN_STYLE: PLAIN_STYLE}
    negatives = negative_uploads(12, 3, *fake_digits, styles=QUICK_STYLES, kinds=(kind,))
    assert {group_of[negative.style] for negative in negatives} <= groups


@pytest.mark.parametrize("scene", sorted(SCENES))
def test_a_blank_glyph_gets_the_photo_styles_bare_surface(scene):
    """The photo styles crop the glyph to its ink; a blank one must still give a surface with nothing written."""
    data = render(SCENES[scene], np.zeros((28, 28), dtype=np.uint8), np.random.default_rng(0))
    with Image.open(io.BytesIO(data)) as image:
        assert min(image.size) >= 8


@pytest.mark.parametrize("kind", [kind for kind in KINDS if kind not in ("blank", "texture")])
def test_glyphs_are_framed_like_mnist_digits(kind, fake_digits):
    rng = np.random.default_rng(1)
    for _ in range(5):
        image, text = glyph(kind, rng, *fake_digits)
        rows, columns = np.nonzero(image)
        assert image.shape == (28, 28) and image.dtype == np.uint8 and image.max() == 255 and text
        # Fitted into a 20x20 box and centred by mass, as MNIST's digits are.
        assert max(rows.max() - rows.min(), columns.max() - columns.min()) < 20
        assert rows.min() >= 2 and columns.min() >= 2 and rows.max() <= 25 and columns.max() <= 25
        weights = image.astype(float) / image.sum()
        assert abs((weights.sum(axis=1) @ np.arange(28)) - 14) <= 1 and abs((weights.sum(axis=0) @ np.arange(28)) - 14) <= 1


@pytest.mark.parametrize("kind", ["blank", "texture"])
def test_blank_and_texture_glyphs_have_no_ink(kind):
    image, text = glyph(kind, np.random.default_rng(0))
    assert image.shape == (28, 28) and not image.any() and text == ""


def test_several_digits_show_two_or_three_training_digits(training_digits):
    rng = np.random.default_rng(2)
    texts = [glyph("several_digits", rng, *training_digits)[1] for _ in range(20)]
    assert all(text.isdigit() and 2 <= len(text) <= 3 for text in texts)
    assert {len(text) for text in texts} == {2, 3}


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: glyph("several_digits", np.random.default_rng(0)), "needs MNIST training digits"),
        (lambda: glyph("emoji", np.random.default_rng(0)), "unknown kind 'emoji'"),
        (lambda: negative_uploads(1, 0, None, None, kinds=("emoji",)), "unknown kinds emoji"),
    ],
)
def test_wrong_arguments_are_refused_with_a_reason(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("letter", sorted("OoQDIliZzSsbGBgq"))
def test_letters_that_a_person_could_mean_as_digits_are_not_negatives(letter):
    assert letter in DIGIT_LIKE_LETTERS and letter not in LETTERS


def test_letters_keep_the_rest_of_the_alphabet():
    assert set(LETTERS) == set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") - DIGIT_LIKE_LETTERS
    texts = {glyph("letter", np.random.default_rng(seed))[1] for seed in range(40)}
    assert texts <= set(LETTERS) and len(texts) > 10
