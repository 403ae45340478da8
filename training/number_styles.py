"""Render whole written numbers from MNIST test digits, the way people photograph and draw them, and score `POST /read` on them.

Each style takes the digits of one number (28x28 uint8 MNIST digits, white on black) and a seeded
random generator, and returns the encoded image and whether neighbouring digits' strokes touch.
The strokes, paper, light and cameras are those of `training.scenes`; what this module adds is the
line of digits: heights within 10% of each other on a baseline that slopes up to 10 degrees,
gaps that vary from number to number and pair to pair, or strokes that run into each other.

    python -m training.number_styles --per-style 100                                # /read's scores per style
    python -m training.number_styles --per-style 30 --sheet numbers.png --save numbers/  # and a contact sheet, the images
    python -m training.number_styles --json model/numbers.json --readme README.md   # and the README's "numbers" section
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageOps

from training.markdown import replace_section
from training.scenes import (
    MARKERS,
    PENS,
    _camera,
    _desk,
    _expose,
    _grey,
    _ink,
    _jpeg,
    _lay,
    _lighting,
    _lines,
    _normal,
    _paper,
    _pen,
    _photo_size,
    _photographed_sheet,
    _pick,
    _png,
    _quad,
    _shadow,
    _sheet_size,
    _smooth_noise,
    _visible_spot,
    _white_paper,
    encode,
)

README_SECTION = "numbers"
SINGLE = "single"
# Numbers are 2 to 6 digits long; the single style's are one digit.
DIGIT_COUNTS = (2, 6)
# Pen colours of drawing apps: mostly black, now and then a dark colour picked from the palette.
CANVAS_INKS = [(0, 0, 0), (0, 0, 0), (0, 0, 0), (34, 34, 34), (20, 40, 160), (160, 20, 30), (20, 100, 40)]

# A style: (digits, rng) -> (encoded image, whether neighbouring digits' strokes touch).
NumberStyle = Callable[[list[np.ndarray], np.random.Generator], tuple[bytes, bool]]


@dataclass(frozen=True)
class NumberImage:
    """One fixture: its style, the encoded image, the number written in it, and whether neighbouring digits touch."""

    style: str
    data: bytes
    number: str
    touching: bool


def _ink_rows(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first and last ink column of each row of a boolean mask, NaN where a row has no ink."""
    filled = ink.any(axis=1)
    first = np.where(filled, ink.argmax(axis=1), np.nan)
    last = np.where(filled, ink.shape[1] - 1 - ink[:, ::-1].argmax(axis=1), np.nan)
    return first, last


def _clearance(right_edge: np.ndarray, patch_first: np.ndarray, top: int) -> float:
    """Fewest clear pixels between the ink so far (its last column per line row) and a patch at column 0 with its top at row `top`."""
    rows = np.arange(len(patch_first)) + top
    both = ~np.isnan(patch_first) & (right_edge[rows] > -np.inf)
    if not both.any():
        # No row has ink in both (a short digit beside a tall one): keep their boxes apart by the same rule.
        return float(np.nanmin(patch_first) - right_edge.max() - 1)
    return float(np.min(patch_first[both] - right_edge[rows][both] - 1))


def _turned(mask: np.ndarray, angle: float) -> np.ndarray:
    """`mask` rotated by `angle` degrees, on a canvas grown so that nothing is cut off."""
    height, width = mask.shape
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    turned_width, turned_height = int(np.ceil(height * sin + width * cos)), int(np.ceil(height * cos + width * sin))
    matrix[:, 2] += ((turned_width - width) / 2, (turned_height - height) / 2)
    return cv2.warpAffine(mask, matrix, (turned_width, turned_height), flags=cv2.INTER_LINEAR)


