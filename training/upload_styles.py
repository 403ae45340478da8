"""Render MNIST digits the way people upload them: the fixture set for real-upload accuracy.

Each style takes a 28x28 uint8 MNIST digit (white on black) and a seeded random generator and
returns encoded image bytes, so the whole path (decode, preprocess, model) is exercised. Two
groups: "uploads", the files drawing apps and phones produce (here), and "photos", photos and
scans of real surfaces (`training.scenes`).

    python -m training.upload_styles --data mnist.npz --per-style 100        # accuracy per style, both groups
    python -m training.upload_styles --data mnist.npz --group photos --sheet photos.png   # and a contact sheet
    python -m training.upload_styles --json model/fixtures.json --readme README.md --readme model/README.md   # and the tables

The README's "fixtures-summary" section gets the groups side by side; any "fixtures" section (the
model card's) gets a table per group.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from training.markdown import replace_section
from training.scenes import SCENES, encode

README_SECTION = "fixtures"
# The project README keeps the groups side by side to stay short; the model card keeps a table per group.
README_SUMMARY_SECTION = "fixtures-summary"

Style = Callable[[np.ndarray, np.random.Generator], bytes]


def _upscale(digit: np.ndarray, size: int) -> Image.Image:
    """The MNIST digit as a smooth white-on-black grayscale image of `size` pixels a side."""
    return Image.fromarray(digit, mode="L").resize((size, size), Image.Resampling.BICUBIC)


def _ink_on_paper(ink: Image.Image, paper: float = 255, pen: float = 0) -> Image.Image:
    """Dark pen on light paper from a white-on-black ink mask."""
    alpha = np.asarray(ink, dtype=np.float32) / 255.0
    return Image.fromarray((paper * (1 - alpha) + pen * alpha).clip(0, 255).astype(np.uint8), mode="L")


def clean_png(digit, rng) -> bytes:
    """Black on white, 280x280: the round-trip format."""
    return encode(_ink_on_paper(_upscale(digit, 280)))


def off_centre(digit, rng) -> bytes:
    """A small digit drawn near a corner of a wide canvas."""
    size = int(rng.integers(60, 120))
    canvas = Image.new("L", (480, 320), 0)
    canvas.paste(_upscale(digit, size), (int(rng.integers(0, 480 - size)), int(rng.integers(0, 320 - size))))
    return encode(_ink_on_paper(canvas))


def thick_strokes(digit, rng) -> bytes:
    """A felt-tip marker: strokes several times MNIST's width."""
    ink = _upscale(digit, 280).filter(ImageFilter.MaxFilter(int(rng.choice([9, 13, 17]))))
    return encode(_ink_on_paper(ink))


def thin_strokes(digit, rng) -> bytes:
    """A fine pen: the digit's centre line, 1-5 pixels wide on a 400-pixel canvas."""
    from skimage.morphology import skeletonize

    strokes = np.asarray(_upscale(digit, 400)) > 128
    centre_line = skeletonize(strokes)
    radius = int(rng.integers(0, 3))
    pen = Image.fromarray((centre_line * 255).astype(np.uint8), mode="L")
    if radius:
        pen = pen.filter(ImageFilter.MaxFilter(2 * radius + 1))
    return encode(_ink_on_paper(pen))


def rgba_canvas_white(digit, rng) -> bytes:
    """A browser canvas export: transparent background, white strokes (invisible on white)."""
    alpha = _upscale(digit, 280)
    rgba = Image.merge("RGBA", (Image.new("L", alpha.size, 255),) * 3 + (alpha,))
    return encode(rgba)


def rgba_canvas_black(digit, rng) -> bytes:
    """A browser canvas export: transparent background, black strokes (invisible on black)."""
    alpha = _upscale(digit, 280)
    rgba = Image.merge("RGBA", (Image.new("L", alpha.size, 0),) * 3 + (alpha,))
    return encode(rgba)


def photo_jpeg(digit, rng) -> bytes:
    """A phone photo of paper: grey uneven light, blue-black ink, sensor noise, strong JPEG."""
    size = 600
    ink = np.asarray(_upscale(digit, 360), dtype=np.float32) / 255.0
    ys, xs = np.mgrid[0:size, 0:size] / size
    light = 200 + 40 * (xs * rng.uniform(-1, 1) + ys * rng.uniform(-1, 1))
    mask = np.zeros((size, size), dtype=np.float32)
    top, left = int(rng.integers(60, 180)), int(rng.integers(60, 180))
    mask[top : top + 360, left : left + 360] = ink
    paper = np.stack([light, light * 0.98, light * 0.93], axis=-1)
    pen = np.array([30, 35, 80], dtype=np.float32)
    pixels = paper * (1 - mask[..., None]) + pen * mask[..., None] + rng.normal(0, 6, (size, size, 3))
    image = Image.fromarray(pixels.clip(0, 255).astype(np.uint8), mode="RGB")
    return encode(image, "JPEG", quality=int(rng.integers(25, 60)))


