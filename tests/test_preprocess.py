"""app/preprocess.py: any upload -> the 28x28 MNIST-style digit, or one of the module's own errors."""

from __future__ import annotations

import io
import itertools

import cv2
import numpy as np
import pytest
from PIL import Image

from app import preprocess as pp
from tests.conftest import TEST_DATA, digit_png, png_bytes


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def bar_image(size=(200, 200), ink=0, paper=255, box=(90, 40, 110, 160)) -> Image.Image:
    """A vertical bar (a '1') of `ink` on `paper`."""
    pixels = np.full(size[::-1], paper, dtype=np.uint8)
    left, top, right, bottom = box
    pixels[top:bottom, left:right] = ink
    return Image.fromarray(pixels, mode="L")


def assert_mnist_like(digit: np.ndarray):
    assert digit.shape == (28, 28) and digit.dtype == np.float32
    assert digit.min() >= 0.0 and digit.max() <= 1.0
    assert digit.max() > 0.9, "the strokes should reach full brightness"
    rows, cols = np.nonzero(digit > 0.05)
    assert rows.max() - rows.min() + 1 <= 21 and cols.max() - cols.min() + 1 <= 21, "the digit must fit a 20x20 box"
    row, col = centre_of_mass(digit)
    assert abs(row - 14) <= 1.0 and abs(col - 14) <= 1.0, "the centre of mass sits at the frame's centre"


def centre_of_mass(digit):
    rows, cols = np.indices(digit.shape)
    return (rows * digit).sum() / digit.sum(), (cols * digit).sum() / digit.sum()


