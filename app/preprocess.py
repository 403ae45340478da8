"""Turn any uploaded image into the 28x28 digit MNIST was made of.

Pure: bytes in, a float32 array out, no web framework and no model. The service, the
evaluation and the tests all call this module, so the image the model sees cannot drift.

MNIST's recipe, which `to_mnist` follows: white digit on black, cropped to the ink, scaled
to fit a 20x20 box keeping the aspect ratio (anti-aliased), then placed in a 28x28 frame
with its centre of mass at the centre.
"""

from __future__ import annotations

import io
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

import cv2
import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError
from scipy import ndimage

MNIST_SIZE = 28
MNIST_BOX = 20
ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")
DEFAULT_MAX_PIXELS = 25_000_000
# The first bytes of the accepted formats: such a file that fails to open is damaged, not foreign.
IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*", b"RIFF")

# Larger images are reduced by a whole factor to at most this many pixels a side (so between
# half and all of it): a digit needs far fewer, and every later step costs per pixel.
WORKING_SIDE = 256
# Images with fewer pixels than this a side are enlarged first, so that the filters below have
# pixels to work on; images this small are digits (thumbnails, MNIST itself), never noise.
MIN_WORKING_SIDE = 96
SMALL_IMAGE_SIDE = 32
# Fewer pixels than this across cannot hold a digit, however long the image is.
MIN_SIDE = 4
# A pixel this far (0-1) lighter or darker than all its neighbours is an impulse; salt or pepper
# on this share of the pixels is impulse noise (a dirty scan, dithering) that a median filter removes.
IMPULSE_STEP = 0.25
IMPULSE_SHARE = 0.002
# The sheet, note or board is looked for at this many pixels a side: its outline is coarse.
SURFACE_SIDE = 128
# A surface covers this share of the frame: less is a detail, more is the whole picture.
SURFACE_SHARE = (0.12, 0.9)
# Paper inside a surface's outline: ink and shadows leave at least this share of it light.
SURFACE_FILL = 0.8
# A surface is this much (0-1) lighter than what lies around it, and its edge this share of its size.
SURFACE_CONTRAST = 0.1
SURFACE_MARGIN = 0.03
# The sheet is what is lighter than one of these shares of the way from the desk's level to the paper's.
SURFACE_SPLITS = (0.25, 0.4, 0.55)
# At a sheet's edge the level changes by at least this share of the contrast per pixel; light
# falling off across the page changes more slowly (0.12 took such edges for sheets, measured).
SURFACE_SHARPNESS = 0.2
# The background is judged at BACKGROUND_SIDE pixels a side: first a median over this share of
# the image, to tell which way the ink goes; then the paper's envelope under strokes up to
# a few times the strokes' width wide (within a share of the image), which follows shadows,
# vignettes and glare whatever the ink's share.
BACKGROUND_SIDE = 64
BACKGROUND_WINDOW = 0.5
BACKGROUND_STROKES, BACKGROUND_MEDIAN_STROKES = 3.0, 6.0
BACKGROUND_OPENING, BACKGROUND_MEDIAN = (0.08, 0.3), (0.12, 0.5)
# Strokes at most this wide (pixels at BACKGROUND_SIDE) are thin: pencil, pen, not marker.
BACKGROUND_THIN_STROKE = 2.5
# Which way the ink goes is judged at this many pixels a side, against medians over windows of
# these shares of it, where one side holds this many times the other's thin contrast.
POLARITY_SIDE = 96
POLARITY_WINDOWS = (0.1, 0.3)
# A border is plain when this share of its pixels lie within this many grey levels of its median.
PLAIN_BORDER_SHARE, PLAIN_BORDER_SPREAD = 0.95, 20
POLARITY_MARGIN = 1.5
# Thin contrast summed over the image (grey levels above the noise) per pixel, below which a window does not decide.
POLARITY_MIN_CONTRAST = 0.02
# Paper this much (0-1) lighter than the image's usual paper is a region of the other polarity.
OPPOSITE_PAPER = 0.5
# Such a band along a side is at most this share of the image wide.
OPPOSITE_BAND = 0.4
# Ink stands at least this far (0-1) above the background, and this many times the noise.
MIN_CONTRAST = 0.03
MIN_SIGNAL_TO_NOISE = 3.0
# Ink weaker than this share of its full strength is paper texture, shadow or JPEG noise.
NOISE_FLOOR = 0.15
# Ink at least this share of the image's strongest, and this many times the noise, makes up the strokes.
STROKE_LEVEL, STROKE_NOISE = 0.35, 3.5
# Ink whose strongest stands less than this many times the noise above the paper (faint pencil on
# mottled paper) is found by its shape, as ridges about this wide (a Gaussian scale, in pixels):
# the paper's blotches are as strong as the strokes but broad.
FAINT_INK_SNR, RIDGE_SCALE = 10.0, 1.5
# A printed line runs straight over at least this share of the image's width (or height), and
# is at most this share of its height thick: pen strokes are thicker, or shorter.
LINE_SPAN = 0.55
LINE_THICKNESS = 0.03
# Lines across at least this share of the picture, two or more of them, may be up to this share thick.
FULL_SPAN, FULL_LINE_THICKNESS = 0.95, 0.06
# Gaps in a printed line (a faint or broken one) up to this share of the image are closed.
LINE_GAP = 0.03
# Rows of tolerance for a line that wavers (paper not quite flat).
LINE_TILT_ROWS = 3
# Box sides run at least this share of the image, and meet within this many pixels at corners.
BOX_SPAN, BOX_JOIN = 0.2, 4
# A box's sides are at most this many times as thick as its thinnest side.
BOX_FAMILY_THICKNESS = 1.6
# A form cell's side may run on past the line it ends on by this share of its length: a label
# printed over the cell joins its side.
CELL_SIDE_OVERRUN = 0.15
# Lines lean at most this many degrees (a photo's tilt); the lean is measured on straight runs
# of at least this share of the image.
LINE_MAX_SKEW, LINE_SKEW_SPAN = 8.0, 0.3
# The lean is the median over at most this many of the strongest lines.
LINE_SKEW_LINES = 20
# The lean is measured at half size on images larger than this.
SKEW_SIDE = 128
# A piece of ink with at most this share of its pixels away from removed lines is a remnant of them.
REMNANT_OUTSIDE = 0.05
# A lone straight stroke is a printed line only if it crosses nearly the whole image; an upright
# one beside other digits, only if it crosses this much of it.
LONE_LINE_SPAN, ROW_PLUMB_SPAN = 0.8, 0.9
# A printed line is at most this many times as thick as the thinnest line of its family.
LINE_FAMILY_THICKNESS = 2.5
# Digit parts: components this close to the digit (share of its size) belong to it when they
# are at least this share of its ink; components overlapping its box when larger than a speck.
PART_GAP, PART_SHARE = 0.25, 0.15
BOX_MARGIN, SPECK_SHARE = 0.05, 0.01
# A component touching the image's edge counts this much when choosing the digit: frames,
# desk edges and scanner bars touch the edge, digits rarely do.
EDGE_WEIGHT = 0.25
# A component beside the digit is another digit of a written number when it is at least this share of the
# digit's height (and the digit at least this share of its), shares this share of the shorter one's rows,
# stands at most this many heights away and holds at least this share of the digit's ink...
DIGIT_BESIDE_HEIGHT, DIGIT_BESIDE_ROWS, DIGIT_BESIDE_GAP, DIGIT_BESIDE_INK = 0.6, 0.6, 1.5, 0.1
# ... and its ink per row is at least this share of the digit's stroke width (a 1 drawn by the same pen is).
DIGIT_BESIDE_PEN = 0.6
# The digit's box reaches at most this share of its size beyond its strokes, to take in their grey edges.
CROP_MARGIN = 0.05
# The digit is at least this share of the image's longer side.
MIN_DIGIT_SHARE = 0.04
# Strokes cover more than this share of an image only when it is texture, not a digit on paper.
MAX_INK_SHARE = 0.5
# Stroke width, in pixels of the 20x20 box, outside which strokes are thickened or thinned.
MIN_STROKE, MAX_STROKE, TARGET_STROKE = 1.2, 5.0, 2.2
# A hole in thickened hairlines at most this far (28x28 pixels) from its edge is a slit inside a stroke.
NARROW_HOLE = 1.5
# Ink thinner than this share of the digit's stroke width that comes out this many stroke widths
# beyond the digit's body on opposite sides is a line drawn across it, not one of its strokes.
HAIRLINE_SHARE, HAIRLINE_REACH = 0.8, 1.5
# What the opening leaves of less than this many squares of its pen is a blob on a hairline, not body.
HAIRLINE_BLOB = 2.0
# Fainter ink joins the chosen strokes where it connects to them, within this share of the digit's size around it.
FAINT_LEVEL, FAINT_REACH = 0.15, 0.25
EIGHT_NEIGHBOURS = np.ones((3, 3), dtype=np.uint8)
# The eight neighbours without the pixel itself.
RING = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=np.uint8)

# The `info` keys that Pillow's `getexif` reads an orientation from, besides a TIFF's own tags.
ORIENTATION_SOURCES = frozenset({"exif", "Raw profile type exif", "XML:com.adobe.xmp", "xmp"})

ImageFile.LOAD_TRUNCATED_IMAGES = False
T = TypeVar("T")


class PreprocessError(Exception):
    """Base class: the upload cannot be turned into a digit."""


class EmptyImage(PreprocessError):
    """The upload has no bytes."""


class UnsupportedImage(PreprocessError):
    """The bytes are not an image in an accepted format."""


class CorruptImage(PreprocessError):
    """The bytes start like an image but cannot be decoded."""


class ImageTooLarge(PreprocessError):
    """The image has more pixels than allowed."""


class NoDigitFound(PreprocessError):
    """The image decodes but holds nothing that looks like ink."""


class OnlyNoise(NoDigitFound):
    """The image decodes but holds noise, texture or printing rather than pen strokes."""


class SeveralDigitsFound(PreprocessError):
    """The image holds digits written side by side; `digit` is the 28x28 image of them all, for a best guess."""

    def __init__(self, message: str, digit: np.ndarray):
        super().__init__(message)
        self.digit = digit