def exif_rotated(digit, rng) -> bytes:
    """A phone JPEG stored sideways with an EXIF orientation tag that says how to turn it upright."""
    upright = _ink_on_paper(_upscale(digit, 300)).convert("RGB")
    orientation, stored = {
        6: (6, upright.transpose(Image.Transpose.ROTATE_90)),
        8: (8, upright.transpose(Image.Transpose.ROTATE_270)),
        3: (3, upright.transpose(Image.Transpose.ROTATE_180)),
    }[int(rng.choice([6, 8, 3]))]
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, "JPEG", quality=90, exif=exif.tobytes())


def tiny(digit, rng) -> bytes:
    """A thumbnail: the digit at 16-24 pixels."""
    size = int(rng.integers(16, 25))
    return encode(_ink_on_paper(_upscale(digit, 28).resize((size, size), Image.Resampling.LANCZOS)))


def huge_jpeg(digit, rng) -> bytes:
    """A 2000x2000 scan."""
    return encode(_ink_on_paper(_upscale(digit, 2000)).convert("RGB"), "JPEG", quality=85)


def dark_mode(digit, rng) -> bytes:
    """Light strokes on a dark, coloured background (a dark-theme drawing app)."""
    ink = np.asarray(_upscale(digit, 280), dtype=np.float32)[..., None] / 255.0
    background = np.array([30, 30, 46], dtype=np.float32)
    stroke = np.array([240, 240, 200], dtype=np.float32)
    pixels = background * (1 - ink) + stroke * ink
    return encode(Image.fromarray(pixels.astype(np.uint8), mode="RGB"))


def palette_gif(digit, rng) -> bytes:
    """A GIF with a small palette, as old drawing tools save."""
    return encode(_ink_on_paper(_upscale(digit, 140)).convert("P", palette=Image.Palette.ADAPTIVE, colors=8), "GIF")


STYLES: dict[str, Style] = {
    "clean_png": clean_png,
    "off_centre": off_centre,
    "thick_strokes": thick_strokes,
    "thin_strokes": thin_strokes,
    "rgba_canvas_white": rgba_canvas_white,
    "rgba_canvas_black": rgba_canvas_black,
    "photo_jpeg": photo_jpeg,
    "exif_rotated": exif_rotated,
    "tiny": tiny,
    "huge_jpeg": huge_jpeg,
    "dark_mode": dark_mode,
    "palette_gif": palette_gif,
}


GROUPS: dict[str, dict[str, Style]] = {"uploads": STYLES, "photos": SCENES}


def render_fixtures(images: np.ndarray, labels: np.ndarray, per_style: int, seed: int = 0, styles: dict[str, Style] | None = None):
    """Yield (style, label, bytes) for `per_style` test digits in each of `styles` (the upload styles unless given), seeded."""
    rng = np.random.default_rng(seed)
    for style_index, (name, style) in enumerate((styles or STYLES).items()):
        # Each style draws different digits, so the set covers more of the test set.
        start = style_index * per_style % len(images)
        for index in range(start, start + per_style):
            index %= len(images)
            yield name, int(labels[index]), style(images[index], rng)


def accuracy_by_style(
    classify: Callable[[bytes], int], images, labels, per_style: int, seed: int = 0, styles: dict[str, Style] | None = None
) -> dict[str, float]:
    """Accuracy of `classify` (bytes -> digit) on each of `styles` (the upload styles unless given), plus 'overall'."""
    correct: dict[str, list[bool]] = {}
    for style, label, data in render_fixtures(images, labels, per_style, seed, styles):
        correct.setdefault(style, []).append(classify(data) == label)
    scores = {style: float(np.mean(hits)) for style, hits in correct.items()}
    scores["overall"] = float(np.mean([hit for hits in correct.values() for hit in hits]))
    return scores