def similarity(first: np.ndarray, second: np.ndarray) -> float:
    """Correlation of two digits, the best over one-pixel shifts: 1 when identical."""
    shifted = (np.roll(second, (dy, dx), axis=(0, 1)) for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    return max(float(np.corrcoef(first.ravel(), candidate.ravel())[0, 1]) for candidate in shifted)


def test_mnist_pixels_scale_to_unit_range():
    scaled = pp.mnist_pixels_to_input(np.array([[0, 255, 51]], dtype=np.uint8))
    np.testing.assert_allclose(scaled, [[0.0, 1.0, 0.2]])
    assert scaled.dtype == np.float32


def test_dark_ink_on_light_paper_becomes_bright_on_black():
    digit = pp.preprocess(encode(bar_image()))
    assert_mnist_like(digit)
    assert digit[14, 14] > 0.5


def test_light_ink_on_dark_paper_gives_the_same_digit():
    dark_on_light = pp.preprocess(encode(bar_image()))
    light_on_dark = pp.preprocess(encode(bar_image(ink=255, paper=0)))
    np.testing.assert_allclose(dark_on_light, light_on_dark, atol=0.02)


def test_a_white_bar_beside_a_light_digit_does_not_flip_its_polarity():
    """A thick light 6 on black, a white bar down the right side (training.scenes' white_side_bars): the
    column where the bar meets the black is no paper either, or the dark loop was read as the ink."""
    digit = pp.preprocess((TEST_DATA / "six-beside-a-white-bar.png").read_bytes())
    assert_mnist_like(digit)
    assert pp._topology(digit > 0.3) == (1, 1), "one stroke round one loop, as a 6"


def test_off_centre_digit_is_centred_by_its_centre_of_mass():
    digit = pp.preprocess(encode(bar_image(size=(600, 400), box=(20, 20, 40, 120))))
    assert_mnist_like(digit)
    row, col = centre_of_mass(digit)
    assert abs(row - 14) <= 0.6 and abs(col - 14) <= 0.6


def test_aspect_ratio_is_kept():
    digit = pp.preprocess(encode(bar_image(box=(80, 20, 120, 180))))
    rows, cols = np.nonzero(digit > 0.5)
    height, width = np.ptp(rows) + 1, np.ptp(cols) + 1
    assert height in (19, 20, 21) and 3 <= width <= 7


@pytest.mark.parametrize("stroke", ["white", "black"])
def test_transparent_canvas_strokes_stay_visible(stroke):
    alpha = np.asarray(bar_image(ink=255, paper=0))
    colour = 255 if stroke == "white" else 0
    rgba = np.dstack([np.full_like(alpha, colour)] * 3 + [alpha])
    digit = pp.preprocess(encode(Image.fromarray(rgba, mode="RGBA")))
    assert_mnist_like(digit)
    np.testing.assert_allclose(digit, pp.preprocess(encode(bar_image())), atol=0.02)


def test_sixteen_bit_grayscale_is_scaled_not_clipped():
    pixels = (np.asarray(bar_image(), dtype=np.uint16) * 257).astype(np.uint16)
    image = Image.fromarray(pixels)
    assert image.mode.startswith("I;16")
    digit = pp.preprocess(encode(image))
    np.testing.assert_allclose(digit, pp.preprocess(encode(bar_image())), atol=0.02)


@pytest.mark.parametrize("mode", ["RGB", "P", "CMYK", "LA", "1", "RGBA"])
def test_every_mode_gives_the_same_digit(mode):
    image = bar_image().convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    digit = pp.preprocess(encode(image, fmt))
    assert similarity(digit, pp.preprocess(encode(bar_image()))) > 0.9


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"])
def test_supported_formats(fmt, mnist):
    image = Image.open(io.BytesIO(digit_png(mnist.x_test[0]))).convert("L")
    digit = pp.preprocess(encode(image, fmt))
    assert_mnist_like(digit)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_exif_orientation_is_applied(fmt):
    # An L-shaped mark: stored rotated, tagged so that viewers turn it upright.
    upright = np.full((200, 200), 255, dtype=np.uint8)
    upright[30:170, 60:80] = 0
    upright[150:170, 60:140] = 0
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    from_exif = pp.preprocess(encode(stored, fmt, exif=exif.tobytes(), **options))
    expected = pp.preprocess(encode(Image.fromarray(upright), fmt, **options))
    assert np.abs(from_exif - expected).mean() < 0.03
    assert np.abs(pp.preprocess(encode(stored, fmt, **options)) - expected).mean() > 0.03, "the tag is what turned it"


@pytest.mark.parametrize("kind, resampling", [("box", Image.Resampling.BOX), ("bilinear", Image.Resampling.BILINEAR)])
def test_resampling_matrices_match_pillow(kind, resampling):
    rng = np.random.default_rng(0)
    for source_height, source_width, height, width in [(140, 140, 32, 32), (8, 8, 250, 173), (104, 82, 80, 63), (3, 50, 32, 32), (80, 63, 20, 16)]:
        image = rng.random((source_height, source_width), dtype=np.float32)
        expected = np.asarray(Image.fromarray(image, mode="F").resize((width, height), resampling))
        np.testing.assert_allclose(pp._resize(image, height, width, kind), expected, atol=1e-5)


def test_uneven_lighting_is_not_ink():
    ys, xs = np.mgrid[0:300, 0:300]
    paper = 140 + 100 * xs / 300  # a shadow across the page
    paper[60:240, 140:160] = 20
    digit = pp.preprocess(encode(Image.fromarray(paper.astype(np.uint8))))
    assert_mnist_like(digit)
    assert np.count_nonzero((digit > 0.3).any(axis=0)) <= 4, "only the bar is ink, not the shadow"


def test_specks_far_from_the_digit_are_ignored():
    with_specks = np.asarray(bar_image(), dtype=np.uint8).copy()
    with_specks[5:7, 5:7] = 0
    with_specks[190:192, 190:192] = 0
    np.testing.assert_allclose(pp.preprocess(png_bytes(with_specks)), pp.preprocess(encode(bar_image())), atol=0.02)


@pytest.mark.parametrize(
    "image",
    [
        Image.new("L", (100, 100), 255),
        Image.new("L", (100, 100), 0),
        Image.new("RGBA", (64, 64), (0, 0, 0, 0)),
        Image.fromarray(np.full((50, 50), 128, np.uint8) + np.random.default_rng(0).integers(0, 10, (50, 50), dtype=np.uint8)),
    ],
    ids=["white", "black", "transparent", "faint-noise"],
)
def test_blank_images_have_no_digit(image):
    with pytest.raises(pp.NoDigitFound):
        pp.preprocess(encode(image))


def test_pure_noise_is_not_a_digit():
    noise = np.random.default_rng(1).integers(0, 256, (200, 200), dtype=np.uint8)
    with pytest.raises(pp.NoDigitFound):
        pp.preprocess(png_bytes(noise))


@pytest.mark.parametrize(
    "data, error",
    [
        (b"", pp.EmptyImage),
        (b"hello, this is text", pp.UnsupportedImage),
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", pp.UnsupportedImage),
    ],
    ids=["empty", "text", "svg"],
)
def test_non_images(data, error):
    with pytest.raises(error):
        pp.preprocess(data)


def test_truncated_png_is_corrupt():
    data = encode(bar_image())
    with pytest.raises(pp.CorruptImage):
        pp.preprocess(data[: len(data) // 2])


def test_pixel_limit_is_checked_from_the_header():
    data = encode(Image.new("L", (3000, 3000), 255))
    with pytest.raises(pp.ImageTooLarge, match="9,000,000 pixels"):
        pp.preprocess(data, max_pixels=1_000_000)


def test_mnist_digits_survive_the_round_trip(mnist):
    """A 280x280 rendering of an MNIST digit comes back close to the original 28x28."""
    differences = []
    for index in range(50):
        original = pp.mnist_pixels_to_input(mnist.x_test[index])
        restored = pp.preprocess(digit_png(mnist.x_test[index]))
        differences.append(similarity(original, restored))
    assert np.median(differences) > 0.85


def test_a_one_written_in_a_printed_box_is_kept_and_the_box_removed():
    """A photographed form: the box's thin sides go; the thicker stroke ending on them is the digit, not a side."""
    digit = pp.preprocess((TEST_DATA / "one-in-a-form-box.png").read_bytes())
    assert_mnist_like(digit)
    columns = np.flatnonzero((digit > 0.3).any(axis=0))
    assert columns.size <= 6, "only the 1 is left, not the box around it"


def test_a_soft_edge_of_light_across_the_page_is_not_a_sheet():
    """Light falling off over 20 pixels (a shadow's edge) is no sheet's edge: the whole page stays."""
    x = np.arange(320, dtype=np.float32)
    pixels = np.tile(185 + 45 * np.clip((200 - x) / 20, 0, 1), (300, 1))
    pixels[70:230, 120:132] = 30
    steps = {}
    pp.preprocess(encode(Image.fromarray(pixels.astype(np.uint8), mode="L")), steps=steps)
    assert steps["surface"].shape == steps["input"].shape


def comb_of_boxes(line: int = 5, gap: int = 10) -> Image.Image:
    """A row of printed boxes `gap` pixels apart, running off both sides, with a 1 in the middle one poking above it."""
    pixels = np.full((240, 320), 235, dtype=np.uint8)
    for left in range(-60, 320, 90 + gap):
        right = left + 90
        for side in (left, right - line):
            pixels[50:180, max(side, 0) : max(side + line, 0)] = 40
        pixels[50 : 50 + line, max(left, 0) : max(right, 0)] = 40
        pixels[180 - line : 180, max(left, 0) : max(right, 0)] = 40
    pixels[36:172, 154:166] = 20
    return Image.fromarray(pixels, mode="L")


def test_boxes_side_by_side_are_removed_around_the_digit():
    """Neighbouring boxes' sides a few pixels apart are two thin lines, not one stroke twice as thick."""
    digit = pp.preprocess(encode(comb_of_boxes()))
    assert_mnist_like(digit)
    assert np.flatnonzero((digit > 0.3).any(axis=0)).size <= 4, "only the 1 is left, not its box"


def seven(pixels: np.ndarray, left: int, top: int, height: int = 100, pen: int = 10) -> np.ndarray:
    """`pixels` with a 7 drawn in black, `height` tall, its top-left corner at (left, top)."""
    drawn = pixels.copy()
    cv2.line(drawn, (left, top), (left + 60, top), 0, pen, cv2.LINE_AA)
    cv2.line(drawn, (left + 60, top), (left + 20, top + height), 0, pen, cv2.LINE_AA)
    return drawn


def row_of_cells(digit_in_middle) -> np.ndarray:
    """A form's row of cells between two ruled lines that run off both sides; the sides end on the lines and meet no corner."""
    pixels = np.full((240, 360), 235, dtype=np.uint8)
    pixels[58:61] = pixels[180:183] = 40
    for side in (40, 140, 240, 340):
        pixels[58:183, side : side + 3] = 40
    return digit_in_middle(pixels)


@pytest.mark.parametrize(
    "fixture, most_columns",
    [
        # Cell sides end on two ruled lines that run off both edges: no box corner is closed.
        ("one-in-a-row-of-cells.png", 5),
        # Boxes cut off by the picture's edges, the 7 running into its box's top.
        ("seven-in-a-cut-off-form-box.png", 16),
        # The cell's label ("Age") is printed over its left side, which then runs on past the ruled line.
        ("eight-in-a-labelled-form-cell.png", 16),
        # A small photo: the ruled lines are 6 of its 162 pixels thick, thicker than the pen's 7.
        ("seven-in-a-small-form-photo.png", 16),
    ],
)
def test_the_sides_of_form_cells_are_removed_around_the_digit(fixture, most_columns):
    """Photographed forms (rendered by training.scenes.form_box): only the digit is left, no side of its cell beside it."""
    digit = pp.preprocess((TEST_DATA / fixture).read_bytes())
    assert_mnist_like(digit)
    assert pp.side_by_side_parts(digit) == 1
    assert np.flatnonzero((digit > 0.3).any(axis=0)).size <= most_columns


def test_a_one_filling_its_cell_from_line_to_line_is_kept():
    """A pen stroke from the top line to the bottom one is thicker than the printed sides: the digit, not a side."""

    def one(pixels: np.ndarray) -> np.ndarray:
        pixels[61:180, 186:196] = 20
        return pixels

    digit = pp.preprocess(png_bytes(row_of_cells(one)))
    assert_mnist_like(digit)
    columns, rows = np.flatnonzero((digit > 0.3).any(axis=0)), np.flatnonzero((digit > 0.3).any(axis=1))
    assert columns.size <= 8 and rows.size >= 18, "a tall, narrow 1"


def test_digits_written_side_by_side_are_several_digits_and_their_image_holds_them_all():
    """17: the 7 alone would be a confident wrong answer; the refusal carries the image of both, for a best guess."""
    pixels = np.full((200, 300), 255, dtype=np.uint8)
    pixels[50:150, 80:92] = 0
    with pytest.raises(pp.SeveralDigitsFound) as found:
        pp.preprocess(png_bytes(seven(pixels, 130, 50)))
    assert_mnist_like(found.value.digit)
    assert pp.side_by_side_parts(found.value.digit) == 2


def test_a_short_dash_beside_the_digit_is_no_second_digit():
    """A dash or a dot on the digit's line is too short for a digit: it is dropped, not read as one."""
    pixels = np.full((200, 300), 255, dtype=np.uint8)
    pixels[95:105, 60:90] = 0
    digit = pp.preprocess(png_bytes(seven(pixels, 130, 50)))
    assert pp.side_by_side_parts(digit) == 1


@pytest.mark.parametrize("height, width", [(1, 500), (500, 1), (2, 700), (700, 2), (3, 256), (7, 1000), (1000, 7), (9, 300), (33, 33)])
@pytest.mark.parametrize("content", ["blank", "noise", "line across", "line down"])
def test_thin_and_odd_shapes_give_a_digit_or_a_refusal(height, width, content):
    """Slivers and strips of any content: a 28x28 digit or one of the module's own errors, never a crash."""
    pixels = np.full((height, width), 220, np.uint8)
    if content == "noise":
        pixels = np.random.default_rng(height * width).integers(0, 256, (height, width), dtype=np.uint8)
    elif content == "line across":
        pixels[height // 2, :] = 0
    elif content == "line down":
        pixels[:, width // 2] = 0
    try:
        digit = pp.preprocess(png_bytes(pixels))
    except pp.PreprocessError:
        return
    assert digit.shape == (28, 28) and np.isfinite(digit).all() and 0.0 <= digit.min() <= digit.max() <= 1.0


def zigzag_across(pixels: np.ndarray, row: int, width: int = 3, tooth: int = 8) -> np.ndarray:
    """`pixels` with a thin black zigzag drawn from the left edge to the right one around `row`."""
    drawn = pixels.copy()
    corners = [(x, row + (tooth if step % 2 else -tooth)) for step, x in enumerate(range(4, pixels.shape[1] - 4, tooth))]
    for start, end in itertools.pairwise(corners):
        cv2.line(drawn, start, end, 0, width, cv2.LINE_AA)
    return drawn


def test_a_thin_line_drawn_across_the_digit_is_not_part_of_it():
    """A zigzag scratched through a 1 from edge to edge would widen the crop to a square and shrink the 1 to a dot."""
    one = np.asarray(bar_image(), dtype=np.uint8)
    digit = pp.preprocess(png_bytes(zigzag_across(one, row=100)))
    assert_mnist_like(digit)
    assert np.count_nonzero((digit > 0.3).any(axis=0)) <= 8, "only the 1 is left, not the line across it"


def test_a_thin_stroke_on_one_side_of_the_digit_stays():
    """A 6's thin ascender leaves its thick loop on one side only: it is the digit's, and keeps its height."""
    six = np.full((200, 200), 255, np.uint8)
    cv2.circle(six, (100, 140), 35, 0, 18)
    cv2.line(six, (68, 130), (110, 20), 0, 6, cv2.LINE_AA)
    digit = pp.preprocess(png_bytes(six))
    columns = np.flatnonzero((digit > 0.3).any(axis=0))
    assert columns.size <= 15, "the ascender is kept, so the 6 is taller than wide, not a round 0"


def faint_pencil_on_mottled_paper(digit: np.ndarray, seed: int) -> np.ndarray:
    """A thin pencil `digit`, 18 grey levels dark, on paper whose broad blotches are about as dark."""
    rng = np.random.default_rng(seed)
    blotches = cv2.GaussianBlur(rng.normal(0, 1, (420, 420)).astype(np.float32), (0, 0), 12)
    paper = 205 + 10 * blotches / blotches.std() + np.linspace(-15, 15, 420)[None, :]
    stroke = cv2.erode(cv2.resize(digit, (200, 200)).astype(np.float32) / 255, np.ones((9, 9)))
    paper[110:310, 110:310] -= 18 * stroke
    return np.clip(paper + rng.normal(0, 3, paper.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("index", [0, 2, 4])
def test_faint_pencil_is_told_from_the_paper_blotches_by_its_shape(mnist, index):
    digit = mnist.x_test[index]
    found = pp.preprocess(png_bytes(faint_pencil_on_mottled_paper(digit, index)))
    assert similarity(found, pp.preprocess(png_bytes(255 - digit))) > 0.8, "the strokes are found, not the blotches"
