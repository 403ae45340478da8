"""Micro-benchmark of app/preprocess.py: p50 and p99 per upload and per kind of image, decode and the rest apart.

    python bench/preprocess_bench.py                            # the bench uploads; every kind too when MNIST is found
    python bench/preprocess_bench.py --data mnist.npz --per-kind 40 --times-each 3
    python bench/preprocess_bench.py --data mnist.npz --compare-with ../other-checkout   # the same images through both
    python bench/preprocess_bench.py --data mnist.npz --readme bench/README.md            # and rewrite its per-kind section

The kinds are those of `training.upload_styles.GROUPS` ("uploads": files drawing apps and phones
make, "photos": photos and scans of real surfaces), each rendered from MNIST test digits, plus
the three bench uploads. `--compare-with` imports another checkout's app/preprocess.py under a
module name of its own and times each image through both, in turns, in this one process, so the
two are measured under the same conditions. That file must import nothing from its own `app`
package (the style guide keeps preprocessing self-contained).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from app import preprocess as this_preprocess  # noqa: E402
from app.preprocess import decode, preprocess, to_mnist  # noqa: E402
from bench.images import IMAGES  # noqa: E402
from training.data import DataError, load_mnist, resolve_source  # noqa: E402
from training.machine import machine_description  # noqa: E402
from training.markdown import replace_section  # noqa: E402
from training.upload_styles import GROUPS, render_fixtures  # noqa: E402

TARGETS_MS = {"280x280 PNG": 0.5, "2000x2000 JPEG": 10.0}
THIS = "this checkout"
COMPARED = "compared"
README_SECTION = "preprocessing"
BENCH_GROUP = "bench"


def timings_ms(function, argument, repeats: int) -> list[float]:
    function(argument)  # warm caches and lazy imports
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function(argument)
        times.append((time.perf_counter() - started) * 1000)
    return sorted(times)


def percentile(ordered: list[float], share: float) -> float:
    """The nearest-rank percentile of sorted values: the smallest value with at least `share` of them at or below it."""
    return ordered[max(math.ceil(share * len(ordered)) - 1, 0)]


def threads_as_served():
    """One OpenCV and one BLAS thread, as `app.__main__.tune_process` sets them for the service."""
    cv2.setNumThreads(1)
    return threadpool_limits(1, user_api="blas")


def measure(repeats: int) -> dict[str, dict[str, float]]:
    """{image: {total_p50, total_p99, decode_p50, pipeline_p50}} in milliseconds, for the bench uploads."""
    results = {}
    with threads_as_served():
        for name, (make, _) in IMAGES.items():
            data = make()
            count = repeats if "JPEG" not in name else max(20, repeats // 10)
            total = timings_ms(preprocess, data, count)
            decoded = decode(data).pixels
            results[name] = {
                "bytes": len(data),
                "total_p50": statistics.median(total),
                "total_p99": percentile(total, 0.99),
                "decode_p50": statistics.median(timings_ms(decode, data, count)),
                "pipeline_p50": statistics.median(timings_ms(to_mnist, decoded, count)),
            }
    return results


def report(results: dict) -> str:
    lines = ["| upload | bytes | decode p50 | rest of preprocessing p50 | total p50 | total p99 | target |", "|---|---:|---:|---:|---:|---:|---|"]
    for name, row in results.items():
        target = TARGETS_MS.get(name)
        verdict = f"<= {target} ms: {'met' if row['total_p50'] <= target else 'NOT met'}" if target else "-"
        lines.append(
            f"| {name} | {row['bytes']:,} | {row['decode_p50']:.3f} ms | {row['pipeline_p50']:.3f} ms | {row['total_p50']:.3f} ms "
            f"| {row['total_p99']:.3f} ms | {verdict} |"
        )
    return "\n".join(lines)


class Kind(NamedTuple):
    """A kind of image: the group it belongs to and the encoded images that stand for it."""

    group: str
    images: list[bytes]


def load_preprocess(checkout: Path, name: str = "compared_preprocess") -> ModuleType:
    """The app/preprocess.py of another checkout, imported as module `name` beside this checkout's own."""
    path = Path(checkout) / "app" / "preprocess.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: --compare-with takes the root folder of a checkout of this project")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    # Dataclasses look their module up by name while the module runs.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def render_kinds(digits: np.ndarray, per_kind: int, groups: dict | None = None, seed: int = 0) -> dict[str, Kind]:
    """`per_kind` images of each upload style and photo scene, rendered from `digits` (28x28 uint8, white on black), then the bench uploads.

    A bench upload is one image, listed `per_kind` times so that it is timed as often as a kind.
    """
    kinds: dict[str, Kind] = {}
    labels = np.zeros(len(digits), dtype=np.int64)
    for group, styles in (groups or GROUPS).items():
        for style, _, data in render_fixtures(digits, labels, per_kind, seed, styles):
            kinds.setdefault(style, Kind(group, [])).images.append(data)
    for name, (make, _) in IMAGES.items():
        kinds[name] = Kind(BENCH_GROUP, [make()] * per_kind)
    return kinds