def _line_of_digits(
    digits: list[np.ndarray],
    rng: np.random.Generator,
    height: float,
    stroke: float,
    *,
    spacing: tuple[float, float] = (0.08, 0.45),
    touching: bool = False,
    slope: float = 10.0,
    variation: float = 0.25,
) -> tuple[np.ndarray, bool]:
    """The digits written left to right as one soft 0-1 ink mask, and whether any neighbours' strokes touch.

    Each digit is 0.9-1.1 times `height` tall with strokes about `stroke` wide, its bottom on a
    baseline that wanders by 4% of the height. Neighbours' ink is a gap apart that is a share of
    the height drawn from `spacing` for the number and varied per pair; with `touching`, the
    closest rows of neighbours overlap by up to 40% of a stroke (most pairs) or stay 1-4 pixels
    apart, unless that would put one digit's box deep inside the other's. The line is then turned
    by up to `slope` degrees.
    """
    patches = [_pen(digit, height * rng.uniform(0.9, 1.1), stroke * rng.uniform(0.9, 1.1), rng, variation) for digit in digits]
    for patch in patches:
        # Pen pressure, as `scenes._write` lays it on a single digit.
        patch *= 1 - 0.2 * np.abs(_smooth_noise(patch.shape, rng, 3))
    inks = [patch > 0.5 for patch in patches]
    bottoms = [int(np.nonzero(ink.any(axis=1))[0].max()) for ink in inks]
    baseline = 2 * max(patch.shape[0] for patch in patches)
    tops = [baseline - bottom + round(rng.uniform(-0.04, 0.04) * height) for bottom in bottoms]
    right_edge = np.full(2 * baseline + 1, -np.inf)
    typical_gap = rng.uniform(*spacing) * height
    some_touch = rng.random() < 0.7
    # Writers tuck a digit a little under its neighbour's overhang, but do not write one inside the other.
    tuck = (0.15 if touching else 0.05) * height
    lefts, touches = [], False
    for index, (ink, top) in enumerate(zip(inks, tops, strict=True)):
        first, last = _ink_rows(ink)
        if index == 0:
            left = 0
        else:
            if touching:
                touch = some_touch and (index == 1 or rng.random() < 0.8)
                wanted = -int(rng.integers(0, max(1, round(0.4 * stroke)) + 1)) if touch else int(rng.integers(1, 5))
            else:
                wanted = max(1, round(typical_gap * rng.uniform(0.6, 1.4)))
            left = max(round(wanted - _clearance(right_edge, first, top)), int(np.ceil(right_edge.max() + 1 - tuck - np.nanmin(first))))
            touches |= _clearance(right_edge, first + left, top) <= 0
        rows = np.arange(len(last)) + top
        right_edge[rows] = np.fmax(right_edge[rows], last + left)
        lefts.append(left)
    start = min(lefts)
    width = max(left + patch.shape[1] for left, patch in zip(lefts, patches, strict=True)) - start
    top_row = min(tops)
    line = np.zeros((max(top + patch.shape[0] for top, patch in zip(tops, patches, strict=True)) - top_row, width), dtype=np.float32)
    for patch, top, left in zip(patches, tops, lefts, strict=True):
        region = line[top - top_row : top - top_row + patch.shape[0], left - start : left - start + patch.shape[1]]
        np.maximum(region, patch, out=region)
    return _turned(line, rng.uniform(-slope, slope)), bool(touches)


def _fit(mask: np.ndarray, max_height: float, max_width: float) -> np.ndarray:
    """`mask` shrunk, if it must be, to fit within `max_height` x `max_width` pixels: a writer fits the number to the space."""
    scale = min(1.0, max_height / mask.shape[0], max_width / mask.shape[1])
    if scale >= 1.0:
        return mask
    size = (max(1, round(mask.shape[1] * scale)), max(1, round(mask.shape[0] * scale)))
    return cv2.resize(mask, size, interpolation=cv2.INTER_AREA)


def _spot(shape: tuple[int, int], mask_shape: tuple[int, int], rng: np.random.Generator, margin: float = 0.04) -> np.ndarray:
    """A random (row, col) centre for a `mask_shape` patch that keeps it inside a `shape` frame, `margin` of the frame clear of its edges."""
    frame, patch = np.array(shape[:2], dtype=np.float64), np.array(mask_shape[:2], dtype=np.float64)
    inner = frame * (1 - 2 * margin)
    spot = frame * margin + patch / 2 + rng.uniform(0, 1, 2) * np.maximum(inner - patch, 0)
    return np.where(patch > inner, frame / 2, spot)


