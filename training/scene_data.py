"""MNIST digits drawn as uploads and photos, then brought back to 28x28 by app/preprocess.py.

The model then trains on what the service will feed it. Each digit is rendered in one of the kinds of
`training.upload_styles.GROUPS` and goes through the same `preprocess` the service calls; images it
refuses are skipped and counted. Rendering takes tens of milliseconds an image, so it runs on every
core, and the result is cached under a digest of everything that decides it.

    python -m training.scene_data --data mnist.npz --count 2000   # render (or load) and print the throughput
"""

from __future__ import annotations

import argparse
import hashlib
import math
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import PIL
import scipy
import skimage

import app.preprocess
import training.scenes
import training.upload_styles
from app.config import default_cache_dir
from app.preprocess import PreprocessError, preprocess
from training.upload_styles import GROUPS

# Photos and scans are what the service reads worst, so they get two thirds of the images.
PHOTO_SHARE = 2 / 3
KINDS = {name: render for kinds in GROUPS.values() for name, render in kinds.items()}
# Images per task: big enough that sending arrays between processes costs little, small enough for a smooth progress line.
CHUNK = 100
PROGRESS_STEP = 0.05
CACHE_FORMAT = 1
# The code and libraries that decide the rendered images; a change to any of them renders afresh.
SOURCES = tuple(Path(module_file) for module_file in (app.preprocess.__file__, training.scenes.__file__, training.upload_styles.__file__, __file__))
LIBRARIES = (np, cv2, PIL, scipy, skimage)


def _code_digest() -> str:
    digest = hashlib.sha256()
    for source in SOURCES:
        digest.update(source.read_bytes())
    digest.update(" ".join(f"{library.__name__} {library.__version__}" for library in LIBRARIES).encode())
    return digest.hexdigest()


# The code as this process imported it, read once: a file edited on disk later must not relabel what
# this process renders, and a worker that imported another version is told apart by it.
CODE_DIGEST = _code_digest()


@dataclass(frozen=True)
class SceneSet:
    """Pipeline outputs of rendered digits, the label, kind and source digit of each, and what was refused."""

    images: np.ndarray  # (N, 28, 28) float32 in [0, 1], as `preprocess` returns them
    labels: np.ndarray  # (N,) int64
    kinds: np.ndarray  # (N,) kind names
    sources: np.ndarray  # (N,) index of each image's digit in the digits it was rendered from
    refused: dict[str, int]  # kind -> images `preprocess` refused, every kind listed
    render_seconds: float  # the time the rendering took, kept when the set comes from the cache
    cache_path: Path | None = None
    cached: bool = False

    def counts(self) -> dict[str, int]:
        """Images kept per kind, every kind listed."""
        names, counts = np.unique(self.kinds, return_counts=True)
        kept = dict(zip(names.tolist(), counts.tolist(), strict=True))
        return {kind: kept.get(kind, 0) for kind in KINDS}


def default_scene_cache() -> Path:
    """$XDG_CACHE_HOME/digitserve/scenes, or ~/.cache/digitserve/scenes."""
    return default_cache_dir() / "scenes"