@dataclass(frozen=True)
class DecodedImage:
    """A decoded upload as grayscale floats in [0, 1], with its original format and size (upright, as the pixels are)."""

    pixels: np.ndarray
    format: str
    width: int
    height: int


def mnist_pixels_to_input(images: np.ndarray) -> np.ndarray:
    """Scale MNIST's uint8 pixels (0-255, white on black) to the model's float32 [0, 1]."""
    return np.asarray(images, dtype=np.float32) / 255.0


def preprocess(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, steps: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Bytes of an uploaded image -> (28, 28) float32 in [0, 1], white digit on black; `steps` as in `to_mnist`."""
    return to_mnist(decode(data, max_pixels).pixels, steps)


def decode(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, working_side: int = WORKING_SIDE, min_short_side: int = 0) -> DecodedImage:
    """Decode `data` to grayscale in [0, 1]: EXIF orientation applied, alpha flattened, first frame.

    Reduced to at most `working_side` a side, but never below `min_short_side` across (a long strip keeps its height).
    """
    if not data:
        raise EmptyImage("the upload is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
            return _decode_opened(image, max_pixels, working_side, min_short_side)
    except PreprocessError:
        raise
    except UnidentifiedImageError:
        if data.startswith(IMAGE_SIGNATURES):
            raise CorruptImage("the image is damaged: it starts like an image but its header cannot be read") from None
        raise UnsupportedImage("the upload is not an image in a supported format") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLarge(f"the image has more than {max_pixels:,} pixels") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error):
        raise CorruptImage("the image is truncated or corrupt and cannot be decoded") from None


def _decode_opened(image: Image.Image, max_pixels: int, working_side: int, min_short_side: int) -> DecodedImage:
    width, height = image.size
    if width < 1 or height < 1:
        raise CorruptImage("the image has no pixels")
    if width * height > max_pixels:
        raise ImageTooLarge(f"the image has {width * height:,} pixels; the limit is {max_pixels:,}")
    image_format = image.format or "unknown"
    if image.format == "JPEG":
        # The decoder can scale a photo down by 2, 4 or 8 and skip colour: far cheaper than full size.
        # Ask for just over half the working side: the result then needs at most one more halving.
        image.draft("L" if image.mode in ("L", "RGB") else None, (working_side // 2 + 1, working_side // 2 + 1))
    image.seek(0)
    image.load()
    if _may_carry_orientation(image):
        before = image.size
        ImageOps.exif_transpose(image, in_place=True)
        if image.size != before:
            width, height = height, width
    return DecodedImage(pixels=_to_gray(_reduce(image, working_side, min_short_side)), format=image_format, width=width, height=height)


def _may_carry_orientation(image: Image.Image) -> bool:
    """Whether the image has any of the metadata Pillow reads an orientation from (EXIF, XMP, TIFF tags)."""
    # Reading EXIF costs more than the rest of decoding a small PNG, which mostly has none.
    return not ORIENTATION_SOURCES.isdisjoint(image.info) or hasattr(image, "tag_v2")


def _reduce(image: Image.Image, working_side: int, min_short_side: int = 0) -> Image.Image:
    """Average blocks of a whole number of pixels so the image is at most `working_side` a side, and `min_short_side` across."""
    factor = -(-max(image.size) // working_side)
    if min_short_side:
        factor = min(factor, max(1, min(image.size) // min_short_side))
    if factor <= 1:
        return image
    if image.mode not in ("L", "LA", "RGB", "RGBA", "F", "I"):
        image = image.convert("RGBA" if _has_alpha(image) else "RGB")
    if image.mode == "RGB":
        image = image.convert("L")  # One band to average instead of three.
    return image.reduce(factor)


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info


def _to_gray(image: Image.Image) -> np.ndarray:
    """Any mode -> luminance in [0, 1]; alpha is flattened so that strokes stay visible."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        values = np.asarray(image, dtype=np.float32)
        top = 65535.0 if values.max(initial=0) > 255 else 255.0
        return np.clip(values / top, 0.0, 1.0)
    if image.mode == "1":
        image = image.convert("L")
    alpha = None
    if _has_alpha(image):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
        gray = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        alpha = rgba[..., 3]
    else:
        gray = np.asarray(image if image.mode == "L" else image.convert("L"), dtype=np.float32) * np.float32(1 / 255)
    if alpha is None or alpha.min() > 0.98:
        return gray
    return _flatten_alpha(gray, alpha)


def _flatten_alpha(gray: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composite over the backdrop that keeps the opaque part visible.

    A drawing canvas is transparent with opaque strokes of any colour: composite over the
    colour opposite to the strokes. A photo with transparent padding is mostly opaque:
    composite over the colour of the photo itself so the padding looks like its paper.
    """
    opaque_share = float(alpha.mean())
    weights = alpha.sum()
    if weights <= 0:
        return np.zeros_like(gray)
    opaque_level = float((gray * alpha).sum() / weights)
    if opaque_share > 0.5:
        backdrop = opaque_level
    else:
        backdrop = 1.0 if opaque_level < 0.5 else 0.0
    return gray * alpha + backdrop * (1.0 - alpha)


def to_mnist(gray: np.ndarray, steps: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Grayscale in [0, 1] of any size and polarity -> (28, 28) float32 MNIST-style digit.

    The stages, in order: impulse noise removed, small images enlarged, the writing surface
    found and flattened, the ink separated from paper and light, printed lines removed, the
    digit's strokes chosen and thin lines across them dropped, then MNIST's own recipe.
    Where other digits are written beside the chosen one, SeveralDigitsFound is raised with the
    image of them all. `steps`, when given, receives the image after each stage
    (`python -m app.predict --steps` draws them side by side).
    """
    record = steps.__setitem__ if steps is not None else _ignore_step
    return on_writing_surface(gray, lambda ink: _one_digit(ink, record), record)


def _one_digit(ink: Ink, record: Callable[[str, np.ndarray], None]) -> np.ndarray:
    """The digit chosen in `ink`, MNIST-normalised; raises SeveralDigitsFound, with the image of them all, where digits stand beside it."""
    chosen, several = _choose_digit(ink.strokes)
    digit = normalise_digit(ink, _without_crossing_hairlines(chosen), record)
    if several:
        raise SeveralDigitsFound("digits written side by side", digit)
    return digit


@dataclass(frozen=True)
class Ink:
    """The ink on an image's writing surface, from which digits are chosen and normalised."""

    residual: np.ndarray
    noise: float
    peak: float
    # Pixels at stroke level, and the same without printed lines: the strokes digits are chosen from.
    candidates: np.ndarray
    strokes: np.ndarray
    # The 3x3 projective map from the prepared image's pixels (x, y) to these arrays' pixels.
    to_surface: np.ndarray

    def within(self, window: tuple[slice, slice]) -> Ink:
        """The part of the ink inside `window` (rows, columns), as views."""
        rows, cols = window
        shift = np.array([[1, 0, -(cols.start or 0)], [0, 1, -(rows.start or 0)], [0, 0, 1]], dtype=np.float64)
        return Ink(self.residual[window], self.noise, self.peak, self.candidates[window], self.strokes[window], shift @ self.to_surface)

    def faint(self) -> np.ndarray:
        """Ink above the faint level: where broken or unevenly pressed strokes continue."""
        return self.residual >= max(FAINT_LEVEL * self.peak, STROKE_NOISE * self.noise, 0.5 * MIN_CONTRAST)


def on_writing_surface(
    gray: np.ndarray, choose: Callable[[Ink], T], record: Callable[[str, np.ndarray], None] | None = None, row_of_digits: bool = False
) -> T:
    """`choose` applied to the ink on the writing surface found in `gray`, or on `gray` itself when the surface holds none.

    Before the surface is looked for, impulse noise is removed and small images are enlarged;
    `prepared_scale` gives the factor between `gray` and the image the ink's map starts from.
    `row_of_digits` says the image holds a number, as `_remove_printed_lines` reads it.
    """
    record = record or _ignore_step
    gray = np.asarray(gray, dtype=np.float32)
    if min(gray.shape) < MIN_SIDE:
        raise NoDigitFound(f"the image is only {min(gray.shape)} pixel(s) across, too narrow to hold a digit")
    small = max(gray.shape) <= SMALL_IMAGE_SIDE
    gray = _remove_impulse_noise(gray)
    if not small and _looks_like_noise(gray):
        raise OnlyNoise("the image looks like random noise")
    gray = _enlarge_small(gray)
    record("input", gray)
    surface, to_surface = _find_surface(gray)
    if surface is gray:
        return choose(_find_ink(gray, np.eye(3), small, record, row_of_digits))
    try:
        return choose(_find_ink(surface, to_surface, small, record, row_of_digits))
    except NoDigitFound:
        # What looked like a sheet was something else (a bright bar, a large pale blot).
        return choose(_find_ink(gray, np.eye(3), small, record, row_of_digits))


def prepared_scale(shape: tuple[int, int]) -> int:
    """How many times `on_writing_surface` enlarges an image of `shape` before finding its surface."""
    return max(1, -(-MIN_WORKING_SIDE // max(shape)))


def _ignore_step(name: str, image: np.ndarray) -> None:
    pass


def _find_ink(surface: np.ndarray, to_surface: np.ndarray, small: bool, record: Callable[[str, np.ndarray], None], row_of_digits: bool) -> Ink:
    """The ink on `surface`, with printed lines removed."""
    record("surface", surface)
    residual, noise = _ink_residual(surface)
    peak = _bright_level(residual)
    if peak < FAINT_INK_SNR * noise:
        residual = _ridges(residual, noise)
        peak = _bright_level(residual)
    if record is not _ignore_step:
        record("ink", np.clip(residual / max(peak, 1e-3), 0, 1))
    candidates = residual >= max(STROKE_LEVEL * peak, STROKE_NOISE * noise, 0.5 * MIN_CONTRAST)
    strokes = _remove_printed_lines(candidates, row_of_digits)
    record("lines removed", strokes)
    if not small and np.count_nonzero(strokes) > MAX_INK_SHARE * strokes.size:
        raise OnlyNoise("the image looks like texture or noise, not a digit on a plain background")
    return Ink(residual, noise, peak, candidates, strokes, to_surface)


def normalise_digit(ink: Ink, chosen: np.ndarray, record: Callable[[str, np.ndarray], None] | None = None) -> np.ndarray:
    """The digit whose strokes are `chosen` (a mask over the ink), by MNIST's recipe: (28, 28) float32."""
    record = record or _ignore_step
    chosen = _grow_into_faint_ink(chosen, ink.faint(), ink.candidates)
    strength = _ink_strength(ink.residual, chosen, ink.noise)
    # Within the digit's box, faint ink between its strokes stays (a blurred join, anti-aliased
    # edges); the marks left out and the lines removed go, with a pixel around them.
    dropped = ink.candidates & ~chosen
    digit = np.where(cv2.dilate(dropped.view(np.uint8), EIGHT_NEIGHBOURS) > 0, np.float32(0), strength)
    rows = np.flatnonzero(chosen.any(axis=1))
    cols = np.flatnonzero(chosen.any(axis=0))
    # MNIST's box holds every grey pixel of the digit: crop to the ink, a little beyond the strokes.
    margin = max(2, round(CROP_MARGIN * max(rows[-1] - rows[0], cols[-1] - cols[0])))
    top, left = max(rows[0] - margin, 0), max(cols[0] - margin, 0)
    around = digit[top : rows[-1] + margin + 1, left : cols[-1] + margin + 1]
    inked_rows, inked_cols = np.flatnonzero(around.any(axis=1)), np.flatnonzero(around.any(axis=0))
    if inked_rows.size == 0:
        # What is left is too faint to stand above the noise floor.
        raise NoDigitFound("the image is blank or has too little contrast")
    crop = around[inked_rows[0] : inked_rows[-1] + 1, inked_cols[0] : inked_cols[-1] + 1]
    record("digit", crop)
    mnist = _place_by_centre_of_mass(_fit_box(crop))
    record("28x28", mnist)
    return mnist


def _to_uint8(gray: np.ndarray) -> np.ndarray:
    return np.clip(gray * np.float32(255) + np.float32(0.5), 0, 255).astype(np.uint8)


def _remove_impulse_noise(gray: np.ndarray) -> np.ndarray:
    """A 3x3 median filter where salt and pepper speckle the image (dirty scans, dithering).

    An impulse is a pixel lighter (or darker) than all eight of its neighbours by a clear step;
    a pixel of a hairline or an outline has neighbours along the line.
    """
    levels = _to_uint8(gray).astype(np.int16)
    step = round(IMPULSE_STEP * 255)
    salt = np.count_nonzero(levels - cv2.dilate(levels, RING) > step) / levels.size
    pepper = np.count_nonzero(cv2.erode(levels, RING) - levels > step) / levels.size
    if max(salt, pepper) < IMPULSE_SHARE:
        return gray
    return cv2.medianBlur(_to_uint8(gray), 3).astype(np.float32) * np.float32(1 / 255)


def _looks_like_noise(gray: np.ndarray) -> bool:
    """True when pixels three apart are nearly uncorrelated: static, not strokes on paper.

    Three apart, because a 3x3 median filter correlates nearer neighbours even in static.
    """
    sample = gray[::3, ::3]
    if min(sample.shape) < 4 or sample.std() < 0.08:
        return False
    pairs = ((sample[:, :-1], sample[:, 1:]), (sample[:-1], sample[1:]))
    return max(_correlation(first, second) for first, second in pairs) < 0.15


def _correlation(first: np.ndarray, second: np.ndarray) -> float:
    """Pearson's correlation of two equal-shaped arrays; 1 where either is flat.

    Written out because np.corrcoef builds a covariance matrix with checks around it that cost
    five times as much on these small samples (measured).
    """
    first, second = first - first.mean(), second - second.mean()
    spreads = float(np.sqrt((first * first).mean() * (second * second).mean()))
    if spreads <= 1e-6:
        return 1.0
    return float((first * second).mean()) / spreads


def _enlarge_small(gray: np.ndarray) -> np.ndarray:
    """Enlarge a thumbnail by a whole factor so it has at least MIN_WORKING_SIDE pixels a side."""
    factor = prepared_scale(gray.shape)
    if factor <= 1:
        return gray
    height, width = gray.shape
    return cv2.resize(gray, (width * factor, height * factor), interpolation=cv2.INTER_LINEAR)


def _find_surface(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sheet, note or board the digit is written on, cropped and flattened, else `gray` itself; and the map to it.

    A surface is a large, light, four-sided region lighter than its surroundings (a desk, a
    wall) that holds the image's centre. Its edge and everything outside it are never ink.
    """
    scale = SURFACE_SIDE / max(gray.shape)
    if scale >= 1:
        return gray, np.eye(3)
    small = _shrink(gray, SURFACE_SIDE)
    # Close over dark strokes so that the writing does not cut the sheet into pieces. On 8-bit
    # levels: a closing takes maxima and minima, which rounding to levels preserves, so this is the
    # closing of the float image rounded, at half the cost (measured); OpenCV counts the levels faster than np.bincount.
    closed = cv2.morphologyEx(_to_uint8(small), cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9)))
    otsu, _ = cv2.threshold(closed, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    if not (closed <= otsu).any() or not (closed > otsu).any():
        return gray, np.eye(3)
    counts = cv2.calcHist([closed], [0], None, [256], [0, 256]).ravel().astype(np.int64)
    lightest_dark = int(otsu)
    dark_level = _percentile_levels(counts[: lightest_dark + 1], (50,))[0]
    light_level = lightest_dark + 1 + _percentile_levels(counts[lightest_dark + 1 :], (50,))[0]
    levels = [dark_level + split * (light_level - dark_level) for split in SURFACE_SPLITS]
    if _light_all_round(closed > max(levels)):
        return gray, np.eye(3)
    # A shadow across the sheet puts part of it nearer the desk's level: try a few levels between
    # the two and keep the outline most fully covered by light paper.
    best, best_fill = None, SURFACE_FILL
    # The edge's sharpness is measured only for an outline that passes the cheaper tests.
    steepest = lru_cache(maxsize=1)(lambda: _steepest_steps(closed))
    for level in levels:
        candidate = _surface_outline(closed, small, steepest, level)
        if candidate is not None and candidate[1] >= best_fill:
            best, best_fill = candidate
    return (gray, np.eye(3)) if best is None else _crop_to_surface(gray, best / scale)


def _percentile_levels(counts: np.ndarray, percents: tuple[float, ...]) -> list[float]:
    """np.percentile's linear estimate of the levels 0, 1, 2, ... counted in `counts` (50 gives np.median's middle two averaged).

    From a histogram: on 8-bit images the sort in np.median and np.percentile costs three times as much (measured).
    """
    cumulative = np.cumsum(counts)
    found = []
    for percent in percents:
        rank = percent / 100 * (int(cumulative[-1]) - 1)
        below = int(rank)
        low, high = np.searchsorted(cumulative, [below, below + 1], side="right")
        # Past the last value, high is out of range: the weight on it is then 0.
        found.append(float(low) + (float(min(high, len(counts) - 1)) - float(low)) * (rank - below))
    return found


def _light_all_round(light: np.ndarray) -> bool:
    """Whether most of the picture is one light region reaching all four corners: paper with no background around it.

    Then so it is at every lower level too (its region only grows, and stays the largest), and
    every outline holds the whole picture: there is no sheet to find, and nothing to try.
    """
    if not light[0, 0]:
        return False
    # Filling the region from one corner gives its size; the fill then marks the corners it reached.
    region = light.astype(np.uint8)
    area = cv2.floodFill(region, None, (0, 0), 2, flags=4)[0]
    return area > light.size / 2 and bool((region[[0, 0, -1, -1], [0, -1, 0, -1]] == 2).all())


def _surface_outline(closed: np.ndarray, small: np.ndarray, steepest: Callable[[], np.ndarray], level: float) -> tuple[np.ndarray, float] | None:
    """The convex outline of the largest region lighter than `level` and the share of it that is light, if it can be a surface."""
    light = closed > level
    count, labels, stats, _ = cv2.connectedComponentsWithStats(light.view(np.uint8), connectivity=4)
    if count < 2:
        return None
    region = (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
    contours, _ = cv2.findContours(region, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull = cv2.convexHull(max(contours, key=cv2.contourArea))
    inside = np.zeros(small.shape, dtype=np.uint8)
    cv2.fillPoly(inside, [hull], 1)
    inside = inside.astype(bool)
    share = np.count_nonzero(inside) / inside.size
    if not SURFACE_SHARE[0] <= share <= SURFACE_SHARE[1]:
        return None
    if cv2.pointPolygonTest(hull, (small.shape[1] / 2, small.shape[0] / 2), False) < 0:
        return None
    contrast = float(np.median(small[inside]) - np.median(small[~inside]))
    if contrast < SURFACE_CONTRAST or not _edge_is_sharp(steepest(), hull, contrast):
        return None
    # Paper with ink fills its outline nearly whole; light strokes on a dark ground (a fat 0 or 8) leave holes.
    return hull.reshape(-1, 2).astype(np.float32), np.count_nonzero(region.view(bool) & inside) / np.count_nonzero(inside)


def _steepest_steps(closed: np.ndarray) -> np.ndarray:
    """The steepest change of level (0-1 per pixel) within two pixels of each point.

    Measured on the closed image, so ruled or grid lines crossing a vignette do not look like an edge.
    """
    levels = closed.astype(np.float32) * np.float32(1 / 255)
    gradient = cv2.magnitude(cv2.Sobel(levels, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(levels, cv2.CV_32F, 0, 1, ksize=3)) / 8
    return cv2.dilate(gradient, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))


def _edge_is_sharp(steepest: np.ndarray, hull: np.ndarray, contrast: float) -> bool:
    """Whether the level steps across the outline within a few pixels, as at a sheet's edge (a vignette fades)."""
    outline = np.zeros(steepest.shape, dtype=np.uint8)
    cv2.polylines(outline, [hull], True, 1)
    # Where the sheet runs off the picture, its outline follows the frame: there is no edge to see.
    outline[:3], outline[-3:], outline[:, :3], outline[:, -3:] = 0, 0, 0, 0
    points = steepest[outline > 0]
    return points.size < 8 or float(np.median(points)) >= SURFACE_SHARPNESS * contrast


def _crop_to_surface(gray: np.ndarray, hull: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The surface inside the convex outline `hull`: flattened when it has four clear corners, else masked.

    Outside the outline, and in a margin inside it, is set to the paper's level: the sheet's
    edge and the desk are never ink. Also returns the 3x3 map from `gray`'s pixels to the surface's.
    """
    approximation = cv2.approxPolyDP(hull.reshape(-1, 1, 2), 0.02 * cv2.arcLength(hull.reshape(-1, 1, 2), True), True)
    if len(approximation) == 4 and cv2.contourArea(approximation) >= 0.95 * cv2.contourArea(hull):
        return _flatten(gray, _corners(approximation))
    left, top, width, height = cv2.boundingRect(hull)
    crop = gray[top : top + height, left : left + width].copy()
    mask = np.zeros(crop.shape, dtype=np.uint8)
    cv2.fillPoly(mask, [np.round(hull - (left, top)).astype(np.int32)], 1)
    margin = max(3, round(SURFACE_MARGIN * max(width, height)))
    mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1)))
    if not mask.any():
        return gray, np.eye(3)
    return _extend_paper(crop, mask.view(bool)), np.array([[1, 0, -left], [0, 1, -top], [0, 0, 1]], dtype=np.float64)


def _extend_paper(crop: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """`crop` with every pixel outside `inside` set to the smoothed paper at the nearest point inside.

    A sheet darkening towards its corners meets the fill without a step: filled with one level,
    the darker paper along the outline stood out from it as a frame of "ink".
    """
    window = _odd(SURFACE_MARGIN * max(crop.shape))
    weights = cv2.blur(inside.astype(np.float32), (window, window))
    smooth = cv2.blur(np.where(inside, crop, np.float32(0)), (window, window)) / np.maximum(weights, 1e-6)
    _, (rows, cols) = ndimage.distance_transform_edt(~inside, return_indices=True)
    return np.where(inside, crop, smooth[rows, cols]).astype(np.float32)


def _corners(quadrilateral: np.ndarray) -> np.ndarray:
    """The four corners in order: top-left, top-right, bottom-right, bottom-left."""
    points = np.asarray(quadrilateral, dtype=np.float32).reshape(4, 2)
    sums, differences = points.sum(axis=1), points[:, 0] - points[:, 1]
    return points[[np.argmin(sums), np.argmax(differences), np.argmax(sums), np.argmin(differences)]]


def _flatten(gray: np.ndarray, corners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Undo the perspective of the quadrilateral `corners`, then trim its edge; and the map from `gray` to the result."""
    top_left, top_right, bottom_right, bottom_left = corners
    width = max(np.linalg.norm(top_right - top_left), np.linalg.norm(bottom_right - bottom_left))
    height = max(np.linalg.norm(bottom_left - top_left), np.linalg.norm(bottom_right - top_right))
    width, height = max(int(round(width)), 8), max(int(round(height)), 8)
    target = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], dtype=np.float32)
    transform = cv2.getPerspectiveTransform(corners.astype(np.float32), target)
    flat = cv2.warpPerspective(gray, transform, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    margin_y, margin_x = round(SURFACE_MARGIN * height), round(SURFACE_MARGIN * width)
    trim = np.array([[1, 0, -margin_x], [0, 1, -margin_y], [0, 0, 1]], dtype=np.float64)
    return flat[margin_y : height - margin_y, margin_x : width - margin_x], trim @ transform


def _ink_strength(residual: np.ndarray, chosen: np.ndarray, noise: float) -> np.ndarray:
    """The residual scaled so that the chosen digit's strokes reach 1, paper texture 0.

    The digit's own strength sets the scale, so a darker speck elsewhere does not dim it.
    """
    strength = _percentile(residual[chosen], 90)
    if strength < max(MIN_CONTRAST, MIN_SIGNAL_TO_NOISE * noise):
        raise NoDigitFound("the image is blank or has too little contrast")
    floor = min(max(NOISE_FLOOR, 3.0 * noise / strength), 0.5)
    # (residual / strength - floor) / (1 - floor), clipped to [0, 1].
    ink = residual * np.float32(1.0 / (strength * (1.0 - floor)))
    ink -= np.float32(floor / (1.0 - floor))
    return np.clip(ink, 0.0, 1.0, out=ink)


def _percentile(values: np.ndarray, percent: float) -> float:
    """np.percentile's linear estimate, from a partial sort of the two values it needs (np.percentile costs 3x, measured)."""
    rank = percent / 100 * (values.size - 1)
    below = int(rank)
    above = min(below + 1, values.size - 1)
    low, high = (float(value) for value in np.partition(values, [below, above])[[below, above]])
    weight = rank - below
    return high - (high - low) * (1 - weight) if weight >= 0.5 else low + (high - low) * weight


def _ink_residual(gray: np.ndarray) -> tuple[np.ndarray, float]:
    """Ink as bright-on-black residual over the paper, whatever its polarity and light, and the noise level."""
    if _ink_is_dark(_between_side_bands(gray)):
        gray = 1.0 - gray
    residual = gray - _paper_level(gray)
    for band, edge in _opposite_bands(gray):
        # A band of paper far lighter than the rest (a scanner's bar, an inverted strip) holds
        # ink of the other polarity, if any: read it in its own.
        residual[band] = np.median(gray[band]) - gray[band]
        residual[edge] = 0
    return residual, _noise_level(residual)


def _noise_level(residual: np.ndarray) -> float:
    """The spread of `residual` over the paper: its median absolute deviation, as a standard deviation."""
    sample = residual[::2, ::2]
    return 1.4826 * float(np.median(np.abs(sample - np.median(sample))))


def _ridges(residual: np.ndarray, noise: float) -> np.ndarray:
    """The bright ridges of `residual` (pen strokes) without its broad blotches, scaled to the same `noise` over the paper.

    A ridge's strength is the Hessian's most negative eigenvalue across the stroke, as Sato's
    tubeness filter has it in two dimensions. Written with OpenCV because scikit-image's `sato`
    gives the same ridges but adds 45 MB to each worker on import and takes 22 ms on a
    512x400 image, where this takes about 5 (measured).
    """
    smooth = cv2.GaussianBlur(residual, (0, 0), RIDGE_SCALE)
    across = cv2.Sobel(smooth, cv2.CV_32F, 2, 0, ksize=3)
    down = cv2.Sobel(smooth, cv2.CV_32F, 0, 2, ksize=3)
    mixed = cv2.Sobel(smooth, cv2.CV_32F, 1, 1, ksize=3)
    curving = (across + down) / 2 - np.sqrt(((across - down) / 2) ** 2 + mixed**2)
    ridges = np.maximum(-curving, 0)
    ridges -= np.median(ridges)
    spread = _noise_level(ridges)
    # Ridges with no spread over the paper are no stroke to find: the residual stays.
    return ridges * np.float32(noise / spread) if spread > 0 else residual


def _opposite_bands(gray: np.ndarray) -> list[tuple[tuple[slice, slice], tuple[slice, slice]]]:
    """Bands along the image's sides, full height (or full width), far lighter than its usual paper: (band, its inner edge)."""
    height, width = gray.shape
    # The usual paper is the centre's: bands on both sides may cover half the picture.
    usual = float(np.median(gray[height // 4 : height - height // 4, width // 4 : width - width // 4]))
    bands = []
    for axis in (0, 1):
        # A band starts at the very edge: look at the two outermost lines before all the others.
        outer = np.take(gray, [0, 1, -2, -1], axis=1 - axis)
        if not (np.median(outer, axis=axis) - usual >= OPPOSITE_PAPER).any():
            continue
        light = np.median(gray, axis=axis) - usual >= OPPOSITE_PAPER
        size = light.size
        leading = size if light.all() else int(np.argmin(light))
        trailing = size if light.all() else int(np.argmin(light[::-1]))
        for start, stop in ((0, leading), (size - trailing, size)):
            if 2 <= stop - start <= OPPOSITE_BAND * size:
                # The step between the band and the rest is no ink: two pixels each side of it go.
                step = stop + 2 if start == 0 else start - 2
                band, edge = slice(start, stop), slice(min(step, stop - 2), max(step, start + 2))
                bands.append(((slice(None), band), (slice(None), edge)) if axis == 0 else ((band, slice(None)), (edge, slice(None))))
    return bands


def _between_side_bands(gray: np.ndarray) -> np.ndarray:
    """`gray` without the bands along its sides that are far lighter or darker than its centre.

    Such bands (letterboxing, a scanner's bars, an inverted strip) are no evidence of the
    polarity of the writing between them.
    """
    if _plain_border(gray, 255) is not None:
        # One paper all round: there are no bands, however dark a thick digit makes the centre.
        return gray
    height, width = gray.shape
    top, bottom, left, right = 0, height, 0, width
    bands = _opposite_bands(gray) + _opposite_bands(1.0 - gray)
    # Each band goes with the step at its inner edge: a column half band, half paper is neither.
    for (rows, cols), (edge_rows, edge_cols) in bands:
        if cols == slice(None):
            top, bottom = (max(top, edge_rows.stop), bottom) if rows.start == 0 else (top, min(bottom, edge_rows.start))
        else:
            left, right = (max(left, edge_cols.stop), right) if cols.start == 0 else (left, min(right, edge_cols.start))
    if not bands or bottom - top < MIN_SIDE or right - left < MIN_SIDE:
        return gray
    inner = gray[top:bottom, left:right]
    # Between real bands lies a paper of the other level, seen along the inner part's own edge; a
    # thick digit or blots on a plain page make its centre differ from its sides just as much.
    band_level = float(np.median(np.concatenate([gray[band].ravel() for band, _ in bands])))
    inner_edge = np.concatenate([inner[:2].ravel(), inner[-2:].ravel(), inner[:, :2].ravel(), inner[:, -2:].ravel()])
    return inner if abs(float(np.median(inner_edge)) - band_level) >= OPPOSITE_PAPER else gray


def _ink_is_dark(gray: np.ndarray) -> bool:
    """Whether the ink is darker than the paper.

    Strokes are thin: they stand out from a median over a window a few times their width,
    which follows the edges of everything broad (a sheet against the desk, shadows, glare,
    scanner bars). The side holding more such thin contrast is the ink's; where neither
    clearly does, the side with the more extreme deviations from a wide median.
    """
    small = _to_uint8(_shrink(gray, POLARITY_SIDE))
    levels = small.astype(np.float32)
    paper = _plain_border(levels)
    if paper is not None:
        # A plain border is paper (a canvas, a scan, MNIST itself): the ink is the extreme farther from it.
        # Where the middle of the picture is lit a little more than its edge (a vignette), the
        # middle's level is the paper: the border's would make the lit paper the lighter extreme.
        counts = np.bincount(small.ravel(), minlength=256)
        darkest, middle, lightest = _percentile_levels(counts, (0.5, 50, 99.5))
        if abs(middle - paper) <= PLAIN_BORDER_SPREAD:
            paper = middle
        return paper - darkest > lightest - paper
    # The narrowest window first: glare streaks and shadows are broad, pen strokes are not.
    for share in POLARITY_WINDOWS:
        residual = levels - cv2.medianBlur(small, _odd(share * max(small.shape)))
        noise = max(1.4826 * float(np.median(np.abs(residual - np.median(residual)))), 1.0)
        dark, bright = (float(np.clip(side - 3.0 * noise, 0, None).sum()) for side in (-residual, residual))
        if max(dark, bright) >= POLARITY_MIN_CONTRAST * small.size and max(dark, bright) > POLARITY_MARGIN * min(dark, bright):
            return dark > bright
    wide = levels - cv2.medianBlur(small, max(2 * int(BACKGROUND_WINDOW * max(small.shape) / 2) + 1, 3))
    return float(np.percentile(-wide, 99.9)) > float(np.percentile(wide, 99.9))


def _plain_border(levels: np.ndarray, scale: float = 1.0) -> float | None:
    """The level of the image's outer ring, times `scale`, when nearly all of it is one level (0-255), else None."""
    ring = np.concatenate([levels[:2].ravel(), levels[-2:].ravel(), levels[2:-2, :2].ravel(), levels[2:-2, -2:].ravel()])
    if scale != 1.0:
        ring *= np.float32(scale)
    level = float(np.median(ring))
    if np.count_nonzero(np.abs(ring - level) <= PLAIN_BORDER_SPREAD) < PLAIN_BORDER_SHARE * ring.size:
        return None
    return level


def _paper_level(gray: np.ndarray) -> np.ndarray | np.float32:
    """The paper's level under bright-on-dark strokes, following shadows, gradients and vignettes.

    Two estimates, each sized to the strokes, and the higher of the two at each point: a grey
    opening (the envelope below the strokes), which a thick marker stroke covering half the
    picture does not fool; and a median, which follows a vignette's curve where the opening,
    a disc rolled under the light, cannot reach into its corners.
    """
    small = _shrink(gray, BACKGROUND_SIDE)
    levels = _to_uint8(small)
    side = max(small.shape)
    # The strokes' width, roughly: from the strong deviations over a wide median.
    wide = cv2.medianBlur(levels, max(2 * int(BACKGROUND_WINDOW * side / 2) + 1, 3))
    deviation = levels.astype(np.float32) - wide
    stroke = _stroke_width(deviation > 0.5 * max(float(deviation.max()), 1.0))
    opening = _odd(min(max(BACKGROUND_STROKES * stroke, BACKGROUND_OPENING[0] * side), BACKGROUND_OPENING[1] * side))
    median = _odd(min(max(BACKGROUND_MEDIAN_STROKES * stroke, BACKGROUND_MEDIAN[0] * side), BACKGROUND_MEDIAN[1] * side))
    # Light that falls off towards the picture's edge keeps falling beyond it: continued so (an odd
    # reflection), the filters near the edge follow the fall-off instead of levelling it, which
    # left a frame of "ink" around pencil photographed under a vignette.
    pad = max(opening, median) // 2 + 1
    padded = _pad_odd_reflection(small, pad)
    level = cv2.morphologyEx(padded, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (opening, opening)))
    if stroke <= BACKGROUND_THIN_STROKE:
        # Only under thin strokes: a median narrow enough to follow a vignette would take the
        # middle of a thick stroke for paper.
        level = np.maximum(level, cv2.medianBlur(_to_uint8(padded), median).astype(np.float32) * np.float32(1 / 255))
    if np.ptp(level[pad:-pad, pad:-pad]) < 0.01:
        return np.float32(np.median(level[pad:-pad, pad:-pad]))
    level = cv2.GaussianBlur(level, (0, 0), opening / 4)[pad:-pad, pad:-pad]
    return cv2.resize(level, (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_LINEAR)


def _pad_odd_reflection(image: np.ndarray, pad: int) -> np.ndarray:
    """np.pad(image, pad, mode="reflect", reflect_type="odd"), by OpenCV where the image is wider than `pad`.

    OpenCV mirrors the border without repeating the edge, as np.pad's "reflect" does; the odd
    reflection is then the edge's level twice less the mirrored one, axis by axis as np.pad goes.
    np.pad costs five times as much on these small images (measured).
    """
    if pad >= min(image.shape):
        return np.pad(image, pad, mode="reflect", reflect_type="odd")
    padded = cv2.copyMakeBorder(image, pad, pad, 0, 0, cv2.BORDER_REFLECT_101)
    padded[:pad] = 2 * padded[pad] - padded[:pad]
    padded[-pad:] = 2 * padded[-pad - 1] - padded[-pad:]
    padded = cv2.copyMakeBorder(padded, 0, 0, pad, pad, cv2.BORDER_REFLECT_101)
    padded[:, :pad] = 2 * padded[:, pad : pad + 1] - padded[:, :pad]
    padded[:, -pad:] = 2 * padded[:, -pad - 1 : -pad] - padded[:, -pad:]
    return padded


def _odd(size: float) -> int:
    """The odd whole number at or below `size`, at least 3: a filter's window."""
    return max(2 * int(size / 2) + 1, 3)


def _shrink(gray: np.ndarray, side: int) -> np.ndarray:
    """`gray` averaged down to at most `side` pixels a side."""
    height, width = gray.shape
    scale = min(1.0, side / max(height, width))
    return cv2.resize(gray, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)


def _bright_level(ink: np.ndarray) -> float:
    """The 99.9th percentile of the ink: its full strength, ignoring a few hot pixels."""
    flat = ink.ravel()
    if flat.size <= 1000:
        return float(flat.max())
    rank = int(flat.size * 0.999)
    # Select among the bright pixels only: partitioning a mostly-black image is slow.
    bright = flat[flat > 0.5 * flat.max()]
    above = flat.size - rank
    if bright.size >= above:
        return float(np.partition(bright, bright.size - above)[bright.size - above])
    return float(np.partition(flat, rank)[rank])


def _remove_printed_lines(strokes: np.ndarray, row_of_digits: bool = False) -> np.ndarray:
    """Remove ruled and grid lines, margins and box borders; keep the strokes that cross them.

    In a row of digits (`row_of_digits`), upright lines cross nearly the whole height and box
    sides are thin for the image's height, not its width: several 1s would pass for a family of
    lines, and the marker-thick sides of a 0 beside a 5's bar for a box.
    """
    skew = _line_skew(strokes, keep_hairlines=row_of_digits)
    # Lines photographed at a slight angle are found upright, then turned back.
    upright = _rotate(strokes, skew) if skew else strokes
    bands = _line_band(upright), _line_band(upright.T)
    horizontal = _printed_lines(upright, bands[0])
    vertical = _printed_lines(upright.T, bands[1], ROW_PLUMB_SPAN if row_of_digits else LINE_SPAN, thick_families=not row_of_digits).T
    across, down = _box_borders(upright, bands, min(strokes.shape) if row_of_digits else max(strokes.shape))
    horizontal |= across
    vertical |= down
    if not row_of_digits:
        vertical |= _cell_sides(upright.T, bands[1], horizontal.T).T
        horizontal |= _cell_sides(upright, bands[0], vertical)
    if not horizontal.any() and not vertical.any():
        return strokes
    if skew:
        # Turned back pixel by pixel, a line loses pixels here and there: a pixel's width around it takes them in.
        horizontal, vertical = (
            cv2.dilate(_rotate(lines, -skew).view(np.uint8), EIGHT_NEIGHBOURS).view(bool) & strokes for lines in (horizontal, vertical)
        )
    kept = strokes & ~horizontal & ~vertical
    # A stroke crossing a line has ink on both sides of it: give it back the pixels in between.
    reach = 2 * (LINE_TILT_ROWS + round(LINE_THICKNESS * max(strokes.shape))) + 1
    for lines, kernel in ((horizontal, (1, reach)), (vertical, (reach, 1))):
        if lines.any():
            bridged = cv2.morphologyEx(kept.view(np.uint8), cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, kernel)) > 0
            kept |= lines & bridged
    return _drop_line_remnants(kept, horizontal, vertical)


def _drop_line_remnants(kept: np.ndarray, horizontal: np.ndarray, vertical: np.ndarray) -> np.ndarray:
    """Drop the bits of lines left behind (where a line wavered or faded): pieces lying wholly along a removed line."""
    width = 2 * LINE_TILT_ROWS + 1
    along = (cv2.dilate(horizontal.view(np.uint8), np.ones((width, 1), np.uint8)) > 0) | (
        cv2.dilate(vertical.view(np.uint8), np.ones((1, width), np.uint8)) > 0
    )
    count, labels = cv2.connectedComponents(kept.view(np.uint8), connectivity=8)
    if count < 2:
        return kept
    pixels = np.bincount(labels.ravel(), minlength=count)
    outside = np.bincount(labels[~along], minlength=count)
    remnant = outside <= REMNANT_OUTSIDE * pixels
    remnant[0] = False
    return kept & ~remnant[labels]


def _line_skew(strokes: np.ndarray, keep_hairlines: bool = False) -> float:
    """The angle in degrees by which long straight lines in `strokes` lean from level (or plumb), 0 if none.

    `keep_hairlines` keeps 1-pixel lines when halving: a number's form boxes and ruled lines are
    often that thin, and without them a digit's slant was taken for the lines' (a 1 in a row of
    boxes read as 11111). For one digit, the plain halving measured 4 points better on form boxes.
    """
    # At half size: the Hough transform's cost grows with the pixels that vote, and a line's angle hardly changes.
    if max(strokes.shape) > SKEW_SIDE:
        # INTER_AREA averages 2x2 pixels: a 1-pixel line is half ink there, which rounds to none in 0/1 pixels but not in 0/255.
        pixels = strokes.view(np.uint8) * np.uint8(255 if keep_hairlines else 1)
        strokes = cv2.resize(pixels, (strokes.shape[1] // 2, strokes.shape[0] // 2), interpolation=cv2.INTER_AREA) > 0
    # The standard transform, not the probabilistic one: a faint printed line breaks into dashes,
    # and every dash still votes for the line's angle.
    # Only angles near level and plumb are voted on: the rest of the accumulator costs time and
    # finds nothing but diagonal pen strokes. theta is the angle of the line's normal: 90 degrees
    # for a level line, 0 or 180 for a plumb one.
    step, reach = np.pi / 360, int(np.ceil(2 * LINE_MAX_SKEW)) + 1
    threshold = int(LINE_SKEW_SPAN * min(strokes.shape))
    found = []
    for low, high in ((0, reach), (180 - reach, 180 + reach), (360 - reach, 360)):
        lines = cv2.HoughLinesWithAccumulator(strokes.view(np.uint8), 1, step, threshold, min_theta=low * step, max_theta=high * step)
        if lines is not None:
            found.append(lines.reshape(-1, 3))
    if not found:
        return 0.0
    found = np.concatenate(found)
    strongest = found[np.argsort(-found[:, 2], kind="stable")[:LINE_SKEW_LINES]]
    angles = np.degrees(strongest[:, 1].astype(np.float64)) - 90.0
    # Fold plumb lines onto level ones: a grid's two families lean by the same angle.
    angles = (angles + 45.0) % 90.0 - 45.0
    angles = angles[np.abs(angles) <= LINE_MAX_SKEW]
    if angles.size == 0:
        return 0.0
    angle = float(np.median(angles))
    return angle if abs(angle) >= 0.25 else 0.0


def _rotate(mask: np.ndarray, degrees: float) -> np.ndarray:
    """`mask` turned by `degrees` about its centre, same size (nearest pixel)."""
    height, width = mask.shape
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    return cv2.warpAffine(mask.view(np.uint8), turn, (width, height), flags=cv2.INTER_NEAREST).view(bool)


def _line_band(strokes: np.ndarray) -> np.ndarray:
    """`strokes` thickened downwards by a few rows and with its gaps closed along the rows.

    A horizontal line that wavers a little or fades in places then still has long runs.
    """
    band = cv2.dilate(strokes.view(np.uint8), np.ones((LINE_TILT_ROWS, 1), np.uint8))
    return cv2.morphologyEx(band, cv2.MORPH_CLOSE, np.ones((1, max(3, round(LINE_GAP * strokes.shape[1]))), np.uint8))


def _line_runs(strokes: np.ndarray, band: np.ndarray, span: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Horizontal straight runs in `band` (of `strokes`) at least `span` of the width long: (labels, stats, thickness of each)."""
    length = max(int(span * strokes.shape[1]), 8)
    # A run that long needs that many pixels in its row: most pictures have no such row at all.
    if cv2.reduce(band, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S).max() < length:
        return np.zeros(strokes.shape, dtype=np.int32), np.zeros((0, 5), dtype=np.int32), np.zeros(0)
    runs = _horizontal_opening(band, length)
    if not cv2.countNonZero(runs):
        return np.zeros(strokes.shape, dtype=np.int32), np.zeros((0, 5), dtype=np.int32), np.zeros(0)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(runs, connectivity=8)
    # A run's thickness is that of the strokes around it, column by column (the median skips the
    # columns where a stroke crosses): a curved pen stroke has a straight run only along a sliver.
    margin = round(LINE_THICKNESS * max(strokes.shape)) + LINE_TILT_ROWS
    thickness = np.empty(count - 1)
    for index, (left, top, width, height, _) in enumerate(stats[1:]):
        thickness[index] = np.median(_thickness_by_column(strokes, left, top, width, height, margin))
    return labels, stats[1:], thickness


def _thickness_by_column(strokes: np.ndarray, left: int, top: int, width: int, height: int, margin: int) -> np.ndarray:
    """The stroke pixels in each column of a run's rows, with those joined to them above and below (within `margin`).

    Only pixels joined to the run count: the side of a neighbouring box a few pixels away is a
    line of its own, and counted with it the two thin sides measured as one thick stroke.
    """
    first = max(top - margin, 0)
    window = strokes[first : top + height + margin, left : left + width].view(np.uint8)
    core = window[top - first : top - first + height]
    above, below = window[: top - first][::-1], window[top - first + height :]
    joined_above = np.cumprod(above, axis=0).sum(axis=0) * core[0]
    joined_below = np.cumprod(below, axis=0).sum(axis=0) * core[-1]
    return core.sum(axis=0) + joined_above + joined_below


def _horizontal_opening(band: np.ndarray, length: int) -> np.ndarray:
    """cv2.morphologyEx(band, cv2.MORPH_OPEN, np.ones((1, length))) of a 0/1 image, from running sums.

    A pixel is eroded away where its window holds a gap, and restored where a surviving pixel's
    window covers it; OpenCV's own filter costs 2.5x as much with these long kernels (measured).
    """
    anchor = (length // 2, 0)
    gaps = cv2.boxFilter(1 - band, cv2.CV_16U, (length, 1), anchor=anchor, normalize=False, borderType=cv2.BORDER_CONSTANT)
    eroded = (gaps == 0).view(np.uint8)
    covered = cv2.boxFilter(eroded, cv2.CV_16U, (length, 1), anchor=anchor, normalize=False, borderType=cv2.BORDER_CONSTANT)
    return (covered > 0).view(np.uint8)


def _printed_lines(strokes: np.ndarray, band: np.ndarray, span: float = LINE_SPAN, thick_families: bool = True) -> np.ndarray:
    """The stroke pixels of horizontal printed lines: long, straight, thin and in a family of like lines.

    With `thick_families`, lines across the whole picture may be thicker: not for the upright
    lines of a row of digits, whose 1s may cross it from top to bottom.
    """
    height, width = strokes.shape
    labels, stats, thickness = _line_runs(strokes, band, span)
    if thickness.size == 0:
        return np.zeros_like(strokes)
    spans = stats[:, cv2.CC_STAT_WIDTH] / width
    thin = thickness <= max(LINE_THICKNESS * max(height, width), 2.0)
    if thick_families:
        # Two or more straight runs across the whole picture are printed however thick (a small
        # photo of a form): one pen stroke can be that long in a tight crop, two hardly.
        across = (spans >= FULL_SPAN) & (thickness <= FULL_LINE_THICKNESS * max(height, width))
        if np.count_nonzero(across) >= 2:
            thin |= across
    printed = np.zeros(thickness.size + 1, dtype=bool)
    if np.count_nonzero(thin) >= 2:
        # Ruled and grid lines come in families of the same thickness; a pen stroke along one is thicker.
        printed[1:] = thin & (thickness <= LINE_FAMILY_THICKNESS * max(float(thickness[thin].min()), 1.0))
    else:
        printed[1:] = thin & (spans >= max(span, LONE_LINE_SPAN))
    return printed[labels] & strokes


def _box_borders(strokes: np.ndarray, bands: tuple[np.ndarray, np.ndarray], thin_side: int) -> tuple[np.ndarray, np.ndarray]:
    """The stroke pixels of printed boxes' sides (across, down): thin straight lines (for `thin_side`) that meet at corners.

    A box needs two of each, each meeting a line of the other kind near one of its ends; a pen
    stroke rarely both is that straight and thin and closes such corners.
    """
    empty = (np.zeros_like(strokes), np.zeros_like(strokes))
    height, width = strokes.shape
    thin_limit = max(LINE_THICKNESS * thin_side, 2.0)
    sides = []
    for mask, band in zip((strokes, strokes.T), bands, strict=True):
        labels, stats, thickness = _line_runs(mask, band, BOX_SPAN)
        if np.count_nonzero(thickness <= thin_limit) < 2:
            return empty
        sides.append((labels, stats, thickness, thickness <= thin_limit))
    (across_labels, across_stats, across_thickness, across_thin), (down_labels, down_stats, down_thickness, down_thin) = sides
    down_mask = np.isin(down_labels.T, 1 + np.flatnonzero(down_thin))
    across_mask = np.isin(across_labels, 1 + np.flatnonzero(across_thin))
    reach = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * BOX_JOIN + 1, 2 * BOX_JOIN + 1))
    near_down = cv2.dilate(down_mask.view(np.uint8), reach) > 0
    near_across = cv2.dilate(across_mask.view(np.uint8), reach) > 0
    across_keep = _meeting_at_ends(across_stats, across_thin, near_down)
    down_keep = _meeting_at_ends(down_stats, down_thin, near_across.T)
    # A box's sides are printed alike; a pen stroke ending on them (a 1 in its box) is thicker.
    thinnest = max(float(min(across_thickness[across_keep].min(initial=np.inf), down_thickness[down_keep].min(initial=np.inf))), 1.0)
    across_keep &= across_thickness <= BOX_FAMILY_THICKNESS * thinnest
    down_keep &= down_thickness <= BOX_FAMILY_THICKNESS * thinnest
    if np.count_nonzero(across_keep) < 2 or np.count_nonzero(down_keep) < 2:
        return empty
    return (np.isin(across_labels, 1 + np.flatnonzero(across_keep)) & strokes, (np.isin(down_labels, 1 + np.flatnonzero(down_keep)) & strokes.T).T)


def _cell_sides(strokes: np.ndarray, band: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """The stroke pixels of a form's cell sides: thin horizontal runs from one removed perpendicular line (`lines`) to another.

    A row of cells between two ruled lines has sides that end on those lines but never meet
    each other, so `_box_borders` finds no corners; the sides are printed like the lines, and
    a pen stroke from line to line (a 1 filling its cell) is thicker.
    """
    if not lines.any():
        return np.zeros_like(strokes)
    _, _, stats, _ = cv2.connectedComponentsWithStats(lines.view(np.uint8), connectivity=8)
    # A removed line's thickness: its pixels over its length across.
    lengths = np.maximum(stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT])
    printed = max(float(np.median(stats[1:, cv2.CC_STAT_AREA] / np.maximum(lengths, 1))), 1.0)
    labels, runs, thickness = _line_runs(strokes, band, BOX_SPAN)
    if thickness.size == 0:
        return np.zeros_like(strokes)
    near = cv2.dilate(lines.view(np.uint8), cv2.getStructuringElement(cv2.MORPH_RECT, (2 * BOX_JOIN + 1, 2 * BOX_JOIN + 1))) > 0
    sides = np.zeros(len(runs) + 1, dtype=bool)
    sides[1:] = _meeting_at_ends(runs, thickness <= BOX_FAMILY_THICKNESS * printed, near, both=True, overrun=CELL_SIDE_OVERRUN)
    if np.count_nonzero(sides) < 2:
        return np.zeros_like(strokes)
    return sides[labels] & strokes


def _meeting_at_ends(stats: np.ndarray, thin: np.ndarray, near_other: np.ndarray, both: bool = False, overrun: float = 0.0) -> np.ndarray:
    """Which thin horizontal runs end on a perpendicular line: at either end, or with `both` at each.

    An end meets the line within BOX_JOIN pixels, or where the run goes on past it, within `overrun`
    of its length; a run that goes on to the picture's edge is a ruled line, not a side overrunning.
    """
    meets = np.zeros(len(stats), dtype=bool)
    for index in np.flatnonzero(thin):
        left, top, width, height = stats[index, :4]
        rows = slice(top, top + height)
        joins = [BOX_JOIN + 1 + (0 if end in (0, near_other.shape[1]) else round(overrun * width)) for end in (left, left + width)]
        ends = near_other[rows, left : left + joins[0]], near_other[rows, max(left + width - joins[1], 0) : left + width]
        meets[index] = (all if both else any)(end.any() for end in ends)
    return meets


def _choose_digit(strokes: np.ndarray) -> tuple[np.ndarray, bool]:
    """The digit's strokes (the dominant component, the parts that belong with it, any digits written beside it), and whether there were such digits.

    A number is kept whole, so that its image shows the whole number and the answer can say it is not one digit.
    """
    count, labels, stats, _ = cv2.connectedComponentsWithStats(strokes.view(np.uint8), connectivity=8)
    if count < 2:
        raise NoDigitFound("the image is blank or has too little contrast")
    height, width = strokes.shape
    left, top = stats[1:, cv2.CC_STAT_LEFT], stats[1:, cv2.CC_STAT_TOP]
    right, bottom = left + stats[1:, cv2.CC_STAT_WIDTH], top + stats[1:, cv2.CC_STAT_HEIGHT]
    areas = stats[1:, cv2.CC_STAT_AREA].astype(np.float64)
    on_edge = (left == 0) | (top == 0) | (right == width) | (bottom == height)
    chosen = np.zeros(count - 1, dtype=bool)
    chosen[np.argmax(np.where(on_edge, EDGE_WEIGHT, 1.0) * areas)] = True
    while True:
        box = (left[chosen].min(), top[chosen].min(), right[chosen].max(), bottom[chosen].max())
        size = max(box[2] - box[0], box[3] - box[1])
        ink = areas[chosen].sum()
        gap = np.maximum.reduce([box[0] - right, left - box[2], box[1] - bottom, top - box[3], np.zeros_like(left)])
        near = gap <= BOX_MARGIN * size
        inside = (left >= box[0]) & (right <= box[2]) & (top >= box[1]) & (bottom <= box[3])
        belongs = (near & (areas >= SPECK_SHARE * ink)) | ((gap <= PART_GAP * size) & (areas >= PART_SHARE * ink))
        # Frames, bars and desk edges reach the image's edge and run longer than the digit: what
        # reaches the edge joins only when it lies within the digit's box or is a short part near it.
        extent = np.maximum(right - left, bottom - top)
        belongs &= ~on_edge | inside | (near & (areas >= PART_SHARE * ink) & (extent < size))
        grown = chosen | belongs
        if (grown == chosen).all():
            break
        chosen = grown
    if size < MIN_DIGIT_SHARE * max(height, width):
        raise NoDigitFound("the image is blank or has too little contrast")
    beside = _digits_beside(chosen, labels, stats[1:], on_edge)
    keep = np.zeros(count, dtype=bool)
    keep[1:] = chosen | beside
    return keep[labels], bool(beside.any())


def _digits_beside(chosen: np.ndarray, labels: np.ndarray, stats: np.ndarray, on_edge: np.ndarray) -> np.ndarray:
    """Components standing beside the chosen digit on its line, as tall as a digit and drawn by the same pen: the rest of a written number.

    `stats` are the components' (left, top, width, height, area), `labels` their label image.
    A printed line left standing (a form cell's side) is as tall, but thinner than the pen.
    """
    left, top, width, height, areas = stats.T
    right, bottom = left + width, top + height
    beside = np.zeros_like(chosen)
    pen = None
    while True:
        group = chosen | beside
        box_left, box_top, box_right, box_bottom = left[group].min(), top[group].min(), right[group].max(), bottom[group].max()
        box_height = box_bottom - box_top
        shared_rows = np.minimum(bottom, box_bottom) - np.maximum(top, box_top)
        gap = np.maximum(box_left - right, left - box_right)
        found = (
            ~group
            & ~on_edge
            & (height >= DIGIT_BESIDE_HEIGHT * box_height)
            & (height <= box_height / DIGIT_BESIDE_HEIGHT)
            & (shared_rows >= DIGIT_BESIDE_ROWS * np.minimum(height, box_height))
            & (gap >= 0)
            & (gap <= DIGIT_BESIDE_GAP * box_height)
            & (areas >= DIGIT_BESIDE_INK * areas[chosen].sum())
        )
        if found.any():
            # Only now measured: most pictures have nothing beside the digit.
            pen = pen or _stroke_width(np.isin(labels, 1 + np.flatnonzero(chosen)))
            found &= areas / np.maximum(height, 1) >= DIGIT_BESIDE_PEN * pen
        if not found.any():
            return beside
        beside |= found


def _without_crossing_hairlines(chosen: np.ndarray) -> np.ndarray:
    """The chosen strokes without a thin line drawn across them (a scratch, a zigzag through the digit).

    Opening with a pen a little narrower than the digit's strokes keeps its body and removes
    thinner ink: tapered ends, thin joins and such lines. What it removed goes only where it
    comes out of the body's box well beyond it on two opposite sides, as a line across the
    digit does; tapers and a 6's thin ascender come out on one side at most, and stay.
    Otherwise the line widens the crop and the digit shrinks and moves off-centre.
    """
    rows, cols = np.flatnonzero(chosen.any(axis=1)), np.flatnonzero(chosen.any(axis=0))
    window = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
    strokes = chosen[window]
    width = _stroke_width(strokes)
    pen = HAIRLINE_SHARE * width
    if pen < 3:
        return chosen
    opened = _opening(strokes, pen / 2)
    # The opening leaves a blob of about the pen's size where a hairline bends or crosses itself.
    count, labels, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
    large = stats[:, cv2.CC_STAT_AREA] >= HAIRLINE_BLOB * pen * pen
    large[0] = False
    body = large[labels]
    rows, cols = np.flatnonzero(body.any(axis=1)), np.flatnonzero(body.any(axis=0))
    if rows.size == 0:
        return chosen
    count, labels, stats, _ = cv2.connectedComponentsWithStats((strokes & ~body).view(np.uint8), connectivity=8)
    left, top = stats[1:, cv2.CC_STAT_LEFT], stats[1:, cv2.CC_STAT_TOP]
    right, bottom = left + stats[1:, cv2.CC_STAT_WIDTH] - 1, top + stats[1:, cv2.CC_STAT_HEIGHT] - 1
    reach = HAIRLINE_REACH * width
    # Only a line that comes out on both opposite sides crosses the digit: a 6's thin ascender
    # or a 9's tail comes out on one side.
    across = np.stack([cols[0] - left, right - cols[-1]]) >= reach
    down = np.stack([rows[0] - top, bottom - rows[-1]]) >= reach
    drop = np.zeros(count, dtype=bool)
    for sides in (across, down):
        if sides.any(axis=1).all():
            drop[1:] |= sides.any(axis=0)
    if not drop.any():
        return chosen
    kept = chosen.copy()
    kept[window] &= ~drop[labels]
    return kept


def _opening(mask: np.ndarray, radius: float) -> np.ndarray:
    """`mask` opened with a disk of `radius` (0/1 uint8): what disks of that size inside it cover.

    Two distance transforms instead of cv2.morphologyEx with an elliptic kernel, whose cost grows
    with the kernel's area: 0.36 against 1.23 ms for a 25-pixel pen, 0.10 against 0.17 for 14 (measured).
    """
    # A ring of zeros, because outside the window is background, as it is in the whole image.
    padded = cv2.copyMakeBorder(mask.view(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    inner = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_5) > radius
    near = cv2.distanceTransform((~inner).view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5) <= radius
    return (near & padded.view(bool))[1:-1, 1:-1].view(np.uint8)


def _grow_into_faint_ink(chosen: np.ndarray, faint: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """The chosen strokes with the fainter ink joined to them near their box (hysteresis, as in Canny's edges).

    A blurred or unevenly pressed stroke falls below the stroke level in places; its faint parts
    belong to the digit when they connect to it. Marks and lines left out stay out.
    """
    rows, cols = np.flatnonzero(chosen.any(axis=1)), np.flatnonzero(chosen.any(axis=0))
    reach = round(FAINT_REACH * max(rows[-1] - rows[0], cols[-1] - cols[0]))
    near = np.zeros_like(chosen)
    near[max(rows[0] - reach, 0) : rows[-1] + reach + 1, max(cols[0] - reach, 0) : cols[-1] + reach + 1] = True
    faint = (faint & near & ~(candidates & ~chosen)) | chosen
    count, labels = cv2.connectedComponents(faint.view(np.uint8), connectivity=8)
    touching = np.zeros(count, dtype=bool)
    touching[labels[chosen]] = True
    touching[0] = False
    return touching[labels]


def _stroke_width(mask: np.ndarray) -> float:
    """Typical stroke width in pixels: twice the ink's area over its outline's length.

    A stroke of width w and length L covers w*L pixels and has about 2*L pixels on its outline.
    """
    area = np.count_nonzero(mask)
    if area == 0:
        return 0.0
    # Pixels on the array's edge border the outside, so only inner pixels can be interior.
    interior = mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    outline = area - np.count_nonzero(interior)
    return 2.0 * area / max(outline, 1)


def _fit_box(crop: np.ndarray) -> np.ndarray:
    """Scale the cropped digit to fit MNIST_BOX keeping its aspect ratio, with MNIST-like strokes."""
    height, width = crop.shape
    scale = MNIST_BOX / max(height, width)
    # Work at 4x the final size so strokes can be adjusted, then average down (anti-aliasing).
    # The bilinear weights widen when shrinking, as Pillow's do, so it is anti-aliased both ways.
    fine_height, fine_width = max(1, round(height * 4 * scale)), max(1, round(width * 4 * scale))
    fine = _resize(crop.astype(np.float32), fine_height, fine_width, "bilinear")
    fine = _normalise_strokes(fine)
    pixels = _resize(fine, max(1, round(height * scale)), max(1, round(width * scale)), "box")
    peak = pixels.max()
    return pixels / peak if peak > 0 else pixels


def _normalise_strokes(fine: np.ndarray) -> np.ndarray:
    """Thicken hairlines and thin marker strokes towards MNIST's pen width (in the 4x grid)."""
    half = fine.max() / 2
    width = _stroke_width(fine > half) / 4.0
    if width <= 0:
        return fine
    if width < MIN_STROKE:
        size = max(3, 2 * round((TARGET_STROKE - width) * 4.0 / 2.0) + 1)
        return _fill_narrow_holes(cv2.dilate(fine, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))))
    if width > MAX_STROKE:
        return _thin_keeping_shape(fine, round((width - TARGET_STROKE) * 4.0 / 2.0), half)
    return fine


def _fill_narrow_holes(fine: np.ndarray) -> np.ndarray:
    """Fill the holes in thickened hairlines narrower than a pen stroke (in the 4x grid).

    Hairlines that outline a stroke (edge detectors, outline fonts) leave a slit inside it; a
    digit's own loops are several strokes wide and stay open.
    """
    ink = fine > fine.max() / 2
    holes = ndimage.binary_fill_holes(ink) & ~ink
    if not holes.any():
        return fine
    count, labels = cv2.connectedComponents(holes.view(np.uint8), connectivity=4)
    depth = ndimage.maximum(cv2.distanceTransform(holes.view(np.uint8), cv2.DIST_L2, 3), labels, np.arange(1, count))
    narrow = np.zeros(count, dtype=bool)
    narrow[1:] = np.asarray(depth) <= NARROW_HOLE * 4.0
    return np.where(narrow[labels], fine.max(), fine)


def _thin_keeping_shape(fine: np.ndarray, radius: int, level: float) -> np.ndarray:
    """Erode by up to `radius`, stopping before any stroke breaks or any loop closes or opens."""
    shape = _topology(fine > level)
    thinned = fine
    for step in range(1, radius + 1):
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * step + 1, 2 * step + 1))
        eroded = cv2.erode(fine, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
        if _topology(eroded > level) != shape:
            break
        thinned = eroded
    return thinned


def _topology(mask: np.ndarray) -> tuple[int, int]:
    """(pieces of ink, holes in it): what thinning must not change."""
    pieces = cv2.connectedComponents(mask.view(np.uint8), connectivity=8)[0] - 1
    # Padded with background, the outside is one region; every other background region is a hole.
    outside = np.pad(~mask, 1, constant_values=True)
    holes = cv2.connectedComponents(outside.view(np.uint8), connectivity=4)[0] - 2
    return pieces, holes


def _place_by_centre_of_mass(digit: np.ndarray) -> np.ndarray:
    """Paste the digit into a 28x28 frame with its centre of mass at the frame's centre."""
    height, width = digit.shape
    # The centre of mass written out: ndimage.center_of_mass costs 4x as much on a 20x20 digit (measured).
    mass = max(float(digit.sum(dtype=np.float64)), np.finfo(np.float64).tiny)
    centre_row = float(digit.sum(axis=1, dtype=np.float64) @ np.arange(height)) / mass
    centre_col = float(digit.sum(axis=0, dtype=np.float64) @ np.arange(width)) / mass
    # MNIST's digits have their centre of mass at (14, 14) in 0-based pixel indices.
    top = int(round(MNIST_SIZE / 2 - centre_row))
    left = int(round(MNIST_SIZE / 2 - centre_col))
    # Keep the whole digit inside the frame even when its mass sits far off its box's centre.
    top = min(max(top, 0), MNIST_SIZE - height)
    left = min(max(left, 0), MNIST_SIZE - width)
    frame = np.zeros((MNIST_SIZE, MNIST_SIZE), dtype=np.float32)
    frame[top : top + height, left : left + width] = digit
    return frame


# A part of a row of digits is at least this share of the tallest part's height; shorter ones are
# a digit's own fragments, dots or dashes.
SIDE_BY_SIDE_HEIGHT = 0.6
# The 28x28 image's ink level that separates strokes from their anti-aliased rims.
SIDE_BY_SIDE_LEVEL = 0.3
# No digit is this many times wider than tall: 1 of MNIST's 10,000 test digits is, once uploaded
# and preprocessed (13 at 1.9); of the negatives that got a digit, one in twenty (dashes, lines).
WIDEST_DIGIT_SHAPE = 2.3


def wider_than_a_digit(digit: np.ndarray) -> bool:
    """Whether the ink of a 28x28 image is far wider than tall: a dash, a ruled line's remnant, a word, never one digit.

    The 20x20 box keeps the ink's shape, so this is the shape of what was uploaded.
    """
    rows, columns = (np.flatnonzero((digit > SIDE_BY_SIDE_LEVEL).any(axis=axis)) for axis in (1, 0))
    return rows.size > 0 and columns[-1] - columns[0] + 1 >= WIDEST_DIGIT_SHAPE * (rows[-1] - rows[0] + 1)


def side_by_side_parts(digit: np.ndarray) -> int:
    """How many tall, separate columns of ink a 28x28 image holds: 1 for a digit, 2 or more for a row of digits.

    Strokes that overlap horizontally count as one column, so the two strokes of a 4 or a 5 stay one.
    """
    count, _, stats, _ = cv2.connectedComponentsWithStats((digit > SIDE_BY_SIDE_LEVEL).view(np.uint8), connectivity=8)
    if count < 3:
        return count - 1
    spans = sorted((int(left), int(left + width), int(top), int(top + height)) for left, top, width, height, _ in stats[1:])
    columns: list[list[int]] = []
    for left, right, top, bottom in spans:
        if columns and left < columns[-1][1]:
            column = columns[-1]
            column[1], column[2], column[3] = max(column[1], right), min(column[2], top), max(column[3], bottom)
        else:
            columns.append([left, right, top, bottom])
    heights = [bottom - top for _, _, top, bottom in columns]
    tallest = max(heights)
    return sum(height >= SIDE_BY_SIDE_HEIGHT * tallest for height in heights)


@lru_cache(maxsize=512)
def _resampling_matrix(source: int, target: int, kind: str) -> np.ndarray:
    """The (target, source) weights of Pillow's BOX or BILINEAR resize along one axis.

    A resize is separable, so `rows @ image @ columns.T` is the resized image: two small matrix
    products instead of a round trip through a Pillow image and back.
    """
    scale = source / target
    filter_scale = max(scale, 1.0)
    support = (0.5 if kind == "box" else 1.0) * filter_scale
    centres = (np.arange(target) + 0.5) * scale
    # Pillow's window per output pixel, truncated towards zero as its C code does.
    firsts = np.maximum((centres - support + 0.5).astype(np.int64), 0)
    lasts = np.minimum((centres + support + 0.5).astype(np.int64), source)
    columns = np.arange(source)
    offsets = (columns - centres[:, np.newaxis] + 0.5) / filter_scale
    if kind == "box":
        weights = ((offsets > -0.5) & (offsets <= 0.5)).astype(np.float64)
    else:
        weights = np.clip(1.0 - np.abs(offsets), 0.0, None)
    weights[(columns < firsts[:, np.newaxis]) | (columns >= lasts[:, np.newaxis])] = 0.0
    weights /= weights.sum(axis=1, keepdims=True)
    weights = weights.astype(np.float32)
    weights.flags.writeable = False
    return weights


def _resize(image: np.ndarray, height: int, width: int, kind: str) -> np.ndarray:
    """Resize a float image as Pillow's BOX or BILINEAR filter would, without its 8-bit rounding."""
    rows = _resampling_matrix(image.shape[0], height, kind)
    columns = _resampling_matrix(image.shape[1], width, kind)
    return rows @ image @ columns.T


def to_png(digit: np.ndarray, scale: int = 1) -> bytes:
    """Encode a (28, 28) float digit as PNG bytes, optionally scaled up with visible pixels."""
    image = Image.fromarray(np.clip(digit * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