def _time_once(module: ModuleType, data: bytes) -> tuple[float, float, bool]:
    """Milliseconds to decode `data` and to run the rest of the preprocessing on it, and whether a digit came out."""
    started = time.perf_counter()
    try:
        pixels = module.decode(data).pixels
    except module.PreprocessError:
        return (time.perf_counter() - started) * 1000, 0.0, False
    decoded = time.perf_counter()
    try:
        module.to_mnist(pixels)
        accepted = True
    except module.PreprocessError:
        accepted = False
    return (decoded - started) * 1000, (time.perf_counter() - decoded) * 1000, accepted


class _Samples(NamedTuple):
    decode: list[float]
    rest: list[float]
    rejected: set[bytes]


def _summary(samples: list[_Samples], images: int) -> dict[str, float]:
    """p50 and p99 of decode, the rest and their sum over all timings in `samples`, in milliseconds."""
    decode_ms = [value for sample in samples for value in sample.decode]
    rest_ms = [value for sample in samples for value in sample.rest]
    result = {"timings": len(decode_ms), "images": images, "rejected": sum(len(sample.rejected) for sample in samples)}
    total_ms = [first + second for first, second in zip(decode_ms, rest_ms, strict=True)]
    for part, values in (("decode", decode_ms), ("rest", rest_ms), ("total", total_ms)):
        ordered = sorted(values)
        result[f"{part}_p50"] = statistics.median(ordered)
        result[f"{part}_p99"] = percentile(ordered, 0.99)
    return result


def time_kinds(kinds: dict[str, Kind], modules: dict[str, ModuleType], times_each: int) -> dict:
    """Each image of each kind through each of `modules` (label: preprocess module), `times_each` times, in turns.

    Returns {"kinds": {kind: {"group", label: summary}}, "groups": {group: {label: summary}}},
    a summary holding decode_, rest_ and total_ p50 and p99 in milliseconds, the number of
    timings and of images the module rejected (no digit found; timed all the same).
    """
    labels = list(modules)
    raw: dict[str, dict[str, _Samples]] = {}
    with threads_as_served():
        for kind, (_, images) in kinds.items():
            samples = raw[kind] = {label: _Samples([], [], set()) for label in labels}
            for module in modules.values():
                _time_once(module, images[0])  # warm caches and lazy imports
            for index, data in enumerate(images):
                for repeat in range(times_each):
                    # Take turns at going first, so that neither always runs on caches the other warmed.
                    shift = (index + repeat) % len(labels)
                    for label in labels[shift:] + labels[:shift]:
                        decode_ms, rest_ms, accepted = _time_once(modules[label], data)
                        samples[label].decode.append(decode_ms)
                        samples[label].rest.append(rest_ms)
                        if not accepted:
                            samples[label].rejected.add(data)
    result: dict = {"kinds": {}, "groups": {}}
    for kind, samples in raw.items():
        group, images = kinds[kind]
        result["kinds"][kind] = {"group": group, **{label: _summary([samples[label]], len(set(images))) for label in labels}}
    for group in dict.fromkeys(kind.group for kind in kinds.values()):
        members = [name for name, kind in kinds.items() if kind.group == group]
        images = sum(len(set(kinds[name].images)) for name in members)
        result["groups"][group] = {label: _summary([raw[name][label] for name in members], images) for label in labels}
    return result


def load_digits(source: str | None) -> np.ndarray | None:
    """MNIST's test digits from `source` (npz file or IDX folder); None when no source is given (nothing is downloaded)."""
    if source is None:
        return None
    return load_mnist(source).x_test


def measure_kinds(digits: np.ndarray, per_kind: int = 40, times_each: int = 3, compare_with: Path | None = None, groups: dict | None = None) -> dict:
    """Per-kind preprocessing times of this checkout (and of the checkout `compare_with`, interleaved): see `time_kinds`."""
    modules = {THIS: this_preprocess}
    if compare_with is not None:
        modules = {COMPARED: load_preprocess(compare_with), **modules}
    kinds = render_kinds(digits, per_kind, groups)
    result = time_kinds(kinds, modules, times_each)
    result.update(per_kind=per_kind, times_each=times_each, compared_with=Path(compare_with).name if compare_with else None)
    return result


