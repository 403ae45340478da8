"""Render MNIST digits as photos and scans of real surfaces: the hard kinds an outside evaluation found.

Each kind takes a 28x28 uint8 MNIST digit (white on black) and a seeded random generator and
returns encoded image bytes. The same functions make test fixtures from MNIST's test digits and
training images from its training digits, so every kind draws its paper, light, pen, framing and
compression from wide random ranges rather than one look.

    from training.scenes import SCENES
    image_bytes = SCENES["sticky_note"](digit, np.random.default_rng(0))

Images are uint8 RGB (or grey) arrays throughout. Paper texture, light and shadows are drawn on a
coarse grid and resized up, and the per-pixel work goes through OpenCV, because a photo-sized
image must take milliseconds when these make training data.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from statistics import NormalDist

import cv2
import numpy as np
from PIL import Image
from skimage.morphology import skeletonize

Scene = Callable[[np.ndarray, np.random.Generator], bytes]

# Colours are RGB: ballpoint and gel inks, then the brighter marker inks.
PENS = [(25, 30, 40), (30, 40, 110), (20, 35, 80), (45, 45, 50), (70, 30, 110)]
MARKERS = [(30, 30, 35), (25, 55, 150), (170, 35, 40), (30, 120, 60), (90, 40, 130)]
WOODS = [(150, 105, 65), (120, 80, 50), (185, 145, 100), (95, 60, 40), (165, 120, 80)]
NOTES = [(250, 238, 130), (252, 190, 205), (190, 240, 170), (175, 215, 245), (252, 200, 140), (250, 250, 160)]
# The MNIST glyph is reduced to its centre line at this height, then redrawn at any size and width.
SKELETON_HEIGHT = 96
# Fields that vary slowly (paper blotches, light, shadows) are drawn this many cells across, then resized.
FIELD_CELLS = 64
# A standard normal deviate for each byte value: sensor grain from random bytes through one table look-up.
NORMAL_BY_BYTE = np.array([NormalDist().inv_cdf((level + 0.5) / 256) for level in range(256)], dtype=np.float32)


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    """The image encoded in `fmt` with Pillow's `options` (quality=..., exif=...)."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _to_bgr(pixels: np.ndarray) -> np.ndarray:
    pixels = np.clip(pixels, 0, 255).astype(np.uint8)
    return cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR) if pixels.ndim == 3 else pixels


def _jpeg(pixels: np.ndarray, rng: np.random.Generator, low: int = 45, high: int = 92) -> bytes:
    """A phone's JPEG at a random quality; OpenCV's encoder, as it is several times faster than Pillow's here."""
    return cv2.imencode(".jpg", _to_bgr(pixels), [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(low, high + 1))])[1].tobytes()


def _png(pixels: np.ndarray) -> bytes:
    """A PNG; run-length deflate at level 1, because noisy images take several times longer at the default."""
    options = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
    return cv2.imencode(".png", _to_bgr(pixels), options)[1].tobytes()


def _photo_size(rng: np.random.Generator, low: int = 400, high: int = 900) -> tuple[int, int]:
    """(height, width) of a phone photo, at least 400 a side: mostly moderate, now and then up to 1600, either orientation."""
    long_side = int(rng.integers(1000, 1601)) if rng.random() < 0.05 else int(rng.integers(low, high + 1))
    short_side = max(400, int(long_side / rng.choice([4 / 3, 3 / 2, 16 / 9, 1.0])))
    return (long_side, short_side) if rng.random() < 0.5 else (short_side, long_side)


def _field_shape(shape: tuple[int, int], cells: int = FIELD_CELLS) -> tuple[int, int]:
    scale = cells / max(shape[:2])
    return max(2, round(shape[0] * scale)), max(2, round(shape[1] * scale))