def plan(count: int, digit_count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Which digit and which kind each of `count` images gets, seeded.

    Every digit is used once before any is used again, and the kinds are shared out evenly within their
    group, then shuffled so that every stretch of the plan mixes them.
    """
    if digit_count < 1:
        raise ValueError("there are no digits to render")
    rng = np.random.default_rng(seed)
    passes = math.ceil(count / digit_count)
    sources = np.concatenate([rng.permutation(digit_count) for _ in range(passes)] or [np.zeros(0, np.int64)])[:count]
    photos = round(count * PHOTO_SHARE)
    kinds = np.concatenate([np.resize(list(GROUPS["photos"]), photos), np.resize(list(GROUPS["uploads"]), count - photos)])
    return sources, rng.permutation(kinds.astype(str))


def render_scenes(
    digits: np.ndarray,
    labels: np.ndarray,
    count: int,
    seed: int,
    cache_dir: Path | None = None,
    workers: int | None = None,
    name: str = "scene images",
) -> SceneSet:
    """`count` pipeline outputs of `digits` (uint8 MNIST) in all kinds, on `workers` processes; cached in `cache_dir` unless None."""
    if count < 0:
        raise ValueError(f"the number of scene images must not be negative, got {count}")
    path = cache_dir / f"{count}-{cache_key(digits, labels, count, seed)[:32]}.npz" if cache_dir is not None else None
    if path is not None and (scenes := read_cache(path)) is not None:
        print(f"{name}: {len(scenes.images):,} loaded from {path}", file=sys.stderr)
        return scenes
    sources, kinds = plan(count, len(digits), seed)
    started = time.monotonic()
    images, kept, same_code = _render(digits[sources], kinds, seed, workers or _usable_cores(), name)
    refused = {kind: int(np.sum((kinds == kind) & ~kept)) for kind in KINDS}
    scenes = SceneSet(images[kept], labels[sources][kept].astype(np.int64), kinds[kept], sources[kept], refused, time.monotonic() - started, path)
    if path is not None and same_code:
        write_cache(path, scenes)
    elif path is not None:
        print(f"{name}: app/preprocess.py or the scene code changed on disk while rendering, so these images are not cached", file=sys.stderr)
    return scenes


def _usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _render(digits: np.ndarray, kinds: np.ndarray, seed: int, workers: int, name: str) -> tuple[np.ndarray, np.ndarray, bool]:
    """Render and preprocess each digit in its kind: the images (zeros where refused), which were kept, and whether all ran this code."""
    tasks = [(start, digits[start : start + CHUNK], kinds[start : start + CHUNK], seed) for start in range(0, len(digits), CHUNK)]
    images = np.zeros((len(digits), 28, 28), dtype=np.float32)
    kept = np.zeros(len(digits), dtype=bool)
    same_code = True
    processes = max(1, min(workers, len(tasks)))
    progress = _Progress(name, len(digits), processes)
    if processes == 1:
        results = map(_render_chunk, tasks)
        pool = None
    else:
        # Spawned, not forked: the parent may already run TensorFlow's and OpenCV's threads, which a fork copies badly.
        pool = multiprocessing.get_context("spawn").Pool(processes, initializer=_start_worker)
        results = pool.imap(_render_chunk, tasks)
    try:
        for (start, _, _, _), (chunk_images, chunk_kept, code_digest) in zip(tasks, results, strict=True):
            images[start : start + len(chunk_kept)] = chunk_images
            kept[start : start + len(chunk_kept)] = chunk_kept
            same_code = same_code and code_digest == CODE_DIGEST
            progress.advance(len(chunk_kept))
    finally:
        if pool is not None:
            pool.terminate()
    return images, kept, same_code


def _start_worker() -> None:
    # One OpenCV thread per process: the processes already fill the cores, and more threads only contend.
    cv2.setNumThreads(1)


def _render_chunk(task) -> tuple[np.ndarray, np.ndarray, str]:
    start, digits, kinds, seed = task
    images = np.zeros((len(digits), 28, 28), dtype=np.float32)
    kept = np.zeros(len(digits), dtype=bool)
    for offset, (digit, kind) in enumerate(zip(digits, kinds, strict=True)):
        # One generator per image, from the seed and the image's place, so the result does not depend on how the work is split.
        rng = np.random.default_rng([seed, start + offset])
        try:
            images[offset] = preprocess(KINDS[kind](digit, rng))
            kept[offset] = True
        except PreprocessError:
            pass
        except Exception as error:
            raise RuntimeError(f"{kind} image {start + offset} (seed {seed}) broke rendering or preprocessing: {error!r}") from error
    return images, kept, CODE_DIGEST


class _Progress:
    """A line on stderr each time another 5% of the images is done: count, rate and time left."""

    def __init__(self, name: str, total: int, workers: int):
        self.name, self.total, self.done, self.next_report = name, total, 0, PROGRESS_STEP
        self.started = time.monotonic()
        if total:
            print(f"{name}: rendering {total:,} on {workers} process(es)", file=sys.stderr)

    def advance(self, count: int) -> None:
        self.done += count
        if self.done < self.total and self.done < self.next_report * self.total:
            return
        while self.next_report * self.total <= self.done:
            self.next_report += PROGRESS_STEP
        elapsed = time.monotonic() - self.started
        rate = self.done / max(elapsed, 1e-9)
        left = (self.total - self.done) / rate
        line = f"{self.name}: {self.done:,}/{self.total:,} ({self.done / self.total:.0%}), {rate:.0f}/s, {left:.0f} s left"
        print(line, file=sys.stderr, flush=True)


def cache_key(digits: np.ndarray, labels: np.ndarray, count: int, seed: int) -> str:
    """sha256 of everything that decides the images: the code and library versions, seed, count and the digits themselves.

    Hashing the digits and labels rendered, rather than naming the data file, also covers the
    validation split and --limit, which decide which digits these are.
    """
    digest = hashlib.sha256(f"format {CACHE_FORMAT}, count {count}, seed {seed}, code {CODE_DIGEST}\n".encode())
    digest.update(np.ascontiguousarray(digits, dtype=np.uint8).tobytes())
    digest.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return digest.hexdigest()


def read_cache(path: Path) -> SceneSet | None:
    """The cached set at `path`, or None when there is no intact one."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
        scenes = SceneSet(
            images=arrays["images"],
            labels=arrays["labels"],
            kinds=arrays["kinds"],
            sources=arrays["sources"],
            refused=dict(zip(arrays["refused_kinds"].tolist(), arrays["refused_counts"].tolist(), strict=True)),
            render_seconds=float(arrays["render_seconds"]),
            cache_path=path,
            cached=True,
        )
    except (OSError, ValueError, KeyError, EOFError):
        return None
    lengths = {len(scenes.images), len(scenes.labels), len(scenes.kinds), len(scenes.sources)}
    return scenes if len(lengths) == 1 and scenes.images.shape[1:] == (28, 28) else None


def write_cache(path: Path, scenes: SceneSet) -> None:
    """Write `scenes` to `path` through a temporary file, so an interrupted write leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.stem}.{os.getpid()}.partial.npz")
    np.savez_compressed(
        partial,
        images=scenes.images,
        labels=scenes.labels,
        kinds=scenes.kinds,
        sources=scenes.sources,
        refused_kinds=np.array(list(scenes.refused), dtype=str),
        refused_counts=np.array(list(scenes.refused.values()), dtype=np.int64),
        render_seconds=np.float64(scenes.render_seconds),
    )
    os.replace(partial, path)


def summary(scenes: SceneSet) -> dict:
    """What the model card records of a scene set: images and refusals per kind, and the render time."""
    return {
        "images": len(scenes.images),
        "per_kind": scenes.counts(),
        "refused_per_kind": scenes.refused,
        "render_seconds": round(scenes.render_seconds, 1),
        "images_per_second": round((len(scenes.images) + sum(scenes.refused.values())) / max(scenes.render_seconds, 1e-9), 1),
    }


def main(argv: list[str] | None = None) -> int:
    from training.data import load_mnist_for_command, split_validation
    from training.recipes import PROJECT_RECIPE

    parser = argparse.ArgumentParser(prog="python -m training.scene_data", description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="MNIST .npz file or IDX folder")
    parser.add_argument("--count", type=int, default=2000, help="scene images to render (default 2000)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the validation split and the rendering")
    parser.add_argument("--workers", type=int, help="processes (default: one per usable core)")
    parser.add_argument("--scene-cache", type=Path, help="cache folder (default: none, so the rendering is timed)")
    args = parser.parse_args(argv)
    data = load_mnist_for_command(args.data)
    if data is None:
        return 2
    # The digits training draws from: the training set less the project recipe's validation split.
    digits, labels, _, _ = split_validation(data.x_train, data.y_train, PROJECT_RECIPE.validation_fraction, args.seed)
    scenes = render_scenes(digits, labels, args.count, args.seed, args.scene_cache, args.workers)
    record = summary(scenes)
    for kind, kept in record["per_kind"].items():
        print(f"{kind:>20}  {kept:6,} kept  {record['refused_per_kind'][kind]:5,} refused")
    print(f"{record['images']:,} images in {record['render_seconds']} s: {record['images_per_second']} images/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