def _canvas_drawing(digits: list[np.ndarray], rng: np.random.Generator, touching: bool = False) -> tuple[bytes, bool]:
    """A browser-canvas export: a wide drawing area, round strokes of one width, on white or transparent."""
    shape = (int(rng.integers(200, 301)), int(rng.integers(600, 1001)))
    # People draw the digits smaller when more of them have to fit across the canvas.
    height = min(shape[0] * rng.uniform(0.4, 0.8), 0.9 * shape[1] / len(digits))
    # A canvas pen has a fixed line width in pixels, whatever size the digits are drawn.
    stroke = min(rng.uniform(5, 24), 0.22 * height)
    mask, touches = _line_of_digits(digits, rng, height, stroke, spacing=(0.08, 0.6), touching=touching, variation=0.05)
    mask = _fit(mask, 0.96 * shape[0], 0.96 * shape[1])
    centre = _spot(shape, mask.shape, rng, margin=0.02)
    colour = _pick(CANVAS_INKS, rng)
    if rng.random() < 0.4:
        # Canvas exports keep the pen colour everywhere and the strokes in the alpha channel.
        alpha = _ink(np.zeros(shape, dtype=np.uint8), mask, centre, 255, opaque=True)
        pixels = np.dstack([np.full(shape, channel, dtype=np.uint8) for channel in colour] + [alpha])
        return encode(Image.fromarray(pixels, mode="RGBA")), touches
    pixels = _ink(np.full((*shape, 3), 255, dtype=np.uint8), mask, centre, colour)
    return (_jpeg(pixels, rng, 75, 95) if rng.random() < 0.15 else _png(pixels)), touches


def _paper_close_up(digits: list[np.ndarray], rng: np.random.Generator, touching: bool = False) -> tuple[bytes, bool]:
    """A sheet of plain paper photographed close up, the number in ballpoint or gel pen."""
    shape = _photo_size(rng, 400, 900)
    sheet = _paper(shape, _white_paper(rng), rng)
    height = min(rng.uniform(0.12, 0.35) * min(shape), 0.75 * shape[1] / len(digits))
    mask, touches = _line_of_digits(digits, rng, height, height * rng.uniform(0.06, 0.14), touching=touching)
    # The close-up photo turns and crops the sheet a little, so the number stays clear of its edges.
    mask = _fit(mask, 0.7 * shape[0], 0.8 * shape[1])
    sheet = _ink(sheet, mask, _spot(shape, mask.shape, rng, margin=0.1), _pick(PENS, rng))
    return _photographed_sheet(sheet, rng), touches


def canvas(digits: list[np.ndarray], rng: np.random.Generator) -> tuple[bytes, bool]:
    """A number drawn on a wide browser canvas (600-1000 x 200-300), exported as PNG on white or transparent."""
    return _canvas_drawing(digits, rng)


def paper_photo(digits: list[np.ndarray], rng: np.random.Generator) -> tuple[bytes, bool]:
    """A number written on a sheet on a desk, photographed at an angle: perspective, a soft shadow, phone noise, JPEG."""
    shape = _photo_size(rng)
    sheet_height, sheet_width = _sheet_size(shape, rng)
    sheet = _paper((sheet_height, sheet_width), _white_paper(rng), rng)
    room = 0.6 * min(shape[1], sheet_width)
    height = min(rng.uniform(0.08, 0.22) * min(shape), room / len(digits))
    mask, touches = _line_of_digits(digits, rng, height, height * rng.uniform(0.05, 0.13))
    mask = _fit(mask, 0.5 * min(shape[0], sheet_height), room)
    centre = np.array([shape[1], shape[0]]) * rng.uniform(0.4, 0.6, 2)
    quad = _quad(centre, (sheet_width, sheet_height), rng.uniform(-6, 6), rng.uniform(0.02, 0.08), rng)
    spot = _visible_spot(quad, sheet.shape[:2], shape, 0.55 * max(mask.shape), rng)
    sheet = _ink(sheet, mask, spot, _pick(PENS, rng))
    frame = _lay(_desk(shape, rng), sheet, quad, rng, rng.uniform(0.1, 0.35))
    light = _lighting(shape, rng, rng.uniform(0.1, 0.45), rng.uniform(0, 0.3)) * _shadow(shape, rng, rng.uniform(0.2, 0.5))
    return _jpeg(_camera(_expose(frame, light, rng), rng), rng), touches