def _upsize(field: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return cv2.resize(field, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def _smooth_noise(shape: tuple[int, int], rng: np.random.Generator, cells: int) -> np.ndarray:
    """Low-frequency noise of `shape`, about -1..1, with roughly `cells` bumps across the longer side."""
    coarse = rng.standard_normal(_field_shape(shape, cells)).astype(np.float32)
    return cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def _grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) coordinates from -1 to 1 on the coarse field grid of a frame of `shape`."""
    rows, cols = _field_shape(shape)
    return np.meshgrid(np.linspace(-1, 1, rows, dtype=np.float32), np.linspace(-1, 1, cols, dtype=np.float32), indexing="ij")


def _paper(shape: tuple[int, int], colour, rng: np.random.Generator, texture: float = 0.01) -> np.ndarray:
    """A surface of `colour` (RGB, or a grey level) with faint blotches, as uint8 pixels."""
    coarse = _field_shape(shape, 2 * FIELD_CELLS)
    blotches = 1 + texture * (_smooth_noise(coarse, rng, 8) + 0.6 * _smooth_noise(coarse, rng, 40))
    colour = np.asarray(colour, dtype=np.float32)
    field = blotches[..., None] * colour if colour.ndim else blotches * colour
    return _upsize(np.clip(field, 0, 255).astype(np.uint8), shape)


def _white_paper(rng: np.random.Generator) -> np.ndarray:
    """Printer, notebook or recycled paper: near white, slightly warm or cool."""
    return rng.uniform(215, 250) * np.array([1, rng.uniform(0.97, 1.0), rng.uniform(0.9, 1.0)], dtype=np.float32)


def _wood(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Wood grain: lines that change fast across the boards and slowly along them."""
    across, along = shape if rng.random() < 0.5 else shape[::-1]
    rows = max(2, across // 2)
    streaks = cv2.resize(rng.standard_normal((max(2, across // 3), 6)).astype(np.float32), (16, rows), interpolation=cv2.INTER_CUBIC)
    position = np.linspace(0, across / rng.uniform(15, 60), rows, dtype=np.float32)[:, None]
    rings = np.sin(2 * np.pi * (position + 1.5 * _smooth_noise((rows, 16), rng, 4)))
    colour = np.asarray(WOODS[int(rng.integers(len(WOODS)))], dtype=np.float32) * rng.uniform(0.65, 1.1)
    grain = np.clip((1 + 0.06 * streaks + 0.07 * rings)[..., None] * colour, 0, 255).astype(np.uint8)
    grain = cv2.resize(grain, (along, across), interpolation=cv2.INTER_LINEAR)
    return grain if across == shape[0] else np.ascontiguousarray(grain.transpose(1, 0, 2))


def _desk(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A wooden, dark or grey laminate desk top seen from above."""
    kind = rng.choice(["wood", "dark", "laminate"], p=[0.55, 0.3, 0.15])
    if kind == "wood":
        return _wood(shape, rng)
    if kind == "dark":
        return _paper(shape, rng.uniform(22, 60) * np.array([1, rng.uniform(0.95, 1.05), rng.uniform(0.95, 1.15)]), rng, texture=0.12)
    return _paper(shape, rng.uniform(110, 175) * np.array([1, 1, rng.uniform(0.95, 1.05)]), rng, texture=0.05)


def _pen(digit: np.ndarray, height: float, stroke: float, rng: np.random.Generator, variation: float = 0.25) -> np.ndarray:
    """The digit's strokes redrawn as a soft 0-1 ink mask: the glyph `height` pixels tall, strokes `stroke` wide.

    The glyph is cropped to its ink, reduced to its centre line, and the line is drawn back with a
    width that wanders by `variation` along the stroke, as a pen's pressure does. The mask has a
    margin for the stroke all round, so its centre is the glyph's centre.
    """
    rows, cols = np.nonzero(digit > 40)
    glyph = digit[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    scale = height / glyph.shape[0]
    work_scale = SKELETON_HEIGHT / glyph.shape[0]
    margin = int(np.ceil((stroke * (1 + variation) / 2 + 3) / scale)) + 1
    glyph = np.pad(glyph, margin)
    work = cv2.resize(glyph, (round(glyph.shape[1] * work_scale), round(glyph.shape[0] * work_scale)), interpolation=cv2.INTER_CUBIC)
    centre_line = skeletonize(work > 110)
    distance = cv2.distanceTransform((~centre_line).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    size = (max(1, round(glyph.shape[1] * scale)), max(1, round(glyph.shape[0] * scale)))
    distance = cv2.resize(distance, size, interpolation=cv2.INTER_LINEAR) * (scale / work_scale)
    radius = stroke / 2 * (1 + variation * np.clip(_smooth_noise(distance.shape, rng, 4), -1.5, 1.5))
    return np.clip(radius - distance + 0.5, 0, 1)


def _overlap(shape: tuple[int, int], patch_shape: tuple[int, int], centre) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """The frame and patch slices where a patch centred at (row, col) lies on a frame of `shape`."""
    top, left = round(centre[0] - patch_shape[0] / 2), round(centre[1] - patch_shape[1] / 2)
    rows = slice(max(0, top), max(0, min(shape[0], top + patch_shape[0])))
    cols = slice(max(0, left), max(0, min(shape[1], left + patch_shape[1])))
    return (rows, cols), (slice(rows.start - top, rows.stop - top), slice(cols.start - left, cols.stop - left))


def _ink(surface: np.ndarray, patch: np.ndarray, centre, colour, opaque: bool = False) -> np.ndarray:
    """`surface` (changed in place) with ink of `colour` laid as the 0-1 mask `patch` centred at (row, col).

    Dye darkens what is under it, so by default ink multiplies; `opaque` paints over instead, for
    light ink on dark ground.
    """
    frame_part, patch_part = _overlap(surface.shape[:2], patch.shape, centre)
    region = surface[frame_part].astype(np.float32)
    cover = patch[patch_part][..., None] if surface.ndim == 3 else patch[patch_part]
    colour = np.asarray(colour, dtype=np.float32)
    inked = region * (1 - cover) + colour * cover if opaque else region * (1 - cover * (1 - colour / 255))
    surface[frame_part] = np.clip(inked + 0.5, 0, 255).astype(np.uint8)
    return surface


def _write(surface: np.ndarray, digit: np.ndarray, rng: np.random.Generator, height: float, stroke: float, colour, centre=None, **pen) -> np.ndarray:
    """`surface` with the digit written, with uneven pen pressure, at `centre` (row, col) or a random spot that keeps it inside."""
    patch = _pen(digit, height, stroke, rng, **pen)
    patch *= 1 - 0.2 * np.abs(_smooth_noise(patch.shape, rng, 3))
    if centre is None:
        centre = np.array(patch.shape) / 2 + rng.uniform(0, 1, 2) * np.maximum(np.array(surface.shape[:2]) - patch.shape, 0)
    return _ink(surface, patch, centre, colour)


def _inner(surface: np.ndarray, margin: float) -> np.ndarray:
    """A view of `surface` without a `margin` share of its height and width on each side: writing there shows in a cropped photo."""
    rows, cols = int(margin * surface.shape[0]), int(margin * surface.shape[1])
    return surface[rows : surface.shape[0] - rows, cols : surface.shape[1] - cols]


def _lighting(shape: tuple[int, int], rng: np.random.Generator, strength: float, vignette: float = 0.0) -> np.ndarray:
    """A coarse light field, at most 1: a linear fall-off of `strength` across the frame and a darker rim."""
    rows, cols = _grid(shape)
    angle = rng.uniform(0, 2 * np.pi)
    field = 1 + strength / 2 * (np.cos(angle) * cols + np.sin(angle) * rows) - vignette * (rows**2 + cols**2) / 2
    return field / field.max()


def _shadow(shape: tuple[int, int], rng: np.random.Generator, darkness: float) -> np.ndarray:
    """A coarse cast shadow (a phone or a hand): a blurred half-plane or blob that darkens by `darkness`."""
    rows, cols = _grid(shape)
    if rng.random() < 0.6:
        angle = rng.uniform(0, 2 * np.pi)
        side = (cols - rng.uniform(-0.6, 0.6)) * np.cos(angle) + (rows - rng.uniform(-0.6, 0.6)) * np.sin(angle)
        cover = 1 / (1 + np.exp(-side / rng.uniform(0.03, 0.2)))
    else:
        distance = np.hypot(cols - rng.uniform(-1, 1), (rows - rng.uniform(-1, 1)) * rng.uniform(0.5, 1.5))
        cover = 1 / (1 + np.exp((distance - rng.uniform(0.4, 0.9)) / 0.1))
    return 1 - darkness * cover


def _shade(pixels: np.ndarray, field: np.ndarray) -> np.ndarray:
    """`pixels` multiplied by the coarse 0-1 `field` (one value per cell, or one per cell and channel), resized up."""
    if pixels.ndim == 3 and field.ndim == 2:
        field = field[..., None] * np.ones(3, dtype=np.float32)
    return cv2.multiply(pixels, _upsize(np.clip(255 * field + 0.5, 0, 255).astype(np.uint8), pixels.shape[:2]), scale=1 / 255)


def _expose(pixels: np.ndarray, light: np.ndarray, rng: np.random.Generator, cast: float = 0.08) -> np.ndarray:
    """`pixels` lit by the coarse field `light` (0-1), with a camera's warm or cool colour cast."""
    warmth = rng.uniform(-cast, cast)
    tint = np.array([1 + warmth, 1, 1 - warmth], dtype=np.float32) / (1 + abs(warmth))
    return _shade(pixels, light[..., None] * tint if pixels.ndim == 3 else light)


def _normal(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Standard normal float32 noise, quantised to 256 levels; several times faster than `rng.standard_normal`."""
    byte_values = np.frombuffer(rng.bytes(shape[0] * shape[1]), dtype=np.uint8).reshape(shape)
    return cv2.LUT(byte_values, NORMAL_BY_BYTE)


def _camera(pixels: np.ndarray, rng: np.random.Generator, noise: tuple[float, float] = (2, 7)) -> np.ndarray:
    """A phone sensor: a little defocus, then grain that is mostly in brightness."""
    if rng.random() < 0.8:
        pixels = cv2.GaussianBlur(pixels, (5, 5), rng.uniform(0.4, 1.3))
    grain = (_normal(pixels.shape[:2], rng) * rng.uniform(*noise)).astype(np.int16)
    if pixels.ndim == 3:
        grain = cv2.merge([grain] * 3)
    return cv2.add(pixels, grain, dtype=cv2.CV_8U)


def _quad(centre, size: tuple[float, float], angle: float, tilt: float, rng: np.random.Generator) -> np.ndarray:
    """The corners of a `size` (width, height) rectangle, turned by `angle` degrees and pulled out of square by `tilt`."""
    width, height = size
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float32) * [width / 2, height / 2]
    corners += rng.uniform(-tilt, tilt, (4, 2)) * [width, height]
    turn = np.deg2rad(angle)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]], dtype=np.float32)
    return (corners @ rotation.T + centre).astype(np.float32)


def _visible_spot(quad: np.ndarray, sheet_shape: tuple[int, int], shape: tuple[int, int], clearance: float, rng: np.random.Generator):
    """A (row, col) on a sheet laid on `quad` that shows in the frame at least `clearance` pixels inside both the frame and the sheet."""
    sheet_height, sheet_width = sheet_shape
    corners = np.float32([[0, 0], [sheet_width, 0], [sheet_width, sheet_height], [0, sheet_height]])
    to_sheet = cv2.getPerspectiveTransform(quad, corners)
    for _attempt in range(30):
        point = rng.uniform(clearance, np.maximum(np.array([shape[1], shape[0]]) - clearance, clearance + 1))
        if cv2.pointPolygonTest(quad, tuple(float(value) for value in point), True) > clearance:
            col, row = cv2.perspectiveTransform(point.reshape(1, 1, 2).astype(np.float32), to_sheet)[0, 0]
            return row, col
    return sheet_height / 2, sheet_width / 2


def _lay(background: np.ndarray, sheet: np.ndarray, quad: np.ndarray, rng: np.random.Generator, shadow: float) -> np.ndarray:
    """`sheet` warped onto `quad` (corners clockwise from top left) over `background`, casting a soft shadow of `shadow` darkness."""
    height, width = background.shape[:2]
    coarse = _field_shape(background.shape[:2], 2 * FIELD_CELLS)
    scale = coarse[1] / width
    outline = np.zeros(coarse, dtype=np.float32)
    offset = rng.uniform(-0.012, 0.012, 2) * max(height, width)
    cv2.fillConvexPoly(outline, np.round((quad + offset) * scale).astype(np.int32), 1.0)
    background = _shade(background, 1 - shadow * cv2.GaussianBlur(outline, (0, 0), 1.5))
    sheet_height, sheet_width = sheet.shape[:2]
    corners = np.float32([[0, 0], [sheet_width, 0], [sheet_width, sheet_height], [0, sheet_height]])
    matrix = cv2.getPerspectiveTransform(corners, quad)
    return cv2.warpPerspective(sheet, matrix, (width, height), dst=background, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT)


def _straighten(image: np.ndarray, rng: np.random.Generator, max_angle: float, zoom: float = 1.08) -> np.ndarray:
    """A flat sheet photographed slightly turned: rotated by up to `max_angle` degrees and zoomed so no corner shows."""
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), rng.uniform(-max_angle, max_angle), zoom)
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _grey(pixels: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY) if pixels.ndim == 3 else pixels


def _pick(colours, rng: np.random.Generator):
    return colours[int(rng.integers(len(colours)))]


def _sheet_size(shape: tuple[int, int], rng: np.random.Generator) -> tuple[int, int]:
    """(height, width) of an A-series sheet, upright or sideways, filling 35-85% of a photo of `shape`."""
    area = rng.uniform(0.35, 0.85) * shape[0] * shape[1]
    aspect = 1.414 if rng.random() < 0.6 else 1 / 1.414
    sheet_height = int(np.sqrt(area * aspect))
    return sheet_height, int(area / sheet_height)


def paper_on_desk(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A sheet on a desk, photographed at an angle: a tilted quadrilateral, a soft shadow, phone noise, JPEG."""
    shape = _photo_size(rng)
    sheet_height, sheet_width = _sheet_size(shape, rng)
    sheet = _paper((sheet_height, sheet_width), _white_paper(rng), rng)
    height = rng.uniform(0.1, 0.3) * shape[0]
    centre = np.array([shape[1], shape[0]]) * rng.uniform(0.4, 0.6, 2)
    quad = _quad(centre, (sheet_width, sheet_height), rng.uniform(-25, 25), rng.uniform(0.02, 0.08), rng)
    spot = _visible_spot(quad, sheet.shape[:2], shape, 0.7 * height, rng)
    sheet = _write(sheet, digit, rng, height, height * rng.uniform(0.05, 0.13), _pick(PENS, rng), centre=spot)
    frame = _lay(_desk(shape, rng), sheet, quad, rng, rng.uniform(0.1, 0.35))
    light = _lighting(shape, rng, rng.uniform(0.1, 0.45), rng.uniform(0, 0.3)) * _shadow(shape, rng, rng.uniform(0.2, 0.5))
    return _jpeg(_camera(_expose(frame, light, rng), rng), rng)


def _bezel(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A monitor's plastic bezel filling the frame, with a strip of the lit screen along the top or bottom."""
    frame = _paper(shape, rng.uniform(18, 45) * np.ones(3), rng, texture=0.15)
    screen = rng.uniform(70, 200) * np.array([rng.uniform(0.8, 1), rng.uniform(0.85, 1), 1])
    depth = int(rng.uniform(0.05, 0.2) * shape[0])
    rows = slice(0, depth) if rng.random() < 0.5 else slice(shape[0] - depth, shape[0])
    frame[rows] = _paper((depth, shape[1]), screen, rng, texture=0.1)
    return frame


def sticky_note(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A pastel sticky note, slightly turned, on a desk or a monitor bezel; the digit in marker or pen."""
    shape = _photo_size(rng)
    side = int(np.sqrt(rng.uniform(0.25, 0.7) * shape[0] * shape[1]))
    note = _paper((side, side), _pick(NOTES, rng), rng, texture=0.02)
    # The glued strip lies flat and the free end curls up, so the note darkens toward one edge.
    note = _shade(note, np.linspace(1, rng.uniform(0.8, 0.96), 16, dtype=np.float32)[:, None].repeat(2, 1))
    height = side * rng.uniform(0.4, 0.75)
    marker = rng.random() < 0.6
    stroke = height * (rng.uniform(0.07, 0.15) if marker else rng.uniform(0.04, 0.08))
    note = _write(note, digit, rng, height, stroke, _pick(MARKERS, rng) if marker else _pick(PENS, rng))
    centre = np.array([shape[1], shape[0]]) * rng.uniform(0.35, 0.65, 2)
    background = _desk(shape, rng) if rng.random() < 0.6 else _bezel(shape, rng)
    frame = _lay(background, note, _quad(centre, (side, side), rng.uniform(-15, 15), rng.uniform(0.0, 0.04), rng), rng, rng.uniform(0.15, 0.4))
    return _jpeg(_camera(_expose(frame, _lighting(shape, rng, rng.uniform(0.1, 0.4), rng.uniform(0, 0.3)), rng), rng), rng)


def _glare(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A coarse 0-1 field: a ceiling light's reflection, a round blob or a long streak."""
    rows, cols = _grid(shape)
    angle = rng.uniform(0, np.pi)
    cols, rows = cols - rng.uniform(-0.6, 0.6), rows - rng.uniform(-0.6, 0.6)
    along, across = cols * np.cos(angle) + rows * np.sin(angle), -cols * np.sin(angle) + rows * np.cos(angle)
    length, width = (rng.uniform(0.6, 2.0), rng.uniform(0.05, 0.2)) if rng.random() < 0.5 else (rng.uniform(0.15, 0.5), rng.uniform(0.12, 0.4))
    return np.exp(-((along / length) ** 2) - (across / width) ** 2)


def _board_edges(board: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The board's aluminium frame and the wall beyond it, along one or two sides."""
    wall = rng.uniform(110, 220) * np.array([1, rng.uniform(0.9, 1), rng.uniform(0.75, 1)])
    metal = rng.uniform(150, 215)
    for side in rng.choice(4, size=int(rng.integers(1, 3)), replace=False):
        # Turn the board so that this side is on top, draw wall, frame and the frame's dark lip, turn back.
        turned = np.rot90(board, side)
        depth = int(rng.uniform(0.04, 0.15) * turned.shape[0])
        rim = max(4, int(depth * rng.uniform(0.3, 0.6)))
        turned[: depth - rim] = wall
        turned[depth - rim : depth] = metal * np.linspace(1.1, 0.8, rim)[:, None, None].clip(0, 255 / metal)
        turned[depth - 2 : depth] = metal * 0.4
    return board


def whiteboard_glare(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Marker on a whiteboard under grey uneven light, a bright glare on the gloss, the board's edge in view."""
    shape = _photo_size(rng)
    board = _paper(shape, rng.uniform(185, 235) * np.array([1, 1, rng.uniform(0.97, 1.04)]), rng, texture=0.006)
    # Old writing never quite wipes off: faint grey smears, long in the direction the eraser went.
    rows, cols = _field_shape(shape, 2 * FIELD_CELLS)
    smears = np.clip(_upsize(_smooth_noise((rows, max(2, cols // 6)), rng, 10), (rows, cols)) - 1.0, 0, 1) * rng.uniform(0.03, 0.12)
    board = _shade(board, 1 - smears)
    height = rng.uniform(0.2, 0.5) * shape[0]
    # The digit goes on the board's inner part, clear of the frame drawn next.
    _write(_inner(board, 0.16), digit, rng, height, height * rng.uniform(0.06, 0.12), _pick(MARKERS, rng), variation=0.15)
    board = _board_edges(board, rng)
    board = _expose(board, _lighting(shape, rng, rng.uniform(0.2, 0.5), rng.uniform(0.1, 0.4)), rng, cast=0.05)
    # Glare is light added on top of the picture: it washes the ink out as much as the board, though
    # never quite all of it, so the digit is still there to be read.
    glare = _upsize(np.clip(255 * _glare(shape, rng) * rng.uniform(0.55, 0.88), 0, 255).astype(np.uint8), shape)
    board = cv2.add(cv2.multiply(board, cv2.merge([255 - glare] * 3), scale=1 / 255), cv2.merge([glare] * 3))
    return _jpeg(_camera(board, rng), rng)


def _lines(sheet: np.ndarray, positions, colour, thickness: int, vertical: bool) -> np.ndarray:
    """Printed lines across `sheet` at `positions` (pixels)."""
    for position in positions:
        at = round(position)
        start, end = ((at, 0), (at, sheet.shape[0])) if vertical else ((0, at), (sheet.shape[1], at))
        cv2.line(sheet, start, end, tuple(float(channel) for channel in colour), thickness, cv2.LINE_AA)
    return sheet


def _photographed_sheet(sheet: np.ndarray, rng: np.random.Generator, max_angle: float = 4.0) -> bytes:
    """A close-up phone photo of a flat sheet: slightly turned, uneven light, noise, JPEG."""
    sheet = _straighten(sheet, rng, max_angle)
    sheet = _expose(sheet, _lighting(sheet.shape[:2], rng, rng.uniform(0.1, 0.45), rng.uniform(0, 0.35)), rng)
    return _jpeg(_camera(sheet, rng), rng)


def ruled_paper(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Notebook paper, blue rules and a red margin, the digit written across the lines."""
    shape = _photo_size(rng, 400, 900)
    sheet = _paper(shape, _white_paper(rng), rng)
    spacing = rng.uniform(0.04, 0.09) * shape[0]
    blue = (rng.uniform(140, 195), rng.uniform(175, 215), rng.uniform(215, 245))
    sheet = _lines(sheet, np.arange(rng.uniform(0, 3) * spacing, shape[0], spacing), blue, int(rng.integers(1, 4)), vertical=False)
    margin = rng.uniform(0.08, 0.3) * shape[1]
    sheet = _lines(sheet, [margin] if rng.random() < 0.7 else [margin, margin + 4], (225, 110, 120), int(rng.integers(1, 3)), vertical=True)
    height = spacing * rng.uniform(1.5, 4.0)
    _write(_inner(sheet, 0.06), digit, rng, height, height * rng.uniform(0.05, 0.12), _pick(PENS, rng))
    return _photographed_sheet(sheet, rng)


def graph_paper(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Squared paper, 4-10 mm cells in light blue, grey or green, sometimes bolder every fifth line; the digit over the grid."""
    shape = _photo_size(rng, 400, 900)
    sheet = _paper(shape, _white_paper(rng), rng)
    cell = rng.uniform(0.025, 0.07) * shape[0]
    colour = np.array(_pick([(150, 185, 225), (175, 175, 180), (150, 200, 160), (120, 170, 220)], rng))
    bold = rng.random() < 0.4
    for vertical, length in ((False, shape[0]), (True, shape[1])):
        positions = np.arange(rng.uniform(0, cell), length, cell)
        sheet = _lines(sheet, positions, colour, 1, vertical)
        if bold:
            sheet = _lines(sheet, positions[int(rng.integers(5)) :: 5], 0.8 * colour, 2, vertical)
    height = cell * rng.uniform(2.5, 7)
    _write(_inner(sheet, 0.06), digit, rng, height, height * rng.uniform(0.05, 0.12), _pick(PENS, rng))
    return _photographed_sheet(sheet, rng, 3.0)


def faint_pencil(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Light, thin graphite under a strong light fall-off or vignette: often only 15-30 grey levels of contrast."""
    shape = _photo_size(rng, 400, 900)
    paper = _paper(shape, _white_paper(rng), rng, texture=0.015)
    light = _lighting(shape, rng, rng.uniform(0.3, 0.6), rng.uniform(0.1, 0.45))
    height = rng.uniform(0.15, 0.5) * shape[0]
    patch = _pen(digit, height, height * rng.uniform(0.03, 0.07), rng, variation=0.35)
    # Graphite catches only on the paper's tooth, so a pencil line is broken into grains.
    patch *= np.clip(0.6 + 0.5 * cv2.GaussianBlur(_normal(patch.shape, rng), (0, 0), 0.8), 0, 1)
    centre = np.array(shape) * rng.uniform(0.3, 0.7, 2)
    # The contrast is chosen as it will be seen, after the light falls off where the digit is.
    local_light = light[int(centre[0] / shape[0] * light.shape[0]), int(centre[1] / shape[1] * light.shape[1])]
    contrast = (rng.uniform(15, 30) if rng.random() < 0.6 else rng.uniform(30, 60)) / local_light
    graphite = max(0.0, float(paper[int(centre[0]), int(centre[1])].mean()) - contrast)
    paper = _ink(paper, patch, centre, (graphite, graphite, graphite * 1.02), opaque=True)
    pixels = _camera(_expose(paper, light, rng, cast=0.04), rng, noise=(1.5, 4))
    return _jpeg(pixels, rng, 60, 95) if rng.random() < 0.7 else _png(_grey(pixels))


def _mark(shape: tuple[int, int], kind: str, centre, size: float, stroke: float, rng: np.random.Generator) -> np.ndarray:
    """One stray mark, 0-1, about `size` pixels across, centred at (row, col)."""
    mask = np.zeros(shape, dtype=np.float32)
    row, col = centre
    thickness = max(1, round(stroke))
    if kind == "dot":
        cv2.circle(mask, (round(col), round(row)), max(1, round(stroke * rng.uniform(0.5, 1.2))), 1.0, -1, cv2.LINE_AA)
    elif kind == "dash":
        turn = rng.uniform(0, np.pi)
        dx, dy = np.cos(turn) * size / 2, np.sin(turn) * size / 2
        cv2.line(mask, (round(col - dx), round(row - dy)), (round(col + dx), round(row + dy)), 1.0, thickness, cv2.LINE_AA)
    elif kind == "scribble":
        points = np.array([col, row]) + rng.uniform(-size / 2, size / 2, (int(rng.integers(4, 9)), 2))
        cv2.polylines(mask, [points.astype(np.int32)], False, 1.0, max(1, thickness // 2), cv2.LINE_AA)
    else:
        axes = (max(2, round(size * rng.uniform(0.3, 0.6))), max(2, round(size * rng.uniform(0.15, 0.35))))
        cv2.ellipse(mask, (round(col), round(row)), axes, rng.uniform(0, 180), 0, 360, rng.uniform(0.25, 0.55), -1)
        mask = cv2.GaussianBlur(mask, (0, 0), size * 0.12)
    return mask


def stray_marks(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A clean drawing or scan with a stray dot, dash, scribble or smudge near the digit, never touching it."""
    side = int(rng.integers(200, 600))
    shape = (side, int(side * rng.uniform(0.8, 1.3)))
    height = side * rng.uniform(0.35, 0.6)
    stroke = height * rng.uniform(0.06, 0.13)
    patch = _pen(digit, height, stroke, rng, variation=0.15)
    centre = np.array(shape) / 2 + rng.uniform(-0.08, 0.08, 2) * side
    ink = _ink(np.zeros(shape, dtype=np.uint8), patch, centre, 255, opaque=True).astype(np.float32) / 255
    keep_clear = cv2.dilate((ink > 0.05).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    for _ in range(1 if rng.random() < 0.6 else 2):
        kind = rng.choice(["dot", "dash", "scribble", "smudge"])
        for _attempt in range(20):
            # Somewhere in a ring around the glyph, within about half its height of its edge.
            turn = rng.uniform(0, 2 * np.pi)
            spot = centre + rng.uniform(0.55, 0.95) * height * np.array([np.sin(turn), 0.8 * np.cos(turn)])
            mark = _mark(shape, kind, spot, height * rng.uniform(0.12, 0.3), stroke, rng)
            if mark.max() > 0 and not (keep_clear & (mark > 0.02)).any():
                ink = np.maximum(ink, mark)
                break
    if rng.random() < 0.3:
        pixels = 255 * ink * rng.uniform(0.85, 1)
    else:
        pixels = _grey(_ink(_paper(shape, _white_paper(rng), rng, 0.004), ink, np.array(shape) / 2, _pick(PENS, rng)))
    return _png(pixels) if rng.random() < 0.6 else _jpeg(cv2.GaussianBlur(np.asarray(pixels, dtype=np.uint8), (3, 3), 0.6), rng, 75, 95)


def salt_pepper_scan(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A flatbed scan with salt-and-pepper specks (1-5% of pixels), or dithered to pure black and white, or both."""
    side = int(rng.integers(200, 700))
    shape = (side, int(side * rng.uniform(0.8, 1.25)))
    height = side * rng.uniform(0.3, 0.65)
    paper = _expose(_paper(shape, rng.uniform(200, 245), rng, 0.02), _lighting(shape, rng, rng.uniform(0, 0.25)), rng)
    pixels = _write(paper, digit, rng, height, height * rng.uniform(0.06, 0.13), rng.uniform(10, 60))
    mode = rng.choice(["specks", "dither", "both"], p=[0.4, 0.35, 0.25])
    if mode != "specks":
        pixels = np.asarray(Image.fromarray(pixels).convert("1"), dtype=np.uint8) * 255
    if mode != "dither":
        share = rng.uniform(0.01, 0.05)
        specks = rng.random(shape, dtype=np.float32)
        pixels = np.where(specks < share / 2, 0, np.where(specks > 1 - share / 2, 255, pixels)).astype(np.uint8)
    # Pure black and white scans are stored as 1-bit images, as TIFF scans are.
    return _png(pixels) if mode == "specks" else encode(Image.fromarray(pixels).convert("1"))


def thick_marker(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A fat, uneven felt marker (strokes 15-30% of the digit's height) that bleeds into the paper."""
    shape = _photo_size(rng, 400, 800) if rng.random() < 0.6 else (int(rng.integers(250, 600)),) * 2
    height = rng.uniform(0.3, 0.6) * min(shape)
    patch = _pen(digit, height, height * rng.uniform(0.15, 0.3), rng, variation=0.4)
    # Ink wicks along the paper fibres: a soft, ragged fringe around every stroke.
    fringe = cv2.GaussianBlur(patch, (0, 0), rng.uniform(0.5, 2.5)) * (1 + 0.4 * _smooth_noise(patch.shape, rng, 30))
    patch = np.clip(np.maximum(patch, fringe * 1.4 - 0.3), 0, 1)
    pixels = _ink(_paper(shape, _white_paper(rng), rng), patch, np.array(shape) * rng.uniform(0.4, 0.6, 2), _pick(MARKERS, rng))
    if rng.random() < 0.5:
        return _png(_grey(pixels))
    return _jpeg(_camera(_expose(pixels, _lighting(shape, rng, rng.uniform(0.1, 0.35)), rng), rng), rng)


def tiny_image(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A thumbnail 12-16 pixels a side (sometimes up to 32), or an 8x8 block digit blown up to 32-256 pixels."""
    if rng.random() < 0.3:
        blocks = cv2.resize(digit, (8, 8), interpolation=cv2.INTER_AREA).astype(np.float32)
        # Such digits come with 17 grey levels (0-16), like the UCI optical digits.
        levels = np.round(blocks / max(1.0, blocks.max()) * 16) / 16 * 255
        side = int(rng.integers(32, 257))
        pixels = cv2.resize(levels, (side, side), interpolation=cv2.INTER_NEAREST if rng.random() < 0.6 else cv2.INTER_LINEAR)
        return _png(255 - pixels if rng.random() < 0.5 else pixels)
    side = int(rng.integers(12, 17)) if rng.random() < 0.75 else int(rng.integers(17, 33))
    large = side * 8
    patch = _pen(digit, large * rng.uniform(0.6, 0.9), large * rng.uniform(0.07, 0.13), rng, variation=0.1)
    background, ink = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    if abs(background.mean() - ink.mean()) < 90:
        ink = rng.uniform(0, 70, 3) if background.mean() > 127 else rng.uniform(185, 255, 3)
    canvas = np.empty((large, large, 3), dtype=np.uint8)
    canvas[:] = background.astype(np.uint8)
    canvas = _ink(canvas, patch, np.array([large, large]) / 2 + rng.uniform(-0.08, 0.08, 2) * large, ink, opaque=True)
    pixels = cv2.resize(canvas, (side, side), interpolation=cv2.INTER_AREA)
    pixels = _grey(pixels) if rng.random() < 0.5 else pixels
    return _png(pixels) if rng.random() < 0.7 else _jpeg(pixels, rng, 70, 95)


def _boxes(paper: np.ndarray, rng: np.random.Generator, box: tuple[int, int, int, int], gap: int) -> np.ndarray:
    """A printed row of boxes through `box` (top, left, height, width), running off both sides, maybe a small label."""
    top, left, height, width = box
    colour = _pick([(20, 20, 25), (20, 20, 25), (30, 60, 140), (150, 40, 50), (90, 90, 95)], rng)
    thickness = int(rng.integers(1, 4))
    ticks = gap == 0 and rng.random() < 0.4
    for neighbour in range(-4, 5):
        x = left + neighbour * (width + gap)
        cv2.rectangle(paper, (x, top), (x + width, top + height), colour, thickness, cv2.LINE_AA)
        if ticks:
            cv2.line(paper, (x + width // 2, top + height), (x + width // 2, top + height - height // 6), colour, 1, cv2.LINE_AA)
    if rng.random() < 0.4:
        label = str(rng.choice(["Qty", "No.", "Age", "Code", "Item"]))
        cv2.putText(paper, label, (left, max(12, top - 6)), cv2.FONT_HERSHEY_SIMPLEX, height / 160, (120, 120, 125), 1, cv2.LINE_AA)
    return paper


def form_box(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A digit written in one printed box of a form, its strokes touching or crossing the border; neighbours cut off at the sides."""
    box_height = int(rng.integers(60, 200))
    box_width = int(box_height * rng.uniform(0.75, 1.2))
    gap = 0 if rng.random() < 0.5 else int(box_width * rng.uniform(0.1, 0.4))
    shape = (int(box_height * rng.uniform(1.4, 2.2)), int(box_width * rng.uniform(1.6, 3.2)))
    tint = _white_paper(rng) if rng.random() < 0.7 else np.array(_pick(NOTES, rng)) * 0.3 + 175
    top = int((shape[0] - box_height) * rng.uniform(0.35, 0.75))
    left = int((shape[1] - box_width) / 2 + rng.uniform(-0.1, 0.1) * box_width)
    paper = _boxes(_paper(shape, tint, rng, 0.01), rng, (top, left, box_height, box_width), gap)
    height = box_height * rng.uniform(0.8, 1.15)
    patch = _pen(digit, height, height * rng.uniform(0.05, 0.12), rng)
    # Off the box's centre, so that strokes run into its border.
    centre = np.array([top + box_height / 2, left + box_width / 2]) + rng.uniform(-0.25, 0.25, 2) * [box_height, box_width]
    paper = _ink(paper, patch, centre, _pick(PENS, rng))
    if rng.random() < 0.5:
        return _png(_grey(paper))
    return _jpeg(_camera(_expose(paper, _lighting(shape, rng, rng.uniform(0.1, 0.3)), rng), rng, noise=(1, 4)), rng, 60, 92)


def mid_grey_background(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A light digit on mid grey (background 100-160, digit 40-90 levels brighter), or now and then a darker one."""
    side = int(rng.integers(150, 600))
    shape = (side, int(side * rng.uniform(0.8, 1.25)))
    background = rng.uniform(100, 160)
    step = rng.uniform(40, 90) * (1 if rng.random() < 0.7 else -1)
    height = side * rng.uniform(0.35, 0.8)
    patch = _pen(digit, height, height * rng.uniform(0.07, 0.16), rng, variation=0.15)
    pixels = _paper(shape, background, rng, texture=rng.uniform(0, 0.02))
    pixels = _ink(pixels, patch, np.array(shape) * rng.uniform(0.4, 0.6, 2), background + step, opaque=True)
    if rng.random() < 0.5:
        pixels = _camera(pixels, rng, noise=(0.5, 4))
    return _png(pixels) if rng.random() < 0.6 else _jpeg(pixels, rng, 60, 95)


def white_side_bars(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """The digit with bright bars down one or both sides (letterboxing, the edge of a scanned page), 5-20% of the width each."""
    side = int(rng.integers(150, 500))
    shape = (side, int(side * rng.uniform(0.9, 1.5)))
    sides = [(True, False), (False, True), (True, True)][int(rng.integers(3))]
    left, right = (int(rng.uniform(0.05, 0.2) * shape[1]) * chosen for chosen in sides)
    light_on_dark = rng.random() < 0.75
    height = side * rng.uniform(0.5, 0.85)
    patch = _pen(digit, height, height * rng.uniform(0.08, 0.16), rng, variation=0.1)
    # The bars frame the picture rather than cover it, so a digit too wide for the space between is drawn smaller.
    room = shape[1] - left - right
    if patch.shape[1] > room:
        patch = cv2.resize(patch, (room, max(1, round(patch.shape[0] * room / patch.shape[1]))), interpolation=cv2.INTER_AREA)
    ground = rng.uniform(0, 25) if light_on_dark else rng.uniform(120, 200)
    ink = rng.uniform(225, 255) if light_on_dark else ground - rng.uniform(90, 120)
    centre = (shape[0] / 2 + rng.uniform(-0.05, 0.05) * side, left + room / 2 + rng.uniform(-0.5, 0.5) * (room - patch.shape[1]))
    pixels = _ink(np.full(shape, ground, dtype=np.uint8), patch, centre, ink, opaque=True)
    bar = int(rng.uniform(200, 256))
    pixels[:, :left] = bar
    pixels[:, shape[1] - right :] = bar
    pixels = cv2.GaussianBlur(pixels, (5, 5), rng.uniform(0.3, 1.0))
    return _png(pixels) if rng.random() < 0.7 else _jpeg(pixels, rng, 70, 95)


SCENES: dict[str, Scene] = {
    "paper_on_desk": paper_on_desk,
    "sticky_note": sticky_note,
    "whiteboard_glare": whiteboard_glare,
    "ruled_paper": ruled_paper,
    "faint_pencil": faint_pencil,
    "stray_marks": stray_marks,
    "graph_paper": graph_paper,
    "salt_pepper_scan": salt_pepper_scan,
    "thick_marker": thick_marker,
    "tiny_image": tiny_image,
    "form_box": form_box,
    "mid_grey_background": mid_grey_background,
    "white_side_bars": white_side_bars,
}