def contact_sheet(images: np.ndarray, styles: dict[str, Style], examples: int = 6, seed: int = 0, tile: int = 200) -> Image.Image:
    """One row per style: its name, then `examples` images, each scaled to fit a `tile`-pixel square."""
    rng = np.random.default_rng(seed)
    label_width = 190
    sheet = Image.new("RGB", (label_width + examples * (tile + 8), len(styles) * (tile + 8)), "white")
    draw = ImageDraw.Draw(sheet)
    for row, (name, style) in enumerate(styles.items()):
        top = row * (tile + 8) + 4
        draw.text((6, top + tile // 2 - 8), name, fill="black", font_size=15)
        for column in range(examples):
            image = Image.open(io.BytesIO(style(images[(row * examples + column) % len(images)], rng))).convert("RGB")
            # Thumbnails are shown with their pixels, not smoothed, so a 12-pixel image looks like one.
            scale = tile / max(image.size)
            resample = Image.Resampling.NEAREST if scale > 1 else Image.Resampling.LANCZOS
            fitted = ImageOps.pad(image, (tile, tile), method=resample, color=(120, 150, 120))
            sheet.paste(fitted, (label_width + column * (tile + 8), top))
    return sheet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.upload_styles", description="Accuracy on upload-style and photo fixtures.")
    parser.add_argument("--data", help="MNIST .npz file or IDX folder")
    parser.add_argument("--model", default="model/digitserve.keras")
    parser.add_argument("--per-style", type=int, default=100)
    parser.add_argument("--group", choices=[*GROUPS, "all"], default="all", help="which fixture group to score (default: all)")
    parser.add_argument("--save", help="also write the fixture images into this folder")
    parser.add_argument("--sheet", help="also write a contact sheet PNG with a few examples of each style")
    parser.add_argument("--json", type=Path, help="also write the scores as JSON")
    parser.add_argument(
        "--readme", type=Path, action="append", default=[], help=f"also put the table in this Markdown file's {README_SECTION!r} section (repeatable)"
    )
    args = parser.parse_args(argv)
    from app.classifier import Classifier, ModelLoadError
    from app.preprocess import PreprocessError, preprocess
    from training.data import DataError, load_mnist, resolve_source

    try:
        data = load_mnist(resolve_source(args.data))
        classifier = Classifier.load(args.model)
    except (DataError, ModelLoadError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    def classify(image_bytes: bytes) -> int:
        try:
            return int(classifier.predict(preprocess(image_bytes)[np.newaxis])[0].argmax())
        except PreprocessError:
            return -1

    groups = GROUPS if args.group == "all" else {args.group: GROUPS[args.group]}
    scores: dict[str, dict[str, float]] = {}
    if args.sheet:
        contact_sheet(data.x_test, {name: style for styles in groups.values() for name, style in styles.items()}).save(args.sheet)
    for group, styles in groups.items():
        if args.save:
            folder = Path(args.save)
            folder.mkdir(parents=True, exist_ok=True)
            for number, (style, label, image_bytes) in enumerate(render_fixtures(data.x_test, data.y_test, args.per_style, styles=styles)):
                (folder / f"{style}-{number:04d}-label{label}.img").write_bytes(image_bytes)
        print(group)
        scores[group] = accuracy_by_style(classify, data.x_test, data.y_test, args.per_style, styles=styles)
        for style, score in scores[group].items():
            print(f"{style:>20}  {score:7.2%}")
    if args.json:
        args.json.write_text(json.dumps({"per_style": args.per_style, "model_version": classifier.version, "accuracy": scores}, indent=2) + "\n")
    sections = {
        README_SECTION: scores_markdown(scores, args.per_style, classifier.version),
        README_SUMMARY_SECTION: side_by_side_markdown(scores, args.per_style, classifier.version),
    }
    for readme in args.readme:
        written = [name for name, section in sections.items() if replace_section(readme, name, section)]
        if not written:
            print(f"warning: {readme} has no {README_SECTION!r} or {README_SUMMARY_SECTION!r} section to rewrite", file=sys.stderr)
    return 0


def scores_markdown(scores: dict[str, dict[str, float]], per_style: int, model_version: str) -> str:
    """A table per group: accuracy of each style, then the group's overall."""
    lines = []
    for group, by_style in scores.items():
        lines += [f"| {group} | accuracy |", "|---|---:|"]
        lines += [f"| {'**overall**' if style == 'overall' else style.replace('_', ' ')} | {score:.1%} |" for style, score in by_style.items()]
        lines.append("")
    lines.append(_source_line(per_style, model_version))
    return "\n".join(lines) + "\n"


def side_by_side_markdown(scores: dict[str, dict[str, float]], per_style: int, model_version: str) -> str:
    """One table with a column pair per group: each style's accuracy, then the groups' overall in the last row."""
    columns = [[(style.replace("_", " "), f"{score:.1%}") for style, score in by_style.items() if style != "overall"] for by_style in scores.values()]
    lines = ["| " + " | ".join(f"{group} | accuracy" for group in scores) + " |", "|" + "---|---:|" * len(scores)]
    for row in range(max(len(column) for column in columns)):
        cells = [column[row] if row < len(column) else ("", "") for column in columns]
        lines.append("| " + " | ".join(f"{name} | {score}" for name, score in cells) + " |")
    lines.append("| " + " | ".join(f"**overall** | {by_style['overall']:.1%}" for by_style in scores.values()) + " |")
    lines += ["", _source_line(per_style, model_version)]
    return "\n".join(lines) + "\n"


def _source_line(per_style: int, model_version: str) -> str:
    return f"{per_style} MNIST test digits per style, through `app/preprocess.py` and model {model_version}: `training.upload_styles`."


if __name__ == "__main__":
    sys.exit(main())