def pencil(digits: list[np.ndarray], rng: np.random.Generator) -> tuple[bytes, bool]:
    """Light, thin graphite under a strong light fall-off or vignette: often only 15-30 grey levels darker than the paper."""
    shape = _photo_size(rng, 400, 900)
    paper = _paper(shape, _white_paper(rng), rng, texture=0.015)
    light = _lighting(shape, rng, rng.uniform(0.3, 0.6), rng.uniform(0.1, 0.45))
    height = min(rng.uniform(0.1, 0.3) * min(shape), 0.85 * shape[1] / len(digits))
    mask, touches = _line_of_digits(digits, rng, height, height * rng.uniform(0.03, 0.07), variation=0.35)
    mask = _fit(mask, 0.8 * shape[0], 0.85 * shape[1])
    # Graphite catches only on the paper's tooth, so a pencil line is broken into grains, as `scenes.faint_pencil` draws it.
    mask *= np.clip(0.6 + 0.5 * cv2.GaussianBlur(_normal(mask.shape, rng), (0, 0), 0.8), 0, 1)
    centre = _spot(shape, mask.shape, rng, margin=0.06)
    # The contrast is chosen as it will be seen, after the light falls off where the number is.
    cell = np.minimum((centre / shape * light.shape).astype(int), np.array(light.shape) - 1)
    contrast = (rng.uniform(15, 30) if rng.random() < 0.6 else rng.uniform(30, 60)) / light[cell[0], cell[1]]
    graphite = max(0.0, float(paper[int(centre[0]), int(centre[1])].mean()) - contrast)
    paper = _ink(paper, mask, centre, (graphite, graphite, graphite * 1.02), opaque=True)
    pixels = _camera(_expose(paper, light, rng, cast=0.04), rng, noise=(1.5, 4))
    return (_jpeg(pixels, rng, 60, 95) if rng.random() < 0.7 else _png(_grey(pixels))), touches


def ruled(digits: list[np.ndarray], rng: np.random.Generator) -> tuple[bytes, bool]:
    """Notebook paper, blue rules and a red margin, the number sitting on a rule; a close-up phone photo."""
    shape = _photo_size(rng, 400, 900)
    sheet = _paper(shape, _white_paper(rng), rng)
    spacing = rng.uniform(0.04, 0.09) * shape[0]
    rules = np.arange(rng.uniform(0, 3) * spacing, shape[0], spacing)
    blue = (rng.uniform(140, 195), rng.uniform(175, 215), rng.uniform(215, 245))
    sheet = _lines(sheet, rules, blue, int(rng.integers(1, 4)), vertical=False)
    margin = rng.uniform(0.08, 0.3) * shape[1]
    sheet = _lines(sheet, [margin] if rng.random() < 0.7 else [margin, margin + 4], (225, 110, 120), int(rng.integers(1, 3)), vertical=True)
    # Right of the margin, clear of what the close-up photo crops.
    room = 0.9 * shape[1] - margin
    height = min(spacing * rng.uniform(0.7, 1.8), room / len(digits))
    # A writer follows the rules, so the number slopes less than on blank paper.
    mask, touches = _line_of_digits(digits, rng, height, height * rng.uniform(0.06, 0.13), slope=3)
    mask = _fit(mask, 0.5 * shape[0], room)
    bottom = int(np.nonzero((mask > 0.5).any(axis=1))[0].max())
    usable = rules[(rules > 0.1 * shape[0] + mask.shape[0]) & (rules < 0.88 * shape[0])]
    rule = rng.choice(usable) if len(usable) else rules[np.abs(rules - shape[0] / 2).argmin()]
    # Digits sit on the rule, some dipping a little below it or floating just above.
    baseline = rule + rng.uniform(-0.15, 0.1) * spacing
    centre = (
        baseline - bottom + mask.shape[0] / 2,
        margin + 0.02 * shape[1] + mask.shape[1] / 2 + rng.uniform(0, 1) * max(0.0, room - mask.shape[1]),
    )
    sheet = _ink(sheet, mask, centre, _pick(PENS, rng))
    return _photographed_sheet(sheet, rng), touches


