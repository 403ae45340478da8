"""MNIST-C (Mu & Gilmer 2019, arXiv 1906.02337): 15 corruptions of MNIST test digits, and how the service fares on them.

    python -m bench.mnist_c --count 1000                      # 2 to 4 minutes on 2 cores
    python -m bench.mnist_c --count 100 --sheet bench/mnist_c_sheet.png

Each corruption follows the benchmark's reference code (google-research/mnist-c, corruptions.py)
at the severity MNIST-C was published with: the default severity of each function there. This is
our own implementation of those definitions with numpy, scipy.ndimage, scikit-image and OpenCV,
seeded by a `numpy.random.Generator`, so a run is repeatable.

The command corrupts the first `--count` test digits with each corruption and measures accuracy
two ways: through `POST /predict` of the real app (PNG upload, the service's preprocessing, a 422
refusal, blank or not a digit, counts as wrong) and with the same arrays fed straight to the model, which is
how MNIST-C results are usually quoted. It prints a table, writes JSON and a bar plot.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from fastapi.testclient import TestClient
from scipy import ndimage
from skimage import feature, transform, util

from app.classifier import Classifier
from app.config import Settings
from app.main import create_app, load_classifier
from app.preprocess import mnist_pixels_to_input, to_png
from training.data import load_mnist, resolve_source
from training.machine import machine_description
from training.markdown import replace_section

README_SECTION = "mnist-c"
HERE = Path(__file__).resolve().parent
SIDE = 28
# skimage's transforms keep the image centre fixed when they are centred on (13.5, 13.5).
CENTRE = (SIDE - 1) / 2

Corruption = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def to_unit(image: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float64 in [0, 1], the scale the reference code works in."""
    return np.asarray(image, dtype=np.float64) / 255.0


