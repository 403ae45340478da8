"""The written-number fixtures and their scorer: seeded, decodable, truthful about touching digits, scored by alignment."""

from __future__ import annotations

import io
import json

import cv2
import numpy as np
import pytest
from PIL import Image

from training.markdown import markers
from training.number_styles import (
    SINGLE,
    STYLES,
    NumberImage,
    digits_right,
    edit_distance,
    main,
    numbers_markdown,
    render_numbers,
    score_numbers,
)

# (style, smallest side, largest side) in pixels: canvases are wide drawing areas, photos phone-sized.
SIZES = [
    ("canvas", 200, 1000),
    ("paper_photo", 400, 1600),
    ("pencil", 400, 1600),
    ("ruled", 400, 1600),
    ("thick_marker", 200, 1600),
    ("touching", 200, 1600),
    (SINGLE, 200, 1600),
]


@pytest.fixture(scope="module")
def whole_digits(mnist) -> tuple[np.ndarray, np.ndarray]:
    """MNIST test digits whose strokes are one connected piece, and their labels: a number of them has one piece per digit unless they touch."""
    images, labels = mnist.x_test[:2000], mnist.y_test[:2000]
    whole = np.array([cv2.connectedComponents((digit > 110).astype(np.uint8))[0] == 2 for digit in images])
    return images[whole], labels[whole]


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def grey_as_shown(data: bytes) -> np.ndarray:
    """The image's grey levels as a viewer shows them: transparent canvas exports over white."""
    image = decode(data)
    if image.mode in ("RGBA", "LA", "P"):
        image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
    return np.asarray(image.convert("L"), dtype=np.float32)