def thick_marker(digits: list[np.ndarray], rng: np.random.Generator) -> tuple[bytes, bool]:
    """A fat, uneven felt marker (strokes 15-30% of the digits' height) that bleeds into the paper."""
    shape = _photo_size(rng, 400, 800) if rng.random() < 0.6 else (int(rng.integers(200, 451)), int(rng.integers(500, 1101)))
    height = min(rng.uniform(0.25, 0.55) * min(shape), 0.9 * shape[1] / len(digits))
    mask, touches = _line_of_digits(digits, rng, height, height * rng.uniform(0.15, 0.3), spacing=(0.1, 0.45), variation=0.4)
    # Ink wicks along the paper fibres: a soft, ragged fringe around every stroke, as `scenes.thick_marker` draws it.
    fringe = cv2.GaussianBlur(mask, (0, 0), rng.uniform(0.5, 2.5)) * (1 + 0.4 * _smooth_noise(mask.shape, rng, 30 * len(digits)))
    mask = _fit(np.clip(np.maximum(mask, fringe * 1.4 - 0.3), 0, 1), 0.9 * shape[0], 0.94 * shape[1])
    pixels = _ink(_paper(shape, _white_paper(rng), rng), mask, _spot(shape, mask.shape, rng, margin=0.03), _pick(MARKERS, rng))
    if rng.random() < 0.5:
        return _png(_grey(pixels)), touches
    return _jpeg(_camera(_expose(pixels, _lighting(shape, rng, rng.uniform(0.1, 0.35)), rng), rng), rng), touches


def touching(digits: list[np.ndarray], rng: np.random.Generator) -> tuple[bytes, bool]:
    """Neighbours whose strokes run into each other (most numbers) or come within a few pixels, drawn on a canvas or written on paper."""
    if rng.random() < 0.5:
        return _canvas_drawing(digits, rng, touching=True)
    return _paper_close_up(digits, rng, touching=True)


SINGLE_STYLES: tuple[NumberStyle, ...] = (canvas, paper_photo, pencil, ruled, thick_marker)


def single(digits: list[np.ndarray], rng: np.random.Generator) -> tuple[bytes, bool]:
    """One digit in any of the styles a number is written in, so that /read is scored on the simplest number too."""
    return SINGLE_STYLES[int(rng.integers(len(SINGLE_STYLES)))](digits, rng)


STYLES: dict[str, NumberStyle] = {
    "canvas": canvas,
    "paper_photo": paper_photo,
    "pencil": pencil,
    "ruled": ruled,
    "thick_marker": thick_marker,
    "touching": touching,
    SINGLE: single,
}


def render_numbers(
    images: np.ndarray, labels: np.ndarray, per_style: int, seed: int = 0, styles: dict[str, NumberStyle] | None = None
) -> Iterator[NumberImage]:
    """Yield `per_style` numbers of random test digits in each of `styles` (all unless given), seeded: the same seed gives the same bytes."""
    for name, style in (styles or STYLES).items():
        # Each style has a generator of its own, so a style's images do not depend on which others are rendered.
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        for _ in range(per_style):
            count = 1 if name == SINGLE else int(rng.integers(DIGIT_COUNTS[0], DIGIT_COUNTS[1] + 1))
            picks = rng.integers(0, len(images), count)
            data, touches = style([images[index] for index in picks], rng)
            yield NumberImage(name, data, "".join(str(int(labels[index])) for index in picks), touches)


def edit_distance(first: str, second: str) -> int:
    """The Levenshtein distance: the fewest one-character insertions, deletions and substitutions that turn `first` into `second`."""
    # Written here because difflib has no edit distance (its matching blocks charge nothing for an
    # extra digit) and no Levenshtein package is a dependency; numbers are at most 16 characters.
    previous = list(range(len(second) + 1))
    for row, first_char in enumerate(first, 1):
        current = [row]
        for column, second_char in enumerate(second, 1):
            current.append(min(previous[column] + 1, current[column - 1] + 1, previous[column - 1] + (first_char != second_char)))
        previous = current
    return previous[-1]


def digits_right(true: str, read: str | None) -> int:
    """How many of the true number's digits were read: its length less the edit distance to the reading, at least 0; none for a refusal."""
    if read is None:
        return 0
    return max(0, len(true) - edit_distance(true, read))