def to_pixels(image: np.ndarray) -> np.ndarray:
    """Floats in [0, 1] -> rounded uint8 pixels, as the published data set stores them."""
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def shot_noise(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Poisson noise: each pixel counts photons at 3 per full-white pixel (upstream severity 5 of 60, 25, 12, 5, 3)."""
    photons_per_white = 3
    return to_pixels(rng.poisson(to_unit(image) * photons_per_white) / photons_per_white)


def impulse_noise(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Salt and pepper: 17% of pixels set to black or white (upstream severity 4 of .03, .06, .09, .17, .27)."""
    return to_pixels(util.random_noise(to_unit(image), mode="s&p", amount=0.17, rng=rng))


def _vertical_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur down the columns only, as the reference glass blur does.

    Upstream calls skimage's `gaussian(..., multichannel=True)` on a 2-D digit, which takes the 28
    columns for colour channels and so blurs along the rows axis alone; we keep that quirk so the
    corruption matches the published data set.
    """
    return ndimage.gaussian_filter(image, sigma=(sigma, 0.0), mode="nearest", truncate=4.0)


def glass_blur(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blur, shuffle neighbouring pixels, blur again (upstream severity 1: sigma 0.7, max shift 1, 2 passes)."""
    sigma, max_shift, passes = 0.7, 1, 2
    # Upstream truncates (not rounds) to uint8 between the blurs.
    pixels = (_vertical_blur(to_unit(image), sigma) * 255).astype(np.uint8)
    # Upstream visits rows and columns 27 down to 2 and swaps each pixel, with probability 1/2, with
    # one drawn from randint(-1, 1), whose upper end is exclusive: the shifts are -1 or 0, so a pixel
    # only swaps with a neighbour above or to the left, and a swapped value can move on again.
    # The draws are made up front as Python lists: the swaps depend on each other and stay a loop.
    positions = list(range(SIDE - max_shift, max_shift, -1))
    swaps = (rng.random((passes, len(positions), len(positions))) < 0.5).tolist()
    shifts = rng.integers(-max_shift, max_shift, size=(passes, len(positions), len(positions), 2)).tolist()
    grid = pixels.tolist()
    for swap_pass, shift_pass in zip(swaps, shifts, strict=True):
        for row, swap_row, shift_row in zip(positions, swap_pass, shift_pass, strict=True):
            for column, swap, (column_shift, row_shift) in zip(positions, swap_row, shift_row, strict=True):
                if swap:
                    other_row, other_column = row + row_shift, column + column_shift
                    grid[row][column], grid[other_row][other_column] = grid[other_row][other_column], grid[row][column]
    return to_pixels(_vertical_blur(np.array(grid, dtype=np.float64) / 255.0, sigma))


def motion_blur_kernel(radius: float, sigma: float, angle_degrees: float) -> np.ndarray:
    """ImageMagick's motion-blur kernel as a 2-D correlation kernel: a one-sided Gaussian trail along `angle_degrees`.

    The reference code calls ImageMagick's MotionBlurImage through Wand. We have neither, so this
    rebuilds the same kernel (2*ceil(radius)+1 taps weighted exp(-i^2 / 2 sigma^2), tap i sampling
    the pixel i steps along the angle, rounded to the pixel grid) for OpenCV's filter2D.
    """
    taps = int(2 * np.ceil(radius) + 1)
    steps = np.arange(taps)
    weights = np.exp(-(steps**2) / (2 * sigma**2))
    angle = np.deg2rad(angle_degrees)
    column_offsets = np.ceil(steps * np.cos(angle) - 0.5).astype(int)
    row_offsets = np.ceil(steps * np.sin(angle) - 0.5).astype(int)
    kernel = np.zeros((2 * taps - 1, 2 * taps - 1), dtype=np.float32)
    np.add.at(kernel, (taps - 1 + row_offsets, taps - 1 + column_offsets), weights / weights.sum())
    return kernel


def motion_blur(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Motion blur at a random angle in [-45, 45] degrees (upstream severity 1: ImageMagick radius 10, sigma 3)."""
    kernel = motion_blur_kernel(radius=10, sigma=3, angle_degrees=rng.uniform(-45, 45))
    blurred = cv2.filter2D(image.astype(np.float32), -1, kernel, borderType=cv2.BORDER_REPLICATE)
    return to_pixels(blurred / 255.0)


def _warp(image: np.ndarray, linear: np.ndarray, offset: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Resample `image` at `linear @ (column, row) + offset`, the matrix taken about the image centre.

    This is skimage's `warp` with the transform given as the inverse map (output -> input), as upstream.
    """
    centre = np.array([CENTRE, CENTRE])
    matrix = np.eye(3)
    matrix[:2, :2] = linear
    matrix[:2, 2] = centre - linear @ centre + np.asarray(offset)
    warped = transform.warp(to_unit(image), transform.AffineTransform(matrix=matrix), order=1, mode="constant", cval=0.0)
    return to_pixels(warped)


def shear(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shear by 0.4 rad either way about the centre (upstream severity 2 of 0.2, 0.4, 0.6, 0.8, 1.0)."""
    angle = 0.4 * rng.choice([-1, 1])
    # The matrix skimage's AffineTransform(shear=angle) built when MNIST-C was made; newer
    # releases changed the meaning of `shear` (tangents, clockwise), so it is spelled out here.
    return _warp(image, np.array([[1.0, -np.sin(angle)], [0.0, np.cos(angle)]]))


def rotate(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rotate by 0.4 rad (23 degrees) either way about the centre (upstream severity 2 of 0.2 ... 1.0 rad)."""
    angle = 0.4 * rng.choice([-1, 1])
    return _warp(image, np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]))


def scale(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shrink to 0.7 of the size about the centre (upstream severity 3 of 0.9, 0.8, 0.7, 0.6, 0.5)."""
    return _warp(image, np.eye(2) / 0.7)


def translate(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shift by 3 pixels along each axis, each way at random (upstream severity 3 of 1 ... 5 pixels)."""
    shift = 3 * rng.choice([-1, 1], size=2)
    return _warp(image, np.eye(2), offset=(float(shift[0]), float(shift[1])))


def brightness(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Raise the brightness by 0.5 (upstream severity 5 of .1 ... .5).

    Upstream adds 0.5 to the value channel in HSV and converts back to grey; for a grey image the
    value is the grey level itself, so that is adding 0.5 to every pixel (to within a grey level of rounding).
    """
    return to_pixels(to_unit(image) + 0.5)


def stripe(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Invert the 7 leftmost and 7 rightmost columns (upstream: columns 0-6 and 21-27)."""
    striped = image.copy()
    striped[:, :7] = 255 - image[:, :7]
    striped[:, 21:] = 255 - image[:, 21:]
    return striped


def plasma_fractal(rng: np.random.Generator, size: int = 256, decay: float = 1.4) -> np.ndarray:
    """A diamond-square height map in [0, 1], the cloud texture of the reference fog.

    As upstream, each new point is the mean of its four neighbours plus wibble * U(-wibble, wibble),
    wibble starting at 100 and divided by `decay` at each halving of the step.
    """
    heights = np.zeros((size, size))
    step, wibble = size, 100.0
    while step >= 2:
        half = step // 2
        corners = heights[0:size:step, 0:size:step]
        square_sums = corners + np.roll(corners, -1, axis=0)
        square_sums += np.roll(square_sums, -1, axis=1)
        heights[half:size:step, half:size:step] = square_sums / 4 + wibble * rng.uniform(-wibble, wibble, square_sums.shape)
        centres = heights[half:size:step, half:size:step]
        row_sums = centres + np.roll(centres, 1, axis=0) + corners + np.roll(corners, -1, axis=1)
        heights[0:size:step, half:size:step] = row_sums / 4 + wibble * rng.uniform(-wibble, wibble, row_sums.shape)
        column_sums = centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=0)
        heights[half:size:step, 0:size:step] = column_sums / 4 + wibble * rng.uniform(-wibble, wibble, column_sums.shape)
        step //= 2
        wibble /= decay
    heights -= heights.min()
    return heights / heights.max()


def fog(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Add 3x a plasma cloud, then scale back to the digit's brightest level (upstream severity 5: (3.0, 1.4))."""
    strength = 3.0
    pixels = to_unit(image)
    brightest = pixels.max()
    # Upstream makes a 256x256 cloud and keeps its top-left corner, which sets the texture's grain.
    foggy = pixels + strength * plasma_fractal(rng, size=256, decay=1.4)[:SIDE, :SIDE]
    return to_pixels(foggy * brightest / (brightest + strength))


def spatter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Grey mud blobs over the digit (upstream severity 4: (0.65, 0.3, 1, 0.65, 1.5, 1), the mud kind)."""
    pixels = to_unit(image)
    liquid = ndimage.gaussian_filter(rng.normal(loc=0.65, scale=0.3, size=pixels.shape), sigma=1, mode="nearest")
    blobs = ndimage.gaussian_filter((liquid > 0.65).astype(np.float64), sigma=1.5, mode="nearest")
    # Only the solid middles of the blobs are kept, at their blurred weights of 0.8 to 1.
    blobs[blobs < 0.8] = 0.0
    mud = 63 / 255
    return to_pixels(pixels * (1 - blobs) + mud * blobs)


def line_layer(start: tuple[float, float], end: tuple[float, float]) -> np.ndarray:
    """A soft line from `start` to `end` ((column, row) pairs, left to right), as a 28x28 layer in [0, 1].

    As upstream, a pixel's strength falls with its vertical distance d to the line as 1 + log(1 - d / 2.3),
    and the columns outside [floor(start column), ceil(end column)) are left dark.
    """
    (start_column, start_row), (end_column, end_row) = start, end
    if end_column == start_column:
        return np.zeros((SIDE, SIDE))
    columns = np.arange(SIDE, dtype=np.float64)[None, :]
    rows = np.arange(SIDE, dtype=np.float64)[:, None]
    line_rows = start_row + (end_row - start_row) / (end_column - start_column) * (columns - start_column)
    distance = np.clip(np.abs(rows - line_rows), 0.0, 2.3 - 1e-10)
    layer = np.clip(np.log(1 - distance / 2.3) + 1, 0.0, 1.0)
    layer[:, : int(np.floor(start_column))] = 0.0
    layer[:, int(np.ceil(end_column)) :] = 0.0
    return layer


def dotted_line(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A dashed line across the digit between two random heights, dashes 2 columns long (upstream)."""
    start_row, end_row = rng.integers(0, 27, size=2)
    line = line_layer((0, start_row), (27, end_row))
    # Upstream blanks columns 0-1, 4-5, 8-9, ...: the dashes are the columns whose pair index is odd.
    line[:, (np.arange(SIDE) // 2) % 2 == 0] = 0.0
    return to_pixels(to_unit(image) + line)


def zigzag_corners(start_row: float, end_row: float) -> np.ndarray:
    """The corners of upstream's zigzag from column 2 to 25: teeth 2 long and 2 high, tilted to `end_row`.

    Returns a (2, K) array of (column, row) points in drawing order.
    """
    tooth_length, tooth_height = 2.0, 2.0
    start_column, end_column = 2, 25
    tilt = np.arctan((end_row - start_row) / (end_column - start_column))
    length = (end_column - start_column) / np.cos(tilt)
    corners = [(0.0, 0.0)]
    for index in range(int((length - tooth_length) // (2 * tooth_length)) + 1):
        corners.append(((2 * index + 1) * tooth_length, (-1) ** index * tooth_height))
    # Upstream closes the zigzag with this odd last point, kept as it is.
    whole_teeth_end = 2 * tooth_length * (length // (2 * tooth_length))
    if length != whole_teeth_end:
        corners.append((length, corners[-1][1] / (2 * (length - whole_teeth_end))))
    rotation = np.array([[np.cos(tilt), -np.sin(tilt)], [np.sin(tilt), np.cos(tilt)]])
    return rotation @ np.array(corners).T + np.array([[start_column], [start_row]])


def zigzag(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A zigzag line across the digit at a random height, tilted by up to 5 rows (upstream)."""
    start_row = rng.integers(0, 27)
    end_row = start_row + rng.integers(-5, 5)
    corners = zigzag_corners(start_row, end_row)
    pixels = to_unit(image)
    for start, end in zip(corners.T[:-1], corners.T[1:], strict=True):
        pixels = np.clip(pixels + line_layer(tuple(start), tuple(end)), 0.0, 1.0)
    return to_pixels(pixels)


def canny_edges(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The digit's Canny edges at skimage's defaults (sigma 1, thresholds 0.1 and 0.2), white on black (upstream)."""
    return to_pixels(feature.canny(to_unit(image)).astype(np.float64))


CORRUPTIONS: dict[str, Corruption] = {
    "shot_noise": shot_noise,
    "impulse_noise": impulse_noise,
    "glass_blur": glass_blur,
    "motion_blur": motion_blur,
    "shear": shear,
    "scale": scale,
    "rotate": rotate,
    "brightness": brightness,
    "translate": translate,
    "stripe": stripe,
    "fog": fog,
    "spatter": spatter,
    "dotted_line": dotted_line,
    "zigzag": zigzag,
    "canny_edges": canny_edges,
}


def corrupt_all(images: np.ndarray, name: str, seed: int = 0) -> np.ndarray:
    """Apply the corruption `name` to each image in turn, from a generator seeded by `seed` and the corruption's place."""
    rng = np.random.default_rng([seed, list(CORRUPTIONS).index(name)])
    corruption = CORRUPTIONS[name]
    return np.stack([corruption(image, rng) for image in images])


def accuracy_through_predict(client: TestClient, images: np.ndarray, labels: np.ndarray) -> tuple[float, int]:
    """Accuracy of `POST /predict` on `images` sent as 28x28 PNGs, and how many it refused (422: blank, or not a digit)."""
    correct = refused = 0
    for image, label in zip(images, labels, strict=True):
        response = client.post("/predict", files={"file": ("digit.png", to_png(mnist_pixels_to_input(image)), "image/png")})
        if response.status_code == 200:
            correct += response.json()["digit"] == label
        elif response.status_code == 422:
            refused += 1
        else:
            raise RuntimeError(f"/predict answered {response.status_code}: {response.text[:200]}")
    return correct / len(images), refused


def accuracy_of_model(classifier: Classifier, images: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of the model alone on `images` scaled to [0, 1], with no preprocessing."""
    probabilities = np.concatenate([classifier.predict(mnist_pixels_to_input(chunk)) for chunk in np.array_split(images, max(1, len(images) // 256))])
    return float(np.mean(probabilities.argmax(axis=1) == labels))


def evaluate(client: TestClient, classifier: Classifier, images: np.ndarray, labels: np.ndarray, seed: int = 0) -> dict[str, dict]:
    """Accuracy on the clean digits and under each corruption, through the app's /predict (`client`) and for `classifier` alone."""
    results: dict[str, dict] = {}
    started = time.perf_counter()
    for place, name in enumerate(["clean", *CORRUPTIONS]):
        corrupted = images if name == "clean" else corrupt_all(images, name, seed)
        through_predict, refused = accuracy_through_predict(client, corrupted, labels)
        results[name] = {"predict": through_predict, "model": accuracy_of_model(classifier, corrupted, labels), "no_digit_found": refused}
        print(
            f"[{place:2d}/{len(CORRUPTIONS)}] {name:<14} /predict {through_predict:6.1%}  model {results[name]['model']:6.1%}"
            f"  ({time.perf_counter() - started:5.1f} s)",
            file=sys.stderr,
            flush=True,
        )
    return results


def summarise(results: dict[str, dict]) -> dict[str, float]:
    """The mean accuracy over the 15 corruptions, both ways."""
    return {way: float(np.mean([results[name][way] for name in CORRUPTIONS])) for way in ("predict", "model")}


def table(results: dict[str, dict], mean: dict[str, float]) -> str:
    """The results as a Markdown table, one row a corruption, then the mean over the 15."""
    lines = ["| corruption | /predict | model alone | difference | refused |", "|---|---:|---:|---:|---:|"]
    for name, result in results.items():
        difference = 100 * (result["predict"] - result["model"])
        lines.append(f"| {name} | {result['predict']:.1%} | {result['model']:.1%} | {difference:+.1f} | {result['no_digit_found']} |")
    lines.append(f"| **mean of 15** | **{mean['predict']:.1%}** | **{mean['model']:.1%}** | {100 * (mean['predict'] - mean['model']):+.1f} | |")
    return "\n".join(lines)


def pyplot():
    """matplotlib's pyplot drawing to files only (no display needed), imported when a figure is made."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot(results: dict[str, dict], mean: dict[str, float], path: Path) -> None:
    """A bar plot of the two accuracies per corruption, and their means."""
    plt = pyplot()
    names = [*CORRUPTIONS, "mean"]
    predict = [100 * results[name]["predict"] for name in CORRUPTIONS] + [100 * mean["predict"]]
    model = [100 * results[name]["model"] for name in CORRUPTIONS] + [100 * mean["model"]]
    positions = np.arange(len(names))
    figure, axes = plt.subplots(figsize=(11, 4.5))
    for offset, values, label in ((-0.2, predict, "through /predict"), (0.2, model, "model alone")):
        bars = axes.bar(positions + offset, values, width=0.4, label=label)
        axes.bar_label(bars, fmt="%.0f", fontsize=7, padding=1)
    axes.set_xticks(positions, [name.replace("_", " ") for name in names], rotation=40, ha="right")
    axes.set_ylabel("accuracy (%)")
    # Headroom above 100% keeps the legend and the bar labels clear of the bars.
    axes.set_ylim(0, 118)
    axes.set_yticks(range(0, 101, 20))
    axes.set_title("MNIST-C: accuracy per corruption")
    axes.legend(loc="upper center", ncol=2, frameon=False)
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def contact_sheet(image: np.ndarray, path: Path, seed: int = 0) -> None:
    """One digit, clean and under each of the 15 corruptions, as a 4x4 grid PNG."""
    plt = pyplot()
    figure, grid = plt.subplots(4, 4, figsize=(8, 8.6))
    panels = [("clean", image)] + [(name, corrupt_all(image[None], name, seed)[0]) for name in CORRUPTIONS]
    for axes, (name, panel) in zip(grid.flat, panels, strict=True):
        axes.imshow(panel, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        axes.set_title(name.replace("_", " "), fontsize=10)
        # A frame, not axis("off"): the image's edge must show where stripe turns the border white.
        axes.set_xticks([])
        axes.set_yticks([])
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its table, JSON and plot."""
    parser = argparse.ArgumentParser(prog="python -m bench.mnist_c", description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="MNIST as a Keras .npz file or IDX folder (default: $DIGITSERVE_MNIST, else Keras' download)")
    parser.add_argument("--count", type=int, default=1000, help="how many test digits, from the first (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the corruptions' random draws")
    parser.add_argument("--model", type=Path, help="the .keras model (default: the shipped one)")
    parser.add_argument("--out", type=Path, default=HERE / "mnist_c.json", help="where to write the JSON results")
    parser.add_argument("--plot", type=Path, default=HERE / "mnist_c.png", help="where to write the bar plot")
    parser.add_argument("--sheet", type=Path, help="also write a contact sheet of the first test digit under every corruption")
    parser.add_argument(
        "--readme", type=Path, action="append", default=[], help=f"also put the table in this Markdown file's {README_SECTION!r} section (repeatable)"
    )
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")

    data = load_mnist(resolve_source(args.data))
    images, labels = data.x_test[: args.count], data.y_test[: args.count]
    if args.sheet:
        contact_sheet(images[0], args.sheet, args.seed)
    started = time.perf_counter()
    settings = Settings(model_path=args.model) if args.model else Settings()
    # One loaded model serves both measurements: the app is built around it, as its lifespan would load it.
    classifier = load_classifier(settings)
    with TestClient(create_app(settings, classifier=classifier)) as client:
        results = evaluate(client, classifier, images, labels, args.seed)
    seconds = time.perf_counter() - started
    mean = summarise(results)
    print(table(results, mean))
    print(f"\n{args.count} test digits per corruption, {seconds:.0f} s on {machine_description()}")
    report = {
        "benchmark": "MNIST-C (Mu & Gilmer 2019), our implementation of google-research/mnist-c at its published severities",
        "count": int(args.count),
        "seed": args.seed,
        "data_sha256": data.sha256,
        "model_version": classifier.version,
        "backend": classifier.backend,
        "machine": machine_description(),
        "seconds": round(seconds, 1),
        "mean": {way: round(value, 4) for way, value in mean.items()},
        "results": results,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    plot(results, mean, args.plot)
    section = f"{table(results, mean)}\n\n{args.count:,} MNIST test digits per corruption, model {classifier.version}; `python -m bench.mnist_c`.\n"
    for readme in args.readme:
        if not replace_section(readme, README_SECTION, section):
            print(f"warning: {readme} has no {README_SECTION!r} section to rewrite", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
