"""Draw what each preprocessing stage made of an upload, side by side, in one PNG."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

PANEL = 220
LABEL_HEIGHT = 18


def steps_image(steps: dict[str, np.ndarray], caption: str = "") -> Image.Image:
    """One row of panels, one per stage in the order they ran, each labelled; `caption` below."""
    panels = [(name, _panel(image)) for name, image in steps.items()]
    width = max(1, len(panels)) * (PANEL + 8) + 8
    sheet = Image.new("RGB", (width, PANEL + 2 * LABEL_HEIGHT + 16), (245, 245, 245))
    draw = ImageDraw.Draw(sheet)
    for index, (name, panel) in enumerate(panels):
        left = 8 + index * (PANEL + 8)
        sheet.paste(panel, (left + (PANEL - panel.width) // 2, LABEL_HEIGHT + 4 + (PANEL - panel.height) // 2))
        draw.text((left, 2), f"{index + 1}. {name}", fill=(20, 20, 20))
    if caption:
        draw.text((8, PANEL + LABEL_HEIGHT + 10), caption, fill=(20, 20, 20))
    return sheet


def _panel(image: np.ndarray) -> Image.Image:
    """A stage's array (bool mask or floats in [0, 1]) as a grayscale tile at most PANEL a side."""
    pixels = np.asarray(image, dtype=np.float32)
    tile = Image.fromarray(np.clip(pixels * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    scale = PANEL / max(tile.size)
    # Small images (the 28x28) keep their pixels visible; large ones are shrunk smoothly.
    resampling = Image.Resampling.NEAREST if scale > 1 else Image.Resampling.BILINEAR
    return tile.resize((max(1, round(tile.width * scale)), max(1, round(tile.height * scale))), resampling)
