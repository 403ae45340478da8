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
from dataclasses import dataclass
from functools import lru_cache

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
# Ink must stand this far (0-1) above the background, or the image holds no digit.
MIN_CONTRAST = 0.12
# After normalising, levels below this are paper texture, shadows or JPEG noise.
NOISE_FLOOR = 0.15
# Paper and lighting are judged on a grid of CELLS x CELLS block means, in TILES x TILES tiles.
CELLS, TILES = 32, 8
# Tile indices with the first and last repeated: indexing with them pads the grid by its edge.
TILE_INDEX_PADDED = np.clip(np.arange(-1, TILES + 1), 0, TILES - 1)
RING = np.ones((CELLS, CELLS), dtype=bool)
RING[2:-2, 2:-2] = False
# Paper whose level varies less than this across the image is treated as one flat level.
FLAT_PAPER = 0.02
# A digit covers more than this share of the working image only if it is really a photo of texture.
MAX_INK_SHARE = 0.6
EIGHT_NEIGHBOURS = np.ones((3, 3), dtype=bool)
# Stroke width, in pixels of the 20x20 box, outside which strokes are thickened or thinned.
MIN_STROKE, MAX_STROKE, TARGET_STROKE = 1.2, 5.0, 2.2

# The `info` keys that Pillow's `getexif` reads an orientation from, besides a TIFF's own tags.
ORIENTATION_SOURCES = frozenset({"exif", "Raw profile type exif", "XML:com.adobe.xmp", "xmp"})

ImageFile.LOAD_TRUNCATED_IMAGES = False


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


@dataclass(frozen=True)
class DecodedImage:
    """A decoded upload as grayscale floats in [0, 1], with its original format and size."""

    pixels: np.ndarray
    format: str
    width: int
    height: int


def mnist_pixels_to_input(images: np.ndarray) -> np.ndarray:
    """Scale MNIST's uint8 pixels (0-255, white on black) to the model's float32 [0, 1]."""
    return np.asarray(images, dtype=np.float32) / 255.0