def _summary(readings: list[tuple[NumberImage, str | None]]) -> dict[str, float]:
    summary = {
        "numbers": len(readings),
        "exact": float(np.mean([read == image.number for image, read in readings])),
        "digits_right": sum(digits_right(image.number, read) for image, read in readings) / sum(len(image.number) for image, _ in readings),
    }
    singles = [read for image, read in readings if len(image.number) == 1]
    if singles:
        summary["one_digit"] = float(np.mean([read is not None and len(read) == 1 for read in singles]))
    touched = [read == image.number for image, read in readings if image.touching]
    if touched:
        summary["touching_exact"] = float(np.mean(touched))
    return summary


def score_readings(readings: Iterable[tuple[NumberImage, str | None]]) -> dict[str, dict[str, float]]:
    """Scores of (image, reading) pairs per style and 'overall': numbers, exact share, digits right, one-digit and touching shares."""
    by_style: dict[str, list[tuple[NumberImage, str | None]]] = {}
    for image, read in readings:
        by_style.setdefault(image.style, []).append((image, read))
    if not by_style:
        raise ValueError("no readings to score")
    scores = {style: _summary(pairs) for style, pairs in by_style.items()}
    scores["overall"] = _summary([pair for pairs in by_style.values() for pair in pairs])
    return scores


def score_numbers(read: Callable[[bytes], str | None], images: Iterable[NumberImage]) -> dict[str, dict[str, float]]:
    """Scores of `read` (image bytes -> number string, or None for a refusal) on `images`, per style and 'overall'."""
    return score_readings((image, read(image.data)) for image in images)


def _extension(data: bytes) -> str:
    return "png" if data.startswith(b"\x89PNG") else "jpg"


def _file_name(image: NumberImage, index: int) -> str:
    return f"{image.style}-{index:03d}-{image.number}.{_extension(image.data)}"


