"""Loads MNIST from Keras' download, a Keras-format .npz file or a folder of IDX files."""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA_ENV_VAR = "DIGITSERVE_MNIST"

IDX_FILES = {
    "x_train": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "y_train": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "x_test": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "y_test": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}
IDX_IMAGES_MAGIC = 0x00000803
IDX_LABELS_MAGIC = 0x00000801


class DataError(Exception):
    """The data set could not be found or is not MNIST-shaped."""


@dataclass(frozen=True)
class MnistData:
    """The four MNIST arrays, where they came from, and a digest of their contents."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str

    @property
    def sha256(self) -> str:
        """The sha256 of the four arrays, identical for the same data in any file format."""
        digest = hashlib.sha256()
        for array in (self.x_train, self.y_train, self.x_test, self.y_test):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()


def resolve_source(cli_value: str | None) -> str | None:
    """The data location: the command-line value, else the environment variable, else None."""
    return cli_value or os.environ.get(DATA_ENV_VAR) or None


def load_mnist(source: str | os.PathLike | None = None) -> MnistData:
    """Load MNIST from `source` (npz file or IDX folder), or Keras' download when None."""
    if source is None:
        return _download()
    path = Path(source)
    if not path.exists():
        raise DataError(f"MNIST data not found at {path}: pass a Keras .npz file or a folder of IDX files.")
    if path.is_dir():
        arrays = _load_idx_folder(path)
    else:
        arrays = _load_npz(path)
    return _validated(arrays, str(path))


def load_mnist_for_command(cli_value: str | None) -> MnistData | None:
    """MNIST for a command line, from `--data`, the environment or the download; None after printing why it cannot be read."""
    try:
        return load_mnist(resolve_source(cli_value))
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return None


def split_validation(images: np.ndarray, labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hold a seeded random `fraction` of the training set out for validation."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must be between 0 and 1, got {fraction}")
    order = np.random.default_rng(seed).permutation(len(images))
    held_out = max(1, int(round(len(images) * fraction)))
    val_index, train_index = order[:held_out], order[held_out:]
    return images[train_index], labels[train_index], images[val_index], labels[val_index]


def _download() -> MnistData:
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as error:  # Keras raises several kinds on network failures.
        raise DataError(f"could not download MNIST ({error.__class__.__name__}); pass --data or set {DATA_ENV_VAR}.") from None
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    return _validated(arrays, "keras.datasets.mnist")


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in IDX_FILES if key not in archive.files]
            if missing:
                raise DataError(f"{path} is not a Keras MNIST file: it lacks {', '.join(missing)}.")
            return {key: archive[key] for key in IDX_FILES}
    except DataError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise DataError(f"{path} is not a readable .npz file (corrupt, truncated or another format).") from None


def _load_idx_folder(folder: Path) -> dict[str, np.ndarray]:
    arrays = {}
    for key, names in IDX_FILES.items():
        candidates = [folder / (name + suffix) for name in names for suffix in ("", ".gz")]
        found = next((candidate for candidate in candidates if candidate.is_file()), None)
        if found is None:
            raise DataError(f"{folder} lacks the IDX file {names[0]} (or {names[0]}.gz).")
        arrays[key] = read_idx(found)
    return arrays


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file, gzipped or not (told apart by its first bytes, not its name)."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError):
            raise DataError(f"{path} is a damaged gzip file.") from None
    if len(raw) < 8:
        raise DataError(f"{path} is too short to be an IDX file.")
    magic = int.from_bytes(raw[:4], "big")
    if magic not in (IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC):
        raise DataError(f"{path} is not an IDX file of unsigned bytes (magic number {magic:#010x}).")
    dimensions = magic & 0xFF
    header_size = 4 + 4 * dimensions
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dimensions))
    expected = header_size + int(np.prod(shape))
    if len(raw) != expected:
        raise DataError(f"{path} holds {len(raw)} bytes but its header promises {expected}: it is truncated or damaged.")
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(shape)


def _validated(arrays: dict[str, np.ndarray], source: str) -> MnistData:
    for split in ("train", "test"):
        images, labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise DataError(f"{source}: x_{split} has shape {images.shape}, expected (N, 28, 28).")
        if labels.shape != (images.shape[0],):
            raise DataError(f"{source}: y_{split} has {labels.shape} labels for {images.shape[0]} images.")
        if images.dtype != np.uint8:
            raise DataError(f"{source}: x_{split} is {images.dtype}, expected uint8 pixels.")
        if labels.size and (labels.min() < 0 or labels.max() > 9):
            raise DataError(f"{source}: y_{split} has labels outside 0-9.")
    return MnistData(
        x_train=arrays["x_train"],
        y_train=arrays["y_train"].astype(np.int64),
        x_test=arrays["x_test"],
        y_test=arrays["y_test"].astype(np.int64),
        source=source,
    )