def preprocess(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Bytes of an uploaded image -> (28, 28) float32 in [0, 1], white digit on black."""
    return to_mnist(decode(data, max_pixels).pixels)


def decode(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Decode `data` to grayscale in [0, 1]: EXIF orientation applied, alpha flattened, first frame."""
    if not data:
        raise EmptyImage("the upload is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
            return _decode_opened(image, max_pixels)
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


def _decode_opened(image: Image.Image, max_pixels: int) -> DecodedImage:
    width, height = image.size
    if width < 1 or height < 1:
        raise CorruptImage("the image has no pixels")
    if width * height > max_pixels:
        raise ImageTooLarge(f"the image has {width * height:,} pixels; the limit is {max_pixels:,}")
    image_format = image.format or "unknown"
    if image.format == "JPEG":
        # The decoder can scale a photo down by 2, 4 or 8 and skip colour: far cheaper than full size.
        # Ask for just over half the working side: the result then needs at most one more halving.
        image.draft("L" if image.mode in ("L", "RGB") else None, (WORKING_SIDE // 2 + 1, WORKING_SIDE // 2 + 1))
    image.seek(0)
    image.load()
    if _may_carry_orientation(image):
        ImageOps.exif_transpose(image, in_place=True)
    return DecodedImage(pixels=_to_gray(_reduce(image)), format=image_format, width=width, height=height)


def _may_carry_orientation(image: Image.Image) -> bool:
    """Whether the image has any of the metadata Pillow reads an orientation from (EXIF, XMP, TIFF tags)."""
    # Reading EXIF costs more than the rest of decoding a small PNG, which mostly has none.
    return not ORIENTATION_SOURCES.isdisjoint(image.info) or hasattr(image, "tag_v2")


def _reduce(image: Image.Image) -> Image.Image:
    """Average blocks of a whole number of pixels so the image is at most WORKING_SIDE a side."""
    factor = -(-max(image.size) // WORKING_SIDE)
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


def to_mnist(gray: np.ndarray) -> np.ndarray:
    """Grayscale in [0, 1] of any size and polarity -> (28, 28) float32 MNIST-style digit."""
    ink = _ink_map(gray)
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        raise NoDigitFound("no digit found: the image is blank or has too little contrast")
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return _place_by_centre_of_mass(_fit_box(crop))


def _ink_map(gray: np.ndarray) -> np.ndarray:
    """Bright ink on a black background as uint8 (0-255), with noise and specks removed."""
    gray = gray.astype(np.float32, copy=False)
    cells = _cell_means(gray)
    if _is_light_paper(cells):
        gray = 1.0 - gray
        cells = 1.0 - cells
    ink = gray - _background(gray, cells)
    peak = _bright_level(ink)
    if peak < MIN_CONTRAST:
        raise NoDigitFound("no digit found: the image is blank or has too little contrast")
    # 255 * (ink / peak - floor) / (1 - floor), clipped, in place; 8 bits from here on, as MNIST's.
    ink *= np.float32(255.0 / (peak * (1.0 - NOISE_FLOOR)))
    ink -= np.float32(255.0 * NOISE_FLOOR / (1.0 - NOISE_FLOOR))
    np.clip(ink, 0.0, 255.0, out=ink)
    ink = ink.astype(np.uint8)
    ink_share = np.count_nonzero(ink) / ink.size
    # Strokes are sparse or smooth; static covers much of the image with uncorrelated pixels.
    if ink_share > 0.25 and _looks_like_noise(gray):
        raise NoDigitFound("no digit found: the image looks like random noise")
    if ink_share > MAX_INK_SHARE:
        raise NoDigitFound("no digit found: the image looks like texture or noise, not a digit on a plain background")
    return _drop_specks(ink)


def _cell_means(gray: np.ndarray) -> np.ndarray:
    """The image averaged down to a CELLS x CELLS grid: enough to judge paper and light, and cheap."""
    return _resize(gray, CELLS, CELLS, "box")


@lru_cache(maxsize=512)
def _resampling_matrix(source: int, target: int, kind: str) -> np.ndarray:
    """The (target, source) weights of Pillow's BOX or BILINEAR resize along one axis.

    A resize is separable, so `rows @ image @ columns.T` is the resized image: two small matrix
    products instead of a round trip through a Pillow image and back.
    """
    scale = source / target
    filter_scale = max(scale, 1.0)
    support = (0.5 if kind == "box" else 1.0) * filter_scale
    weights = np.zeros((target, source), dtype=np.float64)
    for index in range(target):
        centre = (index + 0.5) * scale
        first = max(int(centre - support + 0.5), 0)
        last = min(int(centre + support + 0.5), source)
        offsets = (np.arange(first, last) - centre + 0.5) / filter_scale
        if kind == "box":
            row = ((offsets > -0.5) & (offsets <= 0.5)).astype(np.float64)
        else:
            row = np.clip(1.0 - np.abs(offsets), 0.0, None)
        weights[index, first:last] = row / row.sum()
    weights = weights.astype(np.float32)
    weights.flags.writeable = False
    return weights


def _resize(image: np.ndarray, height: int, width: int, kind: str) -> np.ndarray:
    """Resize a float image as Pillow's BOX or BILINEAR filter would, without its 8-bit rounding."""
    rows = _resampling_matrix(image.shape[0], height, kind)
    columns = _resampling_matrix(image.shape[1], width, kind)
    return rows @ image @ columns.T


def _is_light_paper(cells: np.ndarray) -> bool:
    """True when most of the outer ring of the image is light: dark ink on light paper."""
    ring = cells[RING]
    return np.count_nonzero(ring > 0.5) * 2 > ring.size


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


def _looks_like_noise(gray: np.ndarray) -> bool:
    """True when neighbouring pixels are nearly uncorrelated: static, not strokes on paper."""
    if min(gray.shape) < 8:
        return False
    sample = gray[::2, ::2]
    pairs = ((sample[:, :-1], sample[:, 1:]), (sample[:-1], sample[1:]))
    correlations = [
        float(np.corrcoef(first.ravel(), second.ravel())[0, 1]) if first.std() > 1e-3 and second.std() > 1e-3 else 1.0 for first, second in pairs
    ]
    return max(correlations) < 0.3


def _background(gray: np.ndarray, cells: np.ndarray) -> np.ndarray | np.float32:
    """A smooth estimate of the background level, so shadows and uneven light are not ink."""
    height, width = gray.shape
    if min(height, width) < CELLS:
        return np.float32(np.median(gray))
    # Each tile's level is the median of its cells: robust to the strokes that cross it.
    per_tile = CELLS // TILES
    blocks = cells.reshape(TILES, per_tile, TILES, per_tile).transpose(0, 2, 1, 3).reshape(TILES, TILES, -1)
    middle = blocks.shape[-1] // 2
    blocks = np.partition(blocks, (middle - 1, middle), axis=-1)
    levels = (blocks[..., middle - 1] + blocks[..., middle]) * np.float32(0.5)
    # A tile covered by a thick stroke reports ink, not paper: take its darkest neighbour instead.
    levels = _minimum_of_neighbours(levels)
    if levels.max() - levels.min() < FLAT_PAPER:
        return np.float32(levels.sum() / levels.size)
    return _resize(levels, height, width, "bilinear")


def _minimum_of_neighbours(levels: np.ndarray) -> np.ndarray:
    """The minimum over each tile's 3x3 neighbourhood, the edge tiles repeated outwards."""
    padded = levels[TILE_INDEX_PADDED][:, TILE_INDEX_PADDED]
    rows = np.minimum(np.minimum(padded[:-2], padded[1:-1]), padded[2:])
    return np.minimum(np.minimum(rows[:, :-2], rows[:, 1:-1]), rows[:, 2:])


def _drop_specks(ink: np.ndarray) -> np.ndarray:
    """Remove connected blobs far smaller than the digit (dust, JPEG blocks, stray dots)."""
    # Label blobs at half resolution: a quarter of the work, and a speck is still a speck.
    coarse = _half_resolution_ink(ink)
    labels, count = ndimage.label(coarse, structure=EIGHT_NEIGHBOURS)
    if count <= 1:
        return ink
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    keep = sizes >= 0.02 * sizes[1:].max()
    keep[0] = False
    if keep[1:].all():
        return ink
    keep_mask = np.repeat(np.repeat(keep[labels], 2, axis=0), 2, axis=1)[: ink.shape[0], : ink.shape[1]]
    return np.where(keep_mask, ink, np.uint8(0))


def _half_resolution_ink(ink: np.ndarray) -> np.ndarray:
    """Where a 2x2 block of `ink` rounds to a mean above zero, as Pillow's `reduce(2)` rounds it."""
    height, width = ink.shape
    padded = np.zeros((height + height % 2, width + width % 2), dtype=np.uint16)
    padded[:height, :width] = ink
    sums = padded[0::2, 0::2] + padded[1::2, 0::2]
    sums += padded[0::2, 1::2]
    sums += padded[1::2, 1::2]
    coarse = sums >= 2
    # A block cut short by an odd edge averages fewer pixels: any ink at all rounds up there.
    if height % 2:
        coarse[-1] = sums[-1] >= 1
    if width % 2:
        coarse[:, -1] = sums[:, -1] >= 1
    return coarse


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
    """Scale the cropped uint8 digit to fit MNIST_BOX keeping its aspect ratio, with MNIST-like strokes."""
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
    width = _stroke_width(fine > fine.max() / 2) / 4.0
    if width <= 0:
        return fine
    if width < MIN_STROKE:
        size = 2 * round((TARGET_STROKE - width) * 4.0 / 2.0) + 1
        return ndimage.maximum_filter(fine, size=max(3, size), mode="nearest")
    if width > MAX_STROKE:
        size = 2 * round((width - TARGET_STROKE) * 4.0 / 2.0) + 1
        thinned = ndimage.minimum_filter(fine, size=max(3, size), mode="nearest")
        # Never thin a digit away: keep the original where thinning would erase it.
        return thinned if thinned.max() > 127 else fine
    return fine


def _place_by_centre_of_mass(digit: np.ndarray) -> np.ndarray:
    """Paste the digit into a 28x28 frame with its centre of mass at the frame's centre."""
    height, width = digit.shape
    total = digit.sum()
    centre_row = digit.sum(axis=1) @ np.arange(height, dtype=np.float32) / total
    centre_col = digit.sum(axis=0) @ np.arange(width, dtype=np.float32) / total
    # MNIST's digits have their centre of mass at (14, 14) in 0-based pixel indices.
    top = int(round(MNIST_SIZE / 2 - centre_row))
    left = int(round(MNIST_SIZE / 2 - centre_col))
    # Keep the whole digit inside the frame even when its mass sits far off its box's centre.
    top = min(max(top, 0), MNIST_SIZE - height)
    left = min(max(left, 0), MNIST_SIZE - width)
    frame = np.zeros((MNIST_SIZE, MNIST_SIZE), dtype=np.float32)
    frame[top : top + height, left : left + width] = digit
    return frame


def to_png(digit: np.ndarray, scale: int = 1) -> bytes:
    """Encode a (28, 28) float digit as PNG bytes, optionally scaled up with visible pixels."""
    image = Image.fromarray(np.clip(digit * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