def contact_sheet(images: np.ndarray, labels: np.ndarray, examples: int = 4, seed: int = 0, tile: tuple[int, int] = (300, 150)) -> Image.Image:
    """One row per style: its name, then `examples` of its images fitted to `tile` (width, height), each captioned with its number."""
    label_width, caption = 120, 18
    width, height = tile
    sheet = Image.new("RGB", (label_width + examples * (width + 8), len(STYLES) * (height + caption + 8)), "white")
    draw = ImageDraw.Draw(sheet)
    for position, image in enumerate(render_numbers(images, labels, examples, seed)):
        row, column = divmod(position, examples)
        top = row * (height + caption + 8) + 4
        if column == 0:
            draw.text((6, top + height // 2 - 8), image.style, fill="black", font_size=15)
        picture = Image.open(io.BytesIO(image.data))
        if picture.mode in ("RGBA", "LA", "P"):
            # Transparent exports are shown as a browser shows them, over white.
            picture = Image.alpha_composite(Image.new("RGBA", picture.size, "white"), picture.convert("RGBA"))
        fitted = ImageOps.pad(picture.convert("RGB"), tile, method=Image.Resampling.LANCZOS, color=(120, 150, 120))
        left = label_width + column * (width + 8)
        sheet.paste(fitted, (left, top))
        draw.text((left, top + height + 2), image.number + ("  touching" if image.touching else ""), fill="black", font_size=13)
    return sheet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.number_styles", description="Score POST /read on written-number fixtures.")
    parser.add_argument("--data", help="MNIST .npz file or IDX folder (default: $DIGITSERVE_MNIST, else Keras' download)")
    parser.add_argument("--model", type=Path, default=Path("model/digitserve.keras"))
    parser.add_argument("--per-style", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sheet", help="also write a contact sheet PNG with a few examples of each style")
    parser.add_argument("--save", type=Path, help="also write the fixture images into this folder")
    parser.add_argument("--json", type=Path, help="also write the scores and the misread numbers as JSON")
    parser.add_argument(
        "--readme", type=Path, action="append", default=[], help=f"also put the table in this Markdown file's {README_SECTION!r} section (repeatable)"
    )
    args = parser.parse_args(argv)
    from app.classifier import ModelLoadError
    from app.config import Settings
    from app.main import create_app, load_classifier
    from training.data import load_mnist_for_command

    data = load_mnist_for_command(args.data)
    if data is None:
        return 2
    settings = Settings(model_path=args.model)
    try:
        classifier = load_classifier(settings)
    except ModelLoadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    app = create_app(settings, classifier)
    if "post" not in app.openapi()["paths"].get("/read", {}):
        print("error: this app has no POST /read to score", file=sys.stderr)
        return 2
    if args.sheet:
        contact_sheet(data.x_test, data.y_test, seed=args.seed).save(args.sheet)
    fixtures = list(render_numbers(data.x_test, data.y_test, args.per_style, args.seed))
    names = [_file_name(image, index % args.per_style) for index, image in enumerate(fixtures)]
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        for image, name in zip(fixtures, names, strict=True):
            (args.save / name).write_bytes(image.data)
    readings, answers = _read_all(app, fixtures)
    scores = score_readings(readings)
    print(scores_table(scores))
    print("answers: " + ", ".join(f"{status} x {count}" for status, count in sorted(answers.items())))
    if args.json:
        misread = [
            {"file": name, "style": image.style, "number": image.number, "read": read, "touching": image.touching}
            for name, (image, read) in zip(names, readings, strict=True)
            if read != image.number
        ]
        report = {
            "per_style": args.per_style,
            "seed": args.seed,
            "model": {"name": classifier.name, "version": classifier.version},
            "answers": {str(status): count for status, count in sorted(answers.items())},
            "scores": scores,
            "misread": misread,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    for readme in args.readme:
        if not replace_section(readme, README_SECTION, numbers_markdown(scores, args.per_style, classifier.version)):
            print(f"warning: {readme} has no {README_SECTION!r} section to rewrite", file=sys.stderr)
    return 0


def _read_all(app, fixtures: list[NumberImage]) -> tuple[list[tuple[NumberImage, str | None]], Counter[int]]:
    """Each fixture posted to the app's POST /read in-process: the readings (None for a refusal) and the answers' statuses."""
    from fastapi.testclient import TestClient

    answers: Counter[int] = Counter()
    readings = []
    with TestClient(app) as client:
        for position, image in enumerate(fixtures, 1):
            extension = _extension(image.data)
            content_type = "image/png" if extension == "png" else "image/jpeg"
            response = client.post("/read", files={"file": (f"number.{extension}", image.data, content_type)})
            answers[response.status_code] += 1
            readings.append((image, response.json()["number"] if response.status_code == 200 else None))
            print(f"\rreading {image.style:<14} {position}/{len(fixtures)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return readings, answers


def scores_table(scores: dict[str, dict[str, float]]) -> str:
    """The scores as a plain-text table: numbers, exact share and digits right per style, then the single and touching shares."""
    lines = [f"{'style':<14} {'numbers':>7} {'exact':>7} {'digits right':>13} {'one digit':>10} {'touching exact':>15}"]
    for style, score in scores.items():
        extras = [f"{score[key]:.1%}" if key in score else "" for key in ("one_digit", "touching_exact")]
        lines.append(f"{style:<14} {score['numbers']:>7} {score['exact']:>7.1%} {score['digits_right']:>13.1%} {extras[0]:>10} {extras[1]:>15}")
    return "\n".join(lines)


def numbers_markdown(scores: dict[str, dict[str, float]], per_style: int, model_version: str) -> str:
    """A Markdown table with a column per style and overall: numbers read exactly and digits right, then where the figures come from."""
    names = ["**overall**" if style == "overall" else style.replace("_", " ") for style in scores]
    lines = ["| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(scores)]
    for measure, label in (("exact", "numbers read exactly"), ("digits_right", "digits right")):
        lines.append(f"| {label} | " + " | ".join(f"{score[measure]:.1%}" for score in scores.values()) + " |")
    notes = []
    if (touching := scores.get("touching", {}).get("touching_exact")) is not None:
        notes.append(f"numbers whose strokes touch: {touching:.1%} read exactly")
    if (single := scores.get("single", {}).get("one_digit")) is not None:
        notes.append(f"single digits read as one digit: {single:.1%}")
    lines += ["", (("; ".join(notes)).capitalize() + ". ") * bool(notes) + _source_line(per_style, model_version)]
    return "\n".join(lines) + "\n"


def _source_line(per_style: int, model_version: str) -> str:
    return (
        f"{per_style} numbers per style, each 2-6 MNIST test digits (single: one), "
        f"posted to `POST /read` with model {model_version}: `training.number_styles`."
    )


if __name__ == "__main__":
    sys.exit(main())
