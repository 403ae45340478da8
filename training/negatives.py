"""Seeded uploads that are not one digit: letters, shapes, scribbles, words, digit pairs, textures, blanks.

They choose the rejection threshold and test that the service refuses what it should. Each is
drawn as a 28x28 uint8 glyph framed the way MNIST frames its digits (ink fitted into a 20x20 box,
centred by its centre of mass, white on black), then rendered through the same upload and photo
styles as the digit fixtures (`training.upload_styles.GROUPS`), so only the content differs.

    python -m training.negatives --data mnist.npz --per-kind 20 --seed 0 --sheet negatives.png
    python -m training.negatives --data mnist.npz --per-kind 40 --model model/digitserve.keras   # and how the model takes them

Letters and words are set in the TrueType fonts under /usr/share/fonts: the Debian packages
fonts-dejavu-core, fonts-liberation and fonts-freefont-ttf. Without any, Pillow's built-in font is used.
"""

from __future__ import annotations

import argparse
import functools
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps
from scipy import interpolate, ndimage

from training.scenes import encode
from training.upload_styles import GROUPS, Style

KINDS = ("letter", "shape", "scribble", "word", "several_digits", "texture", "blank")

# Letters a person may write for a digit, so a model that reads them as one is not wrong: O, o, Q and
# D as 0; I, l and i as 1; Z and z as 2; S and s as 5; b and G as 6; B as 8; g and q as 9.
DIGIT_LIKE_LETTERS = frozenset("OoQDIliZzSsbGBgq")
LETTERS = tuple(letter for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" if letter not in DIGIT_LIKE_LETTERS)
SHAPES = ("star", "arrow", "smiley", "heart", "triangle", "square", "plus", "spiral", "check", "hash")
SCRIBBLES = ("scribble", "crossed-out", "zigzag", "hatching")
WORDS = ("hello", "cat", "yes", "ok", "hi", "abc", "no", "dog", "the", "hey", "wow", "sun", "pen", "Hi", "OK", "name", "test", "draw", "fox", "me")
PLAIN_TEXTURES = ("noise", "wood", "checkerboard", "gradient")
PLAIN_STYLE = "plain"

GLYPH_SIDE, BOX_SIDE = 28, 20
# Glyphs are drawn on a large canvas and reduced, so strokes come out anti-aliased as MNIST's are.
CANVAS = 192
FONT_SIZE = 110
BLANK = np.zeros((GLYPH_SIDE, GLYPH_SIDE), dtype=np.uint8)
# The photo styles crop the glyph to its ink (pixels above 40) and fail on none. One pixel at 50
# passes that crop but stays under the level their centre line is traced at, so no ink is drawn.
TRACE = BLANK.copy()
TRACE[GLYPH_SIDE // 2, GLYPH_SIDE // 2] = 50


@dataclass(frozen=True)
class Negative:
    """One negative upload: its kind, the style that rendered it, the encoded image and what it shows."""

    kind: str
    style: str
    data: bytes
    text: str


@functools.cache
def fonts() -> tuple[str, ...]:
    """The TrueType fonts installed under /usr/share/fonts, sorted so a seed picks the same one on every run."""
    return tuple(sorted(str(path) for path in Path("/usr/share/fonts").glob("**/*.ttf")))


def _font(rng: np.random.Generator, size: int = FONT_SIZE) -> ImageFont.FreeTypeFont:
    installed = fonts()
    if not installed:
        return ImageFont.load_default(size=size)
    return ImageFont.truetype(installed[int(rng.integers(len(installed)))], size=size)


def frame_like_mnist(ink: np.ndarray) -> np.ndarray:
    """White-on-black ink of any size as an MNIST glyph: fitted into a 20x20 box, centred by centre of mass in 28x28."""
    rows, cols = np.nonzero(ink > 10)
    if rows.size == 0:
        return BLANK.copy()
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].astype(np.float32)
    scale = BOX_SIDE / max(crop.shape)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    fitted = cv2.resize(crop, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    # Thin strokes fade when reduced; MNIST's strokes reach full white, so these are stretched to it.
    fitted = np.clip(fitted * (255 / max(1.0, float(fitted.max()))), 0, 255)
    centre_row, centre_col = ndimage.center_of_mass(fitted)
    top = int(np.clip(round(GLYPH_SIDE / 2 - centre_row), 0, GLYPH_SIDE - fitted.shape[0]))
    left = int(np.clip(round(GLYPH_SIDE / 2 - centre_col), 0, GLYPH_SIDE - fitted.shape[1]))
    glyph = BLANK.copy()
    glyph[top : top + fitted.shape[0], left : left + fitted.shape[1]] = (fitted + 0.5).astype(np.uint8)
    return glyph


def hand_jitter(ink: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Typeset or ruled ink made to look drawn by hand: a random turn, shear and scale, a small wobble and a pen width."""
    height, width = ink.shape
    turn = np.deg2rad(rng.uniform(-15, 15) * strength)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    shear = np.array([[1, rng.uniform(-0.3, 0.3) * strength], [0, 1]])
    linear = rotation @ shear @ np.diag(rng.uniform(0.85, 1.15, 2))
    centre = np.array([width / 2, height / 2])
    matrix = np.hstack([linear, (centre - linear @ centre)[:, None]])
    ink = cv2.warpAffine(ink, matrix, (width, height), flags=cv2.INTER_LINEAR)
    # A wobble that varies slowly along the strokes, as a hand's does: coarse noise resized up.
    amplitude = rng.uniform(1.5, 4.5) * strength * width / 100
    shift_x, shift_y = (cv2.resize(rng.standard_normal((4, 4)).astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC) for _ in range(2))
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    ink = cv2.remap(ink, grid_x + amplitude * shift_x, grid_y + amplitude * shift_y, cv2.INTER_LINEAR)
    return _pen_width(ink, rng)


def _pen_width(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Strokes made bolder or finer, but never so fine that they vanish."""
    change = int(rng.integers(-2, 5)) * ink.shape[0] // 100
    if change == 0:
        return ink
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(change) + 1,) * 2)
    if change > 0:
        return cv2.dilate(ink, kernel)
    thinner = cv2.erode(ink, kernel)
    return thinner if np.count_nonzero(thinner > 128) > 0.5 * np.count_nonzero(ink > 128) else ink


def _text_ink(text: str, rng: np.random.Generator) -> np.ndarray:
    """`text` in a random installed font, white on black, on a canvas wide enough for it."""
    font = _font(rng)
    left, top, right, bottom = font.getbbox(text)
    margin = FONT_SIZE // 2
    canvas = Image.new("L", (right - left + 2 * margin, max(CANVAS, bottom - top + 2 * margin)), 0)
    ImageDraw.Draw(canvas).text((canvas.width / 2, canvas.height / 2), text, fill=255, font=font, anchor="mm")
    return np.asarray(canvas).copy()


def letter_glyph(rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A letter that is no digit, typeset, or half of the time as if written by hand."""
    letter = LETTERS[int(rng.integers(len(LETTERS)))]
    ink = _text_ink(letter, rng)
    return frame_like_mnist(hand_jitter(ink, rng) if rng.random() < 0.5 else ink), letter


def word_glyph(rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A short word on one line, small and wide in the box, as if written across a square canvas."""
    word = WORDS[int(rng.integers(len(WORDS)))]
    ink = _text_ink(word, rng)
    return frame_like_mnist(hand_jitter(ink, rng, strength=0.5) if rng.random() < 0.7 else ink), word


def _outline(name: str, rng: np.random.Generator) -> list[tuple[np.ndarray, bool]]:
    """The strokes of a shape as (points in -1..1, closed) pairs."""
    if name == "star":
        turns = np.pi / 2 + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, 1.0, rng.uniform(0.35, 0.5))
        if rng.random() < 0.5:
            # The star drawn in one stroke, as people draw it: every second point of a pentagon.
            turns, radii = np.pi / 2 + np.arange(5) * 4 * np.pi / 5, np.ones(5)
        return [(np.stack([radii * np.cos(turns), -radii * np.sin(turns)], axis=1), True)]
    if name == "arrow":
        head = rng.uniform(0.3, 0.5)
        strokes = [np.array([[-0.9, 0], [0.9, 0]]), np.array([[0.9 - head, -head * 0.8], [0.9, 0], [0.9 - head, head * 0.8]])]
        return [(_turned(points, rng.uniform(0, 2 * np.pi)), False) for points in strokes]
    if name == "smiley":
        turns = np.linspace(0, 2 * np.pi, 40)
        mouth = np.linspace(0.2 * np.pi, 0.8 * np.pi, 12)
        eye = 0.06 * np.stack([np.cos(turns[::4]), np.sin(turns[::4])], axis=1)
        return [
            (np.stack([np.cos(turns), np.sin(turns)], axis=1), True),
            (eye + [-0.35, -0.3], True),
            (eye + [0.35, -0.3], True),
            (0.55 * np.stack([np.cos(mouth), np.sin(mouth)], axis=1), False),
        ]
    if name == "heart":
        turns = np.linspace(0, 2 * np.pi, 60)
        cols = 16 * np.sin(turns) ** 3
        rows = -(13 * np.cos(turns) - 5 * np.cos(2 * turns) - 2 * np.cos(3 * turns) - np.cos(4 * turns))
        return [(np.stack([cols, rows], axis=1) / 17, True)]
    if name == "triangle":
        return [(np.array([[0, -0.9], [0.9, 0.75], [-0.9, 0.75]]), True)]
    if name == "square":
        return [(np.array([[-0.8, -0.8], [0.8, -0.8], [0.8, 0.8], [-0.8, 0.8]]), True)]
    if name == "plus":
        # Turned by up to 45 degrees, so some are crosses.
        turn = rng.uniform(0, np.pi / 4)
        return [(_turned(np.array([[-0.9, 0], [0.9, 0]]), turn), False), (_turned(np.array([[0, -0.9], [0, 0.9]]), turn), False)]
    if name == "spiral":
        turns = np.linspace(0, rng.uniform(3, 5) * np.pi, 80)
        radii = 0.08 + 0.9 * turns / turns[-1]
        return [(np.stack([radii * np.cos(turns), radii * np.sin(turns)], axis=1), False)]
    if name == "check":
        return [(np.array([[-0.8, 0.0], [-0.25, 0.6], [0.85, -0.8]]), False)]
    if name == "hash":
        lean = rng.uniform(0, 0.25)
        return [
            (np.array([[-0.3 + lean, -0.9], [-0.3 - lean, 0.9]]), False),
            (np.array([[0.3 + lean, -0.9], [0.3 - lean, 0.9]]), False),
            (np.array([[-0.9, -0.3], [0.9, -0.3]]), False),
            (np.array([[-0.9, 0.3], [0.9, 0.3]]), False),
        ]
    raise ValueError(f"unknown shape {name!r}; expected one of {', '.join(SHAPES)}")


def _turned(points: np.ndarray, turn: float) -> np.ndarray:
    return points @ np.array([[np.cos(turn), np.sin(turn)], [-np.sin(turn), np.cos(turn)]])


def _draw(strokes: list[tuple[np.ndarray, bool]], rng: np.random.Generator, wobble: float = 0.03) -> np.ndarray:
    """Strokes (points in -1..1) drawn with a hand's pen width on a square canvas, each point a little off."""
    canvas = np.zeros((CANVAS, CANVAS), dtype=np.uint8)
    thickness = int(rng.integers(CANVAS // 24, CANVAS // 12))
    for points, closed in strokes:
        placed = (points + rng.normal(0, wobble, points.shape)) * CANVAS * 0.35 + CANVAS / 2
        cv2.polylines(canvas, [np.round(placed).astype(np.int32)], closed, 255, thickness, cv2.LINE_AA)
    return canvas


def shape_glyph(rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A symbol drawn by hand: star, arrow, smiley, heart, triangle, square, plus, spiral, check mark or hash."""
    name = SHAPES[int(rng.integers(len(SHAPES)))]
    return frame_like_mnist(hand_jitter(_draw(_outline(name, rng), rng), rng, strength=0.7)), name


def _smooth_path(points: np.ndarray, samples: int = 80) -> np.ndarray:
    """A smooth pen path through `points`: a cubic spline where there are enough of them."""
    _, unique = np.unique(points, axis=0, return_index=True)
    points = points[np.sort(unique)]
    if len(points) < 4:
        return points
    knots, _ = interpolate.splprep(points.T, s=0, k=3)
    return np.stack(interpolate.splev(np.linspace(0, 1, samples), knots), axis=1)


def _scribble_strokes(name: str, rng: np.random.Generator) -> list[tuple[np.ndarray, bool]]:
    if name == "scribble":
        return [(_smooth_path(rng.uniform(-1, 1, (int(rng.integers(4, 8)), 2))), False) for _ in range(int(rng.integers(2, 5)))]
    if name == "crossed-out":
        # A blob scratched out: many quick strokes back and forth across an ellipse.
        count = int(rng.integers(10, 20))
        heights = np.linspace(-0.7, 0.7, count)
        widths = np.sqrt(1 - (heights / 0.75) ** 2)
        sides = np.where(np.arange(count) % 2 == 0, -1, 1)
        points = np.stack([sides * widths * rng.uniform(0.8, 1.0, count), heights + rng.normal(0, 0.05, count)], axis=1)
        return [(_turned(points * [1, rng.uniform(0.5, 1)], rng.uniform(0, np.pi)), False)]
    if name == "zigzag":
        teeth = int(rng.integers(4, 9))
        cols = np.linspace(-1, 1, 2 * teeth + 1)
        rows = np.where(np.arange(cols.size) % 2 == 0, -1, 1) * rng.uniform(0.2, 0.5)
        return [(_turned(np.stack([cols, rows], axis=1), rng.uniform(-0.4, 0.4)), False)]
    if name == "hatching":
        turn = rng.uniform(0, np.pi)
        lines = [(_turned(np.array([[-0.8, at], [0.8, at]]), turn), False) for at in np.linspace(-0.8, 0.8, int(rng.integers(5, 10)))]
        if rng.random() < 0.4:
            lines += [(_turned(points, np.pi / 2), False) for points, _ in lines]
        return lines
    raise ValueError(f"unknown scribble {name!r}; expected one of {', '.join(SCRIBBLES)}")


def scribble_glyph(rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Random pen paths, a crossed-out blob, a zigzag or hatching."""
    name = SCRIBBLES[int(rng.integers(len(SCRIBBLES)))]
    return frame_like_mnist(hand_jitter(_draw(_scribble_strokes(name, rng), rng, wobble=0.02), rng, strength=0.5)), name


def several_digits_glyph(rng: np.random.Generator, digits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, str]:
    """Two or three MNIST digits side by side, the row fitted into the box, as a number written in a square canvas."""
    chosen = rng.integers(len(digits), size=int(rng.integers(2, 4)))
    row = np.zeros((GLYPH_SIDE + 8, GLYPH_SIDE * len(chosen) + 16), dtype=np.uint8)
    left = 4
    for index in chosen:
        rows, cols = np.nonzero(digits[index])
        crop = digits[index][rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        top = 4 + (GLYPH_SIDE - crop.shape[0]) // 2 + int(rng.integers(-2, 3))
        region = row[top : top + crop.shape[0], left : left + crop.shape[1]]
        np.maximum(region, crop, out=region)
        # Neighbours touch or overlap by up to 3 pixels, or stand up to 6 apart.
        left += crop.shape[1] + int(rng.integers(-3, 7))
    return frame_like_mnist(row), "".join(str(int(labels[index])) for index in chosen)


def glyph(kind: str, rng: np.random.Generator, digits: np.ndarray | None = None, labels: np.ndarray | None = None) -> tuple[np.ndarray, str]:
    """A 28x28 uint8 glyph of `kind` framed like MNIST, and its text; several_digits needs MNIST training `digits` and `labels`."""
    if kind == "letter":
        return letter_glyph(rng)
    if kind == "word":
        return word_glyph(rng)
    if kind == "shape":
        return shape_glyph(rng)
    if kind == "scribble":
        return scribble_glyph(rng)
    if kind == "several_digits":
        if digits is None or labels is None or len(digits) == 0:
            raise ValueError("several_digits needs MNIST training digits and their labels")
        return several_digits_glyph(rng, digits, labels)
    if kind in ("texture", "blank"):
        return BLANK.copy(), ""
    raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")


def render(style: Style, glyph_pixels: np.ndarray, rng: np.random.Generator) -> bytes:
    """`glyph_pixels` through `style`; a blank glyph still gets the style's bare surface where the style needs some ink."""
    if glyph_pixels.any():
        return style(glyph_pixels, rng)
    state = rng.bit_generator.state
    try:
        return style(glyph_pixels, rng)
    except ValueError:
        # Draw again from the same random state, so the blank gets the surface the first try would have.
        rng.bit_generator.state = state
        return style(TRACE, rng)


def _smooth_field(shape: tuple[int, int], rng: np.random.Generator, cells: int) -> np.ndarray:
    """Noise about -1..1 that varies over about `cells` bumps across the image."""
    return cv2.resize(rng.standard_normal((cells, cells)).astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def plain_texture(name: str, rng: np.random.Generator) -> bytes:
    """An image of no style and no writing: a smooth noise field, wood, a checkerboard or a photo-like gradient."""
    shape = (int(rng.integers(240, 800)), int(rng.integers(240, 800)))
    colours = rng.uniform(0, 255, (2, 3)).astype(np.float32)
    if name == "noise":
        mix = np.clip(0.5 + 0.35 * _smooth_field(shape, rng, int(rng.integers(3, 30))), 0, 1)
    elif name == "wood":
        colours = np.array([[150, 105, 65], [100, 65, 40]], dtype=np.float32) * rng.uniform(0.7, 1.2)
        across = np.linspace(0, rng.uniform(8, 30), shape[1], dtype=np.float32)[None, :] + 1.5 * _smooth_field(shape, rng, 4)
        mix = 0.5 + 0.5 * np.sin(2 * np.pi * across) * (0.7 + 0.3 * _smooth_field(shape, rng, 40))
    elif name == "checkerboard":
        cell = rng.uniform(15, 80)
        rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
        turn = rng.uniform(0, np.pi / 2)
        along, across = cols * np.cos(turn) + rows * np.sin(turn), -cols * np.sin(turn) + rows * np.cos(turn)
        mix = ((np.floor(along / cell) + np.floor(across / cell)) % 2).astype(np.float32)
        mix = cv2.GaussianBlur(mix, (0, 0), rng.uniform(0.5, 2))
    elif name == "gradient":
        rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
        turn = rng.uniform(0, 2 * np.pi)
        ramp = cols / shape[1] * np.cos(turn) + rows / shape[0] * np.sin(turn)
        mix = (ramp - ramp.min()) / max(1e-6, float(np.ptp(ramp))) + 0.05 * _smooth_field(shape, rng, 6)
    else:
        raise ValueError(f"unknown texture {name!r}; expected one of {', '.join(PLAIN_TEXTURES)}")
    mix = np.clip(mix, 0, 1)[..., None]
    pixels = colours[0] * (1 - mix) + colours[1] * mix + rng.normal(0, rng.uniform(0, 5), (*shape, 1))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="RGB")
    return encode(image, "JPEG", quality=int(rng.integers(50, 95))) if rng.random() < 0.6 else encode(image)


def _style_choices(kind: str, groups: dict[str, dict[str, Style]]) -> list[tuple[str, Style | None]]:
    """The styles a negative of `kind` may be drawn in: (name, style), where None stands for a plain texture."""
    every = [(name, style) for styles in groups.values() for name, style in styles.items()]
    if kind == "blank":
        return list(groups.get("uploads", {}).items()) or every
    if kind == "texture":
        # Plain textures are as likely as any one photo style, so the photos' bare surfaces dominate.
        return [*groups.get("photos", {}).items(), *[(PLAIN_STYLE, None)] * len(PLAIN_TEXTURES)]
    return every


def negative_uploads(
    per_kind: int,
    seed: int,
    digits: np.ndarray | None,
    labels: np.ndarray | None,
    styles: dict[str, dict[str, Style]] | None = None,
    kinds: tuple[str, ...] = KINDS,
) -> list[Negative]:
    """`per_kind` seeded negatives of each of `kinds`, in styles drawn from `styles` (groups as `upload_styles.GROUPS`, the default)."""
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown kinds {', '.join(sorted(unknown))}; expected some of {', '.join(KINDS)}")
    rng = np.random.default_rng(seed)
    groups = GROUPS if styles is None else styles
    negatives = []
    for kind in kinds:
        choices = _style_choices(kind, groups)
        for _ in range(per_kind):
            pixels, text = glyph(kind, rng, digits, labels)
            name, style = choices[int(rng.integers(len(choices)))]
            if style is None:
                text = PLAIN_TEXTURES[int(rng.integers(len(PLAIN_TEXTURES)))]
                data = plain_texture(text, rng)
            else:
                data = render(style, pixels, rng)
            negatives.append(Negative(kind, name, data, text))
    return negatives


def contact_sheet(negatives: list[Negative], columns: int = 10, tile: int = 160) -> Image.Image:
    """The negatives as a grid of thumbnails, each labelled with its kind, style and text."""
    caption = 34
    rows = -(-len(negatives) // columns)
    sheet = Image.new("RGB", (columns * (tile + 8) + 8, rows * (tile + caption + 8) + 8), "white")
    draw = ImageDraw.Draw(sheet)
    for number, negative in enumerate(negatives):
        left, top = 8 + number % columns * (tile + 8), 8 + number // columns * (tile + caption + 8)
        image = Image.open(io.BytesIO(negative.data))
        image = ImageOps.exif_transpose(image).convert("RGB")
        # Tiny images are shown with their pixels, not smoothed, so a 12-pixel image looks like one.
        resample = Image.Resampling.NEAREST if max(image.size) < tile else Image.Resampling.LANCZOS
        sheet.paste(ImageOps.pad(image, (tile, tile), method=resample, color=(120, 150, 120)), (left, top))
        draw.text((left, top + tile + 2), f"{negative.kind}  {negative.text!r}", fill="black", font_size=13)
        draw.text((left, top + tile + 17), negative.style, fill=(90, 90, 90), font_size=12)
    return sheet


def confidence_table(negatives: list[Negative], predict, thresholds: tuple[float, ...] = (0.9, 0.99)) -> dict[str, dict[str, int]]:
    """Per kind: how many there are, how many preprocessing refuses, and how many of the rest `predict` takes with each confidence."""
    from app.preprocess import PreprocessError, preprocess

    table: dict[str, dict[str, int]] = {}
    for kind in KINDS:
        accepted, refused = [], 0
        for negative in (negative for negative in negatives if negative.kind == kind):
            try:
                accepted.append(preprocess(negative.data))
            except PreprocessError:
                refused += 1
        confidence = predict(np.stack(accepted)).max(axis=1) if accepted else np.zeros(0)
        counts = {f">={threshold:g}": int(np.count_nonzero(confidence >= threshold)) for threshold in thresholds}
        table[kind] = {"total": len(accepted) + refused, "refused": refused, **counts}
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.negatives", description="Seeded negative uploads: a sheet, and a model's take.")
    parser.add_argument("--data", help="MNIST .npz file or IDX folder (its training digits make the several_digits kind)")
    parser.add_argument("--per-kind", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sheet", help="write a contact sheet PNG of the negatives")
    parser.add_argument("--model", help="also print, per kind, how many preprocessing refuses and how many the model takes confidently")
    args = parser.parse_args(argv)
    from training.data import load_mnist_for_command

    data = load_mnist_for_command(args.data)
    if data is None:
        return 2
    negatives = negative_uploads(args.per_kind, args.seed, data.x_train, data.y_train)
    if args.sheet:
        contact_sheet(negatives).save(args.sheet)
    if args.model:
        import keras

        model = keras.saving.load_model(args.model, compile=False)
        table = confidence_table(negatives, lambda batch: model.predict(batch.astype(np.float32), verbose=0))
        print(f"{'kind':>15} {'total':>6} {'refused':>8} {'>=0.9':>6} {'>=0.99':>7}")
        for kind, counts in table.items():
            print(f"{kind:>15} {counts['total']:>6} {counts['refused']:>8} {counts['>=0.9']:>6} {counts['>=0.99']:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
