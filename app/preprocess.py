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

import numpy as np
from PIL import Image, ImageFile, ImageFilter, ImageOps, UnidentifiedImageError
from scipy import ndimage

MNIST_SIZE = 28
MNIST_BOX = 20
ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")
DEFAULT_MAX_PIXELS = 25_000_000
# The first bytes of the accepted formats: such a file that fails to open is damaged, not foreign.
IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*", b"RIFF")

# Work on at most this many pixels a side: enough for thin strokes, cheap for everything.
WORKING_SIDE = 512
# Ink must stand this far (0-1) above the background, or the image holds no digit.
MIN_CONTRAST = 0.12
# After normalising, levels below this are paper texture, shadows or JPEG noise.
NOISE_FLOOR = 0.15
# A digit covers more than this share of the working image only if it is really a photo of texture.
MAX_INK_SHARE = 0.6
# Stroke width, in pixels of the 20x20 box, outside which strokes are thickened or thinned.
MIN_STROKE, MAX_STROKE, TARGET_STROKE = 1.2, 5.0, 2.2

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
        # Decoding at a reduced scale is far cheaper than decoding a photo at full size.
        image.draft(image.mode if image.mode in ("L", "RGB") else None, (WORKING_SIDE, WORKING_SIDE))
    image.seek(0)
    image.load()
    image = ImageOps.exif_transpose(image)
    image = _shrink(image)
    return DecodedImage(pixels=_to_gray(image), format=image_format, width=width, height=height)


def _shrink(image: Image.Image) -> Image.Image:
    """Reduce a large image to at most WORKING_SIDE a side with an area filter."""
    largest = max(image.size)
    if largest <= WORKING_SIDE:
        return image
    if image.mode not in ("L", "LA", "RGB", "RGBA", "F", "I"):
        image = image.convert("RGBA" if _has_alpha(image) else "RGB")
    scale = WORKING_SIDE / largest
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BOX)


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
        gray = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
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
    rows, cols = np.nonzero(ink > 0)
    if rows.size == 0:
        raise NoDigitFound("no digit found: the image is blank or has too little contrast")
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    return _place_by_centre_of_mass(_fit_box(crop))


def _ink_map(gray: np.ndarray) -> np.ndarray:
    """Bright ink on a black background, normalised to [0, 1], with noise and specks removed."""
    gray = gray.astype(np.float32, copy=False)
    if _border_level(gray) > 0.5:
        gray = 1.0 - gray
    ink = gray - _background(gray)
    peak = float(np.percentile(ink, 99.9)) if ink.size > 1000 else float(ink.max())
    if peak < MIN_CONTRAST:
        raise NoDigitFound("no digit found: the image is blank or has too little contrast")
    ink = np.clip((ink / peak - NOISE_FLOOR) / (1.0 - NOISE_FLOOR), 0.0, 1.0)
    ink_share = np.count_nonzero(ink) / ink.size
    # Strokes are sparse or smooth; static covers much of the image with uncorrelated pixels.
    if ink_share > 0.25 and _looks_like_noise(gray):
        raise NoDigitFound("no digit found: the image looks like random noise")
    if ink_share > MAX_INK_SHARE:
        raise NoDigitFound("no digit found: the image looks like texture or noise, not a digit on a plain background")
    return _drop_specks(ink)


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