def _rows(results: dict):
    """(group, name, {label: summary}) for each kind, each rendered group's pooled figures after its kinds."""
    for group, pooled in results["groups"].items():
        for name, row in results["kinds"].items():
            if row["group"] == group:
                yield group, name, row
        # The bench uploads are three unrelated images: pooling them says nothing.
        if group != BENCH_GROUP:
            yield group, f"**all {group}**", pooled


def kinds_report(results: dict, label: str = THIS) -> str:
    """A Markdown table: decode, the rest and the total, p50 and p99, for each kind as measured for `label`."""
    lines = [
        "| group | kind | images | rejected | decode p50 | decode p99 | rest p50 | rest p99 | total p50 | total p99 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for group, name, row in _rows(results):
        figures = row[label]
        times = " | ".join(f"{figures[f'{part}_{level}']:.2f} ms" for part in ("decode", "rest", "total") for level in ("p50", "p99"))
        lines.append(f"| {group} | {name} | {figures['images']} | {figures['rejected']} | {times} |")
    return "\n".join(lines)


def comparison_report(results: dict) -> str:
    """A Markdown table: the compared checkout against this one, total p50 and p99 and the rest's p50, for each kind."""
    lines = [
        "| group | kind | rejected (compared / this) | total p50 compared | total p50 this | ratio | total p99 compared | total p99 this | ratio "
        "| rest p50 compared | rest p50 this | ratio |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for group, name, row in _rows(results):
        before, after = row[COMPARED], row[THIS]
        cells = [group, name, f"{before['rejected']} / {after['rejected']}"]
        for key in ("total_p50", "total_p99", "rest_p50"):
            ratio = after[key] / before[key] if before[key] > 0 else math.inf
            cells += [f"{before[key]:.2f} ms", f"{after[key]:.2f} ms", f"{ratio:.1f}x"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def kinds_markdown(results: dict, machine: str, command: str) -> str:
    """The per-kind section: how it was measured, the table, and the comparison when there is one."""
    per_kind, times_each = results["per_kind"], results["times_each"]
    text = (
        f"Measured by `{command}` on {machine}, one BLAS thread as the service runs: {per_kind} MNIST test digits "
        f"rendered per kind, each timed {times_each} times; a bench upload is one image timed {per_kind * times_each} times. "
        "Decode is `decode()`, the rest is `to_mnist()` on its output, total their sum; p50 and p99 are over all "
        "timings of a kind. Rejected: images in which no digit was found (timed all the same).\n\n" + kinds_report(results) + "\n"
    )
    if results.get("compared_with"):
        text += (
            f"\nThe same images through the app/preprocess.py of `{results['compared_with']}` (compared) and of this checkout, "
            "in turns in one process; ratio is this over compared.\n\n" + comparison_report(results) + "\n"
        )
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/preprocess_bench.py", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=500, help="timings of each bench upload in the first table (default 500)")
    parser.add_argument("--data", help="MNIST .npz file or IDX folder for the per-kind table (default: $DIGITSERVE_MNIST; skipped without)")
    parser.add_argument("--per-kind", type=int, default=40, help="images rendered per kind (default 40)")
    parser.add_argument("--times-each", type=int, default=3, help="timings of each of those images (default 3)")
    parser.add_argument("--compare-with", type=Path, metavar="CHECKOUT", help="also time another checkout's app/preprocess.py on the same images")
    parser.add_argument("--readme", type=Path, help="rewrite the per-kind section of this Markdown file (bench/README.md)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args(argv)
    results = measure(args.repeats)
    try:
        digits = load_digits(resolve_source(args.data))
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    by_kind = measure_kinds(digits, args.per_kind, args.times_each, args.compare_with) if digits is not None else None
    if args.json:
        print(json.dumps({"preprocessing": results, "preprocessing_by_kind": by_kind}, indent=2))
        return 0
    print(report(results))
    if by_kind is None:
        print("\nper-kind table skipped: no MNIST data (pass --data or set DIGITSERVE_MNIST)")
        return 0
    command = f"python bench/preprocess_bench.py --per-kind {args.per_kind} --times-each {args.times_each}"
    if args.compare_with:
        command += f" --compare-with {args.compare_with.name}"
    text = kinds_markdown(by_kind, machine_description(), command)
    print("\n" + text)
    if args.readme and replace_section(args.readme, README_SECTION, text):
        print(f"updated the {README_SECTION} section of {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