def ink_pieces(data: bytes) -> int:
    """How many connected pieces of ink the image shows: pixels 30% darker than the paper around them, specks ignored."""
    grey = grey_as_shown(data)
    size = max(31, min(grey.shape) // 6) | 1
    # The paper's own brightness, under uneven light: the brightest level nearby, smoothed.
    paper = cv2.GaussianBlur(cv2.dilate(grey, np.ones((size, size), np.uint8)), (0, 0), size / 4)
    _, _, stats, _ = cv2.connectedComponentsWithStats((grey < 0.7 * paper).astype(np.uint8))
    areas = stats[1:, cv2.CC_STAT_AREA]
    return int((areas >= 0.02 * areas.max()).sum()) if len(areas) else 0


def test_every_style_has_a_size_row():
    assert [style for style, _, _ in SIZES] == list(STYLES)


def test_the_same_seed_gives_the_same_bytes(whole_digits):
    first, again, other = (list(render_numbers(*whole_digits, per_style=2, seed=seed)) for seed in (0, 0, 1))
    assert first == again
    assert [image.data for image in first] != [image.data for image in other]


def test_a_style_draws_the_same_images_whichever_others_are_drawn(whole_digits):
    alone = list(render_numbers(*whole_digits, per_style=2, styles={"ruled": STYLES["ruled"]}))
    assert alone == [image for image in render_numbers(*whole_digits, per_style=2) if image.style == "ruled"]


@pytest.mark.parametrize(("style", "smallest", "largest"), SIZES)
def test_style_makes_decodable_images_of_numbers_of_the_right_length(whole_digits, style, smallest, largest):
    images = list(render_numbers(*whole_digits, per_style=4, seed=3, styles={style: STYLES[style]}))
    lengths = (1, 1) if style == SINGLE else (2, 6)
    for image in images:
        assert image.style == style
        assert image.number.isdigit() and lengths[0] <= len(image.number) <= lengths[1], image.number
        picture = decode(image.data)
        assert picture.format in ("PNG", "JPEG")
        assert smallest <= min(picture.size) and max(picture.size) <= largest, picture.size
        low, high = np.percentile(grey_as_shown(image.data), [0.5, 99.5])
        assert high - low >= 10, f"{style} is nearly blank: levels {low:.0f}-{high:.0f}"


def test_canvas_numbers_are_wide_drawing_areas(whole_digits):
    for image in render_numbers(*whole_digits, per_style=6, styles={"canvas": STYLES["canvas"]}):
        width, height = decode(image.data).size
        assert 600 <= width <= 1000 and 200 <= height <= 300


def test_touching_numbers_connect_their_strokes_and_canvas_numbers_keep_them_apart(whole_digits):
    touching = list(render_numbers(*whole_digits, per_style=16, styles={"touching": STYLES["touching"]}))
    connected = [ink_pieces(image.data) < len(image.number) for image in touching]
    assert np.mean(connected) >= 0.5, connected
    assert np.mean([image.touching for image in touching]) >= 0.5
    assert all(joined for joined, image in zip(connected, touching, strict=True) if image.touching), "a number said to touch shows its digits apart"
    apart = list(render_numbers(*whole_digits, per_style=8, styles={"canvas": STYLES["canvas"]}))
    assert not any(image.touching for image in apart)
    assert [ink_pieces(image.data) for image in apart] == [len(image.number) for image in apart]


@pytest.mark.parametrize(
    ("true", "read", "right"),
    [
        ("2026", "2026", 4),  # exact
        ("2026", "2036", 3),  # one digit wrong
        ("2026", "206", 3),  # one digit missing
        ("2026", "20266", 3),  # one digit extra
        ("2026", "0262", 2),  # shifted by one: a digit lost at the start, one invented at the end
        ("2026", None, 0),  # refused (422)
        ("2026", "", 0),
        ("12", "345678", 0),  # more edits than digits: floored at 0
    ],
)
def test_digits_right_counts_the_aligned_digits(true, read, right):
    assert digits_right(true, read) == right


@pytest.mark.parametrize(("first", "second", "distance"), [("", "", 0), ("", "123", 3), ("kitten", "sitting", 3), ("2026", "6202", 2)])
def test_edit_distance_is_symmetric_levenshtein(first, second, distance):
    assert edit_distance(first, second) == edit_distance(second, first) == distance


def test_scores_per_style_and_overall():
    images = [
        NumberImage("canvas", b"a", "2026", False),
        NumberImage("canvas", b"b", "123", False),
        NumberImage("touching", b"c", "45", True),
        NumberImage(SINGLE, b"d", "7", False),
        NumberImage(SINGLE, b"e", "3", False),
    ]
    readings = {b"a": "2026", b"b": "124", b"c": None, b"d": "71", b"e": "3"}
    scores = score_numbers(readings.get, images)
    assert scores["canvas"] == {"numbers": 2, "exact": 0.5, "digits_right": 6 / 7}
    assert scores["touching"] == {"numbers": 1, "exact": 0.0, "digits_right": 0.0, "touching_exact": 0.0}
    assert scores[SINGLE] == {"numbers": 2, "exact": 0.5, "digits_right": 0.5, "one_digit": 0.5}
    assert scores["overall"] == {"numbers": 5, "exact": 0.4, "digits_right": 7 / 11, "one_digit": 0.5, "touching_exact": 0.0}


def test_markdown_has_a_column_per_style_and_the_source():
    scores = {
        "canvas": {"exact": 0.5, "digits_right": 0.875},
        "touching": {"exact": 0.25, "digits_right": 0.5, "touching_exact": 0.2},
        "overall": {"exact": 0.5, "digits_right": 0.875},
    }
    text = numbers_markdown(scores, 30, "v7")
    assert "| | canvas | touching | **overall** |" in text
    assert "| numbers read exactly | 50.0% | 25.0% | 50.0% |" in text
    assert "| digits right | 87.5% | 50.0% | 87.5% |" in text
    assert "Numbers whose strokes touch: 20.0% read exactly." in text
    assert "30 numbers per style" in text and "model v7" in text and "`training.number_styles`" in text


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--data", "{tmp}/missing.npz"], "MNIST data not found"),
        (["--model", "{tmp}/missing.keras"], "missing.keras does not exist"),
    ],
)
def test_command_exits_2_on_a_data_or_model_error(tmp_path, capsys, arguments, message):
    assert main([argument.format(tmp=tmp_path) for argument in arguments]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_command_scores_read_end_to_end(tmp_path, shipped_model_path, capsys):
    readme = tmp_path / "README.md"
    start, end = markers("numbers")
    readme.write_text(f"# Numbers\n{start}\nold\n{end}\n")
    arguments = ["--per-style", "2", "--model", str(shipped_model_path), "--json", str(tmp_path / "numbers.json"), "--readme", str(readme)]
    assert main([*arguments, "--sheet", str(tmp_path / "sheet.png"), "--save", str(tmp_path / "images")]) == 0
    report = json.loads((tmp_path / "numbers.json").read_text())
    assert set(report["scores"]) == {*STYLES, "overall"}
    assert report["scores"]["overall"]["numbers"] == 2 * len(STYLES)
    assert sum(report["answers"].values()) == 2 * len(STYLES)
    assert set(report["answers"]) <= {"200", "422"}, report["answers"]
    assert len(list((tmp_path / "images").iterdir())) == 2 * len(STYLES)
    assert decode((tmp_path / "sheet.png").read_bytes()).format == "PNG"
    assert "| **overall** |" in readme.read_text() and "old" not in readme.read_text()
    assert "overall" in capsys.readouterr().out