def _border_level(gray: np.ndarray) -> float:
    """The median level of the outer ring of the image: the paper or canvas colour."""
    height, width = gray.shape
    band = max(1, min(height, width) // 20)
    ring = np.concatenate([gray[:band].ravel(), gray[-band:].ravel(), gray[:, :band].ravel(), gray[:, -band:].ravel()])
    return float(np.median(ring))


def _background(gray: np.ndarray) -> np.ndarray:
    """A smooth estimate of the background level, so shadows and uneven light are not ink."""
    height, width = gray.shape
    tiles = 8
    if min(height, width) < 4 * tiles:
        return np.float32(np.median(gray))
    tile_height, tile_width = height // tiles, width // tiles
    # One vectorised median per tile; the few rows and columns past the last whole tile are left out.
    blocks = gray[: tile_height * tiles, : tile_width * tiles].reshape(tiles, tile_height, tiles, tile_width)
    levels = np.median(blocks.transpose(0, 2, 1, 3).reshape(tiles, tiles, -1), axis=-1).astype(np.float32)
    # A tile covered by a thick stroke reports ink, not paper: take its darkest neighbour instead.
    padded = np.pad(levels, 1, mode="edge")
    neighbourhood = np.stack([padded[i : i + tiles, j : j + tiles] for i in range(3) for j in range(3)])
    levels = neighbourhood.min(axis=0)
    tile_image = Image.fromarray(levels, mode="F").resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(tile_image, dtype=np.float32)


def _drop_specks(ink: np.ndarray) -> np.ndarray:
    """Remove connected blobs far smaller than the digit (dust, JPEG blocks, stray dots)."""
    labels, count = ndimage.label(ink > 0, structure=np.ones((3, 3)))
    if count <= 1:
        return ink
    masses = ndimage.sum_labels(ink, labels, index=np.arange(1, count + 1))
    keep = masses >= 0.02 * masses.max()
    keep_mask = np.concatenate([[False], keep])[labels]
    return np.where(keep_mask, ink, 0.0).astype(np.float32)


def _stroke_width(mask: np.ndarray) -> float:
    """Typical stroke width in pixels: four times the mean distance from ink to its edge."""
    if not mask.any():
        return 0.0
    distances = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    return float(4.0 * distances[mask].mean() - 1.0)


def _fit_box(crop: np.ndarray) -> np.ndarray:
    """Scale the cropped digit to fit MNIST_BOX keeping its aspect ratio, with MNIST-like strokes."""
    height, width = crop.shape
    scale = MNIST_BOX / max(height, width)
    # Work at 4x the final size so strokes can be adjusted, then average down (anti-aliasing).
    fine_scale = 4 * scale
    fine_size = (max(1, round(width * fine_scale)), max(1, round(height * fine_scale)))
    fine = Image.fromarray(crop, mode="F").resize(fine_size, Image.Resampling.LANCZOS if fine_scale < 1 else Image.Resampling.BILINEAR)
    fine_pixels = np.clip(np.asarray(fine, dtype=np.float32), 0.0, 1.0)
    fine_pixels = _normalise_strokes(fine_pixels)
    box_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = Image.fromarray(fine_pixels, mode="F").resize(box_size, Image.Resampling.BOX)
    pixels = np.clip(np.asarray(small, dtype=np.float32), 0.0, 1.0)
    peak = pixels.max()
    return pixels / peak if peak > 0 else pixels


def _normalise_strokes(fine: np.ndarray) -> np.ndarray:
    """Thicken hairlines and thin marker strokes towards MNIST's pen width (in the 4x grid)."""
    width = _stroke_width(fine > 0.5 * fine.max()) / 4.0
    if width <= 0:
        return fine
    if width < MIN_STROKE:
        size = 2 * round((TARGET_STROKE - width) * 4.0 / 2.0) + 1
        return np.asarray(Image.fromarray(fine, mode="F").filter(ImageFilter.MaxFilter(max(3, size))), dtype=np.float32)
    if width > MAX_STROKE:
        size = 2 * round((width - TARGET_STROKE) * 4.0 / 2.0) + 1
        thinned = Image.fromarray(fine, mode="F").filter(ImageFilter.MinFilter(max(3, size)))
        thinned_pixels = np.asarray(thinned, dtype=np.float32)
        # Never thin a digit away: keep the original where thinning would erase it.
        return thinned_pixels if thinned_pixels.max() > 0.5 else fine
    return fine


def _place_by_centre_of_mass(digit: np.ndarray) -> np.ndarray:
    """Paste the digit into a 28x28 frame with its centre of mass at the frame's centre."""
    height, width = digit.shape
    total = digit.sum()
    rows, cols = np.indices(digit.shape)
    centre_row = (rows * digit).sum() / total
    centre_col = (cols * digit).sum() / total
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
